// RSA-OAEP with SHA-256 (OAEP digest and MGF1 digest), RSA 3072 or 4096 bits only: the offline
// recovery key of issue 12 (plugin/recovery_format.h). OpenSSL 3 EVP only.
//
// RsaPublicKey reads a "BEGIN PUBLIC KEY" PEM (SubjectPublicKeyInfo, what `openssl pkey -pubout`
// writes); RsaPrivateKey reads PKCS#8 ("BEGIN PRIVATE KEY") or PKCS#1 ("BEGIN RSA PRIVATE KEY")
// PEM, unencrypted (never prompts for a passphrase). The fingerprint of a key is the SHA-256 of the
// DER SubjectPublicKeyInfo of its public half, the same as
//   openssl pkey -pubin -in pub.pem -outform DER | sha256sum
//
// Both classes are movable, not copyable, and thread-safe for concurrent const use (every call
// makes its own OpenSSL context).
#ifndef KMSP_CRYPTO_RSA_OAEP_H_
#define KMSP_CRYPTO_RSA_OAEP_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY; this header does not include OpenSSL.

namespace kmsplugin {

namespace internal {
struct EvpPkeyFree {
  void operator()(evp_pkey_st* p) const;
};
using EvpPkeyPtr = std::unique_ptr<evp_pkey_st, EvpPkeyFree>;
}  // namespace internal

// The only RSA sizes accepted.
inline constexpr int kRsaRecoveryBits3072 = 3072;
inline constexpr int kRsaRecoveryBits4096 = 4096;

class RsaPublicKey {
 public:
  // INVALID_ARGUMENT: not a PEM public key, not RSA, or not 3072/4096 bits (message names bits).
  static absl::StatusOr<RsaPublicKey> FromPem(std::string_view pem);

  int bits() const { return bits_; }
  // 32 raw bytes: SHA-256 of the DER SubjectPublicKeyInfo.
  const std::string& fingerprint() const { return fingerprint_; }
  // "sha256:" + 64 lower-case hex (logs, metrics, scan output).
  std::string FingerprintText() const;
  // RSA-OAEP-SHA256 encryption of `key` (1 .. bits/8 - 66 bytes) with OAEP label `label`; returns
  // bits/8 bytes. Randomised: two wraps of the same key differ.
  absl::StatusOr<std::string> Wrap(const SecretBytes& key, std::string_view label) const;

 private:
  RsaPublicKey(internal::EvpPkeyPtr pkey, int bits, std::string fingerprint);

  internal::EvpPkeyPtr pkey_;
  int bits_ = 0;
  std::string fingerprint_;
};

class RsaPrivateKey {
 public:
  // PKCS#8 or PKCS#1 PEM, unencrypted. INVALID_ARGUMENT as for RsaPublicKey (never echoes bytes).
  static absl::StatusOr<RsaPrivateKey> FromPem(const SecretBytes& pem);

  int bits() const { return bits_; }
  // Of its public half (the same bytes as the matching RsaPublicKey's).
  const std::string& fingerprint() const { return fingerprint_; }
  std::string FingerprintText() const;
  // INVALID_ARGUMENT ("recovery key cannot unwrap: wrong private key or damaged wrap") on failure.
  absl::StatusOr<SecretBytes> Unwrap(std::string_view wrapped, std::string_view label) const;

 private:
  RsaPrivateKey(internal::EvpPkeyPtr pkey, int bits, std::string fingerprint);

  internal::EvpPkeyPtr pkey_;
  int bits_ = 0;
  std::string fingerprint_;
};

struct RsaKeyPairPem {
  SecretBytes private_pem;  // PKCS#8 PEM ("BEGIN PRIVATE KEY").
  std::string public_pem;   // SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY").
};
// A fresh key pair of 3072 or 4096 bits (INVALID_ARGUMENT otherwise).
absl::StatusOr<RsaKeyPairPem> GenerateRsaKeyPair(int bits);

// Raw 32-byte fingerprint -> "sha256:<64 lower-case hex>".
std::string FingerprintText(std::string_view fingerprint);

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_RSA_OAEP_H_
