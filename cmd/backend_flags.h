// The --kms flag and each backend's flags, and the factory that builds the chosen backend.
// main() builds the object graph; there is no registry.
#ifndef KMSP_CMD_BACKEND_FLAGS_H_
#define KMSP_CMD_BACKEND_FLAGS_H_

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "base/clock.h"
#include "kms/aws/aws_kms.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_attempt.h"

namespace kmsplugin {

struct BackendFlags {
  std::string kms = "local";
  // --fips (serve): FIPS mode; besides OpenSSL's FIPS provider (crypto/fips.h), the backends'
  // FIPS endpoints (--kms aws: as --aws-fips).
  bool fips = false;
  // --kms local
  std::string local_keyring = "/var/lib/kms-plugin/keyring.json";
  bool local_keyring_create = false;  // Create a missing keyring (first node / single node).
  std::string local_keyring_id;       // Refuse to start unless the keyring has this keyring_id.
  // Every backend: secret files (keyring, credentials, tokens) may be symlinks.
  bool allow_secret_symlinks = false;
  // --kms aws
  std::string aws_key_id;  // Key ARN, key id, alias/NAME or alias ARN.
  std::string aws_region;
  std::string aws_endpoint;  // Default: from the region (FIPS with --aws-fips).
  std::string aws_ca_file;
  bool aws_fips = false;
  std::string aws_encryption_context;        // "k=v,k2=v2"
  bool aws_insecure_http_for_tests = false;  // Accept an http:// --aws-endpoint / STS endpoint.
  // --kms pkcs11
  std::string pkcs11_module;       // The module's .so (e.g. /usr/lib/softhsm/libsofthsm2.so).
  std::string pkcs11_token_label;  // CK_TOKEN_INFO.label of the token.
  std::string pkcs11_pin_file;     // The user PIN (a trailing newline is trimmed).
  std::string pkcs11_key_label;    // CKA_LABEL of the KEK versions.
  // --kms vault (kms/vault/vault_kms.h); exactly one login: token file, AppRole or Kubernetes.
  std::string vault_addr;
  std::string vault_key;
  std::string vault_transit_mount = "transit";
  std::string vault_namespace;
  std::string vault_ca_file;
  std::string vault_client_cert;
  std::string vault_client_key;
  std::string vault_token_file;
  std::string vault_approle_role_id;
  std::string vault_approle_secret_id_file;
  std::string vault_k8s_role;
  std::string vault_k8s_mount = "kubernetes";
  std::string vault_k8s_token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  bool vault_insecure_http_for_tests = false;  // Accept an http:// --vault-addr.
  // --kms gcp (kms/gcp/gcp_kms.h; flags in cmd/gcp_backend_flags.cc)
  std::string gcp_key;               // projects/P/locations/L/keyRings/R/cryptoKeys/K
  std::string gcp_endpoint;          // Default: https://cloudkms.googleapis.com
  std::string gcp_ca_file;           // Trusted on top of the system roots, for every endpoint.
  std::string gcp_credentials_file;  // Default: $GOOGLE_APPLICATION_CREDENTIALS, then metadata.
  // --kms azure (kms/azure/azure_kms.h; flags in cmd/azure_backend_flags.cc)
  std::string azure_vault_url;  // https://NAME.vault.azure.net or https://NAME.managedhsm.azure.net
  std::string azure_key_name;
  std::string azure_key_version;  // Pins the version; empty: follow the current one.
  std::string azure_ca_file;      // Trusted on top of the system roots, for every endpoint.
  std::string azure_oct_algorithm = "A256KW";  // oct-HSM keys: A256KW or A256GCM.
  std::string azure_imds_endpoint;             // Default: $AZURE_POD_IDENTITY_AUTHORITY_HOST, IMDS.
  std::string azure_managed_identity_client_id;  // Default: $AZURE_CLIENT_ID, system-assigned.
};

// Adds --kms and every backend's flags to `cmd`; `flags` must outlive parsing.
void AddBackendFlags(CLI::App* cmd, BackendFlags* flags);

// --kms gcp (cmd/gcp_backend_flags.cc): its flags, and the backend they name.
void AddGcpFlags(CLI::App* cmd, BackendFlags* flags);
absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateGcp(const BackendFlags& flags,
                                                                 const Clock* clock,
                                                                 RemoteAttemptObserver* observer);

// --kms azure (cmd/azure_backend_flags.cc): its flags, and the backend they name.
void AddAzureFlags(CLI::App* cmd, BackendFlags* flags);
absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateAzure(const BackendFlags& flags,
                                                                  const Clock* clock,
                                                                  RemoteAttemptObserver* observer);

// The AwsKms options of --kms aws (fips under --aws-fips or --fips). INVALID_ARGUMENT for a bad
// --aws-encryption-context.
absl::StatusOr<aws::AwsKmsOptions> AwsKmsOptionsFrom(const BackendFlags& flags);

// Builds the backend named by --kms. `clock` and `observer` (told about every KMS request
// attempt, kms/remote_attempt.h; may be null) must outlive it.
absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateBackend(
    const BackendFlags& flags, const Clock* clock, RemoteAttemptObserver* observer = nullptr);

}  // namespace kmsplugin

#endif  // KMSP_CMD_BACKEND_FLAGS_H_
