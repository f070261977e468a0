#include "cmd/backend_flags.h"

#include "fmt/format.h"
#include "kms/local/local_kms.h"

namespace kmsplugin {

void AddBackendFlags(CLI::App* cmd, BackendFlags* flags) {
  cmd->add_option("--kms", flags->kms, "KMS backend holding the KEK: local")
      ->capture_default_str()
      ->check(CLI::IsMember({"local"}));
  cmd->add_option("--local-keyring", flags->local_keyring,
                  "--kms local: keyring file (created with mode 0600 when absent; development only)")
      ->capture_default_str();
}

absl::StatusOr<std::unique_ptr<KeyEncryptionService>> CreateBackend(const BackendFlags& flags,
                                                                     const Clock* clock) {
  if (flags.kms == "local") {
    LocalKmsOptions options;
    options.keyring_path = flags.local_keyring;
    auto kms = LocalKms::Create(options, clock);
    if (!kms.ok()) return kms.status();
    return std::unique_ptr<KeyEncryptionService>(std::move(*kms));
  }
  return absl::InvalidArgumentError(fmt::format("unknown --kms {}", flags.kms));
}

}  // namespace kmsplugin
