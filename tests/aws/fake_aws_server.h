// FakeAwsServer: runs tests/aws/fake_aws_server.py (KMS, STS, container credentials, IMDSv2 on
// 127.0.0.1) as a child process for the test's lifetime (tests/fakes/fake_server_process.h: no
// server outlives its test) and drives its admin API.
#ifndef KMSP_TESTS_AWS_FAKE_AWS_SERVER_H_
#define KMSP_TESTS_AWS_FAKE_AWS_SERVER_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_server_process.h"

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
    absl::Status started =
        server->process_.Start(std::string(KMSP_SOURCE_DIR) + "/tests/aws/fake_aws_server.py",
                               {"--region", region}, ready_timeout);
    if (!started.ok()) return started;
    server->https_port_ = server->process_.info()["https_port"].get<int>();
    server->ca_file_ = server->process_.info()["ca_file"].get<std::string>();
    server->region_ = region;
    return server;
  }

  // Stops the server (an AWS outage: connections are refused from now on).
  void Stop() { process_.Stop(); }

  std::string kms_endpoint() const { return fmt::format("https://127.0.0.1:{}", https_port_); }
  std::string http_base() const { return process_.http_base(); }
  const std::string& ca_file() const { return ca_file_; }
  const std::string& region() const { return region_; }
  int https_port() const { return https_port_; }

  // POSTs `body` to an admin path ("/admin/keys"); returns the JSON answer.
  absl::StatusOr<nlohmann::json> Admin(const std::string& path,
                                       const nlohmann::json& body = nlohmann::json::object()) {
    return process_.Admin(path, body);
  }

  // The server's request log (no secrets in it).
  absl::StatusOr<nlohmann::json> Requests() {
    auto log = process_.AdminGet("/admin/requests");
    if (!log.ok()) return log.status();
    return (*log)["requests"];
  }

 private:
  FakeAwsServer() = default;
  FakeServerProcess process_;
  std::string ca_file_;
  std::string region_;
  int https_port_ = 0;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_AWS_FAKE_AWS_SERVER_H_
