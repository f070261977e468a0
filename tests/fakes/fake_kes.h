// FakeKes: an in-memory KeyEncryptionService for tests. KEK versions are AES-256-GCM keys kept
// in memory; kek_id = "<name>:v<version>". It counts every call, can rotate, can be told to fail
// (transiently or as a refusal) and can be told to report another version on Probe (flapping).
// Unwrap can block until released, to test single-flight. Thread-safe.
#ifndef KMSP_TESTS_FAKES_FAKE_KES_H_
#define KMSP_TESTS_FAKES_FAKE_KES_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "crypto/aes_gcm.h"
#include "crypto/random.h"
#include "kms/key_encryption_service.h"

namespace kmsplugin::testing {

class FakeKes final : public KeyEncryptionService {
 public:
  explicit FakeKes(std::string name = "fake") : name_(std::move(name)) { AddVersion(); }

  std::string_view Name() const override { return "fake"; }

  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override {
    ++wraps;
    absl::MutexLock lock(&mu_);
    if (!fail_.ok()) return fail_;
    std::string id = KekIdLocked(primary_);
    auto blob = keks_.at(primary_)->Seal(key.Reveal(), id);
    if (!blob.ok()) return blob.status();
    return WrappedKey{id, *blob};
  }

  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override {
    ++unwraps;
    if (absl::Notification* n = block_unwrap_.load()) n->WaitForNotification();
    absl::MutexLock lock(&mu_);
    if (!fail_.ok()) return fail_;
    std::string prefix = name_ + ":v";
    uint32_t version = 0;
    if (wrapped.kek_id.rfind(prefix, 0) != 0 ||
        !absl::SimpleAtoi(wrapped.kek_id.substr(prefix.size()), &version) ||
        keks_.count(version) == 0) {
      return absl::FailedPreconditionError("unknown kek_id");
    }
    auto key = keks_.at(version)->Open(wrapped.blob, wrapped.kek_id);
    if (!key.ok()) return absl::InvalidArgumentError("wrapped key failed authentication");
    return key;
  }

  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override {
    ++probes;
    absl::MutexLock lock(&mu_);
    if (!fail_.ok()) return fail_;
    uint32_t v = probe_override_.value_or(primary_);
    return KeyStatus{KekIdLocked(v), "fake"};
  }

  absl::Status RotateKek(const CallContext& ctx) override {
    ++rotations;
    absl::MutexLock lock(&mu_);
    if (!fail_.ok()) return fail_;
    AddVersionLocked();
    return absl::OkStatus();
  }

  // Test controls.
  void AddVersion() {
    absl::MutexLock lock(&mu_);
    AddVersionLocked();
  }
  void FailWith(absl::Status s) {
    absl::MutexLock lock(&mu_);
    fail_ = std::move(s);
  }
  void Heal() { FailWith(absl::OkStatus()); }
  // Probe reports `version` instead of the primary (std::nullopt: the primary again).
  void ReportVersion(std::optional<uint32_t> version) {
    absl::MutexLock lock(&mu_);
    probe_override_ = version;
  }
  // Unwrap waits on `n` (not owned; nullptr: no blocking) before doing anything.
  void BlockUnwrapUntil(absl::Notification* n) { block_unwrap_ = n; }
  std::string KekId(uint32_t version) {
    absl::MutexLock lock(&mu_);
    return KekIdLocked(version);
  }
  uint32_t primary() {
    absl::MutexLock lock(&mu_);
    return primary_;
  }

  std::atomic<int> wraps{0};
  std::atomic<int> unwraps{0};
  std::atomic<int> probes{0};
  std::atomic<int> rotations{0};

 private:
  std::string KekIdLocked(uint32_t v) const { return name_ + ":v" + std::to_string(v); }
  void AddVersionLocked() {
    ++primary_;
    keks_[primary_] = *AesGcm::Create(*RandomSecret(32));
  }

  const std::string name_;
  absl::Mutex mu_;
  std::map<uint32_t, std::unique_ptr<AesGcm>> keks_;
  uint32_t primary_ = 0;
  absl::Status fail_;
  std::optional<uint32_t> probe_override_;
  std::atomic<absl::Notification*> block_unwrap_{nullptr};
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_FAKES_FAKE_KES_H_
