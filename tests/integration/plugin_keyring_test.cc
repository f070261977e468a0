// Issue 9 hardening, end to end through the built kms-plugin: the local keyring file as the
// operator meets it (a FIFO or a symlink as the keyring, a start-up stuck on the keyring lock, a
// duration flag of 0s, `rotate --kek` at the largest version or while the keyring lock is held).
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;

// Blocked flock() waiters of `pid` in /proc/locks ("N: -> FLOCK  ADVISORY  WRITE PID ...").
int BlockedFlockWaiters(pid_t pid) {
  std::ifstream locks("/proc/locks");
  std::string line;
  int n = 0;
  while (std::getline(locks, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() > 5 && f[1] == "->" && f[2] == "FLOCK" && f[5] == std::to_string(pid)) ++n;
  }
  return n;
}

// An exclusive flock on a file, as another process (a stuck rotation) would hold it.
class HeldLock {
 public:
  explicit HeldLock(const std::string& path)
      : fd_(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0 && flock(fd_, LOCK_EX) != 0) Release();
  }
  ~HeldLock() { Release(); }
  bool held() const { return fd_ >= 0; }
  void Release() {
    if (fd_ < 0) return;
    flock(fd_, LOCK_UN);
    close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// nlohmann::json's move constructor is noexcept; clang-tidy follows it into an unreachable throw
// in json's internals and blames the implicit move constructor of this struct.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct RotateRun {
  ExitInfo exit;
  std::string out;
  std::string err;
  nlohmann::json json;  // The last stdout line (null if not JSON).
};

class PluginKeyringTest : public PluginTestBase {
 protected:
  // `kms-plugin rotate --kek --socket <plugin> --timeout <timeout>` as a process.
  absl::StatusOr<RotateRun> RotateKek(const PluginOptions& plugin, absl::Duration timeout) {
    ProcessOptions p;
    p.binary = PluginBinary();
    p.args = {"rotate",      "--kek",     "--socket",
              plugin.listen, "--timeout", absl::FormatDuration(timeout)};
    const std::string tag = std::to_string(++rotate_runs_);
    p.stdout_path = dir_->File("rotate" + tag + ".out");
    p.stderr_path = dir_->File("rotate" + tag + ".err");
    log_paths_.push_back(p.stderr_path);
    auto exit = Subprocess::Run(p, timeout + absl::Seconds(60));
    if (!exit.ok()) return exit.status();
    RotateRun run;
    run.exit = *exit;
    run.out = ReadFile(p.stdout_path).value_or("");
    run.err = ReadFile(p.stderr_path).value_or("");
    std::string last = run.out;
    while (!last.empty() && last.back() == '\n') last.pop_back();
    last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
    run.json = nlohmann::json::parse(last, nullptr, false);
    if (run.json.is_discarded()) run.json = nullptr;
    return run;
  }

  std::string Slurp(const std::string& path) { return ReadFile(path).value_or("<unreadable>"); }

  size_t KeyringVersions() {
    auto j = nlohmann::json::parse(Slurp(keyring_path_), nullptr, false);
    return j.is_discarded() || !j.contains("keys") ? 0 : j["keys"].size();
  }

  // A format-1 keyring holding only `version` (as primary).
  static std::string KeyringWithVersion(uint32_t version) {
    return "{\n  \"kind\": \"kms-plugin-local-keyring\",\n  \"format\": 1,\n"
           "  \"keyring_id\": \"00112233445566778899aabbccddeeff\",\n  \"primary\": " +
           std::to_string(version) +
           ",\n  \"keys\": [\n    {\n      \"version\": " + std::to_string(version) +
           ",\n      \"created\": \"2026-11-23T12:00:00Z\",\n      \"material\": "
           "\"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\"\n    }\n  ]\n}\n";
  }

  int rotate_runs_ = 0;
};

TEST_F(PluginKeyringTest, AFifoAsTheKeyringMakesServeExitAtOnceWithAClearMessage) {
  const std::string fifo = dir_->File("fifo.json");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  PluginOptions o = Options();
  o.args = LocalKmsArgs(fifo);
  ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(o));
  // A bound for an unfixed plugin, which blocks in open() for ever; no timing is asserted.
  auto exit = plugin->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << "serve still running with a FIFO as the keyring; log:\n"
                         << plugin->Log();
  EXPECT_TRUE(exit->exited) << exit->ToString();
  EXPECT_EQ(exit->code, 1);
  EXPECT_THAT(plugin->Log(), HasSubstr("not a regular file"));
}

