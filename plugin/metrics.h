// PluginMetrics: the plugin's Prometheus metrics (served on /metrics by HealthServer).
//
//   kms_plugin_rpc_total{method,code}                  KMS v2 RPCs handled
//   kms_plugin_rpc_duration_seconds{method}            their latency
//   kms_plugin_kms_calls_total{backend,operation,code} remote KMS calls (wrap, unwrap, probe, rotate)
//   kms_plugin_kms_call_duration_seconds{backend,operation}
//   kms_plugin_healthy                                 1 while Status reports healthz "ok"
//   kms_plugin_data_key_uses                           Encrypts under the current data key
//   kms_plugin_dek_cache_size / _hits / _misses        unwrapped data-key cache
//   kms_plugin_key_id_info{key_id_hash}                1 for the current key_id (sha256:<hex>)
//   kms_plugin_recovery_key_info{fingerprint}          1 for the recovery key (sha256:<hex> of
//                                                      its SPKI); only with --recovery-public-key
//   kms_plugin_recovery_wraps                          data keys wrapped under it since start
//
// Thread-safe.
#ifndef KMSP_PLUGIN_METRICS_H_
#define KMSP_PLUGIN_METRICS_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "plugin/envelope_service.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kmsplugin {

using grpc_status_code_t = int;  // A grpc::StatusCode value (0..16).

// The KMS v2 methods, for per-RPC metrics.
enum class RpcMethod { kStatus = 0, kEncrypt = 1, kDecrypt = 2 };
inline constexpr int kRpcMethods = 3;
std::string_view RpcMethodName(RpcMethod method);

class PluginMetrics {
 public:
  PluginMetrics();

  // Called for every RPC: no allocation, no lock beyond the histogram's own.
  void ObserveRpc(RpcMethod method, grpc_status_code_t code, double seconds);
  void ObserveKmsCall(std::string_view backend, std::string_view operation, std::string_view code,
                      double seconds);
  // Copies gauges from a report (called before each scrape).
  void UpdateFrom(const EnvelopeReport& report);

  // The metrics in Prometheus text exposition format.
  std::string Serialize();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  static constexpr int kCodes = 17;  // gRPC status codes 0..16.
  prometheus::Family<prometheus::Counter>& rpc_total_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  // Resolved label sets: a counter per (method, code), created on first use; a histogram per
  // method, created up front.
  std::array<std::atomic<prometheus::Counter*>, size_t{kRpcMethods} * kCodes> rpc_counters_{};
  std::array<prometheus::Histogram*, kRpcMethods> rpc_histograms_{};
  prometheus::Family<prometheus::Counter>& kms_calls_;
  prometheus::Family<prometheus::Histogram>& kms_duration_;
  prometheus::Gauge& healthy_;
  prometheus::Gauge& data_key_uses_;
  prometheus::Gauge& cache_size_;
  prometheus::Gauge& cache_hits_;
  prometheus::Gauge& cache_misses_;
  prometheus::Family<prometheus::Gauge>& key_id_info_;
  absl::Mutex mu_;
  prometheus::Gauge* current_key_id_gauge_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Registered on the first report that names a recovery key (absent without one).
  prometheus::Gauge* recovery_wraps_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_METRICS_H_
