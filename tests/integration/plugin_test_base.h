// Shared fixture of the kms-plugin end-to-end tests: a fresh temp dir per test, plugins started
// as real processes with the local KMS backend on sockets in that dir, debug logging captured to
// a file, and a check at tear-down that no secret the test sent (seed / plaintext) or the keyring
// material appears in any log.
#ifndef KMSP_TESTS_INTEGRATION_PLUGIN_TEST_BASE_H_
#define KMSP_TESTS_INTEGRATION_PLUGIN_TEST_BASE_H_

#include <sys/stat.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/apiserver_validation.h"
#include "tests/integration/itest_util.h"
#include "tests/integration/kms_client.h"
#include "tests/integration/plugin_process.h"
#include "tests/matchers.h"

// ASSERT that a StatusOr is OK and move its value into `lhs`.
#define ITEST_ASSIGN_OR_FAIL(lhs, expr) \
  ITEST_ASSIGN_OR_FAIL_IMPL_(ITEST_CONCAT_(itest_statusor_, __LINE__), lhs, expr)
#define ITEST_CONCAT_INNER_(a, b) a##b
#define ITEST_CONCAT_(a, b) ITEST_CONCAT_INNER_(a, b)
// `tmp` is an identifier and `lhs` may be a declaration ("auto x"): neither can be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ITEST_ASSIGN_OR_FAIL_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

namespace kmsplugin::testing {

class PluginTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("kmsp-e2e");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    keyring_path_ = dir_->File("keyring.json");
  }

  // Fails the test if a log of this test reveals a recorded secret or the keyring material (in
  // any of LeakScanner's encodings), or holds a forbidden marker (as is).
  void TearDown() override {
    if (!dir_.has_value()) return;
    LeakScanner scanner = SecretsScanner();
    for (const std::string& log_path : log_paths_) {
      auto log = ReadFile(log_path);
      if (!log.ok()) continue;
      if (scanner.size() != 0) {
        std::vector<std::string> findings = scanner.Scan(*log);
        EXPECT_THAT(findings, ::testing::IsEmpty()) << "secrets found in " << log_path;
      }
      for (const std::string& marker : forbidden_markers_) {
        EXPECT_THAT(*log, ::testing::Not(::testing::HasSubstr(marker))) << log_path;
      }
    }
  }

  // Options for a plugin listening on <dir>/<name>.sock with the test's keyring and debug logs in
  // <dir>/<name>.log.
  PluginOptions Options(const std::string& name = "kms") {
    PluginOptions o;
    o.listen = "unix://" + dir_->File(name + ".sock");
    o.args = LocalKmsArgs(keyring_path_);
    o.args.push_back("--log-level");
    o.args.push_back("debug");
    o.log_path = dir_->File(name + ".log");
    o.working_dir = dir_->path();
    return o;
  }

  // Starts a plugin and waits until it is healthy; records its log for the leak check.
  absl::StatusOr<std::unique_ptr<PluginProcess>> Start(const PluginOptions& options) {
    log_paths_.push_back(options.log_path);
    return PluginProcess::Start(options);
  }
  absl::StatusOr<std::unique_ptr<PluginProcess>> StartNoWait(const PluginOptions& options) {
    log_paths_.push_back(options.log_path);
    return PluginProcess::StartNoWait(options);
  }

  // Remembers a secret the test sends, for the tear-down leak check.
  void RecordSecret(const std::string& secret) {
    if (secret.size() >= 8) secrets_.push_back(secret);
  }
  // Text no log of this test may hold, whatever follows it: the prefix every token of a fake
  // server starts with ("hvs.", "ya29."), a PEM header.
  void ForbidInLogs(const std::string& marker) { forbidden_markers_.push_back(marker); }

  // Sets `flag`'s value in `args` ("--flag value" form), or appends the pair.
  static void SetArg(std::vector<std::string>& args, const std::string& flag,
                     const std::string& value) {
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == flag) {
        args[i + 1] = value;
        return;
      }
    }
    args.push_back(flag);
    args.push_back(value);
  }

  // Runs `kms-plugin rotate --kek --quiet` against `plugin` and expects it to succeed; its output
  // joins the tear-down leak scan.
  void RunRotateKek(const PluginProcess& plugin) {
    ProcessOptions rotate;
    rotate.binary = PluginBinary();
    rotate.args = {"rotate", "--socket", plugin.options().listen, "--kek", "--quiet"};
    rotate.stdout_path = rotate.stderr_path = dir_->File("rotate.out");
    log_paths_.push_back(rotate.stdout_path);
    absl::StatusOr<ExitInfo> exit = Subprocess::Run(rotate, absl::Seconds(60));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_TRUE(exit->exited && exit->code == 0) << exit->ToString() << "\n"
                                                 << ReadFile(rotate.stdout_path).value_or("");
  }

  // A unique plaintext naming `label` (recorded).
  std::string Secret(const std::string& label) {
    std::string s = "plaintext-" + label + "-" + NewUuid();
    RecordSecret(s);
    return s;
  }

  // Polls the plugin's Status until `done` holds for it (20 s at most).
  static bool WaitFor(ApiserverKmsClient& client,
                      const std::function<bool(const v2::StatusResponse&)>& done) {
    return PollUntil(
        [&] {
          auto s = client.Status();
          return s.ok() && done(*s);
        },
        absl::Seconds(20));
  }

  // A fresh random 32-byte seed (recorded).
  std::string NewSeed() {
    auto bytes = RandomSeedBytes();
    RecordSecret(bytes);
    return bytes;
  }

  // Scanner over the recorded secrets and every KEK version in the keyring file (if present).
  LeakScanner SecretsScanner() const {
    LeakScanner scanner;
    for (size_t i = 0; i < secrets_.size(); ++i) {
      scanner.Add(secrets_[i], "secret #" + std::to_string(i));
    }
    auto materials = KeyringMaterials(keyring_path_);
    if (materials.ok()) {
      for (size_t i = 0; i < materials->size(); ++i) {
        scanner.Add((*materials)[i], "keyring material #" + std::to_string(i));
      }
    }
    return scanner;
  }

  // The decoded KEK versions of a local keyring file: keys[].material, base64 of 32 bytes.
  static absl::StatusOr<std::vector<std::string>> KeyringMaterials(const std::string& path);
  // The material strings exactly as written in the file (base64 text).
  static absl::StatusOr<std::vector<std::string>> KeyringMaterialTexts(const std::string& path);

  static std::string RandomSeedBytes();

  // Polls `done` (every 20 ms) until it returns true or `timeout` passes; returns its last value.
  template <typename F>
  static bool PollUntil(F done, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      if (done()) return true;
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // Mode bits (& 07777) of a path, or -1.
  static int ModeOf(const std::string& path) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return -1;
    return static_cast<int>(st.st_mode & 07777);
  }
  static bool IsSocket(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  }

  // Names of the entries of the test dir, each with its mode (lstat & 07777) and whether it is a
  // socket.
  struct Entry {
    int mode = 0;
    bool socket = false;
  };
  std::map<std::string, Entry> DirEntries() const;

  std::optional<TempDir> dir_;
  std::string keyring_path_;
  std::vector<std::string> log_paths_;
  std::vector<std::string> secrets_;
  std::vector<std::string> forbidden_markers_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_INTEGRATION_PLUGIN_TEST_BASE_H_
