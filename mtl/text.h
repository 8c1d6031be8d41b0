// The string helpers every part of mtl/ uses (model files, the training code, the
// solvers' messages, the experiment drivers): split on a separator, join with one, and
// a number as the stream prints it (for error messages).
#pragma once
#include <sstream>
#include <string>
#include <vector>

namespace mt::text {

// "a,b,,c" -> {"a", "b", "", "c"} (empty pieces kept; "" -> {""}).
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

inline std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); i++) s += (i ? sep : "") + v[i];
  return s;
}

// 0.1, 1e-30, 3: a number as std::ostream prints it.
inline std::string num(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

}  // namespace mt::text
