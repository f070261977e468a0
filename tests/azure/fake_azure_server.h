// FakeAzureServer: tests/azure/fake_azure_server.py (Key Vault / Managed HSM keys, Microsoft
// Entra's token endpoint and Azure IMDS on 127.0.0.1, HTTPS with a throwaway CA) as a child process
// for the test's lifetime, with helpers for its admin API (see the script's docstring).
#ifndef KMSP_TESTS_AZURE_FAKE_AZURE_SERVER_H_
#define KMSP_TESTS_AZURE_FAKE_AZURE_SERVER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_server_process.h"

namespace kmsplugin::testing {

class FakeAzureServer {
 public:
  static absl::StatusOr<std::unique_ptr<FakeAzureServer>> Start() {
    auto server = std::unique_ptr<FakeAzureServer>(new FakeAzureServer());
    absl::Status started = server->process_.Start(
        std::string(KMSP_SOURCE_DIR) + "/tests/azure/fake_azure_server.py", {});
    if (!started.ok()) return started;
    return server;
  }

  // Stops the server (Key Vault, Entra and IMDS unreachable from now on).
  void Stop() { process_.Stop(); }

  // The vault URL (also the Entra authority host: https://127.0.0.1:<port>).
  std::string vault_url() const {
    return fmt::format("https://127.0.0.1:{}", process_.info()["https_port"].get<int>());
  }
  // IMDS over plain http (as on Azure) and the admin API.
  std::string http_base() const { return process_.http_base(); }
  std::string ca_file() const { return process_.info()["ca_file"].get<std::string>(); }
  std::string tenant() const { return process_.info()["tenant"].get<std::string>(); }

  absl::StatusOr<nlohmann::json> Admin(const std::string& path,
                                       const nlohmann::json& body = nlohmann::json::object()) {
    return process_.Admin(path, body);
  }
  // Creates key `name` ("RSA", "RSA-HSM", "oct-HSM"); returns its current kid.
  absl::StatusOr<std::string> CreateKey(const std::string& name, const std::string& kty = "RSA") {
    auto k = Admin("/admin/keys", {{"name", name}, {"kty", kty}});
    if (!k.ok()) return k.status();
    return (*k)["kid"].get<std::string>();
  }
  // Adds a version to `name`; returns the new current kid.
  absl::StatusOr<std::string> RotateKey(const std::string& name) {
    auto k = Admin("/admin/keys/rotate", {{"name", name}});
    if (!k.ok()) return k.status();
    return (*k)["kid"].get<std::string>();
  }
  // The request log (no secrets in it).
  absl::StatusOr<nlohmann::json> Requests() {
    auto r = process_.AdminGet("/admin/requests");
    if (!r.ok()) return r.status();
    return (*r)["requests"];
  }
  // How many successful calls of `op` ("wrapkey", "unwrapkey", "get", "rotate", "entra-token",
  // "imds-token", …) the server answered.
  int Count(const std::string& op) {
    auto c = process_.AdminGet("/admin/counts");
    if (!c.ok()) return -1;
    return (*c)["counts"].value(op, 0);
  }
  // Every value the server wrapped or encrypted (the plugin's data keys), raw: the tests scan
  // logs for them.
  std::vector<std::string> Seeds() {
    std::vector<std::string> out;
    auto s = process_.AdminGet("/admin/seeds");
    if (!s.ok()) return out;
    for (const auto& hex : (*s)["seeds"]) {
      auto raw = HexDecode(hex.get<std::string>());
      if (raw.ok()) out.push_back(*std::move(raw));
    }
    return out;
  }
  // How many requests (any status) reached a Key Vault path.
  int VaultRequests() {
    auto log = Requests();
    if (!log.ok()) return -1;
    int n = 0;
    for (const auto& r : *log) {
      if (r.value("path", "").rfind("/keys/", 0) == 0) ++n;
    }
    return n;
  }

 private:
  FakeAzureServer() = default;
  FakeServerProcess process_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_AZURE_FAKE_AZURE_SERVER_H_
