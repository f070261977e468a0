// End-to-end operations features of `kms-plugin serve --kms aws` against the fake AWS server
// (issue 13): the audit log has one line per AWS request attempt, a throttled retry included,
// with the server's request ids, and /metrics counts that retry by error class.
#include <set>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/aws/aws_plugin_fixture.h"
#include "tests/integration/metrics_scrape.h"

namespace kmsplugin::testing {
namespace {

// Issue 13: --audit-log writes one line per AWS request attempt, a throttled retry included, and
// each line's request_id is one the server sent (x-amzn-RequestId): the audit trail matches the
// server's (CloudTrail's) event for event. The tear-down leak check scans the audit file too.
TEST_F(AwsPluginE2eTest, TheAuditLogHasOneLinePerRequestWithTheServersIdsAndMetricsCountTheRetry) {
  PluginOptions o = AwsOptions();
  const std::string audit = dir_->File("audit.log");
  o.args.insert(o.args.end(), {"--audit-log", audit, "--health-addr", "127.0.0.1:0"});
  log_paths_.push_back(audit);
  const nlohmann::json fault = {{"service", "kms"}, {"op", "Encrypt"}, {"kind", "throttle"}};
  ASSERT_TRUE(server_->Admin("/admin/faults", fault).ok());  // Count 1 by default.
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  const std::string plaintext = Secret("audit");
  ASSERT_THAT(ApiserverKmsClient(plugin->grpc_target()).RoundTrip(plaintext),
              IsOkAndHolds(plaintext));
  // The same retry, counted by /metrics (the backend reports to the audit log and the retry
  // counter through one fan-out): throttled 1, every other class 0.
  ITEST_ASSIGN_OR_FAIL(int port, HealthPort(*plugin));
  ITEST_ASSIGN_OR_FAIL(PromText metrics, Scrape(port));
  const auto retries = metrics.Samples("kms_plugin_kms_retries_total");
  EXPECT_EQ(retries.size(), 9u);
  for (const PromSample& s : retries) {
    EXPECT_EQ(s.labels.at("backend"), "aws");
    EXPECT_EQ(s.value, s.labels.at("error_class") == "throttled" ? 1.0 : 0.0)
        << s.labels.at("error_class");
  }
  ASSERT_THAT(plugin->Terminate(), IsOk());
  std::set<std::string> sent;
  for (const auto& r : ServerLog()) {
    if (r["service"] == "kms") sent.insert(r["request_id"].get<std::string>());
  }
  std::set<std::string> audited;
  int encrypts = 0;
  std::istringstream in(ReadFile(audit).value_or(""));
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    ASSERT_EQ(j["type"], "kms_request");
    EXPECT_EQ(j["backend"], "aws");
    EXPECT_EQ(j["key"], "alias/k8s");
    EXPECT_TRUE(audited.insert(j["request_id"].get<std::string>()).second) << line;
    if (j["operation"] == "Encrypt") {
      EXPECT_EQ(j["attempt"], ++encrypts) << line;
      EXPECT_EQ(j["will_retry"], encrypts == 1) << line;
      EXPECT_EQ(j["encryption_context"], "cluster=e2e,kms-plugin=kubernetes-kms-v2");
    }
  }
  EXPECT_EQ(encrypts, 2);  // The throttled start-up Encrypt and its retry.
  EXPECT_EQ(audited, sent);
  EXPECT_EQ(ModeOf(audit), 0600);
}

}  // namespace
}  // namespace kmsplugin::testing
