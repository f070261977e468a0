// FakeVaultServer: tests/vault/fake_vault_server.py (Vault Transit, token, AppRole and
// Kubernetes/JWT auth APIs on 127.0.0.1, HTTPS with a throwaway CA) as a child process for the
// test's lifetime, with helpers for its admin API (see the script's docstring).
#ifndef KMSP_TESTS_VAULT_FAKE_VAULT_SERVER_H_
#define KMSP_TESTS_VAULT_FAKE_VAULT_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_server_process.h"

namespace kmsplugin::testing {

class FakeVaultServer {
 public:
  static absl::StatusOr<std::unique_ptr<FakeVaultServer>> Start() {
    auto server = std::unique_ptr<FakeVaultServer>(new FakeVaultServer());
    absl::Status started = server->process_.Start(
        std::string(KMSP_SOURCE_DIR) + "/tests/vault/fake_vault_server.py", {});
    if (!started.ok()) return started;
    return server;
  }

  // Stops the server (Vault unreachable from now on).
  void Stop() { process_.Stop(); }

  std::string addr() const {
    return fmt::format("https://127.0.0.1:{}", process_.info()["https_port"].get<int>());
  }
  // The same API over plain http (the http:// refusal tests).
  std::string http_addr() const { return process_.http_base(); }
  std::string ca_file() const { return process_.info()["ca_file"].get<std::string>(); }
  // A client certificate and key the server trusts (mutual TLS; it logs the CN "kms-plugin").
  std::string client_cert() const { return process_.info()["client_cert"].get<std::string>(); }
  std::string client_key() const { return process_.info()["client_key"].get<std::string>(); }
  std::string root_token() const { return process_.info()["root_token"].get<std::string>(); }

  absl::StatusOr<nlohmann::json> Admin(const std::string& path,
                                       const nlohmann::json& body = nlohmann::json::object()) {
    return process_.Admin(path, body);
  }
  // A token allowed to use only `mount`/`key` (and to rotate it with `rotate`); ttl 0: no expiry.
  absl::StatusOr<std::string> NewToken(const std::string& key, int ttl = 0, bool rotate = false,
                                       const std::string& mount = "transit") {
    auto t =
        Admin("/admin/tokens", {{"keys", {mount + "/" + key}}, {"ttl", ttl}, {"rotate", rotate}});
    if (!t.ok()) return t.status();
    return (*t)["token"].get<std::string>();
  }
  // The request log (no secrets in it).
  absl::StatusOr<nlohmann::json> Requests() {
    auto r = process_.AdminGet("/admin/requests");
    if (!r.ok()) return r.status();
    return (*r)["requests"];
  }
  // How many successful requests of `op` ("encrypt", "renew-self", "login-approle", …).
  int Count(const std::string& op) {
    auto log = Requests();
    if (!log.ok()) return -1;
    int n = 0;
    for (const auto& r : *log) {
      if (r.value("op", "") == op && r.value("status", 0) < 300) ++n;
    }
    return n;
  }

 private:
  FakeVaultServer() = default;
  FakeServerProcess process_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_VAULT_FAKE_VAULT_SERVER_H_
