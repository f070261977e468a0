#include "tests/integration/plugin_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/error_text.h"
#include "fmt/format.h"
#include "tests/integration/kms_client.h"

extern char** environ;

namespace kmsplugin::testing {
namespace {

constexpr size_t kMaxSocketPathForTempDir = 80;  // sun_path is 108 bytes; leave room for names.


int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

// Opens an output file for the child (O_APPEND so several writers interleave safely).
absl::StatusOr<int> OpenOutput(const std::string& path) {
  if (path.empty()) {
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return absl::InternalError("open /dev/null: " + ErrnoText(errno));
    return fd;
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(fmt::format("open {}: {}", path, ErrnoText(errno)));
  return fd;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TempDir

absl::StatusOr<TempDir> TempDir::Create(std::string_view prefix) {
  std::string base = "/tmp";
  if (const char* env = getenv("TMPDIR");
      env != nullptr && *env != '\0' &&
      strlen(env) + prefix.size() + 8 < kMaxSocketPathForTempDir) {
    base = env;
  }
  std::string tmpl = fmt::format("{}/{}-XXXXXX", base, prefix);
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return absl::InternalError(fmt::format("mkdtemp {}: {}", tmpl, ErrnoText(errno)));
  }
  return TempDir(std::string(buf.data()));
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    this->~TempDir();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (const char* keep = getenv("KMSP_ITEST_KEEP_TMP"); keep != nullptr && *keep == '1') {
    fprintf(stderr, "KMSP_ITEST_KEEP_TMP=1: keeping %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  path_.clear();
}

std::string TempDir::File(std::string_view name) const { return path_ + "/" + std::string(name); }

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot open {}", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::InternalError(fmt::format("read error on {}", path));
  return ss.str();
}

absl::Status WriteFile(const std::string& path, std::string_view contents, int mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::InternalError(fmt::format("open {}: {}", path, ErrnoText(errno)));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return absl::InternalError(fmt::format("write {}: {}", path, ErrnoText(err)));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Subprocess

ExitInfo ExitInfo::FromWaitStatus(int ws) {
  ExitInfo info;
  if (WIFEXITED(ws)) {
    info.exited = true;
    info.code = WEXITSTATUS(ws);
  } else if (WIFSIGNALED(ws)) {
    info.signal = WTERMSIG(ws);
  }
  return info;
}

std::string ExitInfo::ToString() const {
  if (exited) return fmt::format("exit code {}", code);
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, SignalText(signal));
  return "unknown exit";
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(const ProcessOptions& options) {
  if (options.binary.empty()) return absl::InvalidArgumentError("no binary");

  // Everything the child needs is prepared before fork(): after it only async-signal-safe calls.
  std::vector<std::string> argv_storage;
  argv_storage.push_back(options.binary);
  argv_storage.insert(argv_storage.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  argv.reserve(argv_storage.size() + 1);
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::map<std::string, std::string> env_map;
  if (!options.clear_env) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view kv(*e);
      size_t eq = kv.find('=');
      if (eq == std::string_view::npos) continue;
      env_map[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
  }
  for (const std::string& kv : options.env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) return absl::InvalidArgumentError("env entry without '='");
    env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> env_storage;
  env_storage.reserve(env_map.size());
  for (const auto& [k, v] : env_map) env_storage.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> envp;
  envp.reserve(env_storage.size() + 1);
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  int stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (stdin_fd < 0) return absl::InternalError("open /dev/null: " + ErrnoText(errno));
  auto out_fd = OpenOutput(options.stdout_path);
  if (!out_fd.ok()) {
    close(stdin_fd);
    return out_fd.status();
  }
  int err_fd = *out_fd;
  if (options.stderr_path != options.stdout_path) {
    auto fd = OpenOutput(options.stderr_path);
    if (!fd.ok()) {
      close(stdin_fd);
      close(*out_fd);
      return fd.status();
    }
    err_fd = *fd;
  }
  int exec_pipe[2];  // The child reports an execve failure's errno here (CLOEXEC: EOF on success).
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    close(stdin_fd);
    close(*out_fd);
    if (err_fd != *out_fd) close(err_fd);
    return absl::InternalError("pipe2: " + ErrnoText(errno));
  }
  const char* cwd = options.working_dir.empty() ? nullptr : options.working_dir.c_str();
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid == 0) {
    // Child.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);  // The child has one thread: sigprocmask.
    signal(SIGPIPE, SIG_DFL);
    dup2(stdin_fd, 0);
    dup2(*out_fd, 1);
    dup2(err_fd, 2);
    int child_errno = 0;
    if (cwd != nullptr && chdir(cwd) != 0) {
      child_errno = errno;
    } else {
      execve(argv[0], argv.data(), envp.data());
      child_errno = errno;
    }
    ssize_t ignored = write(exec_pipe[1], &child_errno, sizeof(child_errno));
    (void)ignored;
    _exit(127);
  }
  int fork_errno = errno;
  close(exec_pipe[1]);
  close(stdin_fd);
  close(*out_fd);
  if (err_fd != *out_fd) close(err_fd);
  if (pid < 0) {
    close(exec_pipe[0]);
    return absl::InternalError("fork: " + ErrnoText(fork_errno));
  }
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(exec_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    int ws;
    waitpid(pid, &ws, 0);
    return absl::FailedPreconditionError(
        fmt::format("cannot start {}: {}", options.binary, ErrnoText(child_errno)));
  }
  int pidfd = PidfdOpen(pid);
  return std::unique_ptr<Subprocess>(new Subprocess(pid, pidfd));
}

absl::StatusOr<ExitInfo> Subprocess::Run(const ProcessOptions& options, absl::Duration timeout) {
  auto p = Start(options);
  if (!p.ok()) return p.status();
  auto info = (*p)->Wait(timeout);
  if (!info.ok()) {
    (void)(*p)->Kill();
    return info.status();
  }
  return info;
}

Subprocess::~Subprocess() {
  if (!exit_info_.has_value()) {
    kill(pid_, SIGKILL);
    Reap(/*block=*/true);
  }
  if (pidfd_ >= 0) close(pidfd_);
}

bool Subprocess::Reap(bool block) {
  if (exit_info_.has_value()) return true;
  int ws = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &ws, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_info_ = ExitInfo::FromWaitStatus(ws);
    return true;
  }
  if (r < 0) {  // Not our child any more (should not happen); treat as gone.
    exit_info_ = ExitInfo{};
    return true;
  }
  return false;
}

bool Subprocess::Running() { return !Reap(/*block=*/false); }

absl::Status Subprocess::Signal(int sig) {
  if (exit_info_.has_value()) return absl::FailedPreconditionError("process already reaped");
  if (kill(pid_, sig) != 0) return absl::InternalError("kill: " + ErrnoText(errno));
  return absl::OkStatus();
}

absl::StatusOr<ExitInfo> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Reap(/*block=*/false)) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          fmt::format("pid {} still running after {}", pid_, absl::FormatDuration(timeout)));
    }
    if (pidfd_ >= 0) {
      struct pollfd pfd = {pidfd_, POLLIN, 0};
      int ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1000));
      poll(&pfd, 1, ms);
    } else {
      absl::SleepFor(std::min(left, absl::Milliseconds(5)));  // Poll interval, no pidfd.
    }
  }
  return *exit_info_;
}

