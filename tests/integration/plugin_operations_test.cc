// Operations features of the real binary (issue 13): /metrics by Prometheus convention after a
// workload (every family's type, counters named _total and never decreasing, the values that
// must have moved), `--log-format json` (stderr holds only JSON lines, with uid and key_id), and
// `--fips` refusing to start where OpenSSL has no FIPS provider.
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/integration/metrics_scrape.h"
#include "tests/integration/plugin_test_base.h"
#include "tests/prometheus_text.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

class PluginOperationsTest : public PluginTestBase {
 protected:
  // `kms-plugin rotate --kek --quiet --socket <plugin>`; its exit code.
  absl::StatusOr<ExitInfo> RotateKek(const PluginOptions& plugin) {
    ProcessOptions p;
    p.binary = PluginBinary();
    p.args = {"rotate", "--kek", "--quiet", "--socket", plugin.listen, "--timeout", "20s"};
    p.stdout_path = dir_->File("rotate.out");
    p.stderr_path = dir_->File("rotate.err");
    log_paths_.push_back(p.stderr_path);
    return Subprocess::Run(p, absl::Seconds(60));
  }
};

// The families /metrics serves with the local backend (no recovery key) and their types.
const std::map<std::string, std::string>& ExpectedFamilies() {
  static const auto* families = new std::map<std::string, std::string>{
      {"kms_plugin_rpc_total", "counter"},
      {"kms_plugin_rpc_duration_seconds", "histogram"},
      {"kms_plugin_kms_calls_total", "counter"},
      {"kms_plugin_kms_call_duration_seconds", "histogram"},
      {"kms_plugin_kms_retries_total", "counter"},
      {"kms_plugin_admin_calls_total", "counter"},
      {"kms_plugin_rotations_total", "counter"},
      {"kms_plugin_dek_cache_hits_total", "counter"},
      {"kms_plugin_dek_cache_misses_total", "counter"},
      {"kms_plugin_healthy", "gauge"},
      {"kms_plugin_outage_window_active", "gauge"},
      {"kms_plugin_outage_window_seconds_left", "gauge"},
      {"kms_plugin_data_key_age_seconds", "gauge"},
      {"kms_plugin_data_key_uses", "gauge"},
      {"kms_plugin_dek_cache_size", "gauge"},
      {"kms_plugin_key_id_info", "gauge"},
  };
  return *families;
}

