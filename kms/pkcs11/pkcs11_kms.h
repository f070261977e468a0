// Pkcs11Kms: the PKCS#11 HSM backend of KeyEncryptionService. The KEK is an AES-256 secret-key
// object in a token (sensitive, never extractable); data keys are wrapped inside the token, so the
// KEK never leaves it. Facts: remote-kms-apis.md §4b. Formats (kek_id, CKA_ID, blob):
// pkcs11_blob.h.
//
//   Wrap      = C_EncryptInit + C_Encrypt with CKM_AES_GCM (12-byte IV from the plugin's RNG, AAD =
//               the blob header and the key reference "<label>/v<N>"), or C_WrapKey with
//               CKM_AES_KEY_WRAP_PAD on a token without GCM (C_GetMechanismInfo at start).
//   Unwrap    = C_DecryptInit + C_Decrypt (or C_UnwrapKey) with the version the kek_id names.
//   Probe     = C_FindObjects for the label (no crypto call): learns the current version, e.g.
//               after another node's rotation.
//   RotateKek = C_GenerateKey of version current+1 (same label, CKA_ID = the new version).
//
// Versions: key objects with the same CKA_LABEL, the version in CKA_ID (big-endian: --id 01 = v1,
// 0100 = v256); the current version is the highest. Older versions keep unwrapping. Objects with
// the label whose CKA_ID is not a version (empty, more than 4 bytes, zero) are ignored; two objects
// with the same version are refused (FAILED_PRECONDITION).
//
// Start-up (Create): load the module (dlopen), find the token by label, log in with the PIN, find
// the key versions; when none exists (and create_key_if_absent) generate version 1 and log it.
// Every key version's attributes are checked when first seen: an extractable, non-sensitive or
// non-AES-256 key, or one without CKA_ENCRYPT/CKA_DECRYPT (GCM) or CKA_WRAP/CKA_UNWRAP (KWP), is
// refused with a message naming the attribute. Then a self-test wraps and unwraps a random key
// (catching modules that want another CK_GCM_PARAMS layout).
//
// Error codes (beyond key_encryption_service.h):
//   - wrong PIN (CKR_PIN_INCORRECT): UNAUTHENTICATED; locked PIN (CKR_PIN_LOCKED or the token flag
//     CKF_USER_PIN_LOCKED), expired or uninitialised PIN: PERMISSION_DENIED. Both are revocations;
//     the pool never tries the PIN again (session_pool.h), so `serve` exits at start-up with the
//     message, and a PIN changed under a running plugin makes it unhealthy until restarted.
//   - no token with the label: UNAVAILABLE (an outage while serving; at start-up `serve` exits),
//     the message lists the labels found;
//   - the current key version's object gone from the token (Probe), or no key with the label, or a
//     kek_id version that is not in the token: FAILED_PRECONDITION (revocation);
//   - a kek_id of another token serial or label: FAILED_PRECONDITION without any HSM call;
//   - a blob the token refuses to authenticate (GCM: CKR_GENERAL_ERROR, which SoftHSM returns,
//     CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE; KWP also CKR_WRAPPED_KEY_*), or
//     one malformed: INVALID_ARGUMENT;
//   - lost sessions, a lost token after one reconnection, resource shortages: UNAVAILABLE.
// PKCS#11 calls block; ctx.deadline is checked before each attempt and while waiting for a
// session, never by interrupting a call.
//
// Thread-safe.
#ifndef KMSP_KMS_PKCS11_PKCS11_KMS_H_
#define KMSP_KMS_PKCS11_PKCS11_KMS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "kms/key_encryption_service.h"
#include "kms/pkcs11/key_objects.h"
#include "kms/pkcs11/pkcs11_blob.h"
#include "kms/pkcs11/pkcs11_module.h"
#include "kms/pkcs11/session_pool.h"
#include "kms/remote_attempt.h"

