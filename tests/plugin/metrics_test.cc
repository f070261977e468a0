// PluginMetrics and RetryMetrics: Prometheus naming and types, counters fed from cumulative
// report values never decrease, every label bounded whatever the input, and retries counted per
// backend and error class from a stream of RemoteAttempts.
#include "plugin/metrics.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/prometheus_text.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::ParsePromText;
using ::kmsplugin::testing::PromText;
using ::testing::IsEmpty;
using ::testing::Optional;

PromText Scrape(PluginMetrics& metrics) {
  PromText text = ParsePromText(metrics.Serialize());
  EXPECT_THAT(text.errors, IsEmpty());
  return text;
}

RemoteAttempt Attempt(std::string_view backend, const absl::Status& status, bool will_retry,
                      int attempt) {
  RemoteAttempt a;
  a.backend = backend;
  a.operation = "Encrypt";
  a.code = status.code();
  a.error_class = ErrorClassOf(status);
  a.attempt = attempt;
  a.will_retry = will_retry;
  return a;
}

TEST(RetryMetricsTest, CountsEachAttemptThatWillBeRetriedByBackendAndErrorClass) {
  PluginMetrics metrics;
  RetryMetrics observer(&metrics);
  // Call 1: throttled twice, then ok. Call 2: unavailable, timeout, then a final timeout (not
  // retried). Call 3: ok at once. Call 4 (vault): credentials refused, retried once, then ok.
  // Call 5: a backend that names itself oddly and an odd class: bounded to "other".
  std::vector<RemoteAttempt> stream = {
      Attempt("aws", absl::ResourceExhaustedError("slow down"), true, 1),
      Attempt("aws", absl::ResourceExhaustedError("slow down"), true, 2),
      Attempt("aws", absl::OkStatus(), false, 3),
      Attempt("aws", absl::UnavailableError("503"), true, 1),
      Attempt("aws", absl::DeadlineExceededError("late"), true, 2),
      Attempt("aws", absl::DeadlineExceededError("late"), false, 3),
      Attempt("aws", absl::OkStatus(), false, 1),
      Attempt("vault", absl::UnauthenticatedError("403"), true, 1),
      Attempt("vault", absl::OkStatus(), false, 2),
  };
  RemoteAttempt odd = Attempt("my\"backend{x}", absl::InternalError("x"), true, 1);
  odd.error_class = "</script>";
  stream.push_back(odd);
  for (const RemoteAttempt& a : stream) observer.OnAttempt(a);

  PromText text = Scrape(metrics);
  EXPECT_EQ(text.types["kms_plugin_kms_retries_total"], "counter");
  const std::string name = "kms_plugin_kms_retries_total";
  EXPECT_THAT(text.Value(name, {{"backend", "aws"}, {"error_class", "throttled"}}), Optional(2.0));
  EXPECT_THAT(text.Value(name, {{"backend", "aws"}, {"error_class", "unavailable"}}),
              Optional(1.0));
  EXPECT_THAT(text.Value(name, {{"backend", "aws"}, {"error_class", "timeout"}}), Optional(1.0));
  EXPECT_THAT(text.Value(name, {{"backend", "vault"}, {"error_class", "credentials"}}),
              Optional(1.0));
  EXPECT_THAT(text.Value(name, {{"backend", "other"}, {"error_class", "other"}}), Optional(1.0));
  // Six retried attempts in all, in five series; nothing for ok or final attempts.
  double total = 0;
  for (const auto& s : text.Samples(name)) total += s.value;
  EXPECT_EQ(total, 6.0);
  EXPECT_EQ(text.Samples(name).size(), 5u);
}

TEST(RetryMetricsTest, InitBackendShowsEveryErrorClassAtZero) {
  PluginMetrics metrics;
  metrics.InitBackend("aws");
  PromText text = Scrape(metrics);
  std::vector<std::string> classes;
  for (const auto& s : text.Samples("kms_plugin_kms_retries_total")) {
    EXPECT_EQ(s.labels.at("backend"), "aws");
    EXPECT_EQ(s.value, 0.0);
    classes.push_back(s.labels.at("error_class"));
  }
  EXPECT_EQ(classes.size(), 9u);
}

