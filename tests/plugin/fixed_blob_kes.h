// FixedBlobKes: a KeyEncryptionService for golden tests. Wrap returns the same kek_id and blob
// every time (and remembers the data key it was given); Unwrap of that blob returns the data key
// it holds (the last one wrapped, or the one set with the constructor). So an Encrypt result's
// annotations and a committed ciphertext's data key are fixed bytes. Thread-safe.
#ifndef KMSP_TESTS_PLUGIN_FIXED_BLOB_KES_H_
#define KMSP_TESTS_PLUGIN_FIXED_BLOB_KES_H_

#include <atomic>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "kms/key_encryption_service.h"

namespace kmsplugin::testing {

class FixedBlobKes final : public KeyEncryptionService {
 public:
  FixedBlobKes(std::string kek_id, std::string blob, SecretBytes data_key)
      : kek_id_(std::move(kek_id)), blob_(std::move(blob)), data_key_(std::move(data_key)) {}

  std::string_view Name() const override { return "fixed"; }

  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext&) override {
    ++wraps;
    absl::MutexLock lock(&mu_);
    data_key_ = SecretBytes::CopyFrom(key.Reveal());
    return WrappedKey{kek_id_, blob_};
  }

  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext&) override {
    ++unwraps;
    if (wrapped.kek_id != kek_id_) return absl::FailedPreconditionError("unknown kek_id");
    if (wrapped.blob != blob_) return absl::InvalidArgumentError("unknown blob");
    absl::MutexLock lock(&mu_);
    return SecretBytes::CopyFrom(data_key_.Reveal());
  }

  absl::StatusOr<KeyStatus> Probe(const CallContext&) override {
    return KeyStatus{kek_id_, "fixed blob"};
  }

  std::atomic<int> wraps{0};
  std::atomic<int> unwraps{0};

 private:
  const std::string kek_id_;
  const std::string blob_;
  absl::Mutex mu_;
  SecretBytes data_key_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_PLUGIN_FIXED_BLOB_KES_H_
