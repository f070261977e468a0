// RunRemoteCall: the one retry loop every remote KMS request goes through (AWS KMS, Vault
// Transit, Google Cloud KMS, Azure Key Vault, and the token endpoints of the last two). The
// caller sends one request per `attempt` and says what the answer means; the loop owns the rest:
// the deadline, full-jitter backoff (kms/retry.h) or the server's Retry-After, one immediate
// resend with fresh credentials when the caller asks for it, and one attempt report per request
// (kms/remote_attempt.h).
#ifndef KMSP_KMS_REMOTE_CALL_H_
#define KMSP_KMS_REMOTE_CALL_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "kms/http_client.h"
#include "kms/remote_attempt.h"
#include "kms/retry.h"

namespace kmsplugin {

// One request and what its answer means, as the caller classified it.
struct AttemptResult {
  // The answer's body on success (it may hold key material or a token); else the error.
  absl::StatusOr<SecretBytes> body = absl::UnknownError("not sent");
  int http_status = 0;     // 0 when there was no HTTP answer.
  std::string request_id;  // The service's request id, Printable(); may be empty.
  std::string key_id;      // A key_id learned from the answer, for the report; may be empty.
  absl::Duration latency;  // Of the request alone.
  bool retryable = false;  // The error may heal on a retry (with backoff).
  bool throttled = false;  // For the error class of the report.
  bool refresh_credentials = false;  // Resend at once with fresh credentials (once per call).
  std::optional<absl::Duration> retry_after;  // The server's Retry-After, when it gave one.
};

// One request sent: `response` when an answer came (then `result` has its latency and HTTP status
// set, the rest for the caller to fill in); else no response, and `result` holds the send error
// annotated with `what`, retryable when `idempotent` and the failure may heal (UNAVAILABLE:
// connection, DNS, transfer; not a TLS verification failure, which will not heal by retrying).
struct SentRequest {
  std::optional<HttpResponse> response;
  AttemptResult result;
};
SentRequest SendRequest(HttpClient* http, const HttpRequest& request, std::string_view what,
                        bool idempotent);

struct RemoteCallSpec {
  std::string_view backend;    // For the reports: "aws", "vault", "gcp", "azure".
  std::string_view operation;  // For the reports: "Encrypt", "transit decrypt", "wrapkey".
  std::string what;            // For messages: "AWS KMS Encrypt".
  RetryPolicy retry;
  absl::Time deadline = absl::InfiniteFuture();
  AttemptSubject subject;  // key, key_id, encryption context (key_id_from_answer unused).
  std::string_view uid;
  RemoteAttemptObserver* observer = nullptr;
};

// Calls `attempt` until an answer succeeds, an error is final, the attempts run out (UNAVAILABLE
// "… (gave up after N attempts)") or the deadline passes (DEADLINE_EXCEEDED). `attempt` returns a
// non-OK status to stop at once without a report (no request was sent: e.g. no credentials).
// After a result with refresh_credentials, `refresh` runs and the request is resent at once; that
// resend does not count against retry.max_attempts and happens at most once per call. A
// Retry-After longer than the backoff is honoured when it ends before the deadline and is at most
// two minutes; otherwise the call gives up with UNAVAILABLE naming it.
absl::StatusOr<SecretBytes> RunRemoteCall(
    const RemoteCallSpec& spec, const std::function<absl::StatusOr<AttemptResult>()>& attempt,
    const std::function<void()>& refresh = nullptr);

}  // namespace kmsplugin

#endif  // KMSP_KMS_REMOTE_CALL_H_