absl::StatusOr<ExitInfo> Subprocess::Kill() {
  if (!exit_info_.has_value()) kill(pid_, SIGKILL);
  Reap(/*block=*/true);
  return *exit_info_;
}

// ---------------------------------------------------------------------------------------------
// PluginProcess

std::string PluginBinary() {
#ifdef KMSP_PLUGIN_BINARY
  return KMSP_PLUGIN_BINARY;
#else
  return "kms-plugin";
#endif
}

std::vector<std::string> LocalKmsArgs(const std::string& keyring_path) {
  // The fixtures start on a fresh directory: they create the keyring, as a first node would.
  return {"--kms", "local", "--local-keyring", keyring_path, "--local-keyring-create"};
}

std::string ListenToGrpcTarget(std::string_view listen) {
  std::string_view path = listen;
  constexpr std::string_view kScheme = "unix://";
  if (path.substr(0, kScheme.size()) == kScheme) path.remove_prefix(kScheme.size());
  if (path.substr(0, 2) == "/@") return "unix-abstract:" + std::string(path.substr(2));
  return "unix://" + std::string(path);
}

PluginProcess::PluginProcess(PluginOptions options, std::unique_ptr<Subprocess> process)
    : options_(std::move(options)),
      target_(ListenToGrpcTarget(options_.listen)),
      process_(std::move(process)) {}

