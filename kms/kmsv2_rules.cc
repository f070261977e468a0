#include "kms/kmsv2_rules.h"

#include "fmt/format.h"

namespace kmsplugin {
namespace {

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
bool IsDns1123Label(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (!IsAlnum(label.front()) || !IsAlnum(label.back())) return false;
  for (char c : label) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

}  // namespace

bool IsFullyQualifiedDomainName(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  size_t labels = 0;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string_view label =
        name.substr(start, dot == std::string_view::npos ? name.npos : dot - start);
    if (!IsDns1123Label(label)) return false;
    ++labels;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return labels >= 2;
}

absl::Status ValidateAnnotations(const Annotations& annotations) {
  size_t total = 0;
  for (const auto& [k, v] : annotations) {
    total += k.size() + v.size();
    if (total > kMaxAnnotationsSize) {
      return absl::InvalidArgumentError(
          fmt::format("annotations exceed the {} byte limit ({} entries)", kMaxAnnotationsSize,
                      annotations.size()));
    }
    if (!IsFullyQualifiedDomainName(k)) {
      return absl::InvalidArgumentError(fmt::format(
          "annotation key of {} bytes is not a lower-case fully qualified domain name", k.size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace kmsplugin
