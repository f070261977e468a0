// PluginMetrics: the plugin's Prometheus metrics (served on /metrics by HealthServer), named and
// typed by Prometheus convention: a counter's name ends in _total and never decreases; a gauge is
// a value that goes up and down; durations are histograms in seconds.
//
//   family                                  type       labels
//   kms_plugin_rpc_total                    counter    method, code        KMS v2 RPCs handled
//   kms_plugin_rpc_duration_seconds         histogram  method              their latency
//   kms_plugin_kms_calls_total              counter    backend, operation, code  remote KMS calls
//   kms_plugin_kms_call_duration_seconds    histogram  backend, operation  their latency
//   kms_plugin_kms_retries_total            counter    backend, error_class  attempts the backend
//                                                      retried (one per attempt that will be tried
//                                                      again; fed by RetryMetrics)
//   kms_plugin_admin_calls_total            counter    method, code        admin gRPC calls
//   kms_plugin_rotations_total              counter    kind                data_key: a new data
//                                                      key made; key_id: the key_id changed (a KEK
//                                                      rotation seen); kek: this plugin rotated the
//                                                      KEK (admin RotateKek)
//   kms_plugin_dek_cache_hits_total         counter    -                   data-key cache hits
//   kms_plugin_dek_cache_misses_total       counter    -                   misses (each at most one
//                                                      unwrap)
//   kms_plugin_recovery_wraps_total         counter    -                   data keys wrapped under
//                                                      the recovery key (only with
//                                                      --recovery-public-key)
//   kms_plugin_healthy                      gauge      -                   1 while healthz is "ok"
//   kms_plugin_outage_window_active         gauge      -                   1 while coasting on
//                                                      cached keys through a KMS outage
//   kms_plugin_outage_window_seconds_left   gauge      -                   seconds left of that
//                                                      window (0 when not in one)
//   kms_plugin_data_key_age_seconds         gauge      -                   age of the current data
//                                                      key (0 without one)
//   kms_plugin_data_key_uses                gauge      -                   Encrypts under it
//   kms_plugin_dek_cache_size               gauge      -                   unwrapped data keys held
//   kms_plugin_key_id_info                  gauge      key_id_hash         1, one series: the
//                                                      current key_id
//   kms_plugin_recovery_key_info            gauge      fingerprint         1, one series: the
//                                                      recovery key (only with the flag)
//
// Every label has a bounded set of values, whatever the input (no request or remote text ever
// becomes a label value):
//   method       Status, Encrypt, Decrypt (RpcMethod); Refresh, RotateDataKey, RotateKek, Report
//                (AdminMethod): enums
//   code         the 17 gRPC code names (OK .. UNAUTHENTICATED) from CodeName(); a code outside
//                0..16 counts as UNKNOWN
//   backend      aws, vault, pkcs11, gcp, azure, local; any other name counts as "other" (BackendLabel())
//   operation    wrap, unwrap, probe, rotate (KmsOperation)
//   error_class  ErrorClassOf()'s nine classes (kms/remote_attempt.h); anything else is "other"
//   kind         data_key, key_id, kek
//   key_id_hash  "sha256:<hex>" of the current key_id: a single series, replaced when it changes
//   fingerprint  "sha256:<hex>" of the recovery key's SPKI: fixed for the process
//
// Thread-safe.
#ifndef KMSP_PLUGIN_METRICS_H_
#define KMSP_PLUGIN_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "kms/remote_attempt.h"
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

// The admin API's methods (proto/admin/admin.proto).
enum class AdminMethod { kRefresh = 0, kRotateDataKey = 1, kRotateKek = 2, kReport = 3 };
std::string_view AdminMethodName(AdminMethod method);

// The KeyEncryptionService operations InstrumentedKes times.
enum class KmsOperation { kWrap = 0, kUnwrap = 1, kProbe = 2, kRotate = 3 };
std::string_view KmsOperationName(KmsOperation op);

