// SessionPool: the connection to one token of a PKCS#11 module and a bounded pool of its
// sessions, one per in-flight call (a session runs one operation of each kind at a time,
// remote-kms-apis.md §4b.2), with recovery from lost sessions and lost tokens.
//
// Run(fn) lends fn a logged-in session. When fn reports (its first failing call's code; each
// recovery at most once per Run):
//   - a lost session (IsSessionLost): the idle sessions are dropped, fn runs once more on a new
//     session;
//   - a lost token or stale handle (IsTokenLost): the module is re-initialised (C_Finalize +
//     C_Initialize), the slot found again by token label, the user logged in, and fn runs once
//     more on the new connection.
// fn gets an `epoch` that changes whenever object handles may have gone stale (a reconnection, or
// lost sessions, since a logout invalidates private handles on some modules): fn finds its key
// handles again when it sees a new one.
// Reconnection backoff: a failed reconnection leaves the pool down. The next attempt is allowed
// only after a random wait in (0, interval] (full jitter); the interval starts at 1 s and doubles
// after each failed attempt up to 30 s, and a successful reconnection resets it. Until then every
// Run fails fast, without a PKCS#11 call, with UNAVAILABLE "PKCS#11 token '<label>' unavailable
// (<last error>); next reconnect in <d>"; the first Run after it reconnects. Time comes from the
// Clock given at construction (tests drive it with a FakeClock).
// Reconnection waits for every call in flight (a reader/writer lock held for each call), so no
// call runs across C_Finalize.
//
// Login: once per connection; a new session of a connection is logged in only when
// C_GetSessionInfo says it is not (CKR_USER_ALREADY_LOGGED_IN counts as success). A PIN refused
// (CKR_PIN_INCORRECT, CKR_PIN_INVALID, CKR_PIN_LEN_RANGE, CKR_PIN_LOCKED, CKR_PIN_EXPIRED,
// CKR_USER_PIN_NOT_INITIALIZED) or a token
// flagged CKF_USER_PIN_LOCKED is latched: no further C_Login is ever attempted by this pool (each
// failure counts toward the token's lockout), and every later Run fails with the same status.
// Codes: wrong PIN (incorrect, invalid, wrong length) UNAUTHENTICATED; locked, expired or
// uninitialised PIN PERMISSION_DENIED; no token with the label UNAVAILABLE (the message lists the
// labels found); DEADLINE_EXCEEDED when the deadline passes before a call can start (a call in
// progress is never interrupted).
//
// Thread-safe. The PIN is held in SecretBytes and never appears in a message.
#ifndef KMSP_KMS_PKCS11_SESSION_POOL_H_
#define KMSP_KMS_PKCS11_SESSION_POOL_H_

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "crypto/secret_bytes.h"
#include "kms/pkcs11/pkcs11_module.h"

namespace kmsplugin::pkcs11 {

// The first failing call of a sequence (rv CKR_OK and call "" when every call succeeded).
struct CallResult {
  ck_rv_t rv = CKR_OK;
  std::string_view call;
  bool ok() const { return rv == CKR_OK; }
};

struct TokenIdentity {
  ck_slot_id_t slot = 0;
  std::string label;   // CK_TOKEN_INFO.label, unpadded.
  std::string serial;  // CK_TOKEN_INFO.serialNumber, unpadded.
};

class SessionPool {
 public:
  static constexpr absl::Duration kMinReconnectInterval = absl::Seconds(1);
  static constexpr absl::Duration kMaxReconnectInterval = absl::Seconds(30);

  // `module` and `clock` must outlive the pool.
  SessionPool(Pkcs11Module* module, std::string token_label, SecretBytes pin, size_t max_sessions,
              const Clock* clock = RealClock::Get());
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  // C_Initialize, find the token, check its PIN flags, open a session and log in.
  absl::Status Connect();

  using SessionFn = absl::FunctionRef<CallResult(ck_session_handle_t session, uint64_t epoch)>;
  // See the file comment. The result is fn's last result; a non-OK status is the pool's own
  // failure (no session before the deadline, reconnection failed, PIN latched).
  absl::StatusOr<CallResult> Run(absl::Time deadline, SessionFn fn);

  TokenIdentity token() const;
  uint64_t generation() const;  // Connections so far (changes on reconnection).
  uint64_t epoch() const;       // See SessionFn.
  // For tests and logs: reconnection attempts so far, sessions open now.
  uint64_t reconnects() const;
  size_t open_sessions() const;

 private:
  enum class Attempt { kDone, kRetrySession, kReconnect };
  // One attempt of Run under the module lock (reader).
  Attempt RunOnce(absl::Time deadline, SessionFn fn, CallResult* result, absl::Status* status,
                  uint64_t* generation);
  // The slot whose token has our label; fills token_ (caller holds module_mu_ as writer, or is
  // Connect()).
  absl::Status FindToken(TokenIdentity* token);
  // Opens a session on the current slot and logs it in if needed. `rv` gets the failing code.
  absl::StatusOr<ck_session_handle_t> OpenSession(ck_slot_id_t slot, ck_rv_t* rv);
  absl::Status Login(ck_session_handle_t session);
  absl::Status Reconnect(uint64_t seen_generation);
  // The connection part of Reconnect (module lock held as writer).
  absl::Status ReconnectLocked();
  // The fail-fast status while down (caller holds mu_).
  absl::Status DownStatus(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Pkcs11Module* const module_;
  const std::string token_label_;
  const SecretBytes pin_;
  const size_t max_sessions_;
  const Clock* const clock_;

  // Held as reader by every call in flight, as writer by Reconnect.
  absl::Mutex module_mu_;
  mutable absl::Mutex mu_;
  TokenIdentity token_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<ck_session_handle_t> idle_ ABSL_GUARDED_BY(mu_);
  size_t open_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status pin_error_ ABSL_GUARDED_BY(mu_);  // Latched PIN refusal.
  // Backoff (see the file comment): the last reconnection failed with down_error_.
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status down_error_ ABSL_GUARDED_BY(mu_);
  absl::Time next_reconnect_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration reconnect_interval_ ABSL_GUARDED_BY(mu_) = kMinReconnectInterval;
  std::mt19937_64 jitter_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kmsplugin::pkcs11

#endif  // KMSP_KMS_PKCS11_SESSION_POOL_H_
