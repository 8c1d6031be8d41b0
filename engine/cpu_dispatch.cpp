#include "engine/cpu_dispatch.h"

namespace mt::cpu_dispatch {

namespace {
Level g_cap = Level::Avx512;
bool allows(Level l) { return (int)g_cap >= (int)l; }
}  // namespace

bool use_avx2() {
  static const bool have = __builtin_cpu_supports("avx2");
  return have && allows(Level::Avx2);
}

bool use_avx2_fma() {
  static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return have && allows(Level::Avx2);
}

bool use_avx512() {
  static const bool have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return have && allows(Level::Avx512);
}

void cap(Level max) { g_cap = max; }

void force_portable(bool on) { g_cap = on ? Level::Portable : Level::Avx512; }

}  // namespace mt::cpu_dispatch