TEST(PluginMetricsTest, EveryFamilyHasItsConventionalType) {
  PluginMetrics metrics;
  metrics.ObserveRpc(RpcMethod::kEncrypt, 0, 0.001);
  metrics.ObserveKmsCall("local", KmsOperation::kWrap, absl::StatusCode::kOk, 0.001);
  metrics.ObserveAdminCall(AdminMethod::kRotateKek, 0);
  metrics.ObserveRetry("aws", "throttled");
  EnvelopeReport report;
  report.status.key_id = "k1";
  report.recovery_key_fingerprint = "sha256:00";
  metrics.UpdateFrom(report);
  PromText text = Scrape(metrics);
  const std::map<std::string, std::string> expected = {
      {"kms_plugin_rpc_total", "counter"},
      {"kms_plugin_rpc_duration_seconds", "histogram"},
      {"kms_plugin_kms_calls_total", "counter"},
      {"kms_plugin_kms_call_duration_seconds", "histogram"},
      {"kms_plugin_kms_retries_total", "counter"},
      {"kms_plugin_admin_calls_total", "counter"},
      {"kms_plugin_rotations_total", "counter"},
      {"kms_plugin_dek_cache_hits_total", "counter"},
      {"kms_plugin_dek_cache_misses_total", "counter"},
      {"kms_plugin_recovery_wraps_total", "counter"},
      {"kms_plugin_healthy", "gauge"},
      {"kms_plugin_outage_window_active", "gauge"},
      {"kms_plugin_outage_window_seconds_left", "gauge"},
      {"kms_plugin_data_key_age_seconds", "gauge"},
      {"kms_plugin_data_key_uses", "gauge"},
      {"kms_plugin_dek_cache_size", "gauge"},
      {"kms_plugin_key_id_info", "gauge"},
      {"kms_plugin_recovery_key_info", "gauge"},
  };
  EXPECT_EQ(text.types, expected);
  for (const auto& [name, type] : text.types) {
    const bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(type == "counter", total) << name << " is a " << type;
  }
}

TEST(PluginMetricsTest, CountersFedFromReportsAdvanceByTheDeltaAndNeverDecrease) {
  PluginMetrics metrics;
  EnvelopeReport r;
  r.cache_hits = 5;
  r.cache_misses = 2;
  r.data_keys_made = 1;
  r.recovery_key_fingerprint = "sha256:00";
  r.recovery_wraps = 1;
  metrics.UpdateFrom(r);
  PromText first = Scrape(metrics);
  EXPECT_THAT(first.Value("kms_plugin_dek_cache_hits_total"), Optional(5.0));
  EXPECT_THAT(first.Value("kms_plugin_dek_cache_misses_total"), Optional(2.0));
  EXPECT_THAT(first.Value("kms_plugin_rotations_total", {{"kind", "data_key"}}), Optional(1.0));
  EXPECT_THAT(first.Value("kms_plugin_rotations_total", {{"kind", "kek"}}), Optional(0.0));
  EXPECT_THAT(first.Value("kms_plugin_recovery_wraps_total"), Optional(1.0));
  // A smaller total (a report source restarted) does not move a counter back.
  r.cache_hits = 3;
  metrics.UpdateFrom(r);
  EXPECT_THAT(Scrape(metrics).Value("kms_plugin_dek_cache_hits_total"), Optional(5.0));
  r.cache_hits = 9;
  r.kek_rotations = 1;
  r.key_id_changes = 1;
  r.data_keys_made = 2;
  r.recovery_wraps = 2;
  metrics.UpdateFrom(r);
  metrics.UpdateFrom(r);  // The same report twice adds nothing.
  PromText last = Scrape(metrics);
  EXPECT_THAT(last.Value("kms_plugin_dek_cache_hits_total"), Optional(9.0));
  EXPECT_THAT(last.Value("kms_plugin_rotations_total", {{"kind", "kek"}}), Optional(1.0));
  EXPECT_THAT(last.Value("kms_plugin_rotations_total", {{"kind", "key_id"}}), Optional(1.0));
  EXPECT_THAT(last.Value("kms_plugin_rotations_total", {{"kind", "data_key"}}), Optional(2.0));
  EXPECT_THAT(last.Value("kms_plugin_recovery_wraps_total"), Optional(2.0));
}

