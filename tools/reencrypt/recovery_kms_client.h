// Disaster recovery for `kms-plugin reencrypt --recovery-private-key` (issue 12): KMS v2 values
// whose plugin can no longer decrypt them (KEK lost, KMS gone, endpoint dead) are opened with
// the offline recovery RSA key instead. With `serve --recovery-public-key`, the plugin adds the
// annotation recovery.kms-plugin.io to every EncryptResponse: its data key wrapped with RSA-OAEP
// under the recovery public key (plugin/recovery_format.h). OpenWithRecoveryKey turns the
// annotation and the plugin's ciphertext back into what the plugin's Decrypt would return (the
// apiserver's seed, or its DEK for a type-0 value), so the rest of the KMS v2 path is unchanged.
//
// RecoveryKmsV2Client decorates the KmsV2Client of a provider kept only to read old data (the
// first provider of no rule): Decrypt asks the plugin first and, when that fails, opens with the
// recovery keys. Once the plugin fails with UNAVAILABLE or DEADLINE_EXCEEDED (a dead endpoint:
// the call waited its whole timeout), it is not asked again during the run: every further value
// goes straight to the recovery keys, or, with none, fails at once (one timeout in all, not one
// per object). Status and Encrypt are passed through (write providers are never decorated).
#ifndef KMSP_TOOLS_REENCRYPT_RECOVERY_KMS_CLIENT_H_
#define KMSP_TOOLS_REENCRYPT_RECOVERY_KMS_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/rsa_oaep.h"
#include "crypto/secret_bytes.h"
#include "tools/reencrypt/kms_client.h"

namespace kmsplugin::reencrypt {

// The recovery private keys of one run. Immutable after construction; thread-safe.
class RecoveryKeySet {
 public:
  // Reads each file as a secret file (kms/secret_file.h; the PEM bytes only in SecretBytes, the
  // read buffer wiped) and parses it. INVALID_ARGUMENT naming the path when a file is not an RSA
  // 3072/4096 private key, or two files hold the same key; the file's error otherwise.
  static absl::StatusOr<std::shared_ptr<const RecoveryKeySet>> Load(
      const std::vector<std::string>& paths);
  static std::shared_ptr<const RecoveryKeySet> FromKeys(std::vector<RsaPrivateKey> keys);

  // "sha256:<hex>" of each key's public half, in the order given (public; safe to log).
  std::vector<std::string> FingerprintTexts() const;
  bool empty() const { return keys_.empty(); }

  // OpenWithRecoveryKey (plugin/recovery_format.h) with these keys: NOT_FOUND when the value has
  // no recovery wrap or its fingerprint matches no key, INVALID_ARGUMENT when the key cannot
  // unwrap it or the envelope does not authenticate. Messages hold fingerprints, never bytes.
  absl::StatusOr<SecretBytes> Open(std::string_view ciphertext, std::string_view key_id,
                                   const std::map<std::string, std::string>& annotations) const;
  // Successful Opens so far (each seed or DEK once: the KMS v2 transformer caches them).
  int64_t opens() const { return opens_.load(); }

 private:
  explicit RecoveryKeySet(std::vector<RsaPrivateKey> keys);
  std::vector<RsaPrivateKey> keys_;
  std::vector<const RsaPrivateKey*> pointers_;
  mutable std::atomic<int64_t> opens_{0};
};

// What the recovery annotation of a KMS v2 value says, for the scan inventory: "sha256:<hex>"
// (the recovery key's fingerprint), "none" (no annotation) or "invalid" (unparsable).
std::string RecoveryWrapLabel(const std::map<std::string, std::string>& annotations);

// Decorates `plugin` (the client of the KMS v2 provider named `provider`) as described above.
std::unique_ptr<KmsV2Client> NewRecoveryKmsV2Client(std::string provider,
                                                    std::unique_ptr<KmsV2Client> plugin,
                                                    std::shared_ptr<const RecoveryKeySet> keys);

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_RECOVERY_KMS_CLIENT_H_
