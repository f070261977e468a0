// Credential providers that fetch temporary credentials over HTTP: web identity (IRSA, STS
// AssumeRoleWithWebIdentity), container credentials (ECS task role, EKS Pod Identity) and EC2
// instance metadata (IMDSv2). Facts: remote-kms-apis.md §2.3–2.5.
//
// Each is thread-safe, does not cache credentials itself (wrap it in
// RefreshingCredentialsProvider) and borrows an HttpClient that must outlive it. Tokens read from
// files are re-read on every Fetch() (kubelet rotates them). No secret is ever logged or put in an
// error message.
//
// Fetch() codes: NOT_FOUND when the provider is not configured by the environment; UNAVAILABLE
// for unreachable endpoints, 5xx, throttling and IDPCommunicationError, and for a token file that
// is missing, unreadable or empty (a local outage, never a revocation); UNAUTHENTICATED when the
// token or identity is refused; PERMISSION_DENIED for AccessDenied; INVALID_ARGUMENT for a
// malformed answer or configuration; DEADLINE_EXCEEDED.
//
// Plain http: the STS endpoint must be https (it carries the web identity token and returns
// credentials), unless DefaultChainOptions::allow_insecure_http (tests only). The container
// endpoint and IMDS stay plain http as in every AWS SDK: they are link-local or loopback
// addresses on the node itself (169.254.170.2, 169.254.170.23, fd00:ec2::23, 169.254.169.254,
// fd00:ec2::254, 127.0.0.0/8), never a network path; a container FULL_URI to any other host must be
// https. AWS_EC2_METADATA_SERVICE_ENDPOINT is taken as given, as botocore does.
#ifndef KMSP_KMS_AWS_REMOTE_CREDENTIALS_PROVIDER_H_
#define KMSP_KMS_AWS_REMOTE_CREDENTIALS_PROVIDER_H_

#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "kms/aws/credentials.h"
#include "kms/aws/credentials_provider.h"
#include "kms/http_client.h"

namespace kmsplugin::aws {

// IRSA. Configured by AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (+ AWS_ROLE_SESSION_NAME), or by
// the selected profile's role_arn + web_identity_token_file (+ role_session_name) in the config
// file. Calls the regional STS endpoint https://sts.<region>.amazonaws.com/ (sts-fips.… with
// fips in the US regions that have one); AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL override it.
// The call is unsigned (STS's noAuth operation).
class WebIdentityCredentialsProvider final : public CredentialsProvider {
 public:
  WebIdentityCredentialsProvider(EnvLookup env, HttpClient* http, const Clock* clock,
                                 DefaultChainOptions options);
  std::string_view Name() const override { return "web-identity"; }
  absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) override;

  // The STS endpoint this provider would call (for tests and logs).
  std::string Endpoint() const;

 private:
  EnvLookup env_;
  HttpClient* http_;
  const Clock* clock_;
  DefaultChainOptions options_;
};

// Container credentials. Configured by AWS_CONTAINER_CREDENTIALS_FULL_URI (https anywhere, or
// http only to loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23) or
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2 + the value). The Authorization
// header comes from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (wins) or
// AWS_CONTAINER_AUTHORIZATION_TOKEN, sent verbatim; values with CR or LF are refused.
class ContainerCredentialsProvider final : public CredentialsProvider {
 public:
  ContainerCredentialsProvider(EnvLookup env, HttpClient* http)
      : env_(std::move(env)), http_(http) {}
  std::string_view Name() const override { return "container"; }
  absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) override;

 private:
  EnvLookup env_;
  HttpClient* http_;
};

// EC2 instance metadata, IMDSv2 only: PUT /latest/api/token, then GET the role name and the
// role's credentials with the token. Endpoint http://169.254.169.254 (http://[fd00:ec2::254] with
// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6; AWS_EC2_METADATA_SERVICE_ENDPOINT overrides);
// NOT_FOUND when AWS_EC2_METADATA_DISABLED=true (both variables compared case-insensitively, as
// botocore does). The session token is cached until a minute before its TTL ends; one that IMDS
// rejects (401) is replaced once and the request sent again. Credentials that IMDS hands back
// already inside the 15-minute refresh window get a local expiry pushed 20 minutes out (botocore's
// "static stability"), so a degraded IMDS does not stop the plugin.
class ImdsCredentialsProvider final : public CredentialsProvider {
 public:
  ImdsCredentialsProvider(EnvLookup env, HttpClient* http, const Clock* clock)
      : env_(std::move(env)), http_(http), clock_(clock) {}
  std::string_view Name() const override { return "imds"; }
  absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) override;

  static constexpr int kTokenTtlSeconds = 21600;

 private:
  absl::StatusOr<SecretBytes> Token(const std::string& base, const CallContext& ctx);

  EnvLookup env_;
  HttpClient* http_;
  const Clock* clock_;
  absl::Mutex mu_;
  SecretBytes token_ ABSL_GUARDED_BY(mu_);
  absl::Time token_expiry_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace kmsplugin::aws

#endif  // KMSP_KMS_AWS_REMOTE_CREDENTIALS_PROVIDER_H_
