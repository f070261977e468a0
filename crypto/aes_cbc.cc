#include "crypto/aes_cbc.h"

#include <openssl/evp.h>

#include <climits>

#include "crypto/random.h"
#include "crypto/ssl_util.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

using internal::SslUniquePtr;
using internal::U8;

const EVP_CIPHER* CbcCipherForKeySize(size_t size) {
  switch (size) {
    case 16:
      return EVP_aes_128_cbc();
    case 24:
      return EVP_aes_192_cbc();
    case 32:
      return EVP_aes_256_cbc();
    default:
      return nullptr;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<AesCbc>> AesCbc::Create(SecretBytes key) {
  if (CbcCipherForKeySize(key.size()) == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("AES-CBC key must be 16, 24 or 32 bytes, got {}", key.size()));
  }
  return std::unique_ptr<AesCbc>(new AesCbc(std::move(key)));
}

absl::StatusOr<std::string> AesCbc::Encrypt(std::string_view plaintext) const {
  if (plaintext.size() > INT_MAX - kBlockSize)
    return absl::InvalidArgumentError("AES-CBC input too large");
  auto iv = RandomBytes(kIvSize);
  if (!iv.ok()) return iv.status();
  SslUniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return absl::InternalError("EVP_CIPHER_CTX_new failed");
  if (EVP_EncryptInit_ex(ctx.get(), CbcCipherForKeySize(key_.size()), nullptr, U8(key_.Reveal()),
                         U8(*iv)) != 1) {
    return absl::InternalError("AES-CBC encrypt init: " + internal::SslErrorString());
  }
  // PKCS#7 padding is OpenSSL's default for CBC: always 1..16 bytes.
  std::string out = *iv;
  out.resize(kIvSize + plaintext.size() + kBlockSize);
  auto* o = reinterpret_cast<unsigned char*>(out.data()) + kIvSize;
  int len = 0;
  int written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), o, &len, U8(plaintext), static_cast<int>(plaintext.size())) !=
        1) {
      return absl::InternalError("AES-CBC encrypt: " + internal::SslErrorString());
    }
    written = len;
  }
  if (EVP_EncryptFinal_ex(ctx.get(), o + written, &len) != 1) {
    return absl::InternalError("AES-CBC encrypt final: " + internal::SslErrorString());
  }
  written += len;
  out.resize(kIvSize + static_cast<size_t>(written));
  return out;
}

absl::StatusOr<SecretBytes> AesCbc::Decrypt(std::string_view iv_and_ciphertext) const {
  if (iv_and_ciphertext.size() < kIvSize + kBlockSize ||
      (iv_and_ciphertext.size() - kIvSize) % kBlockSize != 0) {
    return absl::InvalidArgumentError(fmt::format(
        "AES-CBC input is {} bytes, not IV plus whole blocks", iv_and_ciphertext.size()));
  }
  if (iv_and_ciphertext.size() > INT_MAX)
    return absl::InvalidArgumentError("AES-CBC input too large");
  std::string_view iv = iv_and_ciphertext.substr(0, kIvSize);
  std::string_view ct = iv_and_ciphertext.substr(kIvSize);
  SslUniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return absl::InternalError("EVP_CIPHER_CTX_new failed");
  if (EVP_DecryptInit_ex(ctx.get(), CbcCipherForKeySize(key_.size()), nullptr, U8(key_.Reveal()),
                         U8(iv)) != 1) {
    return absl::InternalError("AES-CBC decrypt init: " + internal::SslErrorString());
  }
  // OpenSSL may write up to one extra block during Update; size the buffer for it.
  SecretBytes buf(ct.size() + kBlockSize);
  int len = 0;
  if (EVP_DecryptUpdate(ctx.get(), buf.RevealMutable(), &len, U8(ct), static_cast<int>(ct.size())) !=
      1) {
    return absl::InternalError("AES-CBC decrypt: " + internal::SslErrorString());
  }
  int written = len;
  if (EVP_DecryptFinal_ex(ctx.get(), buf.RevealMutable() + written, &len) != 1) {
    internal::SslErrorString();
    return absl::InvalidArgumentError("AES-CBC padding is invalid (wrong key or corrupt data)");
  }
  written += len;
  return SecretBytes::CopyFrom(buf.Reveal().substr(0, static_cast<size_t>(written)));
}

}  // namespace kmsplugin