TEST_F(PluginKeyringTest, SigtermEndsAStartUpThatWaitsForTheKeyringLock) {
  // No keyring yet, and its lock is held: start-up waits to create it.
  HeldLock lock(keyring_path_ + ".lock");
  ASSERT_TRUE(lock.held());
  ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(Options()));
  const pid_t pid = plugin->process().pid();
  ASSERT_TRUE(PollUntil([&] { return BlockedFlockWaiters(pid) > 0 || !plugin->Running(); },
                        absl::Seconds(30)));
  ASSERT_TRUE(plugin->Running()) << plugin->Log();
  ASSERT_TRUE(plugin->process().Signal(SIGTERM).ok());
  // A bound for an unfixed plugin, which keeps SIGTERM blocked; no timing is asserted.
  auto exit = plugin->process().Wait(absl::Seconds(30));
  lock.Release();
  ASSERT_TRUE(exit.ok()) << "SIGTERM did not end the start-up; log:\n" << plugin->Log();
  EXPECT_TRUE(exit->exited) << exit->ToString();
  EXPECT_EQ(exit->code, 1);
  EXPECT_THAT(plugin->Log(), HasSubstr("during start-up"));
  EXPECT_NE(access(keyring_path_.c_str(), F_OK), 0);  // Nothing was created.
}

TEST_F(PluginKeyringTest, DurationFlagsBelowTheirMinimumAreRejectedWithAClearMessage) {
  const std::vector<std::pair<std::string, std::string>> cases = {{"--key-poll-interval", "0s"},
                                                                  {"--key-poll-interval", "10ms"},
                                                                  {"--kms-timeout", "0s"},
                                                                  {"--dek-max-age", "0s"},
                                                                  {"--shutdown-grace", "-1s"}};
  int n = 0;
  for (const auto& [flag, value] : cases) {
    PluginOptions o = Options("flags" + std::to_string(++n));
    o.args.push_back(flag);
    o.args.push_back(value);
    ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(o));
    auto exit = plugin->process().Wait(absl::Seconds(30));
    ASSERT_TRUE(exit.ok()) << flag << " " << value << " was accepted; log:\n" << plugin->Log();
    EXPECT_TRUE(exit->exited && exit->code != 0) << flag << ": " << exit->ToString();
    EXPECT_THAT(plugin->Log(), HasSubstr(flag)) << value;
    EXPECT_THAT(plugin->Log(), HasSubstr("at least")) << flag << " " << value;
  }
}

TEST_F(PluginKeyringTest, ASymlinkedKeyringNeedsAllowSecretSymlinks) {
  const std::string real = dir_->File("real.json");
  ASSERT_TRUE(WriteFile(real, KeyringWithVersion(1), 0600).ok());
  ASSERT_EQ(symlink(real.c_str(), keyring_path_.c_str()), 0);
  ITEST_ASSIGN_OR_FAIL(auto refused, StartNoWait(Options("refused")));
  auto exit = refused->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(exit.ok()) << refused->Log();
  EXPECT_TRUE(exit->exited && exit->code == 1) << exit->ToString();
  EXPECT_THAT(refused->Log(), HasSubstr("--allow-secret-symlinks"));

  PluginOptions o = Options("allowed");
  o.args.push_back("--allow-secret-symlinks");
  ITEST_ASSIGN_OR_FAIL(auto allowed, Start(o));
  EXPECT_THAT(allowed->Terminate(), IsOkAndHolds(::testing::Field(&ExitInfo::code, 0)));
}