TEST(PluginMetricsTest, OutageAndDataKeyGaugesFollowTheReport) {
  PluginMetrics metrics;
  EnvelopeReport r;
  r.outage_window_active = true;
  r.outage_window_seconds_left = 42.5;
  r.data_key_age_seconds = 7;
  metrics.UpdateFrom(r);
  PromText during = Scrape(metrics);
  EXPECT_THAT(during.Value("kms_plugin_outage_window_active"), Optional(1.0));
  EXPECT_THAT(during.Value("kms_plugin_outage_window_seconds_left"), Optional(42.5));
  EXPECT_THAT(during.Value("kms_plugin_data_key_age_seconds"), Optional(7.0));
  r.outage_window_active = false;
  metrics.UpdateFrom(r);
  PromText after = Scrape(metrics);
  EXPECT_THAT(after.Value("kms_plugin_outage_window_active"), Optional(0.0));
  EXPECT_THAT(after.Value("kms_plugin_outage_window_seconds_left"), Optional(0.0));
}

TEST(PluginMetricsTest, KeyIdInfoKeepsOneSeriesAcrossKeyChanges) {
  PluginMetrics metrics;
  EnvelopeReport r;
  for (const char* key_id : {"k1", "k2", "k3", "k3"}) {
    r.status.key_id = key_id;
    metrics.UpdateFrom(r);
  }
  auto series = Scrape(metrics).Samples("kms_plugin_key_id_info");
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].value, 1.0);
  EXPECT_EQ(series[0].labels.at("key_id_hash").substr(0, 7), "sha256:");
}

TEST(PluginMetricsTest, LabelValuesComeFromFixedSetsWhateverTheInput) {
  PluginMetrics metrics;
  metrics.ObserveRpc(RpcMethod::kDecrypt, 99, 0.001);
  metrics.ObserveRpc(RpcMethod::kDecrypt, -1, 0.001);
  metrics.ObserveAdminCall(AdminMethod::kReport, 1000);
  metrics.ObserveKmsCall("x\"y\nz", KmsOperation::kUnwrap, static_cast<absl::StatusCode>(77), 0);
  PromText text = Scrape(metrics);
  EXPECT_THAT(text.Value("kms_plugin_rpc_total", {{"method", "Decrypt"}, {"code", "UNKNOWN"}}),
              Optional(2.0));
  EXPECT_THAT(text.Value("kms_plugin_admin_calls_total", {{"method", "Report"}}), Optional(1.0));
  EXPECT_THAT(text.Value("kms_plugin_admin_calls_total", {{"code", "UNKNOWN"}}), Optional(1.0));
  EXPECT_THAT(text.Value("kms_plugin_kms_calls_total",
                         {{"backend", "other"}, {"operation", "unwrap"}, {"code", "UNKNOWN"}}),
              Optional(1.0));
  EXPECT_EQ(CodeName(0), "OK");
  EXPECT_EQ(CodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(CodeName(17), "UNKNOWN");
  EXPECT_EQ(BackendLabel("pkcs11"), "pkcs11");
  EXPECT_EQ(BackendLabel("gcp"), "gcp");
  EXPECT_EQ(BackendLabel("azure"), "azure");
  EXPECT_EQ(ErrorClassLabel("key_state"), "key_state");
  EXPECT_EQ(ErrorClassLabel("ok"), "other");
  // Every (method, code) pair of the fixed tables: 3 x 17 rpc series at most.
  for (int code = -5; code < 40; ++code) metrics.ObserveRpc(RpcMethod::kStatus, code, 0);
  EXPECT_EQ(Scrape(metrics).Samples("kms_plugin_rpc_total").size(), 17u + 1u);
}

}  // namespace
}  // namespace kmsplugin
