// FakeServerProcess: runs one of the python test servers (tests/aws/fake_aws_server.py,
// tests/vault/fake_vault_server.py) as a child process for the test's lifetime and talks to its
// plain-HTTP admin API.
//
// The child is started with a pipe as stdin and exits when that pipe closes, so even a crashed
// test leaves no server behind; Stop() (and the destructor) also sends SIGTERM and reaps it.
// Readiness is the JSON line the server prints once it listens (read with a deadline, no
// polling); it must hold "http_port" (the admin API).
#ifndef KMSP_TESTS_FAKES_FAKE_SERVER_PROCESS_H_
#define KMSP_TESTS_FAKES_FAKE_SERVER_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "fmt/format.h"
#include "kms/http_client.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::testing {

class FakeServerProcess {
 public:
  // Runs /usr/bin/python3 <script> --state-dir <fresh temp dir> <args...>.
  absl::Status Start(const std::string& script, const std::vector<std::string>& args,
                     absl::Duration ready_timeout = absl::Seconds(30)) {
    char tmpl[] = "/tmp/kmsp-fake-server-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
    state_dir_ = tmpl;
    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
      return absl::InternalError("pipe failed");
    }
    std::vector<std::string> argv = {"python3", script, "--state-dir", state_dir_};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    cargv.reserve(argv.size() + 1);
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      dup2(in_pipe[0], 0);
      dup2(out_pipe[1], 1);
      execv("/usr/bin/python3", cargv.data());
      _exit(127);
    }
    pid_ = pid;
    close(in_pipe[0]);
    close(out_pipe[1]);
    stdin_fd_ = in_pipe[1];
    stdout_fd_ = out_pipe[0];

    std::string line;
    const absl::Time deadline = absl::Now() + ready_timeout;
    while (line.find('\n') == std::string::npos) {
      const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (left <= 0) return absl::DeadlineExceededError(script + " did not start in time");
      pollfd pfd{stdout_fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(stdout_fd_, buf, sizeof(buf));
      if (n <= 0) return absl::InternalError(script + " exited at start");
      line.append(buf, static_cast<size_t>(n));
    }
    info_ = std::make_unique<nlohmann::json>(nlohmann::json::parse(line, nullptr, false));
    if (!info_->is_object() || !info_->contains("http_port") ||
        !(*info_)["http_port"].is_number_integer()) {
      return absl::InternalError(script + " printed no JSON");
    }
    http_port_ = (*info_)["http_port"].get<int>();
    auto http = ::kmsplugin::CurlHttpClient::Create(::kmsplugin::HttpClientOptions{});
    if (!http.ok()) return http.status();
    http_ = std::move(*http);
    return absl::OkStatus();
  }

  ~FakeServerProcess() { Stop(); }

  // Stops the server (an outage: connections are refused from now on).
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (stdin_fd_ >= 0) close(stdin_fd_);
    if (stdout_fd_ >= 0) close(stdout_fd_);
    stdin_fd_ = stdout_fd_ = -1;
    if (!state_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(state_dir_, ec);
      state_dir_.clear();
    }
  }

  // The JSON line the server printed at start (after a successful Start()).
  const nlohmann::json& info() const { return *info_; }
  std::string http_base() const { return fmt::format("http://127.0.0.1:{}", http_port_); }

  // POSTs `body` to an admin path ("/admin/keys"); returns the JSON answer.
  absl::StatusOr<nlohmann::json> Admin(const std::string& path,
                                       const nlohmann::json& body = nlohmann::json::object()) {
    ::kmsplugin::HttpRequest req;
    req.method = "POST";
    req.url = http_base() + path;
    req.headers.push_back({"Content-Type", "application/json"});
    std::string text = body.dump();
    req.body = SecretBytes::CopyFrom(text);
    return Send(std::move(req), path);
  }

  // GETs an admin path ("/admin/requests"); returns the JSON answer.
  absl::StatusOr<nlohmann::json> AdminGet(const std::string& path) {
    ::kmsplugin::HttpRequest req;
    req.url = http_base() + path;
    return Send(std::move(req), path);
  }

 private:
  absl::StatusOr<nlohmann::json> Send(::kmsplugin::HttpRequest req, const std::string& path) {
    req.deadline = absl::Now() + absl::Seconds(10);
    absl::StatusOr<::kmsplugin::HttpResponse> resp = http_->Send(req);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) {
      return absl::InternalError(fmt::format("admin {} answered HTTP {}", path, resp->status));
    }
    return nlohmann::json::parse(resp->body.Reveal(), nullptr, false);
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string state_dir_;
  std::unique_ptr<nlohmann::json> info_;  // A pointer: constructing the class cannot throw.
  int http_port_ = 0;
  std::unique_ptr<::kmsplugin::HttpClient> http_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_FAKES_FAKE_SERVER_PROCESS_H_
