// FakeAwsServer: runs tests/aws/fake_aws_server.py (KMS, STS, container credentials, IMDSv2 on
// 127.0.0.1) as a child process for the test's lifetime and drives its admin API.
//
// The child is started with a pipe as stdin and exits when that pipe closes, so even a crashed
// test leaves no server behind; the destructor also sends SIGTERM and reaps it. Readiness is the
// JSON line the server prints once it listens (read with a deadline, no polling).
#ifndef KMSP_TESTS_AWS_FAKE_AWS_SERVER_H_
#define KMSP_TESTS_AWS_FAKE_AWS_SERVER_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "fmt/format.h"
#include "kms/http_client.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::testing {

class FakeAwsServer {
 public:
  static constexpr char kAccessKey[] = "AKIDEXAMPLE";
  static constexpr char kSecretKey[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

  // The environment of a client that has the server's static credentials and no other source to
  // find (no instance metadata, no home directory).
  static std::map<std::string, std::string> StaticCredentialsEnv() {
    return {{"AWS_ACCESS_KEY_ID", kAccessKey},
            {"AWS_SECRET_ACCESS_KEY", kSecretKey},
            {"AWS_EC2_METADATA_DISABLED", "true"},
            {"HOME", "/nonexistent"}};
  }

  static absl::StatusOr<std::unique_ptr<FakeAwsServer>> Start(
      std::string region = "us-east-1", absl::Duration ready_timeout = absl::Seconds(30)) {
    auto server = std::unique_ptr<FakeAwsServer>(new FakeAwsServer());
    char tmpl[] = "/tmp/kmsp-fake-aws-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
    server->state_dir_ = tmpl;
    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
      return absl::InternalError("pipe failed");
    }
    const std::string script = std::string(KMSP_SOURCE_DIR) + "/tests/aws/fake_aws_server.py";
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      dup2(in_pipe[0], 0);
      dup2(out_pipe[1], 1);
      execl("/usr/bin/python3", "python3", script.c_str(), "--state-dir",
            server->state_dir_.c_str(), "--region", region.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    server->pid_ = pid;
    close(in_pipe[0]);
    close(out_pipe[1]);
    server->stdin_fd_ = in_pipe[1];
    server->stdout_fd_ = out_pipe[0];

    std::string line;
    const absl::Time deadline = absl::Now() + ready_timeout;
    while (line.find('\n') == std::string::npos) {
      const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (left <= 0) return absl::DeadlineExceededError("fake AWS server did not start in time");
      pollfd pfd{server->stdout_fd_, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(server->stdout_fd_, buf, sizeof(buf));
      if (n <= 0) return absl::InternalError("fake AWS server exited at start");
      line.append(buf, static_cast<size_t>(n));
    }
    nlohmann::json info = nlohmann::json::parse(line, nullptr, false);
    if (!info.is_object()) return absl::InternalError("fake AWS server printed no JSON");
    server->https_port_ = info["https_port"].get<int>();
    server->http_port_ = info["http_port"].get<int>();
    server->ca_file_ = info["ca_file"].get<std::string>();
    server->region_ = region;
    auto http = ::kmsplugin::CurlHttpClient::Create(::kmsplugin::HttpClientOptions{});
    if (!http.ok()) return http.status();
    server->http_ = std::move(*http);
    return server;
  }

  ~FakeAwsServer() { Stop(); }

  // Stops the server (an AWS outage: connections are refused from now on).
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

  std::string kms_endpoint() const { return fmt::format("https://127.0.0.1:{}", https_port_); }
  std::string http_base() const { return fmt::format("http://127.0.0.1:{}", http_port_); }
  const std::string& ca_file() const { return ca_file_; }
  const std::string& region() const { return region_; }
  int https_port() const { return https_port_; }

  // POSTs `body` to an admin path ("/admin/keys"); returns the JSON answer.
  absl::StatusOr<nlohmann::json> Admin(const std::string& path,
                                       const nlohmann::json& body = nlohmann::json::object()) {
    ::kmsplugin::HttpRequest req;
    req.method = "POST";
    req.url = http_base() + path;
    req.headers.push_back({"Content-Type", "application/json"});
    std::string text = body.dump();
    req.body = SecretBytes::CopyFrom(text);
    req.deadline = absl::Now() + absl::Seconds(10);
    absl::StatusOr<::kmsplugin::HttpResponse> resp = http_->Send(req);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) {
      return absl::InternalError(fmt::format("admin {} answered HTTP {}", path, resp->status));
    }
    return nlohmann::json::parse(resp->body.Reveal(), nullptr, false);
  }

  // The server's request log (no secrets in it).
  absl::StatusOr<nlohmann::json> Requests() {
    ::kmsplugin::HttpRequest req;
    req.url = http_base() + "/admin/requests";
    req.deadline = absl::Now() + absl::Seconds(10);
    absl::StatusOr<::kmsplugin::HttpResponse> resp = http_->Send(req);
    if (!resp.ok()) return resp.status();
    return nlohmann::json::parse(resp->body.Reveal(), nullptr, false)["requests"];
  }

 private:
  FakeAwsServer() = default;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string state_dir_;
  std::string ca_file_;
  std::string region_;
  int https_port_ = 0;
  int http_port_ = 0;
  std::unique_ptr<::kmsplugin::HttpClient> http_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_AWS_FAKE_AWS_SERVER_H_