TEST_F(PluginKeyringTest, RotateKekAtTheLargestVersionFailsAndLeavesTheKeyringUsable) {
  ASSERT_TRUE(WriteFile(keyring_path_, KeyringWithVersion(4294967295u), 0600).ok());
  const std::string before = Slurp(keyring_path_);
  PluginOptions o = Options();
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ITEST_ASSIGN_OR_FAIL(RotateRun run, RotateKek(o, absl::Seconds(5)));
  EXPECT_TRUE(run.exit.exited && run.exit.code == 1) << run.exit.ToString() << run.err;
  ASSERT_TRUE(run.json.is_object()) << run.out;
  EXPECT_EQ(run.json["kek_rotated"], false);
  EXPECT_THAT(run.json["error"].get<std::string>(), HasSubstr("4294967295"));
  EXPECT_EQ(Slurp(keyring_path_), before);
  // The plugin restarts on the untouched keyring.
  ASSERT_TRUE(plugin->Terminate().ok());
  ITEST_ASSIGN_OR_FAIL(auto restarted, Start(Options("restarted")));
  EXPECT_TRUE(restarted->Running());
}

TEST_F(PluginKeyringTest, ARotateThatTimedOutOnTheKeyringLockNeverRotatesLater) {
  PluginOptions o = Options();
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ASSERT_EQ(KeyringVersions(), 1u);
  HeldLock lock(keyring_path_ + ".lock");
  ASSERT_TRUE(lock.held());
  ITEST_ASSIGN_OR_FAIL(RotateRun timed_out, RotateKek(o, absl::Seconds(2)));
  EXPECT_TRUE(timed_out.exit.exited && timed_out.exit.code == 1) << timed_out.err;
  ASSERT_TRUE(timed_out.json.is_object()) << timed_out.out;
  EXPECT_EQ(timed_out.json["kek_rotated"], false);
  // Told "not rotated": the plugin is not still waiting to rotate once the lock is free.
  EXPECT_EQ(BlockedFlockWaiters(plugin->process().pid()), 0);
  lock.Release();
  ITEST_ASSIGN_OR_FAIL(RotateRun ok, RotateKek(o, absl::Seconds(30)));
  EXPECT_TRUE(ok.exit.exited && ok.exit.code == 0) << ok.err;
  EXPECT_EQ(KeyringVersions(), 2u);
}

TEST_F(PluginKeyringTest, TwoSimultaneousKekRotationsBothSucceedAndTheNodesAgree) {
  // Issue 19: each run may meet the other's newer key_id in its canary; it must follow it.
  PluginOptions a = Options("a");
  PluginOptions b = Options("b");
  ITEST_ASSIGN_OR_FAIL(auto plugin_a, Start(a));
  ITEST_ASSIGN_OR_FAIL(auto plugin_b, Start(b));
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::unique_ptr<Subprocess>> runs;
    std::vector<std::string> outs;
    for (int i = 0; i < 2; ++i) {
      ProcessOptions p;
      p.binary = PluginBinary();
      p.args = {"rotate", "--kek", "--socket", a.listen, "--socket", b.listen, "--timeout", "30s"};
      const std::string tag = std::to_string(round) + "-" + std::to_string(i);
      p.stdout_path = dir_->File("concurrent" + tag + ".out");
      p.stderr_path = dir_->File("concurrent" + tag + ".err");
      log_paths_.push_back(p.stderr_path);
      outs.push_back(p.stdout_path);
      ITEST_ASSIGN_OR_FAIL(auto run, Subprocess::Start(p));
      runs.push_back(std::move(run));
    }
    for (int i = 0; i < 2; ++i) {
      auto exit = runs[i]->Wait(absl::Seconds(90));
      ASSERT_TRUE(exit.ok()) << exit.status();
      EXPECT_TRUE(exit->exited && exit->code == 0)
          << "round " << round << " run " << i << ": " << exit->ToString() << "\n"
          << Slurp(outs[i]);
    }
  }
  EXPECT_EQ(KeyringVersions(), 1u + 2 * kRounds);
  ApiserverKmsClient client_a(plugin_a->grpc_target());
  ApiserverKmsClient client_b(plugin_b->grpc_target());
  auto status_a = client_a.Status();
  auto status_b = client_b.Status();
  ASSERT_TRUE(status_a.ok() && status_b.ok());
  EXPECT_EQ(status_a->key_id(), status_b->key_id());
  EXPECT_THAT(status_a->key_id(), ::testing::EndsWith(":v" + std::to_string(1 + 2 * kRounds)));
}

}  // namespace
}  // namespace kmsplugin::testing
