// Wire-level pieces of the Azure Key Vault / Managed HSM backend (remote-kms-apis.md §6), kept
// apart from AzureKms so that they can be tested on their own: base64url, the vault URL and key
// identifier (kid) forms, the key-operation request body, and the 401 challenge
// (WWW-Authenticate: Bearer authorization="…", resource|scope="…") with the check the SDKs make
// before they ask for a token for the scope it names.
#ifndef KMSP_KMS_AZURE_AZURE_WIRE_H_
#define KMSP_KMS_AZURE_AZURE_WIRE_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin::azure {

// Base64url without padding (Key Vault's byte fields); Decode accepts padding too.
std::string Base64UrlEncode(std::string_view bytes);
SecretBytes Base64UrlEncodeSecret(const SecretBytes& bytes);
absl::StatusOr<SecretBytes> Base64UrlDecodeSecret(std::string_view text);

// A vault (or Managed HSM) URL reduced to its canonical form: "https://" + lower-case host
// [+ ":" + port unless 443], no path, no trailing slash.
struct VaultUrl {
  std::string base;  // "https://myvault.vault.azure.net" or "https://127.0.0.1:8443".
  std::string host;  // Lower case, without the port.
};
// INVALID_ARGUMENT unless https://HOST[:PORT][/] (no path, query, user or fragment).
absl::StatusOr<VaultUrl> ParseVaultUrl(std::string_view url);

// A versioned key identifier https://HOST[:PORT]/keys/<name>/<version>.
struct KeyId {
  VaultUrl vault;
  std::string name;
  std::string version;
};
// nullopt unless `kid` has exactly that form; name [0-9A-Za-z-]{1,127}, version [0-9A-Za-z]{1,64}.
std::optional<KeyId> ParseKeyId(std::string_view kid);
// Key Vault key names: 1-127 characters of [0-9A-Za-z-]; versions: 1-64 of [0-9A-Za-z].
bool ValidKeyName(std::string_view name);
bool ValidKeyVersion(std::string_view version);

// The Entra scope asked for before any challenge: Managed HSM hosts (*.managedhsm.*) use
// https://managedhsm.azure.net/.default, every other host https://vault.azure.net/.default
// (sovereign clouds answer the 401 challenge with their own resource, which is then followed).
std::string DefaultScopeFor(std::string_view vault_host);

// A scope's resource: "https://vault.azure.net/.default" -> "https://vault.azure.net".
std::string ResourceOfScope(std::string_view scope);

// The scope a 401's WWW-Authenticate header asks for: `scope`, else `resource` + "/.default";
// nullopt when the header is not a Bearer challenge naming either.
std::optional<std::string> ChallengeScope(std::string_view www_authenticate);

// Whether the plugin may ask for a token for `scope` to send to `vault_host`. As the SDK's
// verify_challenge_resource: the vault host must end with "." + the scope's host. On top of the
// SDK, the scope's host must be a Key Vault or Managed HSM audience (vault.azure.net,
// managedhsm.azure.net and their sovereign-cloud forms), so that a vault URL can never obtain a
// token for another service. Loopback vault hosts (127.0.0.1, ::1, localhost: test servers) skip
// the suffix check only.
bool ChallengeScopeAllowed(std::string_view scope, std::string_view vault_host);

// {"alg":"<alg>","value":"<b64url>"[,"iv":…,"tag":…][,"aad":…]}: a key operation's body, built
// in one SecretBytes (value may be a data key). Empty optional fields are left out.
SecretBytes KeyOperationBody(std::string_view alg, const SecretBytes& value,
                             std::string_view iv_b64 = {}, std::string_view tag_b64 = {},
                             std::string_view aad_b64 = {});

}  // namespace kmsplugin::azure

#endif  // KMSP_KMS_AZURE_AZURE_WIRE_H_
