// BearerRestApi: one JSON REST call to a KMS that takes an OAuth 2.0 bearer token (Google Cloud
// KMS, Azure Key Vault), with the token from a TokenSource, retried on transient failures with
// full-jitter backoff inside the caller's deadline (kms/retry.h; `Retry-After` honoured),
// capped in concurrency, and reported per attempt (kms/remote_attempt.h). The one place both
// backends' HTTP calls go through; what an answer means is the backend's RestClassifier.
//
// A 401 the classifier marks `refresh_token` is answered once per call: the backend's
// on_unauthorized hook sees the answer (Azure reads its challenge there), the token source is
// invalidated, and the call is sent again with a fresh token; a second 401 is the error.
//
// Messages carry the operation, the HTTP status and the service's error text (the classifier's,
// Printable(), bounded); never a request or response body, and never a token. Thread-safe.
#ifndef KMSP_KMS_BEARER_REST_API_H_
#define KMSP_KMS_BEARER_REST_API_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "kms/bearer/access_token.h"
#include "kms/http_client.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_attempt.h"
#include "kms/retry.h"

namespace kmsplugin {

// What a non-2xx answer means.
struct RestError {
  absl::Status status;         // The error to return (code per the backend's mapping).
  bool retryable = false;      // Transient: retry with backoff (429, 5xx, …).
  bool not_acted = false;      // The answer proves the service did not act (429, 503).
  bool refresh_token = false;  // 401: get a new token and send once more.
  bool throttled = false;      // For the error class of the attempt report.
};

// Classifies a non-2xx answer to `operation`.
using RestClassifier =
    std::function<RestError(std::string_view operation, const HttpResponse& response)>;

struct BearerRestOptions {
  std::string backend;  // "gcp", "azure": attempt reports.
  std::string service;  // "Cloud KMS", "Azure Key Vault": messages.
  // Headers holding the service's request id, first present wins ("x-ms-request-id"); lower case.
  std::vector<std::string> request_id_headers;
  RestClassifier classify;  // Required.
  // Called with a 401 answer marked refresh_token, before the token is invalidated; may be null.
  std::function<void(const HttpResponse&)> on_unauthorized;
  RetryPolicy retry;
  size_t max_concurrent_calls = 16;
  absl::Duration default_call_timeout = absl::Seconds(10);  // When ctx has no deadline.
  RemoteAttemptObserver* observer = nullptr;                // May be null; must outlive the api.
};

struct RestCall {
  std::string_view operation;        // "encrypt", "wrapkey", "cryptoKeys.get": messages, reports.
  std::string_view method = "POST";  // GET or POST.
  std::string url;                   // Full URL, query included.
  SecretBytes body;                  // JSON for a POST (may hold key material).
  bool idempotent = true;            // false: resent only when the answer proves no action.
};

class BearerRestApi {
 public:
  // `http` and `tokens` must outlive the api.
  BearerRestApi(BearerRestOptions options, HttpClient* http, TokenSource* tokens);

  // Returns the body of a 2xx answer (it may hold key material, hence a SecretBytes). Each
  // attempt is reported with `subject`; a token-source failure is returned as it is (annotated).
  absl::StatusOr<SecretBytes> Call(const RestCall& call, const CallContext& ctx,
                                   const AttemptSubject& subject = {});

 private:
  const BearerRestOptions options_;
  HttpClient* const http_;
  TokenSource* const tokens_;
  CallSlots slots_;
};

// The delay a `Retry-After` header asks for (seconds, or an HTTP date), and Azure's
// `retry-after-ms` / `x-ms-retry-after-ms`; nullopt when none is present or it does not parse.
std::optional<absl::Duration> RetryAfterOf(const HttpResponse& response, absl::Time now);

}  // namespace kmsplugin

#endif  // KMSP_KMS_BEARER_REST_API_H_
