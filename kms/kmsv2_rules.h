// The KMS v2 rules kube-apiserver applies (kmsv2-contract.md §2.2, §3.2), shared by the plugin
// (plugin/envelope_format.h: what an Encrypt returns) and reencrypt
// (tools/reencrypt/storage_format.h: what etcd holds), and the big-endian length prefixes both
// formats write. Pure computation; library kmsp_kmsv2_rules (base/ only, no server, no gRPC).
#ifndef KMSP_KMS_KMSV2_RULES_H_
#define KMSP_KMS_KMSV2_RULES_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace kmsplugin {

inline constexpr size_t kMaxKeyIdSize = 1024;
inline constexpr size_t kMaxAnnotationsSize = size_t{32} * 1024;  // Sum of len(key) + len(value).

using Annotations = std::map<std::string, std::string>;

// True if `name` is a DNS-1123 fully qualified domain name as apimachinery's
// IsFullyQualifiedDomainName checks it (one trailing dot dropped; <= 253; >= 2 labels of
// [a-z0-9]([-a-z0-9]*[a-z0-9])?, each <= 63).
bool IsFullyQualifiedDomainName(std::string_view name);

// The apiserver's checks on annotations: lower-case FQDN keys, sum of key and value sizes
// <= kMaxAnnotationsSize. INVALID_ARGUMENT otherwise; messages hold sizes only, never a key.
absl::Status ValidateAnnotations(const Annotations& annotations);

// Appends the low 16 (32) bits of `v`, big-endian.
inline void PutU16(size_t v, std::string* out) {
  out->push_back(static_cast<char>((v >> 8) & 0xff));
  out->push_back(static_cast<char>(v & 0xff));
}
inline void PutU32(size_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

}  // namespace kmsplugin

#endif  // KMSP_KMS_KMSV2_RULES_H_
