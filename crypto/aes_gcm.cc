#include "crypto/aes_gcm.h"

#include <openssl/evp.h>
#include <sodium.h>


#include <climits>
#include <memory>

#include "crypto/init.h"
#include "crypto/random.h"
#include "crypto/ssl_util.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

using internal::SslUniquePtr;
using internal::U8;

// The ciphers, fetched from the default provider once: passing EVP_aes_256_gcm() to every
// EVP_*Init_ex makes OpenSSL look the implementation up by name on each call.
struct Ciphers {
  EVP_CIPHER* aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  EVP_CIPHER* aes192 = EVP_CIPHER_fetch(nullptr, "AES-192-GCM", nullptr);
  EVP_CIPHER* aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
};

const EVP_CIPHER* CipherForKeySize(size_t size) {
  static const Ciphers* const ciphers = new Ciphers();  // Never freed: lives as long as OpenSSL.
  switch (size) {
    case 16:
      return ciphers->aes128;
    case 24:
      return ciphers->aes192;
    case 32:
      return ciphers->aes256;
    default:
      return nullptr;
  }
}

constexpr size_t kStateAlign = 16;

// The first kStateAlign-aligned byte of a buffer of sizeof(state) + kStateAlign bytes.
unsigned char* Aligned(const void* p) {
  void* ptr = const_cast<void*>(p);
  size_t space = sizeof(crypto_aead_aes256gcm_state) + kStateAlign;
  return static_cast<unsigned char*>(
      std::align(kStateAlign, sizeof(crypto_aead_aes256gcm_state), ptr, space));
}

}  // namespace

absl::StatusOr<std::unique_ptr<AesGcm>> AesGcm::Create(SecretBytes key) {
  if (key.size() != 16 && key.size() != 24 && key.size() != 32) {
    return absl::InvalidArgumentError(
        fmt::format("AES-GCM key must be 16, 24 or 32 bytes, got {}", key.size()));
  }
  const bool sodium = key.size() == kKeySize && internal::UseSodiumAesGcm();
  if (!sodium && CipherForKeySize(key.size()) == nullptr) {
    return absl::InternalError("OpenSSL has no AES-GCM for this key size");
  }
  std::unique_ptr<AesGcm> aead(new AesGcm(std::move(key)));
  if (sodium) {
    aead->sodium_state_ = SecretBytes(sizeof(crypto_aead_aes256gcm_state) + kStateAlign);
    crypto_aead_aes256gcm_beforenm(
        reinterpret_cast<crypto_aead_aes256gcm_state*>(Aligned(aead->sodium_state_.RevealMutable())),
        U8(aead->key_.Reveal()));
  }
  return aead;
}

const unsigned char* AesGcm::SodiumState() const {
  if (sodium_state_.empty()) return nullptr;
  return Aligned(sodium_state_.Reveal().data());
}

absl::StatusOr<std::string> AesGcm::Seal(std::string_view plaintext, std::string_view aad) const {
  auto nonce = RandomBytes(kNonceSize);
  if (!nonce.ok()) return nonce.status();
  auto body = SealDetached(*nonce, plaintext, aad);
  if (!body.ok()) return body.status();
  return *nonce + *body;
}

absl::StatusOr<SecretBytes> AesGcm::Open(std::string_view sealed, std::string_view aad) const {
  if (sealed.size() < kNonceSize + kTagSize) {
    return absl::InvalidArgumentError(
        fmt::format("AES-GCM input is {} bytes, shorter than nonce and tag", sealed.size()));
  }
  return OpenDetached(sealed.substr(0, kNonceSize), sealed.substr(kNonceSize), aad);
}

