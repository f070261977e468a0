// Process helpers for integration tests that drive real binaries (the built kms-plugin, test
// servers): a temporary directory, a child process that is always reaped, and a kms-plugin
// `serve` process that is ready when its gRPC Status answers.
//
//   ASSERT_OK_AND_ASSIGN(TempDir dir, TempDir::Create());
//   PluginOptions opts;
//   opts.listen = "unix://" + dir.File("kms.sock");
//   opts.args = LocalKmsArgs(dir.File("keyring.json"));
//   opts.log_path = dir.File("plugin.log");
//   auto plugin = PluginProcess::Start(opts);        // waits until Status says healthz "ok"
//   ... (*plugin)->grpc_target() ...
//   EXPECT_THAT((*plugin)->Terminate(), IsOkAndHolds(0));
//
// Several processes may run at once. Every process is killed (SIGKILL) and reaped by its
// destructor if still running, and is asked to die with its parent (PR_SET_PDEATHSIG), so a
// crashing test leaves nothing behind.
//
// Thread safety: none of these classes is thread-safe; use each from one thread. Start() must be
// called from a thread that outlives the child (PR_SET_PDEATHSIG fires when the forking thread
// exits), e.g. the test body's thread.
#ifndef KMSP_TESTS_INTEGRATION_PLUGIN_PROCESS_H_
#define KMSP_TESTS_INTEGRATION_PLUGIN_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kmsplugin::testing {

// A fresh directory (mkdtemp under $TMPDIR, or /tmp when that path would be too long for a unix
// socket); removed recursively by the destructor unless KMSP_ITEST_KEEP_TMP=1 is set (to inspect
// the logs of a failed test). Move-only.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create(std::string_view prefix = "kmsp-itest");
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(std::string_view name) const;

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Reads a whole file. NOT_FOUND / INTERNAL on failure.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// Writes (truncates) a file with `mode`.
absl::Status WriteFile(const std::string& path, std::string_view contents, int mode = 0600);

struct ProcessOptions {
  std::string binary;             // Absolute path of the executable.
  std::vector<std::string> args;  // argv[1..].
  std::vector<std::string> env;   // "NAME=value" entries added to (overriding) the environment.
  bool clear_env = false;         // Start from an empty environment instead of ours.
  std::string working_dir;        // "" = ours.
  // Where stdout and stderr go (appended; created 0600). "" = /dev/null. Equal paths share one
  // file descriptor, so the two streams interleave in order.
  std::string stdout_path;
  std::string stderr_path;
};

// How a child ended: exited normally with a code, or was killed by a signal.
struct ExitInfo {
  bool exited = false;  // WIFEXITED
  int code = -1;        // WEXITSTATUS when exited
  int signal = 0;       // WTERMSIG when killed
  std::string ToString() const;
  // From a waitpid() status.
  static ExitInfo FromWaitStatus(int wait_status);
};

// One child process (fork + execve). stdin is /dev/null.
class Subprocess {
 public:
  // INTERNAL if fork fails; FAILED_PRECONDITION (with errno text) if execve fails.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const ProcessOptions& options);
  // Runs to completion with a deadline; SIGKILLs the child and returns DEADLINE_EXCEEDED if it
  // outlives `timeout`.
  static absl::StatusOr<ExitInfo> Run(const ProcessOptions& options, absl::Duration timeout);

  ~Subprocess();  // SIGKILL + reap if still running.
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // False once the child has exited (and reaps it).
  bool Running();
  // Sends `sig` unless the child was already reaped. INTERNAL on kill() failure.
  absl::Status Signal(int sig);
  // Waits up to `timeout` for the child to end (no busy waiting: a pidfd is polled).
  // DEADLINE_EXCEEDED if it is still running.
  absl::StatusOr<ExitInfo> Wait(absl::Duration timeout);
  // SIGKILL and reap.
  absl::StatusOr<ExitInfo> Kill();
  const std::optional<ExitInfo>& exit_info() const { return exit_info_; }

 private:
  Subprocess(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  bool Reap(bool block);

  pid_t pid_;
  int pidfd_;  // -1 when the kernel has no pidfd_open.
  std::optional<ExitInfo> exit_info_;
};

// The built kms-plugin (KMSP_PLUGIN_BINARY).
std::string PluginBinary();
// {"--kms", "local", "--local-keyring", keyring_path, "--local-keyring-create"}.
std::vector<std::string> LocalKmsArgs(const std::string& keyring_path);
// The gRPC C++ target for a `--listen` value: "unix:///p" and "/p" -> "unix:///p",
// "unix:///@name" -> "unix-abstract:name" (kmsv2-contract.md §1.3).
std::string ListenToGrpcTarget(std::string_view listen);

struct PluginOptions {
  std::string binary;             // "" = PluginBinary().
  std::string listen;             // The --listen value.
  std::vector<std::string> args;  // After `serve --listen X`, e.g. LocalKmsArgs(...).
  std::vector<std::string> env;   // As ProcessOptions::env.
  std::string working_dir;        // As ProcessOptions::working_dir.
  std::string log_path;           // stdout + stderr, appended. Required.
  // Start() waits until Status answers with healthz "ok" (true) or answers at all (false).
  bool wait_healthy = true;
  absl::Duration ready_timeout = absl::Seconds(20);
};

// A `kms-plugin serve` process.
class PluginProcess {
 public:
  // Starts the process and waits for readiness (see PluginOptions). On failure the process is
  // killed and the status carries its exit and the tail of its log.
  static absl::StatusOr<std::unique_ptr<PluginProcess>> Start(const PluginOptions& options);
  // Starts without waiting (for tests that expect the process to fail).
  static absl::StatusOr<std::unique_ptr<PluginProcess>> StartNoWait(const PluginOptions& options);

  // Polls Status (gRPC WaitForReady, short per-attempt deadlines) until it answers (and, when
  // `healthy`, says healthz "ok") or `timeout` passes. FAILED_PRECONDITION if the process exits,
  // DEADLINE_EXCEEDED on timeout; both carry the log tail.
  absl::Status WaitUntilServing(absl::Duration timeout, bool healthy = true);

  // SIGTERM (or `sig`) and wait for the exit.
  absl::StatusOr<ExitInfo> Terminate(int sig = 15, absl::Duration timeout = absl::Seconds(15));
  absl::StatusOr<ExitInfo> Kill() { return process_->Kill(); }
  bool Running() { return process_->Running(); }

  Subprocess& process() { return *process_; }
  const std::string& grpc_target() const { return target_; }
  const PluginOptions& options() const { return options_; }
  // The whole log so far ("" if unreadable).
  std::string Log() const;

 private:
  PluginProcess(PluginOptions options, std::unique_ptr<Subprocess> process);
  std::string LogTail() const;

  PluginOptions options_;
  std::string target_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_INTEGRATION_PLUGIN_PROCESS_H_
