// PluginMetrics (see metrics.h for the families, their types and the bounded label values).
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

// Index = grpc::StatusCode = absl::StatusCode.
constexpr std::array<std::string_view, 17> kCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

constexpr std::array<std::string_view, 6> kBackends = {"aws", "vault", "pkcs11", "gcp", "azure", "local"};

// ErrorClassOf()'s classes that can be retried (all but "ok"), and "other".
constexpr std::array<std::string_view, 9> kErrorClasses = {
    "throttled", "unavailable", "timeout",  "credentials", "denied",
    "key_state", "invalid",     "internal", "other"};

template <size_t N>
std::string_view OneOf(const std::array<std::string_view, N>& table, std::string_view value) {
  for (std::string_view v : table) {
    if (v == value) return v;
  }
  return "other";
}

prometheus::Gauge& AddGauge(prometheus::Registry& registry, const std::string& name,
                            const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Counter& AddCounter(prometheus::Registry& registry, const std::string& name,
                                const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

std::string_view CodeName(int code) {
  if (code < 0 || code >= static_cast<int>(kCodeNames.size())) return "UNKNOWN";
  return kCodeNames[static_cast<size_t>(code)];
}

std::string_view BackendLabel(std::string_view name) { return OneOf(kBackends, name); }

std::string_view ErrorClassLabel(std::string_view error_class) {
  return OneOf(kErrorClasses, error_class);
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

std::string_view AdminMethodName(AdminMethod method) {
  switch (method) {
    case AdminMethod::kRefresh:
      return "Refresh";
    case AdminMethod::kRotateDataKey:
      return "RotateDataKey";
    case AdminMethod::kRotateKek:
      return "RotateKek";
    case AdminMethod::kReport:
      return "Report";
  }
  return "unknown";
}

std::string_view KmsOperationName(KmsOperation op) {
  switch (op) {
    case KmsOperation::kWrap:
      return "wrap";
    case KmsOperation::kUnwrap:
      return "unwrap";
    case KmsOperation::kProbe:
      return "probe";
    case KmsOperation::kRotate:
      return "rotate";
  }
  return "unknown";
}

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
      kms_retries_(prometheus::BuildCounter()
                       .Name("kms_plugin_kms_retries_total")
                       .Help("Attempts at the remote KMS that the backend retried, by error class")
                       .Register(*registry_)),
      admin_calls_(prometheus::BuildCounter()
                       .Name("kms_plugin_admin_calls_total")
                       .Help("Admin API calls, by method and gRPC status code")
                       .Register(*registry_)),
      rotations_(prometheus::BuildCounter()
                     .Name("kms_plugin_rotations_total")
                     .Help("Key rotations: data_key (a new data key), key_id (the key_id "
                           "changed), kek (this plugin rotated the KEK)")
                     .Register(*registry_)),
      rotations_data_key_(rotations_.Add({{"kind", "data_key"}})),
      rotations_key_id_(rotations_.Add({{"kind", "key_id"}})),
      rotations_kek_(rotations_.Add({{"kind", "kek"}})),
      cache_hits_(AddCounter(*registry_, "kms_plugin_dek_cache_hits_total", "Data-key cache hits")),
      cache_misses_(AddCounter(*registry_, "kms_plugin_dek_cache_misses_total",
                               "Data-key cache misses (each costs at most one unwrap)")),
      healthy_(AddGauge(*registry_, "kms_plugin_healthy", "1 while Status reports healthz ok")),
      outage_active_(AddGauge(*registry_, "kms_plugin_outage_window_active",
                              "1 while the plugin serves from cached keys through a KMS outage")),
      outage_seconds_left_(AddGauge(*registry_, "kms_plugin_outage_window_seconds_left",
                                    "Seconds left in the outage window (0 when not in one)")),
      data_key_age_(AddGauge(*registry_, "kms_plugin_data_key_age_seconds",
                             "Age of the current data key (0 without one)")),
      data_key_uses_(AddGauge(*registry_, "kms_plugin_data_key_uses",
                              "Encrypt calls served by the current data key")),
      cache_size_(
          AddGauge(*registry_, "kms_plugin_dek_cache_size", "Unwrapped data keys held in memory")),
      key_id_info_(prometheus::BuildGauge()
                       .Name("kms_plugin_key_id_info")
                       .Help("1 for the current key_id, labelled with its sha256 hash")
                       .Register(*registry_)) {
  for (int m = 0; m < kRpcMethods; ++m) {
    rpc_histograms_[m] = &rpc_duration_.Add(
        {{"method", std::string(RpcMethodName(static_cast<RpcMethod>(m)))}}, LatencyBuckets());
  }
}

void PluginMetrics::ObserveRpc(RpcMethod method, grpc_status_code_t code, double seconds) {
  const int m = static_cast<int>(method);
  if (code < 0 || code >= kCodes) code = 2;  // UNKNOWN
  std::atomic<prometheus::Counter*>& slot = rpc_counters_[m * kCodes + code];
  prometheus::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Family::Add returns the same counter for the same labels, so a race only repeats a lookup.
    counter = &rpc_total_.Add(
        {{"method", std::string(RpcMethodName(method))}, {"code", std::string(CodeName(code))}});
    slot.store(counter, std::memory_order_release);
  }
  counter->Increment();
  rpc_histograms_[m]->Observe(seconds);
}

void PluginMetrics::ObserveKmsCall(std::string_view backend, KmsOperation operation,
                                   absl::StatusCode code, double seconds) {
  const std::string b(BackendLabel(backend));
  const std::string op(KmsOperationName(operation));
  kms_calls_
      .Add({{"backend", b},
            {"operation", op},
            {"code", std::string(CodeName(static_cast<int>(code)))}})
      .Increment();
  kms_duration_.Add({{"backend", b}, {"operation", op}}, LatencyBuckets()).Observe(seconds);
}

void PluginMetrics::ObserveAdminCall(AdminMethod method, grpc_status_code_t code) {
  admin_calls_
      .Add(
          {{"method", std::string(AdminMethodName(method))}, {"code", std::string(CodeName(code))}})
      .Increment();
}

void PluginMetrics::ObserveRetry(std::string_view backend, std::string_view error_class) {
  kms_retries_
      .Add({{"backend", std::string(BackendLabel(backend))},
            {"error_class", std::string(ErrorClassLabel(error_class))}})
      .Increment();
}

void PluginMetrics::InitBackend(std::string_view backend) {
  for (std::string_view error_class : kErrorClasses) {
    kms_retries_.Add({{"backend", std::string(BackendLabel(backend))},
                      {"error_class", std::string(error_class)}});
  }
}

void PluginMetrics::Feed(prometheus::Counter& counter, uint64_t total, uint64_t* fed) {
  if (total > *fed) {
    counter.Increment(static_cast<double>(total - *fed));
    *fed = total;
  }
}

void PluginMetrics::UpdateFrom(const EnvelopeReport& report) {
  healthy_.Set(report.status.healthz == "ok" ? 1 : 0);
  outage_active_.Set(report.outage_window_active ? 1 : 0);
  outage_seconds_left_.Set(report.outage_window_active ? report.outage_window_seconds_left : 0);
  data_key_age_.Set(report.data_key_age_seconds);
  data_key_uses_.Set(static_cast<double>(report.data_key_uses));
  cache_size_.Set(static_cast<double>(report.cache_size));
  absl::MutexLock lock(&mu_);
  Feed(cache_hits_, report.cache_hits, &fed_hits_);
  Feed(cache_misses_, report.cache_misses, &fed_misses_);
  Feed(rotations_data_key_, report.data_keys_made, &fed_data_keys_);
  Feed(rotations_key_id_, report.key_id_changes, &fed_key_ids_);
  Feed(rotations_kek_, report.kek_rotations, &fed_keks_);
  // One series: the current key_id's (an old one is removed, so rotations do not add series).
  prometheus::Gauge* g = nullptr;
  if (!report.status.key_id.empty()) {
    g = &key_id_info_.Add({{"key_id_hash", "sha256:" + Sha256Hex(report.status.key_id)}});
  }
  if (current_key_id_gauge_ != nullptr && current_key_id_gauge_ != g) {
    key_id_info_.Remove(current_key_id_gauge_);
  }
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
      recovery_wraps_ = &AddCounter(*registry_, "kms_plugin_recovery_wraps_total",
                                    "Data keys wrapped under the recovery key");
    }
    Feed(*recovery_wraps_, report.recovery_wraps, &fed_recovery_wraps_);
  }
}

std::string PluginMetrics::Serialize() {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

void RetryMetrics::OnAttempt(const RemoteAttempt& attempt) {
  if (attempt.will_retry) metrics_->ObserveRetry(attempt.backend, attempt.error_class);
}

}  // namespace kmsplugin
