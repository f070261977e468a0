// KmsApi: one AWS KMS JSON 1.1 call (POST / with X-Amz-Target: TrentService.<Op>), signed with
// SigV4, retried on transient failures with full-jitter backoff inside the caller's deadline, and
// capped in concurrency. Facts: remote-kms-apis.md §1.2, §1.4, §1.5.
//
// Error classification (by the sanitized error code, then the HTTP status):
//   retried, then UNAVAILABLE: throttling codes, KMSInternalException, DependencyTimeoutException,
//     KeyUnavailableException, LimitExceededException, HTTP 5xx/429, connection failures (the
//     non-idempotent RotateKeyOnDemand is retried on throttling codes only);
//   PERMISSION_DENIED: AccessDeniedException;
//   UNAUTHENTICATED: UnrecognizedClientException, InvalidSignatureException, IncompleteSignature,
//     MissingAuthenticationToken, InvalidClientTokenId, SignatureDoesNotMatch, and
//     ExpiredTokenException and UnrecognizedClientException after one credential refresh and
//     retry;
//   UNAVAILABLE (not retried): a signature refused as expired or not yet current (the local clock
//     is off by more than 5 minutes: an outage of ours, not a revocation);
//   FAILED_PRECONDITION: DisabledException, KMSInvalidStateException, NotFoundException,
//     InvalidKeyUsageException, InvalidArnException;
//   INVALID_ARGUMENT: InvalidCiphertextException, IncorrectKeyException;
//   INTERNAL: ValidationException, SerializationException (a request we built wrongly);
//   UNKNOWN: anything else.
//   DEADLINE_EXCEEDED when the caller's deadline passes (retries never sleep past it).
// Messages carry the operation, the code, the HTTP status, AWS's message and request id (each
// through Printable(): printable ASCII, bounded); never a request or response body.
//
// Thread-safe.
#ifndef KMSP_KMS_AWS_KMS_API_H_
#define KMSP_KMS_AWS_KMS_API_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "crypto/secret_bytes.h"
#include "kms/aws/credentials.h"
#include "kms/http_client.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_attempt.h"
#include "kms/retry.h"

namespace kmsplugin::aws {

// Bounds for the remote text kept in an AwsError (after Printable()).
inline constexpr size_t kMaxErrorCodeLength = 64;
inline constexpr size_t kMaxErrorMessageLength = 256;

// The shared retry policy (kms/retry.h), under its historical name.
using RetryPolicy = ::kmsplugin::RetryPolicy;

// A parsed AWS error response.
struct AwsError {
  std::string code;     // Sanitized: "ThrottlingException" (namespace and ":…" suffix removed),
                        // then Printable(), at most kMaxErrorCodeLength.
  std::string message;  // AWS's message ("message" or "Message"), Printable(), bounded.
  int http_status = 0;
  bool retryable = false;  // Transient: retry with backoff.
  absl::Status status;     // The code it maps to (see the file comment).
};

// Parses a non-200 KMS response: code from the x-amzn-ErrorType header, else the body's
// "__type", else the HTTP status; then classifies it. `operation` goes into the message.
AwsError ClassifyKmsError(std::string_view operation, int http_status,
                          std::string_view error_type_header, std::string_view body,
                          std::string_view request_id);

// The sanitized error code: "com.amazonaws.kms#NotFoundException:http://x" -> "NotFoundException".
std::string SanitizeErrorCode(std::string_view raw);

struct KmsApiOptions {
  std::string endpoint;  // https://kms.<region>.amazonaws.com (a path, if any, is kept).
  std::string region;    // Signing region.
  // Accept an http:// endpoint. Tests only: wrapped keys, plaintext data keys and the session
  // token would cross the network in clear (the --aws-insecure-http-for-tests flag).
  bool allow_insecure_http = false;
  RetryPolicy retry;
  size_t max_concurrent_calls = 16;
  absl::Duration default_call_timeout = absl::Seconds(10);  // When ctx has no deadline.
  // Told about every HTTP attempt (retries and the credential-refresh retry included); may be
  // null. Must outlive the KmsApi.
  RemoteAttemptObserver* observer = nullptr;
};

class KmsApi {
 public:
  // INVALID_ARGUMENT for an endpoint that is not https://host[:port][/path] (or http://… with
  // allow_insecure_http).
  // `http`, `credentials` and `clock` must outlive the KmsApi; `clock` gives the signing time.
  static absl::StatusOr<std::unique_ptr<KmsApi>> Create(KmsApiOptions options, HttpClient* http,
                                                        CredentialsProvider* credentials,
                                                        const Clock* clock);

  // Calls TrentService.<operation> with the JSON `body`; returns the 200 response body (it may
  // hold plaintext: it is a SecretBytes). Errors as in the file comment. Each HTTP attempt is
  // reported (kms/remote_attempt.h) with `subject` (the key, kek_id and encryption context the
  // body names, which this layer does not parse).
  absl::StatusOr<SecretBytes> Call(std::string_view operation, const SecretBytes& body,
                                   const CallContext& ctx, const AttemptSubject& subject = {});

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  KmsApi(KmsApiOptions options, std::string host, std::string path, HttpClient* http,
         CredentialsProvider* credentials, const Clock* clock);

  const KmsApiOptions options_;
  const std::string host_;  // Host header value (host[:port]).
  const std::string path_;  // Request path, usually "/".
  HttpClient* const http_;
  CredentialsProvider* const credentials_;
  const Clock* const clock_;
  CallSlots slots_;
};

}  // namespace kmsplugin::aws

#endif  // KMSP_KMS_AWS_KMS_API_H_
