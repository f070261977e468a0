// The checks kube-apiserver applies to a KMS v2 plugin's replies, as test helpers
// (kmsv2-contract.md §2.1 Status, §2.2 Encrypt, §3.7 DEK-cache key, §2.9 uniqueness).
//
// Each check returns OK or an absl::Status whose message says which rule failed (with sizes,
// never the bytes). They mirror the apiserver code paths named in the contract:
//   - ValidateStatusResponse:  isKMSv2ProviderHealthyAndMaybeRotateDEK (config.go)
//   - ValidateEncryptResponse: ValidateEncryptedObject / validateAnnotations (kmsv2/envelope.go)
//   - ValidateAnnotationKey:   apimachinery validation.IsFullyQualifiedDomainName
// ApiserverView strings them together the way one apiserver provider does (remembers the first
// version and the last Status key_id).
//
// Header-only; used by the plugin, rotate and AWS integration tests. Not thread-safe
// (ApiserverView); the free functions are pure.
#ifndef KMSP_TESTS_INTEGRATION_APISERVER_VALIDATION_H_
#define KMSP_TESTS_INTEGRATION_APISERVER_VALIDATION_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/status.h"
#include "fmt/format.h"
#include "proto/kmsv2/api.pb.h"

namespace kmsplugin::testing {

// Limits from kubernetes/apiserver kmsv2/envelope.go and config.go.
inline constexpr size_t kApiserverMaxCiphertextSize = 1024;  // rejects len > 1024
inline constexpr size_t kApiserverMaxKeyIdSize = 1024;       // rejects len > 1024
inline constexpr size_t kApiserverMaxAnnotationsSize = size_t{32} * 1024;
// What this project promises (the proto comment reads "less than 1 kB").
inline constexpr size_t kPromisedMaxCiphertextSize = 1023;

// apimachinery IsDNS1123Subdomain / IsDNS1123Label limits.
inline constexpr size_t kDns1123SubdomainMaxLength = 253;
inline constexpr size_t kDns1123LabelMaxLength = 63;

using AnnotationMap = std::map<std::string, std::string>;

// apimachinery IsFullyQualifiedDomainName: drop one trailing '.', then the rest must be a DNS-1123
// subdomain (<= 253 chars, regex below), have at least two labels, each a DNS-1123 label
// (<= 63 chars). Empty is invalid ("Required value").
inline absl::Status ValidateAnnotationKey(std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("annotation key: required value (empty)");
  std::string name(key);
  if (name.back() == '.') name.pop_back();
  static const std::regex kSubdomain(
      "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", std::regex::ECMAScript);
  static const std::regex kLabel("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", std::regex::ECMAScript);
  if (name.size() > kDns1123SubdomainMaxLength) {
    return absl::InvalidArgumentError(
        fmt::format("annotation key of {} chars: longer than {} (DNS-1123 subdomain)", name.size(),
                    kDns1123SubdomainMaxLength));
  }
  if (!std::regex_match(name, kSubdomain)) {
    return absl::InvalidArgumentError(
        fmt::format("annotation key '{}': not a lower-case RFC 1123 subdomain", name));
  }
  std::vector<std::string> labels;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    labels.push_back(
        name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (labels.size() < 2) {
    return absl::InvalidArgumentError(fmt::format(
        "annotation key '{}': should be a domain with at least two segments separated by dots",
        name));
  }
  for (const std::string& label : labels) {
    if (label.size() > kDns1123LabelMaxLength || !std::regex_match(label, kLabel)) {
      return absl::InvalidArgumentError(
          fmt::format("annotation key '{}': label of {} chars is not a DNS-1123 label (<= {})",
                      name, label.size(), kDns1123LabelMaxLength));
    }
  }
  return absl::OkStatus();
}

// validateAnnotations: every key an FQDN, sum of len(key) + len(value) <= 32 KiB.
template <typename Map>
absl::Status ValidateAnnotations(const Map& annotations) {
  uint64_t total = 0;
  for (const auto& [key, value] : annotations) {
    KMSP_RETURN_IF_ERROR(ValidateAnnotationKey(key));
    total += key.size() + value.size();
  }
  if (total > kApiserverMaxAnnotationsSize) {
    return absl::InvalidArgumentError(fmt::format("annotations total {} bytes, more than {}", total,
                                                  kApiserverMaxAnnotationsSize));
  }
  return absl::OkStatus();
}

// key_id as checked both on Status (§2.1) and on Encrypt (§2.2).
inline absl::Status ValidateKeyId(std::string_view key_id) {
  if (key_id.empty()) return absl::InvalidArgumentError("key_id is empty");
  if (key_id.size() > kApiserverMaxKeyIdSize) {
    return absl::InvalidArgumentError(
        fmt::format("key_id of {} bytes, more than {}", key_id.size(), kApiserverMaxKeyIdSize));
  }
  return absl::OkStatus();
}

// §2.1. `required_version`, when set, is the version the apiserver saw first (it must not change);
// otherwise "v2" and "v2beta1" are both accepted.
inline absl::Status ValidateStatusResponse(
    const v2::StatusResponse& r, std::optional<std::string_view> required_version = std::nullopt) {
  if (r.healthz() != "ok") {
    return absl::FailedPreconditionError(
        fmt::format("healthz is '{}', not exactly 'ok'", r.healthz()));
  }
  if (required_version.has_value()) {
    if (r.version() != *required_version) {
      return absl::FailedPreconditionError(fmt::format(
          "version '{}' differs from the first one seen '{}'", r.version(), *required_version));
    }
  } else if (r.version() != "v2" && r.version() != "v2beta1") {
    return absl::FailedPreconditionError(
        fmt::format("version is '{}', not 'v2' or 'v2beta1'", r.version()));
  }
  return Annotate(ValidateKeyId(r.key_id()), "status");
}

// §2.2 (ValidateEncryptedObject plus the key_id comparison of rotateDEKOnKeyIDChange).
template <typename Map>
absl::Status ValidateEncryptResult(std::string_view ciphertext, std::string_view key_id,
                                   const Map& annotations, std::string_view status_key_id) {
  if (ciphertext.empty()) return absl::InvalidArgumentError("encrypt: ciphertext is empty");
  if (ciphertext.size() > kApiserverMaxCiphertextSize) {
    return absl::InvalidArgumentError(fmt::format("encrypt: ciphertext of {} bytes, more than {}",
                                                  ciphertext.size(), kApiserverMaxCiphertextSize));
  }
  KMSP_RETURN_IF_ERROR(Annotate(ValidateKeyId(key_id), "encrypt"));
  KMSP_RETURN_IF_ERROR(Annotate(ValidateAnnotations(annotations), "encrypt"));
  if (key_id != status_key_id) {
    return absl::FailedPreconditionError(
        fmt::format("encrypt: key_id '{}' differs from the preceding Status key_id '{}'", key_id,
                    status_key_id));
  }
  return absl::OkStatus();
}

inline absl::Status ValidateEncryptResponse(const v2::EncryptResponse& r,
                                            std::string_view status_key_id) {
  return ValidateEncryptResult(r.ciphertext(), r.key_id(), r.annotations(), status_key_id);
}

// The apiserver's DEK-cache key material (§3.7) before hashing: type, ciphertext, key_id and
// sorted annotations, each length-prefixed. Two replies with equal keys would share one cache
// entry, so distinct plaintexts must give distinct keys (§2.9 item 2).
template <typename Map>
std::string DekCacheKey(std::string_view ciphertext, std::string_view key_id,
                        const Map& annotations, uint32_t type = 1) {
  auto put_u32 = [](std::string& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  };
  auto put_bytes = [&](std::string& out, std::string_view b) {
    put_u32(out, static_cast<uint32_t>(b.size()));  // u32 rather than u16: no truncation here
    out.append(b.data(), b.size());
  };
  std::string out;
  put_u32(out, type);
  put_bytes(out, ciphertext);
  put_bytes(out, key_id);
  if (!annotations.empty()) {
    std::vector<std::pair<std::string, std::string>> sorted(annotations.begin(), annotations.end());
    std::sort(sorted.begin(), sorted.end());
    put_u32(out, static_cast<uint32_t>(sorted.size()));
    for (const auto& [k, v] : sorted) {
      put_bytes(out, k);
      put_bytes(out, v);
    }
  }
  return out;
}

inline std::string DekCacheKey(const v2::EncryptResponse& r) {
  return DekCacheKey(r.ciphertext(), r.key_id(), r.annotations());
}

// One apiserver KMS v2 provider's view of a plugin: remembers the first version seen and the
// key_id of the last successful Status, and checks every Encrypt reply against it.
class ApiserverView {
 public:
  // §2.1; on success remembers version (first time) and key_id.
  absl::Status ObserveStatus(const v2::StatusResponse& r) {
    KMSP_RETURN_IF_ERROR(ValidateStatusResponse(
        r, first_version_.has_value() ? std::optional<std::string_view>(*first_version_)
                                      : std::nullopt));
    if (!first_version_.has_value()) first_version_ = r.version();
    status_key_id_ = r.key_id();
    return absl::OkStatus();
  }

  // §2.2 against the last observed Status. FAILED_PRECONDITION if no Status was observed.
  absl::Status CheckEncrypt(const v2::EncryptResponse& r) const {
    if (!status_key_id_.has_value()) {
      return absl::FailedPreconditionError("no successful Status before Encrypt");
    }
    return ValidateEncryptResponse(r, *status_key_id_);
  }

  const std::optional<std::string>& status_key_id() const { return status_key_id_; }

 private:
  std::optional<std::string> first_version_;
  std::optional<std::string> status_key_id_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_INTEGRATION_APISERVER_VALIDATION_H_
