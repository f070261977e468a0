// The plugin's own wire format: what EncryptResponse.ciphertext and .annotations carry.
//
// EncryptResponse.ciphertext (format version 1), at most kMaxCiphertextSize bytes:
//   byte  0       0x01                         format version
//   bytes 1..12   nonce                        random, 12 bytes
//   bytes 13..    AES-256-GCM ciphertext||tag  under the data key (DEK), tag 16 bytes
//
// EncryptResponse.annotations: exactly one entry,
//   kDekAnnotation ("dek.kms-plugin.io") -> the DEK wrapped by the remote KEK (backend blob).
// The key is a lower-case FQDN as the apiserver requires (kmsv2-contract.md §2.2).
//
// AAD of the GCM operation binds everything the apiserver stores next to the ciphertext, so an
// edited or swapped annotation or key_id fails authentication:
//   "kms-plugin/v1" || 0x00 || u16be(len(key_id)) || key_id || u32be(count)
//   || for each annotation in key order: u16be(len(key)) || key || u32be(len(value)) || value
#ifndef KMSP_PLUGIN_ENVELOPE_FORMAT_H_
#define KMSP_PLUGIN_ENVELOPE_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kms/kmsv2_rules.h"  // Annotations, kMaxKeyIdSize, ValidateAnnotations (apiserver rules)

namespace kmsplugin {

inline constexpr uint8_t kEnvelopeVersion = 1;
inline constexpr std::string_view kDekAnnotation = "dek.kms-plugin.io";
inline constexpr size_t kEnvelopeNonceSize = 12;
inline constexpr size_t kEnvelopeTagSize = 16;
inline constexpr size_t kEnvelopeOverhead = 1 + kEnvelopeNonceSize + kEnvelopeTagSize;
inline constexpr size_t kMaxCiphertextSize = 1023;  // The apiserver rejects > 1024.
inline constexpr size_t kMaxPlaintextSize = kMaxCiphertextSize - kEnvelopeOverhead;

struct ParsedEnvelope {
  std::string_view nonce;       // 12 bytes.
  std::string_view ct_and_tag;  // >= 16 bytes.
};

// Splits a ciphertext; INVALID_ARGUMENT for a wrong version or size (messages hold sizes only).
absl::StatusOr<ParsedEnvelope> ParseEnvelope(std::string_view ciphertext);

// Builds version byte || nonce || ct_and_tag.
std::string SerializeEnvelope(std::string_view nonce, std::string_view ct_and_tag);

// The AAD described above.
std::string EnvelopeAad(std::string_view key_id, const Annotations& annotations);

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_ENVELOPE_FORMAT_H_