absl::StatusOr<std::unique_ptr<PluginProcess>> PluginProcess::StartNoWait(
    const PluginOptions& options) {
  if (options.log_path.empty()) return absl::InvalidArgumentError("log_path is required");
  ProcessOptions p;
  p.binary = options.binary.empty() ? PluginBinary() : options.binary;
  p.args = {"serve", "--listen", options.listen};
  p.args.insert(p.args.end(), options.args.begin(), options.args.end());
  p.env = options.env;
  p.working_dir = options.working_dir;
  p.stdout_path = options.log_path;
  p.stderr_path = options.log_path;
  auto process = Subprocess::Start(p);
  if (!process.ok()) return process.status();
  return std::unique_ptr<PluginProcess>(new PluginProcess(options, std::move(*process)));
}

absl::StatusOr<std::unique_ptr<PluginProcess>> PluginProcess::Start(const PluginOptions& options) {
  auto plugin = StartNoWait(options);
  if (!plugin.ok()) return plugin.status();
  absl::Status ready = (*plugin)->WaitUntilServing(options.ready_timeout, options.wait_healthy);
  if (!ready.ok()) {
    (void)(*plugin)->Kill();
    return ready;
  }
  return plugin;
}

absl::Status PluginProcess::WaitUntilServing(absl::Duration timeout, bool healthy) {
  const absl::Time deadline = absl::Now() + timeout;
  ApiserverKmsClient client(target_, /*timeout=*/absl::Milliseconds(250));
  std::string last = "no attempt";
  while (true) {
    if (!process_->Running()) {
      return absl::FailedPreconditionError(
          fmt::format("kms-plugin exited before serving ({}); log tail:\n{}",
                      process_->exit_info()->ToString(), LogTail()));
    }
    if (absl::Now() >= deadline) break;
    absl::Time attempt_start = absl::Now();
    auto status = client.Status();  // WaitForReady: blocks until connected or 250 ms pass.
    if (status.ok()) {
      if (!healthy || status->healthz() == "ok") return absl::OkStatus();
      last = fmt::format("healthz '{}'", status->healthz());
    } else {
      last = status.status().ToString();
    }
    // A fast answer that is not ready yet (healthz not ok): pace the polling.
    if (absl::Now() - attempt_start < absl::Milliseconds(20))
      absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      fmt::format("kms-plugin not serving on {} after {} (last: {}); log tail:\n{}", target_,
                  absl::FormatDuration(timeout), last, LogTail()));
}

absl::StatusOr<ExitInfo> PluginProcess::Terminate(int sig, absl::Duration timeout) {
  if (process_->Running()) {
    absl::Status s = process_->Signal(sig);
    if (!s.ok() && process_->Running()) return s;
  }
  return process_->Wait(timeout);
}

std::string PluginProcess::Log() const {
  auto log = ReadFile(options_.log_path);
  return log.ok() ? *log : std::string();
}

std::string PluginProcess::LogTail() const {
  std::string log = Log();
  constexpr size_t kTail = 4000;
  return log.size() > kTail ? log.substr(log.size() - kTail) : log;
}

}  // namespace kmsplugin::testing
