#include "crypto/secretbox.h"

#include <sodium.h>

#include "crypto/ssl_util.h"
#include "fmt/format.h"

namespace kmsplugin {

static_assert(Secretbox::kKeySize == crypto_secretbox_KEYBYTES);
static_assert(Secretbox::kNonceSize == crypto_secretbox_NONCEBYTES);
static_assert(Secretbox::kTagSize == crypto_secretbox_MACBYTES);

absl::StatusOr<std::unique_ptr<Secretbox>> Secretbox::Create(SecretBytes key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(
        fmt::format("secretbox key must be 32 bytes, got {}", key.size()));
  }
  // sodium_init is idempotent and thread-safe; it returns 1 when already initialised.
  if (sodium_init() < 0) return absl::InternalError("sodium_init failed");
  return std::unique_ptr<Secretbox>(new Secretbox(std::move(key)));
}

absl::StatusOr<std::string> Secretbox::Seal(std::string_view plaintext) const {
  std::string out(kNonceSize + kTagSize + plaintext.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(o, kNonceSize);
  if (crypto_secretbox_easy(o + kNonceSize,
                            reinterpret_cast<const unsigned char*>(plaintext.data()),
                            plaintext.size(), o, internal::U8(key_.Reveal())) != 0) {
    return absl::InternalError("crypto_secretbox_easy failed");
  }
  return out;
}

absl::StatusOr<SecretBytes> Secretbox::Open(std::string_view sealed) const {
  if (sealed.size() < kNonceSize + kTagSize) {
    return absl::InvalidArgumentError(
        fmt::format("secretbox input is {} bytes, shorter than nonce and tag", sealed.size()));
  }
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  const size_t plain_size = sealed.size() - kNonceSize - kTagSize;
  // One spare byte so that libsodium never gets a null output pointer for an empty message.
  SecretBytes buf(plain_size + 1);
  if (crypto_secretbox_open_easy(buf.RevealMutable(), in + kNonceSize, sealed.size() - kNonceSize, in,
                                 internal::U8(key_.Reveal())) != 0) {
    return absl::InvalidArgumentError("secretbox authentication failed");
  }
  return SecretBytes::CopyFrom(buf.Reveal().substr(0, plain_size));
}

}  // namespace kmsplugin
