// --kms azure: the Azure Key Vault / Managed HSM backend's flags (kms/azure/azure_kms.h) and the
// backend they name. Credentials come from the environment, in azure-identity's order
// (kms/azure/azure_credentials.h); the flags here only override the IMDS address and identity.
#include <cstdlib>

#include "cmd/backend_flags.h"
#include "kms/azure/azure_kms.h"

namespace kmsplugin {

void AddAzureFlags(CLI::App* cmd, BackendFlags* f) {
  cmd->add_option("--azure-vault-url", f->azure_vault_url,
                  "--kms azure: the vault, https://NAME.vault.azure.net (or a Managed HSM, "
                  "https://NAME.managedhsm.azure.net)");
  cmd->add_option("--azure-key-name", f->azure_key_name, "--kms azure: the key's name");
  cmd->add_option("--azure-key-version", f->azure_key_version,
                  "--kms azure: pin this key version (default: follow the current version, so a "
                  "rotation in Key Vault changes the key_id)");
  cmd->add_option("--azure-ca-file", f->azure_ca_file,
                  "--kms azure: PEM CA bundle trusted on top of the system roots, for the vault, "
                  "the Entra authority and IMDS");
  cmd->add_option("--azure-oct-algorithm", f->azure_oct_algorithm,
                  "--kms azure: for an oct-HSM key (Managed HSM): A256KW (wrapkey) or A256GCM "
                  "(encrypt, with associated data binding it to the plugin)")
      ->capture_default_str()
      ->check(CLI::IsMember({"A256KW", "A256GCM"}));
  cmd->add_option("--azure-imds-endpoint", f->azure_imds_endpoint,
                  "--kms azure: managed identity endpoint (default: "
                  "$AZURE_POD_IDENTITY_AUTHORITY_HOST, else http://169.254.169.254)");
  cmd->add_option("--azure-managed-identity-client-id", f->azure_managed_identity_client_id,
                  "--kms azure: client id of a user-assigned managed identity (default: "
                  "$AZURE_CLIENT_ID, else the system-assigned identity)");
}

absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateAzure(const BackendFlags& f,
                                                                  const Clock* clock,
                                                                  RemoteAttemptObserver* observer) {
  azure::AzureKmsOptions o;
  o.vault_url = f.azure_vault_url;
  o.key_name = f.azure_key_name;
  o.key_version = f.azure_key_version;
  o.ca_file = f.azure_ca_file;
  o.oct_algorithm = f.azure_oct_algorithm;
  o.observer = observer;
  o.credentials = azure::AzureCredentialOptions::FromEnvironment(
      f.azure_imds_endpoint, f.azure_managed_identity_client_id,
      [](const char* name) { return std::getenv(name); });
  auto kms = azure::AzureKms::Create(std::move(o), clock);
  if (!kms.ok()) return kms.status();
  return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
}

}  // namespace kmsplugin
