// AES-CBC with PKCS#7 padding, on OpenSSL EVP. Exists to read and write kube-apiserver's
// `aescbc` provider values and the pre-1.25 KMS v1 CBC fallback (kmsv2-contract.md §4.2).
//
// Layout used by Encrypt/Decrypt: IV(16) || ciphertext, where the ciphertext is a whole number of
// 16-byte blocks and the padding is always 1..16 bytes. CBC has no integrity: a wrong key is
// detected only by bad padding, which is unreliable (about 1 in 256 random blocks ends in a
// valid 0x01 pad). Callers that need certainty check the result some other way.
//
// Thread-safe: an AesCbc holds only its key; every call makes its own cipher context.
#ifndef KMSP_CRYPTO_AES_CBC_H_
#define KMSP_CRYPTO_AES_CBC_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

class AesCbc {
 public:
  static constexpr size_t kBlockSize = 16;
  static constexpr size_t kIvSize = 16;

  // INVALID_ARGUMENT unless `key` is 16, 24 or 32 bytes.
  static absl::StatusOr<std::unique_ptr<AesCbc>> Create(SecretBytes key);

  // Encrypts with a fresh random IV; returns IV || ciphertext. INTERNAL on an OpenSSL failure.
  absl::StatusOr<std::string> Encrypt(std::string_view plaintext) const;
  // Decrypts IV || ciphertext. INVALID_ARGUMENT when the input is not IV plus at least one whole
  // block, or the padding is invalid (the output is wiped in that case).
  absl::StatusOr<SecretBytes> Decrypt(std::string_view iv_and_ciphertext) const;

 private:
  explicit AesCbc(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_AES_CBC_H_
