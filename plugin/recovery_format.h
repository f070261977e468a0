// The offline recovery wrap of a data key (issue 12): the annotation kRecoveryAnnotation that
// `serve --recovery-public-key` adds next to kDekAnnotation (envelope_format.h), and the offline
// opening of an EncryptResponse with the recovery private key (no KMS).
//
// Annotation value, format 1 (frozen; tests/plugin/recovery_golden_test.cc):
//   byte  0        0x01                    format version
//   bytes 1..32    fingerprint             SHA-256 of the DER SubjectPublicKeyInfo of the key
//   bytes 33..     RSA-OAEP ciphertext     bits/8 bytes (384 or 512) of the 32-byte data key
// RSA-OAEP with SHA-256 as OAEP and MGF1 digest and the OAEP label kRecoveryOaepLabel. The data
// key is the plugin's own AES-256-GCM key, the one that seals EncryptResponse.ciphertext.
//
// The annotation is part of the data key's annotations before the AAD is computed, so
// EnvelopeAad binds it: an edited, removed or swapped recovery annotation fails authentication.
#ifndef KMSP_PLUGIN_RECOVERY_FORMAT_H_
#define KMSP_PLUGIN_RECOVERY_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/rsa_oaep.h"
#include "crypto/secret_bytes.h"
#include "plugin/envelope_format.h"

namespace kmsplugin {

inline constexpr std::string_view kRecoveryAnnotation = "recovery.kms-plugin.io";
inline constexpr std::string_view kRecoveryOaepLabel = "kms-plugin/recovery/v1";
inline constexpr uint8_t kRecoveryFormatVersion = 1;
inline constexpr size_t kRecoveryFingerprintSize = 32;

struct RecoveryWrap {
  std::string fingerprint;  // 32 raw bytes.
  std::string wrapped_key;  // 384 or 512 bytes.
};

std::string SerializeRecoveryWrap(const RecoveryWrap& wrap);
// INVALID_ARGUMENT for an unknown version or a size other than 1 + 32 + (384 or 512).
absl::StatusOr<RecoveryWrap> ParseRecoveryWrap(std::string_view value);

// Wraps `data_key` under `key` and serialises the annotation value (what the plugin stores).
absl::StatusOr<std::string> MakeRecoveryAnnotation(const RsaPublicKey& key,
                                                   const SecretBytes& data_key);

// Unwraps the data key of a recovery annotation value with the matching key among `keys`
// (NOT_FOUND "recovery key sha256:… not given" when none matches; INVALID_ARGUMENT when it
// cannot be unwrapped or is not 32 bytes).
absl::StatusOr<SecretBytes> UnwrapRecoveryAnnotation(std::string_view value,
                                                     const std::vector<const RsaPrivateKey*>& keys);

// Opens a plugin EncryptResponse offline: finds kRecoveryAnnotation (NOT_FOUND "no recovery
// wrap"), unwraps the data key with the key whose fingerprint matches, then AES-256-GCM-opens
// `ciphertext` with AAD = EnvelopeAad(key_id, annotations); a tampered annotation, key_id or
// ciphertext fails authentication (INVALID_ARGUMENT). Returns what the plugin's Decrypt would.
absl::StatusOr<SecretBytes> OpenWithRecoveryKey(std::string_view ciphertext,
                                                std::string_view key_id,
                                                const Annotations& annotations,
                                                const std::vector<const RsaPrivateKey*>& keys);

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_RECOVERY_FORMAT_H_
