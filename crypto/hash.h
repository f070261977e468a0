// SHA-256, HMAC-SHA256 and HKDF-SHA256 (RFC 5869) on OpenSSL 3 EVP.
#ifndef KMSP_CRYPTO_HASH_H_
#define KMSP_CRYPTO_HASH_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

inline constexpr size_t kSha256Size = 32;

// SHA-256 of public bytes (32 raw bytes).
std::string Sha256(std::string_view data);
// Lower-case hex SHA-256.
std::string Sha256Hex(std::string_view data);

// HMAC-SHA256. The result is secret when the key is (SigV4's signing-key chain, KMS v2 type-1
// DEKs), so it comes back as SecretBytes. INTERNAL on an OpenSSL failure.
absl::StatusOr<SecretBytes> HmacSha256(const SecretBytes& key, std::string_view message);

// HKDF-Extract(salt, ikm) -> PRK (32 bytes). An empty salt means 32 zero bytes (RFC 5869 §2.2).
absl::StatusOr<SecretBytes> HkdfSha256Extract(std::string_view salt, const SecretBytes& ikm);
// HKDF-Expand(prk, info, length). INVALID_ARGUMENT if length > 255*32 or prk is shorter than 32.
absl::StatusOr<SecretBytes> HkdfSha256Expand(const SecretBytes& prk, std::string_view info,
                                             size_t length);
// Full HKDF (extract then expand).
absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view salt,
                                       std::string_view info, size_t length);

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_HASH_H_