absl::StatusOr<std::string> AesGcm::SealDetached(std::string_view nonce,
                                                 std::string_view plaintext,
                                                 std::string_view aad) const {
  if (nonce.size() != kNonceSize) return absl::InvalidArgumentError("AES-GCM nonce must be 12 bytes");
  if (plaintext.size() > INT_MAX - kTagSize || aad.size() > INT_MAX) {
    return absl::InvalidArgumentError("AES-GCM input too large");
  }
  if (const unsigned char* state = SodiumState()) {
    std::string out(plaintext.size() + kTagSize, '\0');
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    crypto_aead_aes256gcm_encrypt_detached_afternm(
        o, o + plaintext.size(), nullptr, U8(plaintext), plaintext.size(), U8(aad), aad.size(),
        nullptr, U8(nonce), reinterpret_cast<const crypto_aead_aes256gcm_state*>(state));
    return out;
  }
  SslUniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return absl::InternalError("EVP_CIPHER_CTX_new failed");
  if (EVP_EncryptInit_ex(ctx.get(), CipherForKeySize(key_.size()), nullptr, U8(key_.Reveal()),
                         U8(nonce)) != 1) {
    return absl::InternalError("AES-GCM encrypt init: " + internal::SslErrorString());
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U8(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError("AES-GCM aad: " + internal::SslErrorString());
  }
  std::string out(plaintext.size() + kTagSize, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), o, &len, U8(plaintext), static_cast<int>(plaintext.size())) !=
        1) {
      return absl::InternalError("AES-GCM encrypt: " + internal::SslErrorString());
    }
    written = len;
  }
  if (EVP_EncryptFinal_ex(ctx.get(), o + written, &len) != 1) {
    return absl::InternalError("AES-GCM encrypt final: " + internal::SslErrorString());
  }
  written += len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, o + written) != 1) {
    return absl::InternalError("AES-GCM get tag: " + internal::SslErrorString());
  }
  return out;
}

absl::StatusOr<SecretBytes> AesGcm::OpenDetached(std::string_view nonce,
                                                 std::string_view ct_and_tag,
                                                 std::string_view aad) const {
  if (nonce.size() != kNonceSize) return absl::InvalidArgumentError("AES-GCM nonce must be 12 bytes");
  if (ct_and_tag.size() < kTagSize) return absl::InvalidArgumentError("AES-GCM input shorter than tag");
  if (ct_and_tag.size() > INT_MAX || aad.size() > INT_MAX) {
    return absl::InvalidArgumentError("AES-GCM input too large");
  }
  std::string_view ct = ct_and_tag.substr(0, ct_and_tag.size() - kTagSize);
  if (const unsigned char* state = SodiumState()) {
    SecretBytes out(ct.size());
    if (crypto_aead_aes256gcm_decrypt_detached_afternm(
            out.RevealMutable(), nullptr, U8(ct), ct.size(), U8(ct_and_tag.substr(ct.size())),
            U8(aad), aad.size(), U8(nonce),
            reinterpret_cast<const crypto_aead_aes256gcm_state*>(state)) != 0) {
      out.Clear();  // Never hand back unauthenticated plaintext.
      return absl::InvalidArgumentError("AES-GCM authentication failed");
    }
    return out;
  }
  std::string tag(ct_and_tag.substr(ct.size()));
  SslUniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return absl::InternalError("EVP_CIPHER_CTX_new failed");
  if (EVP_DecryptInit_ex(ctx.get(), CipherForKeySize(key_.size()), nullptr, U8(key_.Reveal()),
                         U8(nonce)) != 1) {
    return absl::InternalError("AES-GCM decrypt init: " + internal::SslErrorString());
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U8(aad), static_cast<int>(aad.size())) != 1) {
    return absl::InternalError("AES-GCM aad: " + internal::SslErrorString());
  }
  SecretBytes out(ct.size());
  int written = 0;
  if (!ct.empty()) {
    if (EVP_DecryptUpdate(ctx.get(), out.RevealMutable(), &len, U8(ct),
                          static_cast<int>(ct.size())) != 1) {
      return absl::InternalError("AES-GCM decrypt: " + internal::SslErrorString());
    }
    written = len;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) != 1) {
    return absl::InternalError("AES-GCM set tag: " + internal::SslErrorString());
  }
  // Scratch for Final (GCM writes nothing here, but never let it write past `out`).
  unsigned char scratch[16];
  if (EVP_DecryptFinal_ex(ctx.get(), scratch, &len) != 1) {
    internal::SslErrorString();
    out.Clear();  // Never hand back unauthenticated plaintext.
    return absl::InvalidArgumentError("AES-GCM authentication failed");
  }
  (void)written;
  return out;
}

}  // namespace kmsplugin
