#include "crypto/encoding.h"

#include <openssl/evp.h>

namespace kmsplugin {
namespace {

bool IsBase64Alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Decodes into `out` (sized by the caller to at least 3/4 of the input); returns the length.
absl::StatusOr<size_t> DecodeBase64Into(std::string_view b64, unsigned char* out) {
  if (b64.size() % 4 != 0) return absl::InvalidArgumentError("base64 length is not a multiple of 4");
  if (b64.empty()) return 0;
  // Strict form: alphabet characters only, then '=' padding as the last one or two characters.
  // EVP_DecodeBlock alone skips surrounding whitespace and reads '=' anywhere as zero bits.
  size_t pad = 0;
  if (b64.back() == '=') ++pad;
  if (pad == 1 && b64[b64.size() - 2] == '=') ++pad;
  for (size_t i = 0; i < b64.size() - pad; ++i) {
    if (!IsBase64Alphabet(b64[i])) return absl::InvalidArgumentError("invalid base64");
  }
  int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0 || static_cast<size_t>(n) != b64.size() / 4 * 3) {
    return absl::InvalidArgumentError("invalid base64");
  }
  return static_cast<size_t>(n) - pad;
}

}  // namespace

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

absl::StatusOr<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return absl::InvalidArgumentError("hex string has odd length");
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexDigitValue(hex[2 * i]);
    int lo = HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("invalid hex character");
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  if (bytes.empty()) return out;
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

absl::StatusOr<std::string> Base64Decode(std::string_view b64) {
  std::string out(b64.size() / 4 * 3 + 3, '\0');
  auto n = DecodeBase64Into(b64, reinterpret_cast<unsigned char*>(out.data()));
  if (!n.ok()) return n.status();
  out.resize(*n);
  return out;
}

absl::StatusOr<SecretBytes> Base64DecodeSecret(std::string_view b64) {
  SecretBytes buf(b64.size() / 4 * 3 + 3);
  auto n = DecodeBase64Into(b64, buf.RevealMutable());
  if (!n.ok()) return n.status();
  return SecretBytes::CopyFrom(buf.Reveal().substr(0, *n));
}

}  // namespace kmsplugin
