// Issue 13, the audit log, end to end through the built kms-plugin: `serve --audit-log FILE`
// writes a kms_request line per backend request and an admin line per admin call naming the
// caller (SO_PEERCRED uid and pid of the `kms-plugin rotate` child), the file is 0600, SIGUSR1
// reopens it after a rename (logrotate), `--audit-log stderr` writes JSON lines to stderr, and
// SIGUSR1 without an audit log is ignored. The tear-down leak check of PluginTestBase also scans
// the audit files for the plaintexts sent and the keyring material.
#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/audit_lines.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

class PluginAuditTest : public PluginTestBase {
 protected:
  // Runs `kms-plugin rotate --kek` against `plugin`; returns the child's pid (after it exited).
  absl::StatusOr<pid_t> RotateKek(const PluginOptions& plugin) {
    ProcessOptions p;
    p.binary = PluginBinary();
    p.args = {"rotate", "--kek", "--socket", plugin.listen, "--timeout", "30s"};
    p.stdout_path = dir_->File("rotate.out");
    p.stderr_path = dir_->File("rotate.err");
    log_paths_.push_back(p.stderr_path);
    auto child = Subprocess::Start(p);
    if (!child.ok()) return child.status();
    const pid_t pid = (*child)->pid();
    auto exit = (*child)->Wait(absl::Seconds(90));
    if (!exit.ok()) return exit.status();
    if (!exit->exited || exit->code != 0) {
      return absl::InternalError("rotate: " + exit->ToString() + "\n" +
                                 ReadFile(p.stderr_path).value_or(""));
    }
    return pid;
  }
};

TEST_F(PluginAuditTest, RecordsKmsRequestsAndAdminCallsByPeerAndReopensOnSigusr1) {
  const std::string audit = dir_->File("audit.log");
  PluginOptions o = Options();
  o.args.insert(o.args.end(), {"--audit-log", audit});
  log_paths_.push_back(audit);
  log_paths_.push_back(audit + ".1");
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string seed = NewSeed();
  ASSERT_THAT(client.RoundTrip(seed), IsOkAndHolds(seed));
  ITEST_ASSIGN_OR_FAIL(pid_t rotate_pid, RotateKek(o));
  EXPECT_EQ(ModeOf(audit), 0600);

  const std::vector<nlohmann::json> lines = AuditLines(audit);
  const std::vector<nlohmann::json> requests = OfType(lines, "kms_request");
  const std::vector<nlohmann::json> admin = OfType(lines, "admin");
  EXPECT_EQ(requests.size() + admin.size(), lines.size());
  // At least the start-up wrap, the rotation and the new data key's wrap.
  ASSERT_GE(requests.size(), 3u);
  int rotations = 0;
  for (const nlohmann::json& j : requests) {
    EXPECT_EQ(j["backend"], "local");
    EXPECT_EQ(j["key"], keyring_path_);
    EXPECT_EQ(j["attempt"], 1);
    EXPECT_THAT(j["key_id"].get<std::string>(), ::testing::StartsWith("local:"));
    for (const char* field : {"time", "operation", "encryption_context", "result", "error_class",
                              "http_status", "latency_ms", "will_retry", "request_id", "uid"}) {
      EXPECT_TRUE(j.contains(field)) << field << " in " << j.dump();
    }
    if (j["operation"] == "rotate") ++rotations;
  }
  EXPECT_EQ(rotations, 1);
  int rotate_kek_calls = 0;
  for (const nlohmann::json& j : admin) {
    EXPECT_EQ(j["peer_uid"], static_cast<int64_t>(getuid())) << j.dump();
    EXPECT_EQ(j["peer_pid"], static_cast<int64_t>(rotate_pid)) << j.dump();
    if (j["action"] == "rotate_kek") {
      ++rotate_kek_calls;
      EXPECT_EQ(j["result"], "OK");
      EXPECT_NE(j["key_id_before"], j["key_id_after"]);
    }
  }
  EXPECT_EQ(rotate_kek_calls, 1);

  // logrotate: rename, then SIGUSR1; the plugin goes on serving and writes to a new file.
  ASSERT_EQ(rename(audit.c_str(), (audit + ".1").c_str()), 0);
  ASSERT_THAT(plugin->process().Signal(SIGUSR1), IsOk());
  ASSERT_TRUE(PollUntil([&] { return ModeOf(audit) == 0600; }, absl::Seconds(10))) << plugin->Log();
  ITEST_ASSIGN_OR_FAIL(pid_t second_pid, RotateKek(o));
  EXPECT_TRUE(plugin->Running());
  const std::vector<nlohmann::json> after = AuditLines(audit);
  ASSERT_FALSE(OfType(after, "admin").empty());
  EXPECT_EQ(OfType(after, "admin").front()["peer_pid"], static_cast<int64_t>(second_pid));
  EXPECT_EQ(AuditLines(audit + ".1").size(), lines.size());  // The old file kept its lines.
  EXPECT_THAT(plugin->Terminate(), IsOkAndHolds(::testing::Field(&ExitInfo::code, 0)));
}

TEST_F(PluginAuditTest, AuditLogStderrWritesJsonLinesToStderr) {
  PluginOptions o = Options();
  o.args.insert(o.args.end(), {"--audit-log", "stderr"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string seed = NewSeed();
  ASSERT_THAT(client.RoundTrip(seed), IsOkAndHolds(seed));
  ASSERT_THAT(plugin->Terminate(), IsOk());
  const std::vector<nlohmann::json> requests = OfType(JsonLines(plugin->Log()), "kms_request");
  ASSERT_FALSE(requests.empty()) << plugin->Log();
  EXPECT_EQ(requests.front()["operation"], "wrap");
  EXPECT_EQ(requests.front()["result"], "OK");
}

TEST_F(PluginAuditTest, Sigusr1WithoutAnAuditLogIsLoggedAndIgnored) {
  PluginOptions o = Options();
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ASSERT_THAT(plugin->process().Signal(SIGUSR1), IsOk());
  ASSERT_TRUE(PollUntil([&] { return plugin->Log().find("received SIGUSR1") != std::string::npos; },
                        absl::Seconds(10)))
      << plugin->Log();
  EXPECT_TRUE(plugin->Running());
  ApiserverKmsClient client(plugin->grpc_target());
  EXPECT_THAT(client.Status(), IsOk());
  EXPECT_THAT(plugin->Terminate(), IsOkAndHolds(::testing::Field(&ExitInfo::code, 0)));
}

}  // namespace
}  // namespace kmsplugin::testing
