// FakeGcpServer: tests/gcp/fake_gcp_server.py (Cloud KMS REST v1, the OAuth token endpoint of
// service-account keys, STS, IAM Credentials impersonation and the GCE metadata server, on
// 127.0.0.1, HTTPS with a throwaway CA) as a child process for the test's lifetime, with helpers
// for its admin API (see the script's docstring).
#ifndef KMSP_TESTS_GCP_FAKE_GCP_SERVER_H_
#define KMSP_TESTS_GCP_FAKE_GCP_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_server_process.h"

namespace kmsplugin::testing {

class FakeGcpServer {
 public:
  static absl::StatusOr<std::unique_ptr<FakeGcpServer>> Start() {
    auto server = std::unique_ptr<FakeGcpServer>(new FakeGcpServer());
    absl::Status started =
        server->process_.Start(std::string(KMSP_SOURCE_DIR) + "/tests/gcp/fake_gcp_server.py", {});
    if (!started.ok()) return started;
    return server;
  }

  // Stops the server (Google unreachable from now on).
  void Stop() { process_.Stop(); }

  // The Cloud KMS, token, STS and IAM endpoint (https).
  std::string endpoint() const {
    return fmt::format("https://127.0.0.1:{}", process_.info()["https_port"].get<int>());
  }
  // The metadata server's host:port (GCE_METADATA_HOST), plain http.
  std::string metadata_host() const {
    return fmt::format("127.0.0.1:{}", process_.info()["http_port"].get<int>());
  }
  std::string token_uri() const { return endpoint() + "/token"; }
  std::string sts_url() const { return endpoint() + "/v1/token"; }
  std::string impersonation_url(const std::string& email) const {
    return endpoint() + "/v1/projects/-/serviceAccounts/" + email + ":generateAccessToken";
  }
  std::string ca_file() const { return Info("ca_file"); }
  // A service-account key file whose token_uri is this server's (the key is TEST-ONLY).
  std::string sa_key_file() const { return Info("sa_key_file"); }
  std::string sa_email() const { return Info("sa_email"); }
  std::string impersonated_email() const { return Info("impersonated_email"); }
  std::string metadata_email() const { return Info("metadata_email"); }
  std::string sts_audience() const { return Info("sts_audience"); }

  absl::StatusOr<nlohmann::json> Admin(const std::string& path,
                                       const nlohmann::json& body = nlohmann::json::object()) {
    return process_.Admin(path, body);
  }
  // A CryptoKey with version 1 primary.
  absl::Status CreateKey(const std::string& name) {
    return Status(Admin("/admin/keys", Name(name)));
  }
  // A new version made primary (as a scheduled rotation does).
  absl::Status RotateKey(const std::string& name) {
    return Status(Admin("/admin/keys/rotate", Name(name)));
  }
  // "ENABLED", "DISABLED", "DESTROYED" for a version name.
  absl::Status SetVersionState(const std::string& version, const std::string& state) {
    return Status(Admin("/admin/versions/state", {{"name", version}, {"state", state}}));
  }
  // `count` injected failures ("503", "429", "500", "drop") of `op` ("encrypt", "token", "*").
  absl::Status Fault(const std::string& op, const std::string& kind, int count) {
    return Status(Admin("/admin/faults", {{"op", op}, {"kind", kind}, {"count", count}}));
  }
  // The request log (no secrets in it).
  absl::StatusOr<nlohmann::json> Requests() {
    auto r = process_.AdminGet("/admin/requests");
    if (!r.ok()) return r.status();
    return (*r)["requests"];
  }
  // How many successful answers to `op` ("encrypt", "decrypt", "get", "token", "sts", …).
  int Count(const std::string& op) {
    auto stats = process_.AdminGet("/admin/stats");
    if (!stats.ok()) return -1;
    return (*stats)["ops"].value(op, 0);
  }

 private:
  FakeGcpServer() = default;
  std::string Info(const char* field) const { return process_.info()[field].get<std::string>(); }
  static nlohmann::json Name(const std::string& name) { return {{"name", name}}; }
  static absl::Status Status(const absl::StatusOr<nlohmann::json>& r) { return r.status(); }
  FakeServerProcess process_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_GCP_FAKE_GCP_SERVER_H_
