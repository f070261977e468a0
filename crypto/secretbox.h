// NaCl secretbox (XSalsa20-Poly1305) through libsodium, for kube-apiserver's `secretbox`
// provider values (kmsv2-contract.md §4.2).
//
// Layout used by Seal/Open: nonce(24) || tag(16) || ciphertext, i.e. the nonce followed by
// libsodium's crypto_secretbox_easy output (tag first). No associated data.
//
// Thread-safe: a Secretbox holds only its key.
#ifndef KMSP_CRYPTO_SECRETBOX_H_
#define KMSP_CRYPTO_SECRETBOX_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

class Secretbox {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 24;
  static constexpr size_t kTagSize = 16;

  // INVALID_ARGUMENT unless `key` is 32 bytes; INTERNAL if libsodium cannot initialise.
  static absl::StatusOr<std::unique_ptr<Secretbox>> Create(SecretBytes key);

  // Seals with a fresh random nonce; returns nonce || tag || ciphertext.
  absl::StatusOr<std::string> Seal(std::string_view plaintext) const;
  // Opens nonce || tag || ciphertext. INVALID_ARGUMENT when too short or not authentic.
  absl::StatusOr<SecretBytes> Open(std::string_view sealed) const;

 private:
  explicit Secretbox(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_SECRETBOX_H_
