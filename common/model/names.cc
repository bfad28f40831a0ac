#include "common/model/names.h"

#include <cctype>

namespace ferry::model {
namespace {
bool alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
}  // namespace

bool is_dns1123_label(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!alnum_lower(s.front()) || !alnum_lower(s.back())) return false;
  for (char c : s)
    if (!alnum_lower(c) && c != '-') return false;
  return true;
}

bool is_dns1123_subdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string label = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!is_dns1123_label(label)) return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

std::string to_dns1123_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out += alnum_lower(l) ? l : '-';
  }
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && !alnum_lower(out.front())) out.erase(out.begin());
  while (!out.empty() && !alnum_lower(out.back())) out.pop_back();
  if (out.empty()) out = "vm";
  return out;
}

}  // namespace ferry::model
