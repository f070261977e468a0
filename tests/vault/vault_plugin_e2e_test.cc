// End-to-end: the built `kms-plugin serve --kms vault` as a separate process against the python
// fake Vault server (tests/vault/fake_vault_server.py), driven like kube-apiserver drives a KMS v2
// plugin: the apiserver's conformance checks, each login method, token renewal and re-login,
// rotation by Vault and by `kms-plugin rotate --kek`, min_decryption_version, a sealed Vault (an
// outage), a revoked token and a disabled key (revocations), the http:// refusal, and no token,
// secret id, jwt or plaintext in any log (the fixture's tear-down scans every log).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/audit_lines.h"
#include "tests/integration/plugin_test_base.h"
#include "tests/vault/fake_vault_server.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class VaultPluginE2eTest : public PluginTestBase {
 protected:
  void SetUp() override {
    PluginTestBase::SetUp();
    auto server = FakeVaultServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_THAT(server_->Admin("/admin/keys", {{"name", "k8s"}}).status(), IsOk());
    RecordSecret(server_->root_token());
    ForbidInLogs("hvs.");  // No Vault token, whichever.
  }

  // `serve --kms vault` against the fake server with `login` flags.
  PluginOptions VaultOptions(const std::vector<std::string>& login,
                             const std::string& name = "kms") {
    PluginOptions o = Options(name);
    o.args = {"--kms",
              "vault",
              "--vault-addr",
              server_->addr(),
              "--vault-key",
              "k8s",
              "--vault-ca-file",
              server_->ca_file(),
              "--key-poll-interval",
              "1s",
              "--kms-timeout",
              "3s",
              "--log-level",
              "debug"};
    o.args.insert(o.args.end(), login.begin(), login.end());
    o.env = {"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"};
    return o;
  }
  // A token-file login with a fresh token for the key (recorded as a secret).
  std::vector<std::string> TokenLogin(int ttl = 0, bool rotate = false) {
    auto token = server_->NewToken("k8s", ttl, rotate);
    EXPECT_TRUE(token.ok()) << token.status();
    token_ = token.value_or("");
    RecordSecret(token_);
    const std::string path = dir_->File("vault-token");
    EXPECT_THAT(WriteFile(path, token_ + "\n"), IsOk());
    return {"--vault-token-file", path};
  }
  std::vector<std::string> AppRoleLogin() {
    const std::string secret_id = "secret-id-" + NewUuid();
    RecordSecret(secret_id);
    EXPECT_THAT(server_
                    ->Admin("/admin/approle", {{"role_id", "kms-role"},
                                               {"secret_id", secret_id},
                                               {"keys", {"transit/k8s"}},
                                               {"ttl", 3600}})
                    .status(),
                IsOk());
    const std::string path = dir_->File("secret-id");
    EXPECT_THAT(WriteFile(path, secret_id), IsOk());
    return {"--vault-approle-role-id", "kms-role", "--vault-approle-secret-id-file", path};
  }
  std::vector<std::string> K8sLogin() {
    const std::string jwt = "eyJhbGciOiJSUzI1NiJ9.sa-token-" + NewUuid();
    RecordSecret(jwt);
    EXPECT_THAT(
        server_
            ->Admin("/admin/k8s",
                    {{"role", "kms"}, {"jwt", jwt}, {"keys", {"transit/k8s"}}, {"ttl", 3600}})
            .status(),
        IsOk());
    const std::string path = dir_->File("sa-token");
    EXPECT_THAT(WriteFile(path, jwt), IsOk());
    return {"--vault-k8s-role", "kms", "--vault-k8s-token-file", path};
  }

  static std::string KeyId(int version) {
    return absl::StrCat("vault:root/transit/k8s/v", version);
  }

  std::unique_ptr<FakeVaultServer> server_;
  std::string token_;
};

