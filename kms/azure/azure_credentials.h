// Microsoft Entra access tokens for the Azure Key Vault backend, in the order azure-identity's
// DefaultAzureCredential tries them (remote-kms-apis.md §6.5), on the shared token machinery
// (kms/bearer: ChainTokenSource, RefreshingTokenSource, RequestToken):
//
//   1. client secret: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET ->
//      POST <authority>/<tenant>/oauth2/v2.0/token (grant client_credentials, client_secret);
//   2. workload identity: AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID -> the same
//      endpoint with the file's content as client_assertion (jwt-bearer); the file is re-read on
//      every refresh (the kubelet rotates it);
//   3. managed identity through IMDS: GET <imds>/metadata/identity/oauth2/token?api-version=
//      2018-02-01&resource=<resource>[&client_id=<id>] with "Metadata: true".
//
// <authority> is AZURE_AUTHORITY_HOST (https only; default https://login.microsoftonline.com).
// <imds> is --azure-imds-endpoint, else AZURE_POD_IDENTITY_AUTHORITY_HOST (the variable
// azure-identity reads for the same purpose), else http://169.254.169.254. The IMDS client id is
// --azure-managed-identity-client-id, else AZURE_CLIENT_ID, else none (system-assigned).
//
// Every token is asked for the current AzureScope: the vault's default scope until a 401
// challenge names another (AzureKms updates it and invalidates the cache). IMDS takes the v1
// `resource` form (the scope without "/.default"). Secrets and tokens live only in SecretBytes.
#ifndef KMSP_KMS_AZURE_AZURE_CREDENTIALS_H_
#define KMSP_KMS_AZURE_AZURE_CREDENTIALS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "crypto/secret_bytes.h"
#include "kms/bearer/access_token.h"
#include "kms/bearer/token_endpoint.h"
#include "kms/http_client.h"

namespace kmsplugin::azure {

inline constexpr std::string_view kDefaultAuthorityHost = "https://login.microsoftonline.com";
inline constexpr std::string_view kDefaultImdsEndpoint = "http://169.254.169.254";

// The Entra scope tokens are requested for. Thread-safe.
class AzureScope {
 public:
  explicit AzureScope(std::string scope) : scope_(std::move(scope)) {}
  std::string Get() const {
    absl::MutexLock lock(&mu_);
    return scope_;
  }
  // Returns true when the scope changed.
  bool Set(const std::string& scope) {
    absl::MutexLock lock(&mu_);
    if (scope == scope_) return false;
    scope_ = scope;
    return true;
  }

 private:
  mutable absl::Mutex mu_;
  std::string scope_ ABSL_GUARDED_BY(mu_);
};

struct AzureCredentialOptions {
  std::string tenant_id;                                            // AZURE_TENANT_ID
  std::string client_id;                                            // AZURE_CLIENT_ID
  SecretBytes client_secret;                                        // AZURE_CLIENT_SECRET
  std::string federated_token_file;                                 // AZURE_FEDERATED_TOKEN_FILE
  std::string authority_host = std::string(kDefaultAuthorityHost);  // AZURE_AUTHORITY_HOST
  std::string imds_endpoint = std::string(kDefaultImdsEndpoint);
  std::string managed_identity_client_id;  // Empty: AZURE_CLIENT_ID, else system-assigned.

  // The options from the environment (`getenv` for tests); `imds_endpoint` and
  // `managed_identity_client_id` when non-empty are the flags, which win over the variables.
  static AzureCredentialOptions FromEnvironment(
      const std::string& imds_endpoint_flag, const std::string& managed_identity_client_id_flag,
      const std::function<const char*(const char*)>& getenv);
};

// INVALID_ARGUMENT for an authority that is not https://HOST[:PORT], an IMDS endpoint that is not
// http(s)://HOST[:PORT], or a tenant that is not [0-9A-Za-z.-]+.
absl::Status ValidateCredentialOptions(const AzureCredentialOptions& options);

// The chain (client secret, workload identity, IMDS) behind a refresh-before-expiry cache.
// `scope`, `http` and `clock` must outlive it.
std::unique_ptr<TokenSource> MakeAzureTokenSource(const AzureCredentialOptions& options,
                                                  const AzureScope* scope, HttpClient* http,
                                                  const Clock* clock,
                                                  TokenEndpointOptions endpoint_options);

// The three sources on their own (tests); each answers NOT_FOUND when it is not configured.
std::unique_ptr<TokenSource> MakeClientSecretSource(const AzureCredentialOptions& options,
                                                    const AzureScope* scope, HttpClient* http,
                                                    const Clock* clock,
                                                    TokenEndpointOptions endpoint_options);
std::unique_ptr<TokenSource> MakeWorkloadIdentitySource(const AzureCredentialOptions& options,
                                                        const AzureScope* scope, HttpClient* http,
                                                        const Clock* clock,
                                                        TokenEndpointOptions endpoint_options);
std::unique_ptr<TokenSource> MakeImdsSource(const AzureCredentialOptions& options,
                                            const AzureScope* scope, HttpClient* http,
                                            const Clock* clock,
                                            TokenEndpointOptions endpoint_options);

}  // namespace kmsplugin::azure

#endif  // KMSP_KMS_AZURE_AZURE_CREDENTIALS_H_
