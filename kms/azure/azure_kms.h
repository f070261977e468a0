// AzureKms: the Azure Key Vault / Managed HSM backend of KeyEncryptionService. Facts:
// remote-kms-apis.md §6. HTTP, bearer token, retries and attempt reports: kms/bearer/rest_api.h;
// credentials: azure_credentials.h; URL, kid, challenge and body forms: azure_wire.h.
//
//   Wrap      POST <vault>/keys/<name>/<version>/wrapkey   (encrypt for A256GCM)
//   Unwrap    POST <vault>/keys/<name>/<version>/unwrapkey (decrypt for A256GCM), always on the
//             exact version that wrapped, taken from the kek_id
//   Probe     GET  <vault>/keys/<name>[/<pinned version>]
//   RotateKek POST <vault>/keys/<name>/rotate (refused when the version is pinned)
//
// The algorithm follows the key type of the key GET: RSA and RSA-HSM keys wrap with RSA-OAEP-256;
// oct-HSM keys (Managed HSM) with A256KW, or A256GCM through encrypt/decrypt with the associated
// data below when options.oct_algorithm is "A256GCM".
//
// kek_id scheme (becomes the KMS v2 key_id; copy of this paragraph in the README):
//
//     azure:https://<vault host>[:<port>]/keys/<name>/<version>
//
//   e.g. azure:https://myvault.vault.azure.net/keys/k8s-kek/0123456789abcdef0123456789abcdef
//   - the versioned key URL (kid) Key Vault returns with every wrap, its host lower-cased and
//     the default port left out, so every node that shares the key forms the same kek_id;
//   - with --azure-key-version the version is pinned; without it the current version is
//     followed: the plugin reads the key without a version (at the first Wrap and on every
//     Probe) and wraps with the version that answer names, so a rotation in Key Vault (or
//     `kms-plugin rotate --kek`) gives a new kek_id once the plugin's poll sees it;
//   - public (a URL), at most 1024 bytes (checked).
// Unwrap accepts only kek_ids of the configured vault and key (FAILED_PRECONDITION, no remote
// call, otherwise: the plugin never lends its token to a key a client names) and always sends the
// request to the configured vault URL.
//
// The blob is "<alg>:<base64url value>" (RSA-OAEP-256, A256KW) or
// "A256GCM:<value>:<iv>:<tag>", all base64url without padding: public, at most 8 KiB.
// Associated data (A256GCM only): "kms-plugin/kubernetes-kms-v2:azure:<vault>/keys/<name>"
// (name lower-cased), the same on every node.
//
// Token scope: https://vault.azure.net/.default (https://managedhsm.azure.net/.default for
// *.managedhsm.* hosts) until a 401 challenge names another that ChallengeScopeAllowed() accepts;
// then the token is replaced and the call sent once more (BearerRestApi's on_unauthorized).
//
// Errors: 401 twice = UNAUTHENTICATED; 403 = PERMISSION_DENIED (a disabled key version:
// FAILED_PRECONDITION); 404 (KeyNotFound: deleted key) = NOT_FOUND: all revocations. 408, 429
// (Retry-After honoured), 5xx and connection failures = UNAVAILABLE after retries: an outage.
// A malformed wrapped key (400 BadParameter on unwrap) = INVALID_ARGUMENT. Thread-safe.
#ifndef KMSP_KMS_AZURE_AZURE_KMS_H_
#define KMSP_KMS_AZURE_AZURE_KMS_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "kms/azure/azure_credentials.h"
#include "kms/azure/azure_wire.h"
#include "kms/bearer/rest_api.h"
#include "kms/http_client.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_backend_options.h"
#include "kms/retry.h"

namespace kmsplugin::azure {

inline constexpr std::string_view kKekIdPrefix = "azure:";
inline constexpr std::string_view kAssociatedDataPrefix = "kms-plugin/kubernetes-kms-v2:azure:";

// The common fields (retry, max_concurrent_calls, timeouts, http, observer) are in
// RemoteBackendOptions; observer reports: key = "<vault>/keys/<name>".
struct AzureKmsOptions : RemoteBackendOptions {
  std::string vault_url;    // --azure-vault-url: https://NAME.vault.azure.net (any https URL).
  std::string key_name;     // --azure-key-name
  std::string key_version;  // --azure-key-version: pins the version; empty: follow the current.
  std::string ca_file;      // --azure-ca-file: trusted on top of the system roots, every endpoint.
  std::string oct_algorithm = "A256KW";  // For oct-HSM keys: A256KW or A256GCM.
  std::string api_version = "7.4";
  AzureCredentialOptions credentials;
  std::unique_ptr<TokenSource> tokens;  // Overrides the credential chain (tests); owned.
};

class AzureKms final : public KeyEncryptionService {
 public:
  // INVALID_ARGUMENT for a malformed vault URL, key name or version, algorithm, credential
  // option or an unreadable CA file. Makes no remote call. `clock` must outlive the backend.
  static absl::StatusOr<std::unique_ptr<AzureKms>> Create(AzureKmsOptions options,
                                                          const Clock* clock);
  ~AzureKms() override;

  std::string_view Name() const override { return "azure"; }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override;
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override;
  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override;
  absl::Status RotateKek(const CallContext& ctx) override;

  // "azure:" + the canonical versioned key URL of `kid`; nullopt when kid is not one.
  static std::optional<std::string> KekIdOfKid(std::string_view kid);
  // What a non-2xx Key Vault answer means (see the file comment).
  static RestError Classify(std::string_view operation, const HttpResponse& response);

  // The scope tokens are currently asked for (tests).
  std::string TokenScope() const { return scope_.Get(); }

 private:
  struct CurrentKey {
    std::string version;
    std::string kek_id;
    std::string alg;  // RSA-OAEP-256, A256KW or A256GCM.
    std::string kty;
  };
  AzureKms(AzureKmsOptions options, VaultUrl vault);
  // The key as a GET (or a rotate) answered it: version, algorithm; FAILED_PRECONDITION for a
  // disabled, expired or unusable key.
  absl::StatusOr<CurrentKey> KeyOfBundle(const SecretBytes& answer, std::string_view what) const;
  absl::StatusOr<CurrentKey> ReadKey(const CallContext& ctx);
  absl::StatusOr<CurrentKey> Current(const CallContext& ctx);
  void OnUnauthorized(const HttpResponse& response);
  std::string Url(std::string_view path) const;

  const AzureKmsOptions options_;
  const VaultUrl vault_;
  const std::string key_path_;  // "<vault>/keys/<name>": attempt reports.
  const std::string aad_b64_;   // A256GCM associated data.
  AzureScope scope_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<TokenSource> tokens_;
  std::unique_ptr<BearerRestApi> api_;
  absl::Mutex mu_;
  std::optional<CurrentKey> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kmsplugin::azure

#endif  // KMSP_KMS_AZURE_AZURE_KMS_H_
