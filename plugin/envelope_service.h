// EnvelopeService: the KMS v2 semantics of the plugin, with no gRPC types.
//
// Key hierarchy: the remote KEK (KeyEncryptionService) wraps a local AES-256 data key (DEK) with
// one call; the DEK encrypts every Encrypt request (0 backend calls per Encrypt in steady state).
// The wrapped DEK travels in the annotations (envelope_format.h), so Decrypt needs the backend
// only on a cache miss, once per wrapped DEK (DekCache, single-flight).
//
// key_id = the kek_id of the KEK version that wrapped the current DEK. Status() and Encrypt() read
// it from the same immutable DataKey snapshot, so they never disagree; the snapshot is replaced
// atomically when the KEK version changes, after dek_max_uses Encrypts, or after dek_max_age.
//
// Health: Status() makes no backend call; Refresh() (run by KeyRefresher in the background)
// probes the backend. Through an outage (transient errors) the plugin coasts on its cached keys
// for `outage_window`; on a refusal (IsKeyRevokedError) it reports unhealthy and purges every
// unwrapped key, so revoking the KEK revokes the plugin within one poll interval.
//
// Thread-safe.
#ifndef KMSP_PLUGIN_ENVELOPE_SERVICE_H_
#define KMSP_PLUGIN_ENVELOPE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "crypto/aes_gcm.h"
#include "crypto/rsa_oaep.h"
#include "kms/key_encryption_service.h"
#include "plugin/dek_cache.h"
#include "plugin/envelope_format.h"

namespace kmsplugin {

struct EnvelopeOptions {
  // A DEK is replaced after this many Encrypts (far below the 2^32 random-nonce bound of GCM).
  uint64_t dek_max_uses = uint64_t{1} << 22;
  // ... and after this age (replaced when the KMS is reachable; used on through an outage).
  absl::Duration dek_max_age = absl::Hours(24);
  // How long the plugin stays healthy and keeps encrypting while the KMS is unreachable.
  absl::Duration outage_window = absl::Hours(1);
  // Unwrapped DEKs kept in memory.
  size_t dek_cache_size = 1024;
  // A new KEK version must be reported by this many consecutive probes before key_id switches
  // (a flapping backend never flips key_id). Forced refreshes (admin) skip it.
  int key_change_confirmations = 2;
  // The offline recovery key (issue 12, plugin/recovery_format.h): when set, each new data key is
  // also RSA-OAEP-wrapped under it, once, into a second annotation kRecoveryAnnotation that the
  // AAD binds. Null: exactly one annotation, as before.
  std::shared_ptr<const RsaPublicKey> recovery_key;
};

struct EncryptResult {
  std::string ciphertext;
  std::string key_id;
  Annotations annotations;
};

// The KMS v2 StatusResponse fields.
struct PluginStatus {
  std::string version;
  std::string healthz;  // "ok" or a reason (public text).
  std::string key_id;
};

// What the admin endpoint reports.
struct EnvelopeReport {
  PluginStatus status;
  std::string backend;
  std::string data_key_created;  // RFC 3339, empty without a DEK.
  uint64_t data_key_uses = 0;
  std::vector<std::string> kek_ids_seen;  // In order of first sighting.
  size_t cache_size = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  std::string last_probe;         // RFC 3339 of the last probe, empty if none.
  std::string last_probe_result;  // "ok" or the error.
  std::string kek_description;
  std::string recovery_key_fingerprint;  // "sha256:<hex>", empty without a recovery key.
  uint64_t recovery_wraps = 0;           // Data keys wrapped under the recovery key since start.
  // Coasting on cached keys through a KMS outage: the last probe failed (not a refusal), a data
  // key is in use, and the outage window has not run out; then the seconds left of it (else 0).
  bool outage_window_active = false;
  double outage_window_seconds_left = 0;
  double data_key_age_seconds = 0;  // Of the current data key; 0 without one.
  // Since start: data keys made, key_id changes (a new KEK version seen), KEK rotations this
  // plugin made (RotateKek).
  uint64_t data_keys_made = 0;
  uint64_t key_id_changes = 0;
  uint64_t kek_rotations = 0;
};

class EnvelopeService {
 public:
  // After a failed background replacement of a data key due by age, the next try waits this long.
  static constexpr absl::Duration kReplacementRetry = absl::Seconds(5);

  // `kes` is owned; `clock` must outlive the service. Makes no backend call: call Refresh().
  static absl::StatusOr<std::unique_ptr<EnvelopeService>> Create(
      const EnvelopeOptions& options, std::unique_ptr<KeyEncryptionService> kes,
      const Clock* clock);

  // The KMS v2 Status: version "v2", healthz "ok" only while Encrypt can succeed, key_id of the
  // current DEK. No backend call.
  PluginStatus Status() const;

  // Encrypts `plaintext` (1..kMaxPlaintextSize bytes) under the current DEK.
  // INVALID_ARGUMENT for an empty or oversized plaintext; FAILED_PRECONDITION when the KEK was
  // revoked; UNAVAILABLE when there is no usable DEK and none can be made now.
  absl::StatusOr<EncryptResult> Encrypt(std::string_view plaintext, const CallContext& ctx);

