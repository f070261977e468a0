// AWS credentials and the provider interface.
//
// The secret access key and the session token live only in SecretBytes; the access key id and
// the provider name are public (aws-c-auth's line) and may be logged.
#ifndef KMSP_KMS_AWS_CREDENTIALS_H_
#define KMSP_KMS_AWS_CREDENTIALS_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "kms/key_encryption_service.h"

namespace kmsplugin::aws {

struct AwsCredentials {
  std::string access_key_id;
  SecretBytes secret_access_key;
  SecretBytes session_token;                       // Empty for long-term keys.
  absl::Time expiration = absl::InfiniteFuture();  // InfiniteFuture(): does not expire.
  std::string source;                              // Provider name, e.g. "environment".

  AwsCredentials Clone() const {
    return AwsCredentials{access_key_id, secret_access_key.Clone(), session_token.Clone(),
                          expiration, source};
  }
};

// Looks up an environment variable; nullopt when unset. Injected so that tests never touch the
// process environment.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// The process environment (getenv).
EnvLookup ProcessEnv();
// env(name), or nullopt when the variable is unset or set to "" (the AWS SDKs treat both alike).
std::optional<std::string> NonEmptyEnv(const EnvLookup& env, std::string_view name);

// A source of credentials. Thread-safe.
//
// Fetch() failure codes: NOT_FOUND when the source is not configured here (the chain then tries
// the next one); UNAVAILABLE when it is configured but its endpoint is unreachable or failing
// (transient), or its token file is missing, unreadable or empty (a local outage);
// UNAUTHENTICATED / PERMISSION_DENIED only when AWS itself refused the identity or role (these
// count as a revocation upstream: never use them for a local problem); INVALID_ARGUMENT when its
// configuration or answer is malformed; DEADLINE_EXCEEDED when ctx.deadline passed.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  virtual std::string_view Name() const = 0;
  virtual absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) = 0;
  // Drops any cached credentials so that the next Fetch() gets fresh ones (after the KMS said
  // ExpiredToken). Providers without a cache ignore it.
  virtual void Invalidate() {}
};

// Parses an ISO 8601 UTC time as AWS writes it ("2024-01-01T12:00:00Z", optional fraction).
absl::StatusOr<absl::Time> ParseAwsTime(std::string_view text);

}  // namespace kmsplugin::aws

#endif  // KMSP_KMS_AWS_CREDENTIALS_H_
