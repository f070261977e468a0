// RemoteAttempt and RemoteAttemptObserver: how a KMS backend reports each request it makes to
// its KMS, one report per attempt (a retried call reports every try), so that the plugin can
// write an audit line per attempt (matching one CloudTrail or Vault audit event through its
// request id) and count retries by error class. Backends take an optional observer in their
// options and call OnAttempt() once per attempt, after the answer (or the failure) and before
// any backoff sleep.
//
// Every field is public: no key material, plaintext, token, PIN, request or response body.
#ifndef KMSP_KMS_REMOTE_ATTEMPT_H_
#define KMSP_KMS_REMOTE_ATTEMPT_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace kmsplugin {

// The bounded set of error classes (a metrics label and an audit field). "ok" for success.
//   throttled        the KMS asked us to slow down (AWS throttling codes, HTTP 429)
//   unavailable      unreachable, connection failure, 5xx, token or session lost
//   timeout          the call's deadline passed
//   credentials      credentials refused or expired (UNAUTHENTICATED)
//   denied           access denied (PERMISSION_DENIED)
//   key_state        key disabled, pending deletion, unknown (FAILED_PRECONDITION, NOT_FOUND)
//   invalid          a wrapped key the KMS rejects (INVALID_ARGUMENT)
//   internal         a request we built wrongly, a broken invariant
//   other            anything else
std::string_view ErrorClassOf(const absl::Status& status, bool throttled = false);

struct RemoteAttempt {
  std::string_view backend;    // "aws", "vault", "pkcs11", "local".
  std::string_view operation;  // The remote operation: "Encrypt", "transit/decrypt", "C_WrapKey".
  std::string_view key;  // What the request named: key ARN or alias, Vault "<mount>/keys/<name>",
                         // PKCS#11 "token=<label> key=<label>", the local keyring path.
  std::string_view key_id;              // The kek_id involved, when known (empty otherwise).
  std::string_view encryption_context;  // Canonical "k=v,k2=v2" sent with it (empty if none).
  absl::StatusCode code = absl::StatusCode::kOk;  // This attempt's result.
  std::string_view error_class = "ok";            // ErrorClassOf() of that result.
  int http_status = 0;                            // 0 when there was no HTTP answer.
  absl::Duration latency;
  int attempt = 1;              // From 1.
  bool will_retry = false;      // The backend will try again after this one.
  std::string_view request_id;  // The KMS's request id (AWS x-amzn-RequestId, Vault request_id).
  std::string_view uid;         // The apiserver request uid (CallContext::uid), may be empty.
};

class RemoteAttemptObserver {
 public:
  virtual ~RemoteAttemptObserver() = default;
  // Called from the backend's calling thread, for every attempt; thread-safe, must not block on
  // the network.
  virtual void OnAttempt(const RemoteAttempt& attempt) = 0;
};

// What a backend's call names (key, key_id, encryption context): the transport layers (AWS
// KmsApi, VaultApi) know neither, so the backend hands them this with each call.
//
// key_id_from_answer: for a request where the KMS picks the key version (an encrypt), reads the
// key_id a successful answer names, from public fields only ("" when it cannot tell); the
// transport calls it on a 2xx answer when key_id is empty, so that line names the version too.
struct AttemptSubject {
  std::string_view key;
  std::string_view key_id;
  std::string_view encryption_context;
  std::function<std::string(std::string_view answer)> key_id_from_answer;
};

// The one place every backend reports an attempt through: logs it at debug level (one line per
// attempt, the same shape for every backend; `status` gives the failure's message, which is
// already sanitized remote text) and hands it to `observer` when there is one.
void ReportAttempt(RemoteAttemptObserver* observer, const RemoteAttempt& attempt,
                   const absl::Status& status);

}  // namespace kmsplugin

#endif  // KMSP_KMS_REMOTE_ATTEMPT_H_
