#include "plugin/instrumented_kes.h"

#include <chrono>

#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace

template <typename F>
auto InstrumentedKes::Observe(KmsOperation op, F&& call) {
  auto start = std::chrono::steady_clock::now();
  auto result = call();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const absl::Status& st = StatusOf(result);
  metrics_->ObserveKmsCall(inner_->Name(), op, st.code(), seconds);
  if (!st.ok()) {
    spdlog::debug("kms {} {} failed after {:.1f} ms: {}", inner_->Name(), KmsOperationName(op),
                  seconds * 1e3, st.ToString());
  } else {
    spdlog::debug("kms {} {} ok in {:.1f} ms", inner_->Name(), KmsOperationName(op),
                  seconds * 1e3);
  }
  return result;
}

absl::StatusOr<WrappedKey> InstrumentedKes::Wrap(const SecretBytes& key, const CallContext& ctx) {
  return Observe(KmsOperation::kWrap, [&] { return inner_->Wrap(key, ctx); });
}
absl::StatusOr<SecretBytes> InstrumentedKes::Unwrap(const WrappedKey& wrapped,
                                                    const CallContext& ctx) {
  return Observe(KmsOperation::kUnwrap, [&] { return inner_->Unwrap(wrapped, ctx); });
}
absl::StatusOr<KeyStatus> InstrumentedKes::Probe(const CallContext& ctx) {
  return Observe(KmsOperation::kProbe, [&] { return inner_->Probe(ctx); });
}
absl::Status InstrumentedKes::RotateKek(const CallContext& ctx) {
  return Observe(KmsOperation::kRotate, [&] { return inner_->RotateKek(ctx); });
}

}  // namespace kmsplugin
