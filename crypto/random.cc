#include "crypto/random.h"

#include <openssl/rand.h>
#include <sodium.h>

#include "crypto/encoding.h"
#include "crypto/init.h"

namespace kmsplugin {

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && internal::UseSodium()) {
    randombytes_buf(out.data(), n);
    return out;
  }
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  return out;
}

absl::StatusOr<SecretBytes> RandomSecret(size_t n) {
  SecretBytes out(n);
  if (n > 0 && internal::UseSodium()) {
    randombytes_buf(out.RevealMutable(), n);
    return out;
  }
  if (n > 0 && RAND_priv_bytes(out.RevealMutable(), static_cast<int>(n)) != 1) {
    return absl::InternalError("RAND_priv_bytes failed");
  }
  return out;
}

absl::StatusOr<std::string> RandomHex(size_t n_bytes) {
  auto bytes = RandomBytes(n_bytes);
  if (!bytes.ok()) return bytes.status();
  return HexEncode(*bytes);
}

absl::StatusOr<std::string> RandomUuid() {
  auto bytes = RandomBytes(16);
  if (!bytes.ok()) return bytes.status();
  std::string& b = *bytes;
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  std::string hex = HexEncode(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

}  // namespace kmsplugin
