#include "engine/cpu_dispatch.h"

namespace mt::cpu_dispatch {

namespace {
bool g_force_portable = false;
}  // namespace

bool use_avx2() {
  static const bool have = __builtin_cpu_supports("avx2");
  return have && !g_force_portable;
}

void force_portable(bool on) { g_force_portable = on; }

}  // namespace mt::cpu_dispatch
