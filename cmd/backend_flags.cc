#include "cmd/backend_flags.h"

#include "fmt/format.h"
#include "kms/aws/aws_kms.h"
#include "kms/local/local_kms.h"
#include "kms/pkcs11/pkcs11_kms.h"
#include "kms/secret_file.h"

namespace kmsplugin {

void AddBackendFlags(CLI::App* cmd, BackendFlags* flags) {
  cmd->add_option("--kms", flags->kms, "KMS backend holding the KEK: local, aws or pkcs11")
      ->capture_default_str()
      ->check(CLI::IsMember({"local", "aws", "pkcs11"}));
  cmd->add_option("--local-keyring", flags->local_keyring,
                  "--kms local: keyring file (created with mode 0600 when absent; development only)")
      ->capture_default_str();
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
}

absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateBackend(const BackendFlags& flags,
                                                                     const Clock* clock) {
  SetSecretFileSymlinksAllowed(flags.allow_secret_symlinks);
  if (flags.kms == "local") {
    LocalKmsOptions options;
    options.keyring_path = flags.local_keyring;
    auto kms = LocalKms::Create(options, clock);
    if (!kms.ok()) return kms.status();
    return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
  }
  if (flags.kms == "aws") {
    aws::AwsKmsOptions options;
    options.key_id = flags.aws_key_id;
    options.region = flags.aws_region;
    options.endpoint = flags.aws_endpoint;
    options.ca_file = flags.aws_ca_file;
    options.fips = flags.aws_fips;
    options.allow_insecure_http = flags.aws_insecure_http_for_tests;
    auto context = aws::ParseEncryptionContext(flags.aws_encryption_context);
    if (!context.ok()) return context.status();
    options.encryption_context = std::move(*context);
    auto kms = aws::AwsKms::Create(std::move(options), clock);
    if (!kms.ok()) return kms.status();
    return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
  }
  if (flags.kms == "pkcs11") {
    pkcs11::Pkcs11KmsOptions options;
    options.module_path = flags.pkcs11_module;
    options.token_label = flags.pkcs11_token_label;
    options.pin_file = flags.pkcs11_pin_file;
    options.key_label = flags.pkcs11_key_label;
    auto kms = pkcs11::Pkcs11Kms::Create(std::move(options));
    if (!kms.ok()) return kms.status();
    return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
  }
  return absl::InvalidArgumentError(fmt::format("unknown --kms {}", flags.kms));
}

}  // namespace kmsplugin
