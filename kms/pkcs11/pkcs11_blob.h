// The public, frozen formats of the PKCS#11 backend: the kek_id (it becomes the KMS v2 key_id),
// the CKA_ID that holds a key version, and the wrapped data key ("blob", stored in clear in etcd).
// Pure functions, no PKCS#11 call; the fuzzer (fuzz/pkcs11_blob_fuzzer.cc) runs every parser here.
//
// kek_id (copy in README.md, "PKCS#11 HSM"):
//
//     pkcs11:<token serial>/<key label>/v<N>
//
//   - <token serial> is CK_TOKEN_INFO.serialNumber without its blank padding; <key label> is the
//     keys' CKA_LABEL (--pkcs11-key-label); in both, every byte outside [A-Za-z0-9._-] is written
//     %XX (upper-case hex), so '/' and ':' never occur inside a field.
//   - <N> is the key version in decimal, no leading zero, 1..4294967295: the key object's CKA_ID
//     read as a big-endian unsigned number (pkcs11-tool --id 01 = v1, 02 = v2, 0100 = v256).
//   - Deterministic: every process using the same token and label derives the same kek_id. A token
//     re-initialised gets a new serial, hence new kek_ids. Deleting a key object and creating
//     another with the same label and CKA_ID would reuse a kek_id: never do that (rotate instead).
//   - At most kMaxKekIdSize bytes (checked when the backend starts).
//
// Blob, format 1 (all of it public):
//
//     byte 0      0x01  format
//     byte 1      mechanism: 0x01 CKM_AES_GCM, 0x02 CKM_AES_KEY_WRAP_PAD
//     GCM:        12-byte IV ‖ ciphertext ‖ 16-byte tag   (C_Encrypt's output after the IV)
//     KEY_WRAP_PAD:  C_WrapKey's output (a multiple of 8 bytes, at least 16)
//
//   GCM's additional authenticated data is bytes 0..1 of the blob followed by the key reference
//   "<key label>/v<N>" (the kek_id's last two fields, encoded as above), so a blob does not open
//   under another label or version, nor as another mechanism. The token serial is not in the AAD:
//   it is checked against the kek_id before any HSM call, and the key itself is the token's.
//   KEY_WRAP_PAD has no AAD; its integrity check binds the blob to the key object.
//   At most kMaxBlobSize bytes. tests/pkcs11/testdata holds the golden vector that freezes this.
#ifndef KMSP_KMS_PKCS11_PKCS11_BLOB_H_
#define KMSP_KMS_PKCS11_PKCS11_BLOB_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kmsplugin::pkcs11 {

inline constexpr uint8_t kBlobFormat1 = 0x01;
inline constexpr size_t kGcmIvSize = 12;
inline constexpr size_t kGcmTagSize = 16;
inline constexpr size_t kMaxBlobSize = 8192;
inline constexpr std::string_view kKekIdPrefix = "pkcs11:";

enum class Mechanism : uint8_t { kAesGcm = 0x01, kAesKeyWrapPad = 0x02 };

std::string_view MechanismName(Mechanism m);

// Bytes outside [A-Za-z0-9._-] as %XX.
std::string PercentEncode(std::string_view in);

// CKA_ID <-> version. EncodeVersionId gives the shortest big-endian form (v1 = "\x01").
// ParseVersionId accepts 1..4 bytes (leading zero bytes allowed) of a non-zero value.
std::string EncodeVersionId(uint32_t version);
std::optional<uint32_t> ParseVersionId(std::string_view id);

// "<label>/v<N>" (encoded) and the kek_id "pkcs11:<serial>/<label>/v<N>".
std::string KeyRef(std::string_view key_label, uint32_t version);
std::string MakeKekId(std::string_view token_serial, std::string_view key_label, uint32_t version);
// The version a kek_id names if it is one of this token's and label's; std::nullopt otherwise
// (another token, another label, a malformed version).
std::optional<uint32_t> ParseKekId(std::string_view kek_id, std::string_view token_serial,
                                   std::string_view key_label);

struct ParsedBlob {
  Mechanism mechanism = Mechanism::kAesGcm;
  std::string_view header;  // Bytes 0..1.
  std::string_view iv;      // GCM only.
  std::string_view body;    // GCM: ciphertext ‖ tag; KEY_WRAP_PAD: the wrapped key.
};

// INVALID_ARGUMENT for an unknown format or mechanism, or a size the format excludes. The views
// point into `blob`.
absl::StatusOr<ParsedBlob> ParseBlob(std::string_view blob);
// header ‖ iv ‖ body for `mechanism`.
std::string EncodeBlob(Mechanism mechanism, std::string_view iv, std::string_view body);
// The 2-byte header of a format-1 blob.
std::string BlobHeader(Mechanism mechanism);
// GCM's AAD: header ‖ KeyRef(label, version).
std::string GcmAad(std::string_view header, std::string_view key_label, uint32_t version);

}  // namespace kmsplugin::pkcs11

#endif  // KMSP_KMS_PKCS11_PKCS11_BLOB_H_
