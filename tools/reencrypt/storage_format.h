// kube-apiserver's etcd value formats (kmsv2-contract.md §3-4): value prefixes, the KMS v2
// EncryptedObject, and the per-value crypto of KMS v2 (types 0 and 1) and KMS v1.
//
// Everything here is pure computation on bytes: no I/O, no gRPC, thread-safe.
//
// KMS v2 value:  "k8s:enc:kms:v2:" NAME ":" EncryptedObject (proto3, package v2)
//   EncryptedObject fields: 1 encryptedData (bytes), 2 keyID (string), 3 encryptedDEKSource
//   (bytes), 4 annotations (map<string, bytes>), 5 encryptedDEKSourceType (enum: 0 AES_GCM_KEY,
//   1 HKDF_SHA256_XNONCE_AES_GCM_SEED). We write fields in order 1..5, map entries sorted by key,
//   and read any valid proto3 encoding (unknown fields skipped, last scalar wins).
//   Type 1 encryptedData: info(32) || nonce(12) || AES-256-GCM ct || tag(16), where
//     DEK = HKDF-Expand(SHA-256, PRK = seed, info, 32) = HMAC-SHA256(seed, info || 0x01).
//   Type 0 encryptedData: nonce(12) || ct || tag(16) under the DEK itself.
//   AAD is always the exact etcd key.
// KMS v1 value:  "k8s:enc:kms:v1:" NAME ":" u16be(len(encDEK)) || encDEK || nonce(12) || ct || tag
//   (data written by apiservers <= 1.24: IV(16) || AES-CBC ct instead, no AAD).
#ifndef KMSP_TOOLS_REENCRYPT_STORAGE_FORMAT_H_
#define KMSP_TOOLS_REENCRYPT_STORAGE_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"
#include "kms/kmsv2_rules.h"

namespace kmsplugin::reencrypt {

inline constexpr std::string_view kEncryptedValuePrefix = "k8s:enc:";
inline constexpr std::string_view kKmsV2Prefix = "k8s:enc:kms:v2:";
inline constexpr std::string_view kKmsV1Prefix = "k8s:enc:kms:v1:";
inline constexpr std::string_view kAesCbcPrefix = "k8s:enc:aescbc:v1:";
inline constexpr std::string_view kAesGcmPrefix = "k8s:enc:aesgcm:v1:";
inline constexpr std::string_view kSecretboxPrefix = "k8s:enc:secretbox:v1:";

// Limits the apiserver enforces (kmsv2-contract.md §3.2); kMaxKeyIdSize, kMaxAnnotationsSize and
// the annotation checks (IsFullyQualifiedDomainName, ValidateAnnotations) are kms/kmsv2_rules.h's.
inline constexpr size_t kMaxEncryptedDekSourceSize = 1024;
inline constexpr size_t kSeedSize = 32;
inline constexpr size_t kHkdfInfoSize = 32;

enum class DekSourceType : int {
  kAesGcmKey = 0,                   // legacy (1.27/1.28): the plugin plaintext is the AES key
  kHkdfSha256XNonceAesGcmSeed = 1,  // 1.29+: the plugin plaintext is a seed for HKDF
};

struct EncryptedObject {
  std::string encrypted_data;
  std::string key_id;
  std::string encrypted_dek_source;
  std::map<std::string, std::string> annotations;
  DekSourceType type = DekSourceType::kAesGcmKey;
};

// Parses the proto bytes (without the "k8s:enc:kms:v2:NAME:" prefix) and validates them as the
// apiserver does on read. INVALID_ARGUMENT on malformed proto or a failed check.
absl::StatusOr<EncryptedObject> ParseEncryptedObject(std::string_view bytes);
// Serializes in Go's field order (1, 2, 3, 4 sorted by key, 5 omitted when 0).
std::string SerializeEncryptedObject(const EncryptedObject& obj);
// The apiserver's checks of §3.2: type in {0,1}, data non-empty, encryptedDEKSource 1..1024
// bytes, keyID 1..1024 bytes, annotations valid. INVALID_ARGUMENT naming the failed check.
absl::Status ValidateEncryptedObject(const EncryptedObject& obj);

// The apiserver's DEK-source cache key (§3.7): SHA-256 over type, encryptedDEKSource, keyID and
// sorted annotations, each length-prefixed. Public bytes; used as our own seed-cache key.
std::string DekSourceCacheKey(const EncryptedObject& obj);

// Splits a KMS value "k8s:enc:kms:vN:NAME:REST": returns true and sets `name`/`rest` when `value`
// starts with `kms_prefix` and has a ':' after the name.
bool SplitKmsValue(std::string_view value, std::string_view kms_prefix, std::string_view* name,
                   std::string_view* rest);

// Decrypts KMS v2 encryptedData with the plugin plaintext `dek_source` (type 0: the AES key;
// type 1: the seed). INVALID_ARGUMENT when too short, the seed is under 32 bytes, or the tag
// does not verify.
absl::StatusOr<SecretBytes> OpenKmsV2Data(DekSourceType type, const SecretBytes& dek_source,
                                          std::string_view encrypted_data,
                                          std::string_view etcd_key);
// Type 1 with fresh random info and nonce: info || nonce || AES-256-GCM(DEK, plaintext, AAD=key).
absl::StatusOr<std::string> SealKmsV2Type1(const SecretBytes& seed, std::string_view plaintext,
                                           std::string_view etcd_key);
// Type 1 with caller-chosen info and nonce (known-answer tests only).
absl::StatusOr<std::string> SealKmsV2Type1WithInfoAndNonce(const SecretBytes& seed,
                                                           std::string_view info,
                                                           std::string_view nonce,
                                                           std::string_view plaintext,
                                                           std::string_view etcd_key);
// HMAC-SHA256(seed, info || 0x01): the type-1 DEK.
absl::StatusOr<SecretBytes> DeriveKmsV2Type1Dek(const SecretBytes& seed, std::string_view info);

// True when `plaintext` starts like an object kube-apiserver stores (§3.6): the Kubernetes
// protobuf magic "k8s\0", CBOR's self-described tag 55799 (d9 d9 f7), or a JSON object (a
// leading '{' and the whole text valid JSON). AES-CBC has no integrity: a wrong key yields valid
// padding about once in 256 tries, and this check is what rejects such garbage (it then passes
// about once in 2^32 or less).
bool IsPlausibleStoredObject(std::string_view plaintext);

// KMS v1 body after "k8s:enc:kms:v1:NAME:".
struct KmsV1Body {
  std::string_view encrypted_dek;
  std::string_view encrypted_data;  // nonce || ct || tag (or IV || CBC ct for <= 1.24 data)
};
absl::StatusOr<KmsV1Body> ParseKmsV1Body(std::string_view rest);
std::string SerializeKmsV1Body(std::string_view encrypted_dek, std::string_view encrypted_data);

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_STORAGE_FORMAT_H_
