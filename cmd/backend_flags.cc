#include "cmd/backend_flags.h"

#include "fmt/format.h"
#include "kms/aws/aws_kms.h"
#include "kms/local/local_kms.h"
#include "kms/pkcs11/pkcs11_kms.h"
#include "kms/secret_file.h"
#include "kms/vault/vault_kms.h"

namespace kmsplugin {

namespace {

void AddVaultFlags(CLI::App* cmd, BackendFlags* f) {
  cmd->add_option("--vault-addr", f->vault_addr,
                  "--kms vault: Vault/OpenBao address, https://HOST:PORT");
  cmd->add_option("--vault-key", f->vault_key, "--kms vault: the transit key name");
  cmd->add_option("--vault-transit-mount", f->vault_transit_mount,
                  "--kms vault: transit mount path")
      ->capture_default_str();
  cmd->add_option("--vault-namespace", f->vault_namespace,
                  "--kms vault: namespace (X-Vault-Namespace)");
  cmd->add_option("--vault-ca-file", f->vault_ca_file, "--kms vault: PEM CA bundle for the server");
  cmd->add_option("--vault-client-cert", f->vault_client_cert,
                  "--kms vault: PEM client certificate (mTLS)");
  cmd->add_option("--vault-client-key", f->vault_client_key, "--kms vault: PEM client key (mTLS)");
  cmd->add_option("--vault-token-file", f->vault_token_file,
                  "--kms vault: login 1: file holding a token (renewed; re-read on a 403)");
  cmd->add_option("--vault-approle-role-id", f->vault_approle_role_id,
                  "--kms vault: login 2: AppRole role id");
  cmd->add_option("--vault-approle-secret-id-file", f->vault_approle_secret_id_file,
                  "--kms vault: login 2: file holding the AppRole secret id");
  cmd->add_option("--vault-k8s-role", f->vault_k8s_role,
                  "--kms vault: login 3: Kubernetes/JWT auth role");
  cmd->add_option("--vault-k8s-mount", f->vault_k8s_mount,
                  "--kms vault: login 3: auth mount (kubernetes or jwt)")
      ->capture_default_str();
  cmd->add_option("--vault-k8s-token-file", f->vault_k8s_token_file,
                  "--kms vault: login 3: service-account token file, re-read at each login")
      ->capture_default_str();
  cmd->add_flag(
      "--vault-insecure-http-for-tests", f->vault_insecure_http_for_tests,
      "--kms vault: TESTS ONLY: accept a plain http:// --vault-addr (tokens and data keys "
      "then cross the network in clear)");
}

absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateVault(const BackendFlags& f,
                                                                  const Clock* clock,
                                                                  RemoteAttemptObserver* observer) {
  vault::VaultKmsOptions o;
  o.observer = observer;
  o.addr = f.vault_addr;
  o.key = f.vault_key;
  o.transit_mount = f.vault_transit_mount;
  o.namespace_ = f.vault_namespace;
  o.ca_file = f.vault_ca_file;
  o.client_cert_file = f.vault_client_cert;
  o.client_key_file = f.vault_client_key;
  o.allow_insecure_http = f.vault_insecure_http_for_tests;
  const int logins = int{!f.vault_token_file.empty()} + int{!f.vault_approle_role_id.empty()} +
                     int{!f.vault_k8s_role.empty()};
  if (logins != 1) {
    return absl::InvalidArgumentError(
        "--kms vault needs exactly one login: --vault-token-file, --vault-approle-role-id (with "
        "--vault-approle-secret-id-file) or --vault-k8s-role");
  }
  o.auth.token_file = f.vault_token_file;
  o.auth.approle_role_id = f.vault_approle_role_id;
  o.auth.approle_secret_id_file = f.vault_approle_secret_id_file;
  o.auth.k8s_role = f.vault_k8s_role;
  o.auth.k8s_mount = f.vault_k8s_mount;
  o.auth.k8s_token_file = f.vault_k8s_token_file;
  o.auth.method = !f.vault_token_file.empty()        ? vault::LoginMethod::kToken
                  : !f.vault_approle_role_id.empty() ? vault::LoginMethod::kAppRole
                                                     : vault::LoginMethod::kKubernetes;
  auto kms = vault::VaultKms::Create(std::move(o), clock);
  if (!kms.ok()) return kms.status();
  return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
}

}  // namespace

void AddBackendFlags(CLI::App* cmd, BackendFlags* flags) {
  cmd->add_option("--kms", flags->kms,
                  "KMS backend holding the KEK: local, aws, pkcs11, vault, gcp or azure")
      ->capture_default_str()
      ->check(CLI::IsMember({"local", "aws", "pkcs11", "vault", "gcp", "azure"}));
  cmd->add_option(
         "--local-keyring", flags->local_keyring,
         "--kms local: keyring file (development and single-node only; every node of a cluster "
         "must use the same keyring)")
      ->capture_default_str();
  cmd->add_flag("--local-keyring-create", flags->local_keyring_create,
                "--kms local: create the keyring (mode 0600, new random keyring_id) when it is "
                "absent; without it a missing keyring is an error");
  cmd->add_option("--local-keyring-id", flags->local_keyring_id,
                  "--kms local: refuse to start unless the keyring's keyring_id is exactly this "
                  "(set it on every node; not with --local-keyring-create)");
  cmd->add_flag("--allow-secret-symlinks", flags->allow_secret_symlinks,
                "Read secret files (the local keyring, AWS credential and token files) through a "
                "symlink, as Kubernetes Secret, ConfigMap and projected volumes present them; "
                "without it a symlinked secret file is refused");
  cmd->add_option("--aws-key-id", flags->aws_key_id,
                  "--kms aws: the KMS key: key ARN, key id, alias/NAME or alias ARN");
  cmd->add_option("--aws-region", flags->aws_region, "--kms aws: AWS region, e.g. us-east-1");
  cmd->add_option("--aws-endpoint", flags->aws_endpoint,
                  "--kms aws: KMS endpoint URL (default: https://kms[-fips].REGION.amazonaws.com)");
  cmd->add_option("--aws-ca-file", flags->aws_ca_file,
                  "--kms aws: PEM CA bundle to verify the endpoint with (default: the system's)");
  cmd->add_flag("--aws-fips", flags->aws_fips, "--kms aws: use the FIPS endpoints");
  cmd->add_flag("--fips", flags->fips,
                "FIPS mode: load OpenSSL's FIPS provider and use it for every primitive (refuse "
                "to start without one); with --kms aws also the FIPS endpoints");
  cmd->add_option("--aws-encryption-context", flags->aws_encryption_context,
                  "--kms aws: extra encryption context entries k=v,k2=v2 (the entry "
                  "kms-plugin=kubernetes-kms-v2 is always added); changing them later makes "
                  "earlier wrapped keys undecryptable");
  cmd->add_flag("--aws-insecure-http-for-tests", flags->aws_insecure_http_for_tests,
                "--kms aws: TESTS ONLY: accept a plain http:// KMS or STS endpoint (wrapped keys, "
                "data keys and session tokens then cross the network in clear)");
  cmd->add_option("--pkcs11-module", flags->pkcs11_module,
                  "--kms pkcs11: the PKCS#11 module (.so) of the HSM or token");
  cmd->add_option("--pkcs11-token-label", flags->pkcs11_token_label,
                  "--kms pkcs11: label of the token holding the KEK");
  cmd->add_option("--pkcs11-pin-file", flags->pkcs11_pin_file,
                  "--kms pkcs11: file holding the token's user PIN (trailing newline ignored)");
  cmd->add_option("--pkcs11-key-label", flags->pkcs11_key_label,
                  "--kms pkcs11: CKA_LABEL of the AES-256 KEK objects (version = CKA_ID); created "
                  "when absent");
  AddVaultFlags(cmd, flags);
  AddGcpFlags(cmd, flags);
  AddAzureFlags(cmd, flags);
}

absl::StatusOr<aws::AwsKmsOptions> AwsKmsOptionsFrom(const BackendFlags& flags) {
  aws::AwsKmsOptions options;
  options.key_id = flags.aws_key_id;
  options.region = flags.aws_region;
  options.endpoint = flags.aws_endpoint;
  options.ca_file = flags.aws_ca_file;
  options.fips = flags.aws_fips || flags.fips;
  options.allow_insecure_http = flags.aws_insecure_http_for_tests;
  auto context = aws::ParseEncryptionContext(flags.aws_encryption_context);
  if (!context.ok()) return context.status();
  options.encryption_context = std::move(*context);
  return options;
}

absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateBackend(
    const BackendFlags& flags, const Clock* clock, RemoteAttemptObserver* observer) {
  SetSecretFileSymlinksAllowed(flags.allow_secret_symlinks);
  if (flags.kms == "local") {
    LocalKmsOptions options;
    options.keyring_path = flags.local_keyring;
    options.observer = observer;
    options.create_if_missing = flags.local_keyring_create;
    options.expected_keyring_id = flags.local_keyring_id;
    auto kms = LocalKms::Create(options, clock);
    if (!kms.ok()) return kms.status();
    return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
  }
  if (flags.kms == "aws") {
    auto options = AwsKmsOptionsFrom(flags);
    if (!options.ok()) return options.status();
    options->observer = observer;
    auto kms = aws::AwsKms::Create(*std::move(options), clock);
    if (!kms.ok()) return kms.status();
    return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
  }
  if (flags.kms == "pkcs11") {
    pkcs11::Pkcs11KmsOptions options;
    options.module_path = flags.pkcs11_module;
    options.token_label = flags.pkcs11_token_label;
    options.pin_file = flags.pkcs11_pin_file;
    options.key_label = flags.pkcs11_key_label;
    options.observer = observer;
    auto kms = pkcs11::Pkcs11Kms::Create(std::move(options));
    if (!kms.ok()) return kms.status();
    return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
  }
  if (flags.kms == "vault") return CreateVault(flags, clock, observer);
  if (flags.kms == "gcp") return CreateGcp(flags, clock, observer);
  if (flags.kms == "azure") return CreateAzure(flags, clock, observer);
  return absl::InvalidArgumentError(fmt::format("unknown --kms {}", flags.kms));
}

}  // namespace kmsplugin
