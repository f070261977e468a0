// LocalKms: the embedded development backend. The KEK versions live in a keyring file on local
// disk, so anyone who can read that file can decrypt everything: use it for development, tests
// and single-node labs, and a real KMS (AWS KMS, Vault, PKCS#11) in production. It logs that it
// is a development backend when it starts.
//
// One keyring per cluster. Every node's plugin must use the same keyring file (one shared file,
// or byte-identical copies): a Secret written through one node's apiserver is wrapped under that
// node's keyring, and a node with another keyring cannot read it. So the plugin never creates a
// keyring silently: `serve --kms local` opens an existing file, and creates one only with
// --local-keyring-create (the first node, or a single-node lab); --local-keyring-id ID refuses to
// start unless the file's keyring_id is ID (set it on every node to the id of the one keyring).
// At start the backend logs the path and keyring_id; a Decrypt of another keyring's key_id fails
// naming both keyring_ids.
//
// Keyring file (JSON, mode 0600, created when absent and create_if_missing):
//   {
//     "kind": "kms-plugin-local-keyring",
//     "format": 1,
//     "keyring_id": "<32 lower-case hex: random, public, names this keyring>",
//     "primary": <version used to wrap new data keys>,
//     "keys": [ {"version": 1, "created": "<RFC 3339>", "material": "<base64 of 32 bytes>"}, … ]
//   }
// Versions are never removed by the plugin; all of them unwrap.
//
// kek_id (the plugin's key_id) = "local:" + keyring_id + ":v" + version, e.g.
// "local:5b0c…e1:v3". A keyring created anew gets a new random keyring_id, so a key_id is never
// reused for another KEK; processes sharing one keyring file derive the same key_id.
//
// Wrapped blob = nonce(12) || AES-256-GCM(KEK_version, data key) || tag(16), with
// AAD = "kms-plugin/local-wrap/v1:" + kek_id, so a blob only opens under the version named.
//
// Several processes may share one keyring file (control-plane nodes on one host, tests): creation
// and rotation take an exclusive flock on "<file>.lock" and replace the file atomically (a temp
// file from mkstemp in the same directory, fsync, rename); Probe() and Unwrap() of an unknown
// version re-read the file. A rotation waits for the lock only until its call's deadline.
//
// The file is read as a secret file (kms/secret_file.h): a regular file owned by this process's
// uid or root, mode 0600, no symlink unless allowed (--allow-secret-symlinks), at most
// kMaxKeyringFileSize bytes, which a keyring of kMaxKeyringVersions versions always fits
// (keyring_file.h). A rotation that would pass kMaxKeyringVersions versions or version
// 4294967295 is refused (OUT_OF_RANGE) and leaves the file untouched; from 3/4 of the versions
// on, every load and rotation logs a warning.
//
// Thread-safe.
#ifndef KMSP_KMS_LOCAL_LOCAL_KMS_H_
#define KMSP_KMS_LOCAL_LOCAL_KMS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "crypto/aes_gcm.h"
#include "kms/key_encryption_service.h"
#include "kms/local/keyring_file.h"
#include "kms/remote_attempt.h"

namespace kmsplugin {

struct LocalKmsOptions {
  std::string keyring_path;  // Absolute path of the keyring file.
  // Create a keyring (one fresh version, a new random keyring_id) when the file is absent.
  // `serve` sets it only with --local-keyring-create; without it a missing file is NOT_FOUND.
  bool create_if_missing = true;
  // When not empty, Create() fails unless the file's keyring_id is exactly this (and it may not
  // be combined with create_if_missing: a new keyring would have a new random id).
  std::string expected_keyring_id;
  // A symlink as the keyring file; std::nullopt: the process-wide setting (kms/secret_file.h).
  std::optional<bool> allow_symlinks;
  // Rotations beyond this many versions are refused (tests lower it).
  size_t max_versions = kMaxKeyringVersions;
  // Told about every Wrap, Unwrap and RotateKek (operations "wrap", "unwrap", "rotate"; key = the
  // keyring path), so that the audit trail is the same for every backend. May be null; must
  // outlive the backend.
  RemoteAttemptObserver* observer = nullptr;
};

class LocalKms final : public KeyEncryptionService {
 public:
  // Opens (or creates, with one fresh version) the keyring. INVALID_ARGUMENT for a relative path,
  // a malformed or oversized file, or expected_keyring_id with create_if_missing; NOT_FOUND for
  // a missing file without create_if_missing; FAILED_PRECONDITION for a keyring_id other than
  // expected_keyring_id; FAILED_PRECONDITION if the file is readable by group or
  // others, owned by another user, a symlink (not allowed) or not a regular file; UNAVAILABLE if
  // it cannot be read or written. `clock` must outlive the object.
  static absl::StatusOr<std::unique_ptr<LocalKms>> Create(const LocalKmsOptions& options,
                                                          const Clock* clock);

  std::string_view Name() const override { return "local"; }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override;
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override;
  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override;
  // Adds a version and makes it primary. DEADLINE_EXCEEDED when the keyring lock is not free by
  // ctx.deadline (nothing changed, and nothing will); OUT_OF_RANGE when the keyring holds
  // max_versions versions or version 4294967295 (nothing changed).
  absl::Status RotateKek(const CallContext& ctx) override;

  // The kek_id of `version` in this keyring.
  std::string KekIdFor(uint32_t version) const;

 private:
  struct Keyring {
    std::string keyring_id;
    uint32_t primary = 0;
    std::map<uint32_t, std::unique_ptr<AesGcm>> keks;
    std::string stamp;  // mtime/size/inode of the file last read.
  };

  LocalKms(LocalKmsOptions options, const Clock* clock)
      : options_(std::move(options)), clock_(clock) {}

  absl::StatusOr<WrappedKey> WrapNow(const SecretBytes& key);
  absl::StatusOr<SecretBytes> UnwrapNow(const WrappedKey& wrapped);
  absl::Status RotateNow(const CallContext& ctx);
  // Reports one operation (started at `start`) to the observer and the debug log.
  void Report(std::string_view operation, std::string_view kek_id, const absl::Status& status,
              absl::Time start, const CallContext& ctx) const;
  // Re-reads the file if it changed since the last read.
  absl::Status ReloadIfChangedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs a warning when `file` (of `size` bytes) nears the limits.
  void WarnIfNearLimits(const KeyringFile& file, size_t size) const;
  // The file a write replaces: the keyring path, or where it points when it is an allowed symlink.
  absl::StatusOr<std::string> WriteTarget() const;

  const LocalKmsOptions options_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  Keyring ring_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kmsplugin

#endif  // KMSP_KMS_LOCAL_LOCAL_KMS_H_