// (With mutual TLS: --vault-client-cert/--vault-client-key reach the server.)
TEST_F(VaultPluginE2eTest, ConformsToTheApiserverContractWithOneTransitEncryptForManyObjects) {
  PluginOptions options = VaultOptions(TokenLogin());
  options.args.insert(options.args.end(), {"--vault-client-cert", server_->client_cert(),
                                           "--vault-client-key", server_->client_key()});
  // Issue 13: the audit log (scanned for tokens and plaintexts at tear-down like every log).
  const std::string audit = dir_->File("audit.log");
  options.args.insert(options.args.end(), {"--audit-log", audit});
  log_paths_.push_back(audit);
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  ApiserverView view;
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  ASSERT_THAT(view.ObserveStatus(status), IsOk());
  EXPECT_EQ(status.key_id(), KeyId(1));
  for (int i = 0; i < 10; ++i) {
    const std::string plaintext = Secret(std::to_string(i));
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
    EXPECT_THAT(ValidateEncryptResponse(enc, status.key_id()), IsOk());
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    EXPECT_EQ(dec.plaintext(), plaintext);
  }
  EXPECT_EQ(server_->Count("encrypt"), 1);  // One wrapped data key serves every object.
  ITEST_ASSIGN_OR_FAIL(nlohmann::json log, server_->Requests());
  for (const auto& r : log) {
    if (r["op"] == "encrypt") {
      EXPECT_EQ(r["aad"], "kms-plugin/kubernetes-kms-v2:transit/k8s");
    }
    EXPECT_EQ(r["client_cn"], "kms-plugin");
  }
  // One audit line per Vault request: the one transit encrypt names the key path, the key_id it
  // gave and Vault's request id.
  const std::vector<nlohmann::json> lines = OfType(AuditLines(audit), "kms_request");
  EXPECT_EQ(lines.size(), log.size());
  int encrypts = 0;
  for (const nlohmann::json& j : lines) {
    EXPECT_EQ(j["backend"], "vault");
    if (j["operation"] != "transit encrypt") continue;
    ++encrypts;
    EXPECT_EQ(j["key"], "transit/keys/k8s");
    EXPECT_EQ(j["key_id"], KeyId(1));
    EXPECT_EQ(j["result"], "OK");
    EXPECT_EQ(j["request_id"].get<std::string>().size(), 36u) << j;
  }
  EXPECT_EQ(encrypts, 1);
}

TEST_F(VaultPluginE2eTest, EachLoginMethodServesThePlugin) {
  struct Method {
    std::string name;
    std::vector<std::string> flags;
    std::string login_op;  // "" for the token file.
  };
  const std::vector<Method> methods = {{"token-file", TokenLogin(), "lookup-self"},
                                       {"approle", AppRoleLogin(), "login-approle"},
                                       {"kubernetes", K8sLogin(), "login-kubernetes"}};
  for (const Method& m : methods) {
    SCOPED_TRACE(m.name);
    ASSERT_THAT(server_->Admin("/admin/requests/clear").status(), IsOk());
    ITEST_ASSIGN_OR_FAIL(auto plugin, Start(VaultOptions(m.flags, m.name)));
    {
      ApiserverKmsClient client(plugin->grpc_target());
      const std::string plaintext = Secret(m.name);
      ITEST_ASSIGN_OR_FAIL(std::string back, client.RoundTrip(plaintext));
      EXPECT_EQ(back, plaintext);
    }
    EXPECT_EQ(server_->Count(m.login_op), 1);  // Logged in once, then the token is reused.
    EXPECT_THAT(plugin->Terminate(), IsOk());
  }
}

