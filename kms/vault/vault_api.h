// VaultApi: one HashiCorp Vault / OpenBao HTTP API call (/v1/<path>, JSON bodies), with the
// headers Vault clients send (X-Vault-Token, X-Vault-Request: true, X-Vault-Namespace), retried on
// transient failures with full-jitter backoff inside the caller's deadline (kms/retry.h), and
// capped in concurrency. Facts: remote-kms-apis.md §4.1, §4.4.
//
// Error classification (by the HTTP status; Vault's {"errors":[…]} text goes into the message):
//   retried, then UNAVAILABLE: 412 (consistency not yet met), 429 (rate limit), 500, 502, 503
//     (sealed, maintenance, standby without an active node), 504, a 307/308 redirect from a
//     standby node (never followed: point --vault-addr at the active node or its load balancer),
//     and connection failures. Non-idempotent calls (rotate) are resent only after an answer that
//     proves Vault did not act (307, 412, 429, 503);
//   UNAVAILABLE (not retried): 501 (Vault not initialised);
//   INVALID_ARGUMENT: 400 (malformed or unauthentic ciphertext, wrong associated data), except
//   FAILED_PRECONDITION: 400 "ciphertext or signature version is disallowed by policy (too old)"
//     (the message names min_decryption_version);
//   UNAUTHENTICATED: 401; PERMISSION_DENIED: 403 (denied, or a revoked or expired token);
//   NOT_FOUND: 404 (missing key or mount); INTERNAL: 405; UNKNOWN: anything else.
//   DEADLINE_EXCEEDED when the caller's deadline passes (retries never sleep past it).
// Messages carry the operation, the HTTP status and Vault's errors (Printable(), bounded); never
// a request or response body, and never a token.
//
// Thread-safe.
#ifndef KMSP_KMS_VAULT_VAULT_API_H_
#define KMSP_KMS_VAULT_VAULT_API_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"
#include "kms/http_client.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_attempt.h"
#include "kms/retry.h"

namespace kmsplugin::vault {

inline constexpr size_t kMaxVaultErrorLength = 256;

// A classified non-2xx Vault answer.
struct VaultError {
  int http_status = 0;
  std::string message;     // Vault's errors joined with "; ", Printable(), bounded.
  bool retryable = false;  // Transient: retry with backoff.
  bool not_acted = false;  // The answer proves Vault did not carry the request out.
  absl::Status status;     // See the file comment.
};

VaultError ClassifyVaultError(std::string_view operation, int http_status, std::string_view body);

// The version N of a transit ciphertext "vault:v<N>:<base64>" (N >= 1, at most 10 digits, a
// non-empty base64 part); nullopt for anything else.
std::optional<int64_t> CiphertextVersion(std::string_view ciphertext);

// True for a Vault path segment list ("transit", "kv/team-a", "ns1/ns2"): segments of
// [A-Za-z0-9_.-], no empty, "." or ".." segment.
bool ValidVaultPath(std::string_view path);

struct VaultApiOptions {
  std::string addr;        // https://host[:port] (a trailing '/' is dropped).
  std::string namespace_;  // X-Vault-Namespace; empty = none (the root namespace).
  // Accept an http:// address. Tests only (--vault-insecure-http-for-tests): tokens, secret ids,
  // and plaintext data keys would cross the network in clear.
  bool allow_insecure_http = false;
  RetryPolicy retry;
  size_t max_concurrent_calls = 16;
  absl::Duration default_call_timeout = absl::Seconds(10);  // When ctx has no deadline.
  // Told about every HTTP attempt, logins included (kms/remote_attempt.h); may be null; must
  // outlive the VaultApi.
  RemoteAttemptObserver* observer = nullptr;
};

class VaultApi {
 public:
  // INVALID_ARGUMENT for an address that is not https://host[:port] (or http://… with
  // allow_insecure_http) or a malformed namespace. `http` must outlive the VaultApi.
  static absl::StatusOr<std::unique_ptr<VaultApi>> Create(VaultApiOptions options,
                                                          HttpClient* http);

  // `method` GET or POST of /v1/<path> with the JSON `body` (POST) and `token` (nullptr: none, for
  // logins). Returns the body of a 200 (empty for 204); it may hold plaintext or a token, hence a
  // SecretBytes. `idempotent` false: resent only when Vault provably did not act. Each attempt is
  // reported with `subject` and the answer's "request_id" (when it is a JSON object with one).
  absl::StatusOr<SecretBytes> Call(std::string_view operation, std::string_view method,
                                   std::string_view path, const SecretBytes& body,
                                   const SecretBytes* token, bool idempotent,
                                   const CallContext& ctx, const AttemptSubject& subject = {});

  const std::string& addr() const { return options_.addr; }
  const std::string& namespace_() const { return options_.namespace_; }

 private:
  VaultApi(VaultApiOptions options, HttpClient* http);

  const VaultApiOptions options_;
  HttpClient* const http_;
  CallSlots slots_;
};

}  // namespace kmsplugin::vault

#endif  // KMSP_KMS_VAULT_VAULT_API_H_