  // The non-blocking path the gRPC serving threads take: Encrypt without any backend call.
  // Returns nullopt when the call needs the backend (no data key yet, or the current one is used
  // up); then Encrypt() must run on a thread that may block. When the data key is due for
  // replacement by age, the call still succeeds under it and `*replacement_due` is set, for one
  // caller at a time (and at most once per `kReplacementRetry` after a failed attempt): that
  // caller should run ReplaceDueDataKey() off the serving thread.
  std::optional<absl::StatusOr<EncryptResult>> TryEncrypt(std::string_view plaintext,
                                                          bool* replacement_due);

  // Replaces the data key if it is still due (see TryEncrypt); the backend's error otherwise.
  absl::Status ReplaceDueDataKey(const CallContext& ctx);

  // Decrypts a ciphertext produced by Encrypt() under any KEK version the backend still holds.
  // INVALID_ARGUMENT for a malformed request or when authentication fails (a modified
  // ciphertext, key_id or annotation); the backend's code when unwrapping fails.
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ciphertext, std::string_view key_id,
                                      const Annotations& annotations, const CallContext& ctx);

  // The non-blocking path: Decrypt when the data key is the current one or cached. Returns
  // nullopt when it must be unwrapped by the backend: then Decrypt() must run on a thread that
  // may block.
  std::optional<absl::StatusOr<SecretBytes>> TryDecrypt(std::string_view ciphertext,
                                                        std::string_view key_id,
                                                        const Annotations& annotations);

  // Probes the backend and reconciles: a new DEK when the KEK version changed (after
  // key_change_confirmations probes, or at once with `force`) or the DEK is due; revocation
  // purge on a refusal. Returns the probe's (or the new DEK's wrap) error.
  absl::Status Refresh(const CallContext& ctx, bool force = false);

  // Replaces the DEK now (same KEK version unless it changed).
  absl::Status RotateDataKey(const CallContext& ctx);

  // Rotates the KEK at the backend, then switches to a DEK wrapped by the new version.
  absl::Status RotateKek(const CallContext& ctx);

  EnvelopeReport Report() const;

  // RSA wraps under the recovery key since start (one per data key, never per Encrypt).
  uint64_t recovery_wraps() const { return recovery_wraps_.load(); }

 private:
  struct DataKey {
    std::string key_id;
    std::string wrapped;
    Annotations annotations;
    std::string aad;  // EnvelopeAad(key_id, annotations), computed once.
    std::shared_ptr<const AesGcm> aead;
    absl::Time created;
    mutable std::atomic<uint64_t> uses{0};
  };

  EnvelopeService(const EnvelopeOptions& options, std::unique_ptr<KeyEncryptionService> kes,
                  const Clock* clock);

  // Wraps a fresh DEK and installs it, unless another thread replaced `expected_current`
  // meanwhile (then returns that one). Serialised by rotate_mu_.
  absl::StatusOr<std::shared_ptr<const DataKey>> ReplaceDataKey(
      const std::shared_ptr<const DataKey>& expected_current, const CallContext& ctx,
      std::string_view reason);
  bool DueForReplacement(const DataKey& dk, absl::Time now) const;
  // Checks the state for an Encrypt (revoked, outage) and returns the current data key (null if
  // none yet).
  absl::StatusOr<std::shared_ptr<const DataKey>> EncryptKey(absl::Time now) const;
  absl::StatusOr<EncryptResult> Seal(const DataKey& dk, std::string_view plaintext) const;
  // The checks of a Decrypt request that need no key; returns the wrapped data key.
  absl::StatusOr<std::string_view> CheckDecryptRequest(std::string_view ciphertext,
                                                       std::string_view key_id,
                                                       const Annotations& annotations) const;
  absl::StatusOr<SecretBytes> Open(const AesGcm& aead, std::string_view aad,
                                   std::string_view ciphertext) const;
  std::string HealthzLocked(absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // "key_id X" for a key_id this process has seen, else a short hash (no request bytes in errors).
  std::string DescribeKeyId(std::string_view key_id) const;
  void NoteKekIdLocked(const std::string& kek_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EnvelopeOptions options_;
  const std::unique_ptr<KeyEncryptionService> kes_;
  const Clock* const clock_;
  DekCache cache_;

  absl::Mutex rotate_mu_;  // Held across the wrap call of a DEK replacement.
  std::atomic<bool> replacement_scheduled_{false};
  std::atomic<uint64_t> recovery_wraps_{0};
  std::atomic<uint64_t> data_keys_made_{0};
  std::atomic<uint64_t> key_id_changes_{0};
  std::atomic<uint64_t> kek_rotations_{0};
  mutable absl::Mutex mu_;
  std::shared_ptr<const DataKey> current_ ABSL_GUARDED_BY(mu_);
  bool revoked_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_probe_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time last_probe_ok_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_probe_status_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("the KMS has not been probed yet");
  std::string kek_description_ ABSL_GUARDED_BY(mu_);
  std::string pending_kek_id_ ABSL_GUARDED_BY(mu_);  // A new version awaiting confirmation.
  int pending_confirmations_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> retired_key_ids_ ABSL_GUARDED_BY(mu_);
  absl::Time next_replacement_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::vector<std::string> kek_ids_seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_ENVELOPE_SERVICE_H_