TEST_F(VaultPluginE2eTest, ShortTtlTokensAreRenewedAndA403LogsInAgain) {
  ITEST_ASSIGN_OR_FAIL(auto renewing, Start(VaultOptions(TokenLogin(/*ttl=*/3), "renewing")));
  ASSERT_TRUE(PollUntil([&] { return server_->Count("renew-self") >= 2; }, absl::Seconds(30)))
      << "the 3 s token was not renewed";
  ApiserverKmsClient client(renewing->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_EQ(status.healthz(), "ok");
  EXPECT_THAT(renewing->Log(), HasSubstr("Vault token renewed"));

  ITEST_ASSIGN_OR_FAIL(auto approle, Start(VaultOptions(AppRoleLogin(), "approle")));
  ApiserverKmsClient approle_client(approle->grpc_target());
  ITEST_ASSIGN_OR_FAIL(std::string back, approle_client.RoundTrip(Secret("before-revoke")));
  const int logins = server_->Count("login-approle");
  // Every issued token revoked (the token file's too): AppRole logs in again at the next 403.
  ASSERT_THAT(server_->Admin("/admin/tokens/revoke", {{"all", true}}).status(), IsOk());
  ASSERT_TRUE(
      PollUntil([&] { return server_->Count("login-approle") > logins; }, absl::Seconds(20)));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse after, approle_client.Status());
  EXPECT_EQ(after.healthz(), "ok");
  const std::string plaintext = Secret("after-relogin");
  ITEST_ASSIGN_OR_FAIL(std::string again, approle_client.RoundTrip(plaintext));
  EXPECT_EQ(again, plaintext);
}

TEST_F(VaultPluginE2eTest, RotationGivesNewKeyIdsOldCiphertextsDecryptUntilMinDecryptionVersion) {
  PluginOptions options = VaultOptions(TokenLogin(0, /*rotate=*/true), "node1");
  options.args.insert(options.args.end(), {"--key-change-confirmations", "1"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  const std::string p1 = Secret("v1");
  const std::string p2 = Secret("v2");
  v2::EncryptResponse e1, e2;
  {
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(e1, client.Encrypt(p1));
    EXPECT_EQ(e1.key_id(), KeyId(1));
    // `vault write -f transit/keys/k8s/rotate`.
    ASSERT_THAT(server_->Admin("/admin/keys/rotate", {{"name", "k8s"}}).status(), IsOk());
    ASSERT_TRUE(WaitFor(client, [](const auto& s) { return s.key_id() == KeyId(2); }));
    ITEST_ASSIGN_OR_FAIL(e2, client.Encrypt(p2));
    EXPECT_EQ(e2.key_id(), KeyId(2));
  }
  RunRotateKek(*plugin);
  EXPECT_EQ(server_->Count("rotate"), 1);
  {
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    EXPECT_EQ(status.key_id(), KeyId(3));
  }
  EXPECT_THAT(plugin->Terminate(), IsOk());

  // A fresh process has no cached data key: each old ciphertext goes to transit decrypt.
  ITEST_ASSIGN_OR_FAIL(auto fresh, Start(VaultOptions(TokenLogin(), "fresh")));
  ApiserverKmsClient again(fresh->grpc_target());
  for (const auto& [enc, plaintext] : {std::pair{&e1, &p1}, std::pair{&e2, &p2}}) {
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         again.Decrypt(ApiserverKmsClient::DecryptRequestFor(*enc)));
    EXPECT_EQ(dec.plaintext(), *plaintext);
  }
  ASSERT_THAT(server_->Admin("/admin/keys/config", {{"name", "k8s"}, {"min_decryption_version", 3}})
                  .status(),
              IsOk());
  ITEST_ASSIGN_OR_FAIL(auto strict, Start(VaultOptions(TokenLogin(), "strict")));
  ApiserverKmsClient strict_client(strict->grpc_target());
  auto refused = strict_client.Decrypt(ApiserverKmsClient::DecryptRequestFor(e1));
  EXPECT_THAT(refused.status(), Not(IsOk()));
  EXPECT_THAT(absl::StrCat(refused.status().message(), strict->Log()),
              HasSubstr("min_decryption_version"));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, strict_client.Status());
  EXPECT_EQ(status.healthz(), "ok");  // One too-old ciphertext is not a revocation.
}