TEST_F(PluginOperationsTest, MetricsFollowPrometheusConventionAndMoveWithAWorkload) {
  PluginOptions o = Options();
  o.args.insert(o.args.end(), {"--health-addr", "127.0.0.1:0"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ITEST_ASSIGN_OR_FAIL(int port, HealthPort(*plugin));
  ApiserverKmsClient client(plugin->grpc_target());

  // Five ciphertexts under the first data key, then a KEK rotation through the admin API.
  std::vector<v2::EncryptResponse> old;
  for (int i = 0; i < 5; ++i) {
    ITEST_ASSIGN_OR_FAIL(auto e, client.Encrypt(NewSeed()));
    old.push_back(e);
  }
  ITEST_ASSIGN_OR_FAIL(ExitInfo rotated, RotateKek(o));
  ASSERT_TRUE(rotated.exited && rotated.code == 0) << rotated.ToString();
  ITEST_ASSIGN_OR_FAIL(PromText before, Scrape(port));

  // The measured workload: 3 Encrypts and their Decrypts under the new data key (from memory),
  // and the 5 old ciphertexts' Decrypts (their data key is no longer current: 5 cache hits).
  constexpr int kEncrypts = 3;
  for (int i = 0; i < kEncrypts; ++i) ASSERT_THAT(client.RoundTrip(NewSeed()), IsOk());
  for (const auto& e : old) {
    ASSERT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(e)), IsOk());
  }
  ITEST_ASSIGN_OR_FAIL(PromText after, Scrape(port));
  ASSERT_THAT(after.errors, IsEmpty());

  // Every family, and nothing else, with its type; counters and only counters end in _total.
  std::map<std::string, std::string> types = after.types;
  EXPECT_EQ(types, ExpectedFamilies());
  for (const auto& [name, type] : types) {
    const bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(type == "counter", total) << name << " is a " << type;
  }
  for (const PromSample& s : after.samples) {
    EXPECT_FALSE(after.FamilyOf(s.name).empty()) << "sample without a # TYPE: " << s.name;
  }

  auto delta = [&](const std::string& name, const std::map<std::string, std::string>& labels) {
    return after.Value(name, labels).value_or(-1) - before.Value(name, labels).value_or(0);
  };
  EXPECT_EQ(delta("kms_plugin_rpc_total", {{"method", "Encrypt"}, {"code", "OK"}}), kEncrypts);
  EXPECT_EQ(delta("kms_plugin_rpc_total", {{"method", "Decrypt"}, {"code", "OK"}}), kEncrypts + 5);
  EXPECT_EQ(delta("kms_plugin_rpc_duration_seconds_count", {{"method", "Decrypt"}}), kEncrypts + 5);
  EXPECT_EQ(delta("kms_plugin_dek_cache_hits_total", {}), 5);
  EXPECT_EQ(delta("kms_plugin_dek_cache_misses_total", {}), 0);

  // The rotation: one KEK rotation by this plugin, one key_id change, the first data key and the
  // one under the new KEK version (the rotator may also rotate the data key once more).
  EXPECT_THAT(after.Value("kms_plugin_rotations_total", {{"kind", "kek"}}), Optional(1.0));
  EXPECT_THAT(after.Value("kms_plugin_rotations_total", {{"kind", "key_id"}}), Optional(1.0));
  EXPECT_GE(after.Value("kms_plugin_rotations_total", {{"kind", "data_key"}}).value_or(0), 2.0);
  EXPECT_THAT(
      after.Value("kms_plugin_admin_calls_total", {{"method", "RotateKek"}, {"code", "OK"}}),
      Optional(1.0));
  EXPECT_THAT(after.Value("kms_plugin_kms_calls_total",
                          {{"backend", "local"}, {"operation", "rotate"}, {"code", "OK"}}),
              Optional(1.0));
  EXPECT_GE(after
                .Value("kms_plugin_kms_calls_total",
                       {{"backend", "local"}, {"operation", "wrap"}, {"code", "OK"}})
                .value_or(0),
            2.0);
  // Retries: present for the backend at 0 for each of the 9 error classes (the local backend
  // does not retry).
  auto retries = after.Samples("kms_plugin_kms_retries_total");
  EXPECT_EQ(retries.size(), 9u);
  for (const auto& s : retries) {
    EXPECT_EQ(s.labels.at("backend"), "local");
    EXPECT_EQ(s.value, 0.0);
  }

  // Gauges: healthy, not in an outage, a data key of a known age used by the 3 Encrypts (and
  // possibly the rotator's canary), one key_id series.
  EXPECT_THAT(after.Value("kms_plugin_healthy"), Optional(1.0));
  EXPECT_THAT(after.Value("kms_plugin_outage_window_active"), Optional(0.0));
  EXPECT_THAT(after.Value("kms_plugin_outage_window_seconds_left"), Optional(0.0));
  EXPECT_GE(after.Value("kms_plugin_data_key_age_seconds").value_or(-1), 0.0);
  EXPECT_LT(after.Value("kms_plugin_data_key_age_seconds").value_or(1e9), 600.0);
  EXPECT_GE(after.Value("kms_plugin_data_key_uses").value_or(0), kEncrypts);
  EXPECT_GE(after.Value("kms_plugin_dek_cache_size").value_or(0), 2.0);
  EXPECT_EQ(after.Samples("kms_plugin_key_id_info").size(), 1u);

  // A later scrape: no counter (nor histogram count, sum or bucket) went down.
  ASSERT_THAT(client.RoundTrip(NewSeed()), IsOk());
  ITEST_ASSIGN_OR_FAIL(PromText later, Scrape(port));
  int compared = 0;
  for (const PromSample& s : after.samples) {
    const std::string type = after.types[after.FamilyOf(s.name)];
    if (type != "counter" && type != "histogram") continue;
    auto now = later.Value(s.name, s.labels);
    ASSERT_TRUE(now.has_value()) << s.name << " disappeared";
    EXPECT_GE(*now, s.value) << s.name << " decreased";
    ++compared;
  }
  EXPECT_GT(compared, 50);
  EXPECT_EQ(*later.Value("kms_plugin_rpc_total", {{"method", "Encrypt"}, {"code", "OK"}}) -
                *after.Value("kms_plugin_rpc_total", {{"method", "Encrypt"}, {"code", "OK"}}),
            1.0);
}

