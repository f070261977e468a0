// RequestToken: one exchange with a token endpoint, shared by every bearer-token source: Google's
// OAuth token_uri, STS and IAM Credentials generateAccessToken, the GCE metadata server,
// Microsoft Entra's /<tenant>/oauth2/v2.0/token and Azure IMDS. Facts: remote-kms-apis.md §5.7,
// §6.5. HTTP goes through the shared client (kms/http_client.h); retries through kms/retry.h.
//
// The answer: ParseTokenAnswer reads the token from `access_token` (OAuth) or `accessToken` (IAM
// Credentials), and its expiry from `expires_in` (seconds from now; number or string),
// `expires_on` (unix seconds; number or string; Azure IMDS) or `expireTime` (RFC 3339; IAM
// Credentials). A token without any of them is taken to last one hour, the providers' default.
//
// Failure codes of RequestToken:
//   UNAUTHENTICATED  the endpoint refused the identity: 401 or 403, or a 400 whose OAuth `error`
//                    is invalid_grant, invalid_client, unauthorized_client or access_denied
//                    (a revocation upstream, like AWS STS refusing a role);
//   UNAVAILABLE      after retries: connection failures, 408, 429, 5xx, OAuth errors
//                    temporarily_unavailable, server_error, internal_failure; also 404 (no such
//                    endpoint or identity on this node: a set-up problem, never a revocation);
//   INVALID_ARGUMENT any other 4xx (a request we built wrongly) or an answer without a token;
//   DEADLINE_EXCEEDED when ctx.deadline passes (retries never sleep past it).
// Messages name `what`, the HTTP status and the OAuth error and description (Printable(),
// bounded); never a body, an assertion, a secret or a token.
#ifndef KMSP_KMS_BEARER_TOKEN_ENDPOINT_H_
#define KMSP_KMS_BEARER_TOKEN_ENDPOINT_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "crypto/secret_bytes.h"
#include "kms/bearer/access_token.h"
#include "kms/http_client.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_attempt.h"
#include "kms/retry.h"

namespace kmsplugin {

struct TokenRequest {
  std::string what;  // For messages and attempt reports: "Google OAuth token", "Azure IMDS token".
  std::string method = "POST";  // GET (metadata server, IMDS) or POST.
  std::string url;
  std::vector<HttpHeader> headers;  // Extra headers (Metadata-Flavor, Authorization, …).
  SecretBytes body;                 // A form (FormEncode) or JSON; may hold secrets.
  std::string content_type;         // For a POST: "application/x-www-form-urlencoded" or JSON.
  std::string source;               // AccessToken::source of the result.
  std::string identity;             // AccessToken::identity of the result (public).
};

struct TokenEndpointOptions {
  std::string_view backend;  // "gcp", "azure": the attempt reports' backend.
  RetryPolicy retry;
  absl::Duration default_call_timeout = absl::Seconds(10);  // When ctx has no deadline.
  RemoteAttemptObserver* observer = nullptr;                // Told about each attempt; may be null.
};

// Sends `request` (retrying what may heal) and parses the answer. `clock` dates the expiry.
absl::StatusOr<AccessToken> RequestToken(HttpClient* http, const Clock* clock,
                                         const TokenRequest& request, const CallContext& ctx,
                                         const TokenEndpointOptions& options);

// Parses a 2xx token answer (see the file comment); `now` dates a relative expiry.
absl::StatusOr<AccessToken> ParseTokenAnswer(std::string_view body, absl::Time now);

// An application/x-www-form-urlencoded body (RFC 3986 unreserved characters kept, the rest
// %XX-escaped, space as %20). Values may be secrets, hence the SecretBytes.
SecretBytes FormEncode(const std::vector<std::pair<std::string_view, std::string_view>>& fields);

// Percent-encodes one URL query or form value the same way.
std::string UrlEncode(std::string_view value);

}  // namespace kmsplugin

#endif  // KMSP_KMS_BEARER_TOKEN_ENDPOINT_H_
