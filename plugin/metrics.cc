#include "plugin/metrics.h"

#include "absl/status/status.h"
#include "crypto/hash.h"
#include "prometheus/text_serializer.h"

namespace kmsplugin {
namespace {

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  // 0.1 ms .. ~13 s, doubling (as the apiserver's KMS latency metric).
  prometheus::Histogram::BucketBoundaries b;
  b.reserve(18);
  double v = 0.0001;
  for (int i = 0; i < 18; ++i) {
    b.push_back(v);
    v *= 2;
  }
  return b;
}

}  // namespace

PluginMetrics::PluginMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      rpc_total_(prometheus::BuildCounter()
                     .Name("kms_plugin_rpc_total")
                     .Help("KMS v2 RPCs handled, by method and gRPC status code")
                     .Register(*registry_)),
      rpc_duration_(prometheus::BuildHistogram()
                        .Name("kms_plugin_rpc_duration_seconds")
                        .Help("Latency of KMS v2 RPCs")
                        .Register(*registry_)),
      kms_calls_(prometheus::BuildCounter()
                     .Name("kms_plugin_kms_calls_total")
                     .Help("Calls to the remote KMS, by backend, operation and status code")
                     .Register(*registry_)),
      kms_duration_(prometheus::BuildHistogram()
                        .Name("kms_plugin_kms_call_duration_seconds")
                        .Help("Latency of calls to the remote KMS")
                        .Register(*registry_)),
      healthy_(prometheus::BuildGauge()
                   .Name("kms_plugin_healthy")
                   .Help("1 while Status reports healthz ok")
                   .Register(*registry_)
                   .Add({})),
      data_key_uses_(prometheus::BuildGauge()
                         .Name("kms_plugin_data_key_uses")
                         .Help("Encrypt calls served by the current data key")
                         .Register(*registry_)
                         .Add({})),
      cache_size_(prometheus::BuildGauge()
                      .Name("kms_plugin_dek_cache_size")
                      .Help("Unwrapped data keys held in memory")
                      .Register(*registry_)
                      .Add({})),
      cache_hits_(prometheus::BuildGauge()
                      .Name("kms_plugin_dek_cache_hits")
                      .Help("Data-key cache hits since start")
                      .Register(*registry_)
                      .Add({})),
      cache_misses_(prometheus::BuildGauge()
                        .Name("kms_plugin_dek_cache_misses")
                        .Help("Data-key cache misses since start (each costs at most one unwrap)")
                        .Register(*registry_)
                        .Add({})),
      key_id_info_(prometheus::BuildGauge()
                       .Name("kms_plugin_key_id_info")
                       .Help("1 for the current key_id, labelled with its sha256 hash")
                       .Register(*registry_)) {
  for (int m = 0; m < kRpcMethods; ++m) {
    rpc_histograms_[m] = &rpc_duration_.Add(
        {{"method", std::string(RpcMethodName(static_cast<RpcMethod>(m)))}}, LatencyBuckets());
  }
}

std::string_view RpcMethodName(RpcMethod method) {
  switch (method) {
    case RpcMethod::kStatus:
      return "Status";
    case RpcMethod::kEncrypt:
      return "Encrypt";
    case RpcMethod::kDecrypt:
      return "Decrypt";
  }
  return "unknown";
}

void PluginMetrics::ObserveRpc(RpcMethod method, grpc_status_code_t code, double seconds) {
  const int m = static_cast<int>(method);
  if (code < 0 || code >= kCodes) code = 2;  // UNKNOWN
  std::atomic<prometheus::Counter*>& slot = rpc_counters_[m * kCodes + code];
  prometheus::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Family::Add returns the same counter for the same labels, so a race only repeats a lookup.
    counter = &rpc_total_.Add(
        {{"method", std::string(RpcMethodName(method))},
         {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}});
    slot.store(counter, std::memory_order_release);
  }
  counter->Increment();
  rpc_histograms_[m]->Observe(seconds);
}

void PluginMetrics::ObserveKmsCall(std::string_view backend, std::string_view operation,
                                   std::string_view code, double seconds) {
  kms_calls_
      .Add({{"backend", std::string(backend)},
            {"operation", std::string(operation)},
            {"code", std::string(code)}})
      .Increment();
  kms_duration_
      .Add({{"backend", std::string(backend)}, {"operation", std::string(operation)}},
           LatencyBuckets())
      .Observe(seconds);
}

void PluginMetrics::UpdateFrom(const EnvelopeReport& report) {
  healthy_.Set(report.status.healthz == "ok" ? 1 : 0);
  data_key_uses_.Set(static_cast<double>(report.data_key_uses));
  cache_size_.Set(static_cast<double>(report.cache_size));
  cache_hits_.Set(static_cast<double>(report.cache_hits));
  cache_misses_.Set(static_cast<double>(report.cache_misses));
  absl::MutexLock lock(&mu_);
  prometheus::Gauge* g = nullptr;
  if (!report.status.key_id.empty()) {
    g = &key_id_info_.Add({{"key_id_hash", "sha256:" + Sha256Hex(report.status.key_id)}});
  }
  if (current_key_id_gauge_ != nullptr && current_key_id_gauge_ != g) current_key_id_gauge_->Set(0);
  if (g != nullptr) g->Set(1);
  current_key_id_gauge_ = g;
  if (!report.recovery_key_fingerprint.empty()) {
    if (recovery_wraps_ == nullptr) {
      prometheus::BuildGauge()
          .Name("kms_plugin_recovery_key_info")
          .Help("1 for the offline recovery key, labelled with its SHA-256 SPKI fingerprint")
          .Register(*registry_)
          .Add({{"fingerprint", report.recovery_key_fingerprint}})
          .Set(1);
      recovery_wraps_ = &prometheus::BuildGauge()
                             .Name("kms_plugin_recovery_wraps")
                             .Help("Data keys wrapped under the recovery key since start")
                             .Register(*registry_)
                             .Add({});
    }
    recovery_wraps_->Set(static_cast<double>(report.recovery_wraps));
  }
}

std::string PluginMetrics::Serialize() {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace kmsplugin