// The gRPC (= absl) code name of `code`, "UNKNOWN" outside 0..16. A static string.
std::string_view CodeName(int code);
// `name` when it is one of the backends (aws, vault, pkcs11, gcp, azure, local), else "other".
std::string_view BackendLabel(std::string_view name);
// `error_class` when it is one of ErrorClassOf()'s classes, else "other".
std::string_view ErrorClassLabel(std::string_view error_class);

class PluginMetrics {
 public:
  PluginMetrics();

  // Called for every RPC: no allocation (after a (method, code)'s first call), no lock beyond
  // the histogram's own.
  void ObserveRpc(RpcMethod method, grpc_status_code_t code, double seconds);
  void ObserveKmsCall(std::string_view backend, KmsOperation operation, absl::StatusCode code,
                      double seconds);
  void ObserveAdminCall(AdminMethod method, grpc_status_code_t code);
  // One attempt the backend will retry.
  void ObserveRetry(std::string_view backend, std::string_view error_class);
  // Creates the retry series of `backend` at 0 for every error class, so that the family is on
  // /metrics (and rate() works) before the first retry.
  void InitBackend(std::string_view backend);
  // Copies gauges from a report, and advances the counters fed by its cumulative totals by what
  // they grew since the last report (called before each scrape).
  void UpdateFrom(const EnvelopeReport& report);

  // The metrics in Prometheus text exposition format.
  std::string Serialize();

 private:
  static constexpr int kCodes = 17;  // gRPC status codes 0..16.
  static constexpr int kAdminMethods = 4;
  // Advances `counter` to `total` (a cumulative value last seen as `*fed`); never decreases it.
  static void Feed(prometheus::Counter& counter, uint64_t total, uint64_t* fed);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& rpc_total_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  // Resolved label sets: a counter per (method, code), created on first use; a histogram per
  // method, created up front.
  std::array<std::atomic<prometheus::Counter*>, size_t{kRpcMethods} * kCodes> rpc_counters_{};
  std::array<prometheus::Histogram*, kRpcMethods> rpc_histograms_{};
  prometheus::Family<prometheus::Counter>& kms_calls_;
  prometheus::Family<prometheus::Histogram>& kms_duration_;
  prometheus::Family<prometheus::Counter>& kms_retries_;
  prometheus::Family<prometheus::Counter>& admin_calls_;
  prometheus::Family<prometheus::Counter>& rotations_;
  prometheus::Counter& rotations_data_key_;
  prometheus::Counter& rotations_key_id_;
  prometheus::Counter& rotations_kek_;
  prometheus::Counter& cache_hits_;
  prometheus::Counter& cache_misses_;
  prometheus::Gauge& healthy_;
  prometheus::Gauge& outage_active_;
  prometheus::Gauge& outage_seconds_left_;
  prometheus::Gauge& data_key_age_;
  prometheus::Gauge& data_key_uses_;
  prometheus::Gauge& cache_size_;
  prometheus::Family<prometheus::Gauge>& key_id_info_;
  absl::Mutex mu_;  // Serialises UpdateFrom (two scrapes at once must not both add a delta).
  prometheus::Gauge* current_key_id_gauge_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Registered on the first report that names a recovery key (absent without one).
  prometheus::Counter* recovery_wraps_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The cumulative totals already added to their counters.
  uint64_t fed_hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t fed_misses_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t fed_recovery_wraps_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t fed_data_keys_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t fed_key_ids_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t fed_keks_ ABSL_GUARDED_BY(mu_) = 0;
};

// The RemoteAttemptObserver that counts retries into kms_plugin_kms_retries_total: one per
// attempt reported with will_retry, labelled with its backend and error class. Thread-safe.
class RetryMetrics final : public RemoteAttemptObserver {
 public:
  // `metrics` must outlive this object.
  explicit RetryMetrics(PluginMetrics* metrics) : metrics_(metrics) {}
  void OnAttempt(const RemoteAttempt& attempt) override;

 private:
  PluginMetrics* const metrics_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_METRICS_H_
