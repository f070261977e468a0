// InstrumentedKes: a KeyEncryptionService decorator that counts and times every backend call
// into PluginMetrics and logs failures (code and message only). Thread-safe.
#ifndef KMSP_PLUGIN_INSTRUMENTED_KES_H_
#define KMSP_PLUGIN_INSTRUMENTED_KES_H_

#include <memory>

#include "kms/key_encryption_service.h"
#include "plugin/metrics.h"

namespace kmsplugin {

class InstrumentedKes final : public KeyEncryptionService {
 public:
  // `metrics` must outlive this object.
  InstrumentedKes(std::unique_ptr<KeyEncryptionService> inner, PluginMetrics* metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}

  std::string_view Name() const override { return inner_->Name(); }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override;
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override;
  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override;
  absl::Status RotateKek(const CallContext& ctx) override;

 private:
  template <typename F>
  auto Observe(KmsOperation op, F&& call);

  std::unique_ptr<KeyEncryptionService> inner_;
  PluginMetrics* metrics_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_INSTRUMENTED_KES_H_
