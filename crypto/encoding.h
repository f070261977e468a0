// Hex and base64 (standard alphabet, padded) for public bytes. For secret bytes, decode straight
// into SecretBytes with the *Secret variants.
#ifndef KMSP_CRYPTO_ENCODING_H_
#define KMSP_CRYPTO_ENCODING_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

std::string HexEncode(std::string_view bytes);
// INVALID_ARGUMENT on odd length or a non-hex character (upper or lower case accepted).
absl::StatusOr<std::string> HexDecode(std::string_view hex);
// The value of one hex digit (upper or lower case), or -1. (abseil 20220623 has no checked hex
// decoding: absl::HexStringToBytes accepts anything.)
int HexDigitValue(char c);

std::string Base64Encode(std::string_view bytes);
// Strict RFC 4648 §4 with padding. INVALID_ARGUMENT on anything else.
absl::StatusOr<std::string> Base64Decode(std::string_view b64);
absl::StatusOr<SecretBytes> Base64DecodeSecret(std::string_view b64);

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_ENCODING_H_
