#include "tools/reencrypt/recovery_kms_client.h"

#include <atomic>
#include <set>

#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "plugin/recovery_format.h"
#include "spdlog/spdlog.h"

namespace kmsplugin::reencrypt {
namespace {

bool PluginUnreachable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

class RecoveryKmsV2Client final : public KmsV2Client {
 public:
  RecoveryKmsV2Client(std::string provider, std::unique_ptr<KmsV2Client> plugin,
                      std::shared_ptr<const RecoveryKeySet> keys)
      : provider_(std::move(provider)), plugin_(std::move(plugin)), keys_(std::move(keys)) {}

  absl::StatusOr<KmsV2Status> Status() override { return plugin_->Status(); }

  absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes& plaintext,
                                             std::string_view uid) override {
    return plugin_->Encrypt(plaintext, uid);
  }

  absl::StatusOr<SecretBytes> Decrypt(std::string_view ciphertext, std::string_view key_id,
                                      const std::map<std::string, std::string>& annotations,
                                      std::string_view uid) override {
    std::string plugin_error = "unreachable earlier in this run, not asked again";
    absl::StatusCode plain_code = absl::StatusCode::kUnavailable;
    if (!plugin_down_.load(std::memory_order_acquire)) {
      absl::StatusOr<SecretBytes> plain = plugin_->Decrypt(ciphertext, key_id, annotations, uid);
      if (plain.ok()) return plain;
      plain_code = plain.status().code();
      // The client's message names the endpoint and method, and is already printable.
      plugin_error = Printable(ToStd(plain.status().message()), 512);
      if (PluginUnreachable(plain.status()) && !plugin_down_.exchange(true)) {
        spdlog::warn("reencrypt: KMS v2 provider {}: plugin unreachable ({}); {}", provider_,
                     plugin_error,
                     keys_->empty() ? "its remaining values fail without asking it again (no "
                                      "--recovery-private-key given)"
                                    : "the remaining values are opened with the recovery key "
                                      "only");
      }
    }
    if (keys_->empty()) {
      return absl::Status(plain_code, fmt::format("KMS v2 provider {}: plugin Decrypt failed ({})",
                                                  provider_, plugin_error));
    }
    absl::StatusOr<SecretBytes> recovered = keys_->Open(ciphertext, key_id, annotations);
    if (recovered.ok()) return recovered;
    return absl::Status(
        recovered.status().code(),
        fmt::format("KMS v2 provider {}: plugin Decrypt failed ({}), and recovery failed: {}",
                    provider_, plugin_error, Printable(ToStd(recovered.status().message()), 512)));
  }

 private:
  const std::string provider_;
  const std::unique_ptr<KmsV2Client> plugin_;
  const std::shared_ptr<const RecoveryKeySet> keys_;
  std::atomic<bool> plugin_down_{false};
};

}  // namespace

RecoveryKeySet::RecoveryKeySet(std::vector<RsaPrivateKey> keys) : keys_(std::move(keys)) {
  for (const RsaPrivateKey& k : keys_) pointers_.push_back(&k);
}

std::shared_ptr<const RecoveryKeySet> RecoveryKeySet::FromKeys(std::vector<RsaPrivateKey> keys) {
  return std::shared_ptr<const RecoveryKeySet>(new RecoveryKeySet(std::move(keys)));
}

absl::StatusOr<std::shared_ptr<const RecoveryKeySet>> RecoveryKeySet::Load(
    const std::vector<std::string>& paths) {
  std::vector<RsaPrivateKey> keys;
  std::set<std::string> seen;
  for (const std::string& path : paths) {
    absl::StatusOr<std::string> text = ReadSecretFile(path);
    if (!text.ok()) {
      return Annotate(text.status(), fmt::format("recovery private key {}", Printable(path)));
    }
    const SecretBytes pem = SecretBytes::TakeFrom(*text);  // wipes the read buffer
    absl::StatusOr<RsaPrivateKey> key = RsaPrivateKey::FromPem(pem);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("recovery private key {}: not an RSA 3072 or 4096 private key in PEM: {}",
                      Printable(path), Printable(ToStd(key.status().message()), 256)));
    }
    if (!seen.insert(key->fingerprint()).second) {
      return absl::InvalidArgumentError(
          fmt::format("recovery private key {}: the same key ({}) is given twice", Printable(path),
                      key->FingerprintText()));
    }
    keys.push_back(std::move(*key));
  }
  return FromKeys(std::move(keys));
}

std::vector<std::string> RecoveryKeySet::FingerprintTexts() const {
  std::vector<std::string> out;
  out.reserve(keys_.size());
  for (const RsaPrivateKey& k : keys_) out.push_back(k.FingerprintText());
  return out;
}

absl::StatusOr<SecretBytes> RecoveryKeySet::Open(
    std::string_view ciphertext, std::string_view key_id,
    const std::map<std::string, std::string>& annotations) const {
  absl::StatusOr<SecretBytes> opened =
      OpenWithRecoveryKey(ciphertext, key_id, annotations, pointers_);
  if (opened.ok()) opens_.fetch_add(1);
  return opened;
}

std::string RecoveryWrapLabel(const std::map<std::string, std::string>& annotations) {
  auto it = annotations.find(std::string(kRecoveryAnnotation));
  if (it == annotations.end()) return "none";
  absl::StatusOr<RecoveryWrap> wrap = ParseRecoveryWrap(it->second);
  if (!wrap.ok()) return "invalid";
  return FingerprintText(wrap->fingerprint);
}

std::unique_ptr<KmsV2Client> NewRecoveryKmsV2Client(std::string provider,
                                                    std::unique_ptr<KmsV2Client> plugin,
                                                    std::shared_ptr<const RecoveryKeySet> keys) {
  return std::make_unique<RecoveryKmsV2Client>(std::move(provider), std::move(plugin),
                                               std::move(keys));
}

}  // namespace kmsplugin::reencrypt
