#include "base/printable.h"

#include "absl/strings/str_cat.h"

namespace kmsplugin {

std::string Printable(std::string_view in, size_t max_len) {
  const bool cut = in.size() > max_len;
  std::string_view head = cut ? in.substr(0, max_len) : in;
  std::string out;
  out.reserve(head.size() + (cut ? 24 : 0));
  for (unsigned char c : head) {
    out.push_back((c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') ? static_cast<char>(c) : '?');
  }
  if (cut) absl::StrAppend(&out, "...(", in.size(), " bytes)");
  return out;
}

}  // namespace kmsplugin