TEST_F(VaultPluginE2eTest, ASealedVaultIsAnOutageServedFromCachedKeysWithLivezUp) {
  ITEST_ASSIGN_OR_FAIL(int port, PickUnusedLoopbackPort());
  PluginOptions options = VaultOptions(TokenLogin());
  options.args.insert(options.args.end(), {"--kms-outage-window", "10m", "--health-addr",
                                           "127.0.0.1:" + std::to_string(port)});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string before = Secret("before-seal");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_before, client.Encrypt(before));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status_before, client.Status());

  ASSERT_THAT(server_->Admin("/admin/seal", {{"sealed", true}}).status(), IsOk());
  ASSERT_TRUE(PollUntil([&] { return plugin->Log().find("Vault is sealed") != std::string::npos; },
                        absl::Seconds(20)));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_EQ(status.healthz(), "ok");
  EXPECT_EQ(status.key_id(), status_before.key_id());
  const std::string during = Secret("during-seal");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_during, client.Encrypt(during));
  EXPECT_THAT(ValidateEncryptResponse(enc_during, status.key_id()), IsOk());
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                       client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc_before)));
  EXPECT_EQ(dec.plaintext(), before);
  ITEST_ASSIGN_OR_FAIL(HttpResponse livez, HttpGet(port, "/livez"));
  EXPECT_EQ(livez.status, 200);
  EXPECT_THAT(plugin->Log(), Not(HasSubstr("purging")));
}

TEST_F(VaultPluginE2eTest, ARevokedTokenOrADisabledKeyMakesItUnhealthyAndPurgesCachedKeys) {
  for (const char* name : {"revoked-token", "disabled-key"}) {
    const std::string how = name;
    SCOPED_TRACE(how);
    ASSERT_THAT(
        server_->Admin("/admin/keys/disable", {{"name", "k8s"}, {"disabled", false}}).status(),
        IsOk());
    ITEST_ASSIGN_OR_FAIL(
        auto plugin,
        Start(VaultOptions(how == "revoked-token" ? TokenLogin() : AppRoleLogin(), how)));
    ApiserverKmsClient client(plugin->grpc_target());
    const std::string plaintext = Secret(how);
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
    if (how == "revoked-token") {
      ASSERT_THAT(server_->Admin("/admin/tokens/revoke", {{"token", token_}}).status(), IsOk());
    } else {  // The key's policy no longer allows it, even after a fresh AppRole login.
      ASSERT_THAT(server_->Admin("/admin/keys/disable", {{"name", "k8s"}}).status(), IsOk());
    }
    ASSERT_TRUE(WaitFor(client, [](const auto& s) { return s.healthz() != "ok"; }))
        << "Status stayed ok";
    EXPECT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)), Not(IsOk()));
    EXPECT_THAT(client.Encrypt(Secret("after-" + how)), Not(IsOk()));
    EXPECT_THAT(plugin->Log(), HasSubstr("purging every cached data key"));
  }
}

TEST_F(VaultPluginE2eTest, PlainHttpAndAMissingLoginStopTheProcessWithAClearMessage) {
  PluginOptions http = VaultOptions(TokenLogin(), "http");
  for (size_t i = 0; i + 1 < http.args.size(); ++i) {
    if (http.args[i] == "--vault-addr") http.args[i + 1] = server_->http_addr();
  }
  PluginOptions no_login = VaultOptions({}, "no-login");
  for (const auto& [options, expected] : {std::pair{&http, "--vault-insecure-http-for-tests"},
                                          std::pair{&no_login, "exactly one login"}}) {
    ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(*options));
    auto exit = plugin->process().Wait(absl::Seconds(20));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_NE(exit->code, 0);
    EXPECT_THAT(plugin->Log(), HasSubstr(expected));
  }
}

}  // namespace
}  // namespace kmsplugin::testing
