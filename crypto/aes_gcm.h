// AES-GCM (NIST SP 800-38D) with a 96-bit nonce and a 128-bit tag.
//
// Two engines, the same bytes (crypto/init.h): a 256-bit key, with the kAuto engine on a CPU with
// AES-NI and PCLMUL, uses libsodium's crypto_aead_aes256gcm with its key schedule computed once
// per key (no per-call set-up); every other case (128/192-bit keys for the apiserver's aesgcm
// provider, CPUs without AES-NI, the kOpenSslOnly engine) uses OpenSSL EVP. The engine is fixed
// when the object is created.
//
// Layout used by Seal/Open: nonce(12) || ciphertext || tag(16). The *Detached functions take the
// nonce separately and return/accept ciphertext || tag, for formats that place the nonce
// elsewhere (the KNOWN-ANSWER tests use them too).
//
// Thread-safe: an AesGcm holds only its key (and libsodium's read-only key schedule, wiped with
// it); every OpenSSL call makes its own cipher context.
#ifndef KMSP_CRYPTO_AES_GCM_H_
#define KMSP_CRYPTO_AES_GCM_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

class AesGcm {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;

  // INVALID_ARGUMENT unless `key` is 16, 24 or 32 bytes (32 is what we write; shorter sizes
  // exist only to read kube-apiserver's aesgcm provider data).
  static absl::StatusOr<std::unique_ptr<AesGcm>> Create(SecretBytes key);

  // Encrypts with a fresh random nonce; returns nonce || ciphertext || tag.
  absl::StatusOr<std::string> Seal(std::string_view plaintext, std::string_view aad) const;
  // Opens nonce || ciphertext || tag. INVALID_ARGUMENT when too short or the tag does not verify
  // (the output buffer is wiped in that case).
  absl::StatusOr<SecretBytes> Open(std::string_view sealed, std::string_view aad) const;

  // Returns ciphertext || tag for an explicit 12-byte nonce. The caller guarantees uniqueness.
  absl::StatusOr<std::string> SealDetached(std::string_view nonce, std::string_view plaintext,
                                           std::string_view aad) const;
  // Opens ciphertext || tag under `nonce`.
  absl::StatusOr<SecretBytes> OpenDetached(std::string_view nonce, std::string_view ct_and_tag,
                                           std::string_view aad) const;

 private:
  explicit AesGcm(SecretBytes key) : key_(std::move(key)) {}
  // libsodium's precomputed state (crypto_aead_aes256gcm_state, 16-byte aligned inside the
  // buffer), or nullptr for the OpenSSL engine.
  const unsigned char* SodiumState() const;

  SecretBytes key_;
  SecretBytes sodium_state_;  // Empty for the OpenSSL engine.
};

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_AES_GCM_H_