namespace kmsplugin::pkcs11 {

struct Pkcs11KmsOptions {
  std::string module_path;  // --pkcs11-module
  std::string token_label;  // --pkcs11-token-label
  std::string key_label;    // --pkcs11-key-label
  std::string pin_file;     // --pkcs11-pin-file (trailing newline trimmed); read with secret_file.h
  SecretBytes pin;          // Used when pin_file is empty (tests).
  size_t max_sessions = 8;
  enum class MechanismChoice { kAuto, kGcm, kKeyWrapPad };
  MechanismChoice mechanism = MechanismChoice::kAuto;  // kAuto: GCM when the token offers it.
  bool create_key_if_absent = true;
  absl::Duration startup_timeout = absl::Seconds(30);
  // The session pool's reconnect backoff clock (session_pool.h); null: the real clock. Tests.
  const Clock* clock = nullptr;
  // Overrides module_path (tests: a function list with some entries replaced).
  std::unique_ptr<Pkcs11Module> module;
  // Told about every operation on the token (kms/remote_attempt.h): one report per Wrap
  // ("C_Encrypt" or "C_WrapKey"), Unwrap ("C_Decrypt" or "C_UnwrapKey"), Probe ("C_FindObjects")
  // and RotateKek ("C_GenerateKey"), the start-up self-test included; key = "token=<label>
  // key=<label>", no request id. May be null; must outlive the backend.
  RemoteAttemptObserver* observer = nullptr;
};

class Pkcs11Kms final : public KeyEncryptionService {
 public:
  static absl::StatusOr<std::unique_ptr<Pkcs11Kms>> Create(Pkcs11KmsOptions options);
  ~Pkcs11Kms() override;

  std::string_view Name() const override { return "pkcs11"; }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override;
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override;
  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override;
  absl::Status RotateKek(const CallContext& ctx) override;

  // The token's serial as read at start-up, the mechanism of new blobs, reconnections so far.
  const std::string& token_serial() const { return serial_; }
  Mechanism mechanism() const { return mechanism_; }
  uint64_t reconnects() const { return pool_->reconnects(); }

 private:
  Pkcs11Kms(Pkcs11KmsOptions options, std::unique_ptr<Pkcs11Module> module,
            std::unique_ptr<SessionPool> pool);

  absl::Status Start();
  // Within a session: (re-)finds the key versions when the handle epoch changed or `refresh`, and
  // checks the attributes of versions not seen before. `problem` gets a non-PKCS#11 failure.
  CallResult LoadKeys(ck_session_handle_t session, uint64_t epoch, bool refresh,
                      absl::Status* problem);
  // The handle of `version` (after LoadKeys), or 0.
  ck_object_handle_t Handle(uint32_t version);
  uint32_t Current();
  // Maps a pool result to a status: `problem` first, then the PKCS#11 code.
  absl::Status Outcome(const absl::StatusOr<CallResult>& run, const absl::Status& problem,
                       std::string_view op, bool ciphertext_in);
  std::string KekId(uint32_t version) const { return MakeKekId(serial_, key_label_, version); }
  // Reports one operation on the token (started at `start`) to the observer and the debug log.
  void Report(std::string_view operation, std::string_view kek_id, const absl::Status& status,
              absl::Time start, const CallContext& ctx) const;
  std::string Describe(uint32_t version) const;

  const std::string key_label_;
  const std::string audit_key_;  // "token=<label> key=<label>".
  RemoteAttemptObserver* const observer_;
  const bool create_key_if_absent_;
  const absl::Duration startup_timeout_;
  std::unique_ptr<Pkcs11Module> module_;
  std::unique_ptr<SessionPool> pool_;
  std::string serial_;       // Set by Start().
  std::string token_label_;  // Set by Start().
  Mechanism mechanism_ = Mechanism::kAesGcm;
  Pkcs11KmsOptions::MechanismChoice choice_;

  absl::Mutex mu_;
  uint64_t keys_epoch_ ABSL_GUARDED_BY(mu_) = UINT64_MAX;
  std::map<uint32_t, ck_object_handle_t> keys_ ABSL_GUARDED_BY(mu_);
  std::set<uint32_t> checked_ ABSL_GUARDED_BY(mu_);  // Versions whose attributes passed.
  uint32_t highest_seen_ ABSL_GUARDED_BY(mu_) = 0;   // Sticky: a deleted current key revokes.
  absl::Mutex rotate_mu_;                            // One RotateKek at a time.
};

}  // namespace kmsplugin::pkcs11

#endif  // KMSP_KMS_PKCS11_PKCS11_KMS_H_
