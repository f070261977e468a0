// Google credentials for the Cloud KMS backend: access tokens from the sources Google's client
// libraries use, in their order (Application Default Credentials, remote-kms-apis.md §5.7):
//
//   1. a credentials file: --gcp-credentials-file, else $GOOGLE_APPLICATION_CREDENTIALS, holding
//      - "type": "service_account": a JWT {iss: client_email, scope, aud: token_uri, iat, exp =
//        iat + 1 h} signed RS256 with private_key (kid = private_key_id) is exchanged at token_uri
//        (OAuth 2.0 JWT bearer grant);
//      - "type": "external_account" (workload identity federation, e.g. from a Kubernetes
//        service-account token): the subject token is read from credential_source.file (re-read
//        on every refresh; format text, or json with subject_token_field_name) and exchanged at
//        token_url (STS, RFC 8693) for a federated token; when service_account_impersonation_url
//        is set, that token buys the service account's token (IAM Credentials
//        generateAccessToken, lifetime service_account_impersonation.token_lifetime_seconds);
//   2. the GCE / GKE metadata server: GET http://<host>/computeMetadata/v1/instance/
//      service-accounts/default/token with Metadata-Flavor: Google; <host> is $GCE_METADATA_HOST
//      (or the older $GCE_METADATA_ROOT), else metadata.google.internal.
// gcloud's own user credentials (authorized_user) are not used: a plugin runs as a workload.
//
// Every exchange goes through RequestToken (kms/bearer/token_endpoint.h) and the shared chain
// and refresh-before-expiry cache (ChainTokenSource, RefreshingTokenSource). The private key,
// the subject token, the assertion and every token stay in SecretBytes and are never logged.
// The credentials file is read at every refresh too (a rotated key file is picked up).
#ifndef KMSP_KMS_GCP_GCP_CREDENTIALS_H_
#define KMSP_KMS_GCP_GCP_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "kms/bearer/access_token.h"
#include "kms/bearer/token_endpoint.h"
#include "kms/http_client.h"

namespace kmsplugin::gcp {

inline constexpr char kCloudPlatformScope[] = "https://www.googleapis.com/auth/cloud-platform";
inline constexpr char kDefaultMetadataHost[] = "metadata.google.internal";

struct GcpCredentialsOptions {
  // The credentials file; empty: none (the metadata server). FromEnvironment() fills it from
  // $GOOGLE_APPLICATION_CREDENTIALS when empty.
  std::string credentials_file;
  // host[:port] of the metadata server; FromEnvironment() fills it.
  std::string metadata_host = kDefaultMetadataHost;
  std::string scope = kCloudPlatformScope;
  TokenEndpointOptions endpoint{"gcp"};  // Retries, timeouts and the attempt observer.

  // Fills credentials_file (when empty) and metadata_host from the environment (see above).
  void FromEnvironment();
};

// Checks, without any remote call, that the credentials file (if any) can be read and is a
// service_account or external_account file with the fields the flow needs; INVALID_ARGUMENT
// naming the file and the field otherwise (never echoing the key).
absl::Status ValidateCredentialsFile(const std::string& path);

// The credentials-file source alone (NOT_FOUND when `options.credentials_file` is empty).
std::unique_ptr<TokenSource> NewCredentialsFileSource(const GcpCredentialsOptions& options,
                                                      HttpClient* http, const Clock* clock);
// The metadata-server source alone.
std::unique_ptr<TokenSource> NewMetadataServerSource(const GcpCredentialsOptions& options,
                                                     HttpClient* http, const Clock* clock);

// RefreshingTokenSource(ChainTokenSource{credentials file, metadata server}). `http` and `clock`
// must outlive it. INVALID_ARGUMENT from ValidateCredentialsFile.
absl::StatusOr<std::unique_ptr<TokenSource>> NewGcpTokenSource(const GcpCredentialsOptions& options,
                                                               HttpClient* http,
                                                               const Clock* clock);

}  // namespace kmsplugin::gcp

#endif  // KMSP_KMS_GCP_GCP_CREDENTIALS_H_