TEST_F(PluginOperationsTest, JsonLogFormatWritesOnlyJsonLinesWithUidAndKeyId) {
  PluginOptions o = Options();  // --log-level debug: every RPC is logged.
  o.args.insert(o.args.end(), {"--log-format", "json"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(auto status, client.Status());
  ITEST_ASSIGN_OR_FAIL(auto encrypted, client.Encrypt(NewSeed()));
  v2::DecryptRequest request = ApiserverKmsClient::DecryptRequestFor(encrypted);
  request.set_uid("json-log-uid-0001");
  ASSERT_THAT(client.Decrypt(request), IsOk());
  // A refused request: logged at info, in the scope of its uid, with a message to escape.
  request.set_uid("json-log-uid-0002");
  request.set_ciphertext("not \"a\" ciphertext\n");
  EXPECT_FALSE(client.Decrypt(request).ok());
  EXPECT_TRUE(
      PollUntil([&] { return plugin->Log().find("json-log-uid-0002") != std::string::npos; },
                absl::Seconds(10)));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->Terminate());
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString();

  static const std::regex kTime(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$)");
  const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical"};
  std::string log = plugin->Log();
  int lines = 0;
  bool startup = false;
  bool ok_with_uid = false;
  bool refused_with_uid = false;
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    ASSERT_NE(end, std::string::npos) << "unterminated last line";
    std::string line = log.substr(start, end - start);
    start = end + 1;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(!j.is_discarded() && j.is_object()) << "not a JSON object: " << line;
    ++lines;
    ASSERT_TRUE(j.contains("time") && j["time"].is_string()) << line;
    EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(), kTime)) << line;
    ASSERT_TRUE(j.contains("level") && j["level"].is_string()) << line;
    EXPECT_EQ(levels.count(j["level"].get<std::string>()), 1u) << line;
    ASSERT_TRUE(j.contains("msg") && j["msg"].is_string()) << line;
    for (const auto& [k, v] : j.items()) {
      EXPECT_TRUE(k == "time" || k == "level" || k == "msg" || k == "uid" || k == "key_id")
          << "unexpected field " << k << ": " << line;
      EXPECT_TRUE(v.is_string()) << line;
    }
    const std::string msg = j["msg"].get<std::string>();
    if (msg.rfind("serving KMS v2 on", 0) == 0) {
      startup = true;
      EXPECT_EQ(j.value("key_id", ""), status.key_id()) << line;
      EXPECT_THAT(msg, HasSubstr("key_id " + status.key_id()));
    }
    if (j.value("uid", "") == "json-log-uid-0001") {
      ok_with_uid = true;
      EXPECT_EQ(j.value("key_id", ""), encrypted.key_id()) << line;
    }
    if (j.value("uid", "") == "json-log-uid-0002" && j["level"] == "info") refused_with_uid = true;
  }
  EXPECT_GE(lines, 4);
  EXPECT_TRUE(startup) << log;
  EXPECT_TRUE(ok_with_uid) << log;
  EXPECT_TRUE(refused_with_uid) << log;
}

TEST_F(PluginOperationsTest, FipsRefusesToStartWithoutAFipsProviderAndCreatesNoSocket) {
  PluginOptions o = Options();
  o.args.push_back("--fips");
  // Where OpenSSL looks for fips.so: an empty directory, so no host provider is found either.
  o.env = {"OPENSSL_MODULES=" + dir_->path()};
  ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(o));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->process().Wait(absl::Seconds(20)));
  EXPECT_TRUE(exit.exited) << exit.ToString();
  EXPECT_NE(exit.code, 0);
  std::string log = plugin->Log();
  EXPECT_THAT(log, HasSubstr("cannot load OpenSSL's FIPS provider"));
  EXPECT_THAT(log, HasSubstr("\"fips\""));
  EXPECT_THAT(log, HasSubstr("modules directory " + dir_->path()));
  EXPECT_THAT(log, HasSubstr("OpenSSL config"));
  EXPECT_THAT(log, HasSubstr("openssl fipsinstall"));
  const std::string socket = o.listen.substr(std::string("unix://").size());
  EXPECT_FALSE(IsSocket(socket));
  EXPECT_EQ(ModeOf(socket), -1) << "the socket file exists";
  EXPECT_EQ(ModeOf(socket + ".admin"), -1);
  EXPECT_EQ(ModeOf(keyring_path_), -1) << "the backend was created";
}

}  // namespace
}  // namespace kmsplugin::testing
