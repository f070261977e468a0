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
#include "base/printable.h"
#include "crypto/secret_bytes.h"
#include "kms/credential_source.h"
#include "kms/key_encryption_service.h"

namespace kmsplugin::aws {

struct AwsCredentials {
  std::string access_key_id;
  SecretBytes secret_access_key;
  SecretBytes session_token;                       // Empty for long-term keys.
  absl::Time expiration = absl::InfiniteFuture();  // InfiniteFuture(): does not expire.
  std::string source;                              // Provider name, e.g. "environment".

  static constexpr std::string_view kKind = "AWS credentials";
  std::string PublicId() const { return "access key id " + Printable(access_key_id); }

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

// A source of AWS credentials: the shared CredentialSource (kms/credential_source.h, which
// gives the failure codes: NOT_FOUND = not configured here, UNAVAILABLE = a local or transient
// outage, UNAUTHENTICATED / PERMISSION_DENIED only when AWS itself refused the identity or role).
// Invalidate() follows an ExpiredToken answer from the KMS.
using CredentialsProvider = CredentialSource<AwsCredentials>;

// Parses an ISO 8601 UTC time as AWS writes it ("2024-01-01T12:00:00Z", optional fraction).
absl::StatusOr<absl::Time> ParseAwsTime(std::string_view text);

}  // namespace kmsplugin::aws

#endif  // KMSP_KMS_AWS_CREDENTIALS_H_
