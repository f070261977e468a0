// RS256 JSON Web Tokens (RFC 7515/7519, compact form): what a Google service-account key signs to
// get an access token (remote-kms-apis.md §5.7 b). RSASSA-PKCS1-v1_5 with SHA-256 through OpenSSL
// EVP, with an RSA private key of at least 2048 bits read from an unencrypted PKCS#8 (or PKCS#1)
// PEM. The key and the signed token (a bearer credential until it expires) stay in SecretBytes.
#ifndef KMSP_CRYPTO_JWT_RS256_H_
#define KMSP_CRYPTO_JWT_RS256_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

// RFC 4648 §5 base64url without padding (JWT segments).
std::string Base64UrlEncode(std::string_view bytes);

// The RSASSA-PKCS1-v1_5 SHA-256 signature of `data` (deterministic: same key and data, same
// bytes). INVALID_ARGUMENT when the PEM is not an unencrypted RSA private key of >= 2048 bits
// (never echoes the key).
absl::StatusOr<std::string> SignRs256(const SecretBytes& private_key_pem, std::string_view data);

// base64url(header_json) "." base64url(claims_json) "." base64url(RS256 signature).
absl::StatusOr<SecretBytes> SignJwtRs256(const SecretBytes& private_key_pem,
                                         std::string_view header_json,
                                         std::string_view claims_json);

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_JWT_RS256_H_
