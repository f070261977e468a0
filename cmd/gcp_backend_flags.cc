// --kms gcp: the Google Cloud KMS backend's flags and factory (kms/gcp/gcp_kms.h). Credentials
// come from --gcp-credentials-file, else $GOOGLE_APPLICATION_CREDENTIALS, else the metadata
// server ($GCE_METADATA_HOST overrides its address): kms/gcp/gcp_credentials.h.
#include <memory>
#include <utility>

#include "cmd/backend_flags.h"
#include "kms/gcp/gcp_kms.h"

namespace kmsplugin {

void AddGcpFlags(CLI::App* cmd, BackendFlags* f) {
  cmd->add_option("--gcp-key", f->gcp_key,
                  "--kms gcp: the CryptoKey, projects/P/locations/L/keyRings/R/cryptoKeys/K "
                  "(purpose ENCRYPT_DECRYPT)");
  cmd->add_option("--gcp-endpoint", f->gcp_endpoint,
                  "--kms gcp: Cloud KMS endpoint URL, https:// (default: "
                  "https://cloudkms.googleapis.com)");
  cmd->add_option("--gcp-ca-file", f->gcp_ca_file,
                  "--kms gcp: PEM CA bundle trusted, on top of the system roots, for every "
                  "endpoint the backend talks to (Cloud KMS, token_uri, STS, impersonation)");
  cmd->add_option("--gcp-credentials-file", f->gcp_credentials_file,
                  "--kms gcp: a service_account key or external_account (workload identity "
                  "federation) file (default: $GOOGLE_APPLICATION_CREDENTIALS, then the metadata "
                  "server)");
}

absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateGcp(const BackendFlags& f,
                                                                const Clock* clock,
                                                                RemoteAttemptObserver* observer) {
  gcp::GcpKmsOptions o;
  o.key = f.gcp_key;
  if (!f.gcp_endpoint.empty()) o.endpoint = f.gcp_endpoint;
  o.ca_file = f.gcp_ca_file;
  o.credentials.credentials_file = f.gcp_credentials_file;
  o.observer = observer;
  if (o.key.empty()) return absl::InvalidArgumentError("--kms gcp needs --gcp-key");
  auto kms = gcp::GcpKms::Create(std::move(o), clock);
  if (!kms.ok()) return kms.status();
  return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
}

}  // namespace kmsplugin
