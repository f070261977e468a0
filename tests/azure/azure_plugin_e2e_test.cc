// End-to-end: the built `kms-plugin serve --kms azure` as a separate process against the python
// fake Azure server (tests/azure/fake_azure_server.py: Key Vault, Entra, IMDS), driven like
// kube-apiserver drives a KMS v2 plugin: the apiserver's conformance checks, 1,000 Encrypts for
// one wrapkey and Status without remote calls, each credential source (client secret, workload
// identity, managed identity through IMDS), rotation in Key Vault and by `kms-plugin rotate
// --kek` with old data decrypting, a pinned version, an outage served from cached keys, and a
// disabled key (a revocation that purges, healed by re-enabling it). Every log and audit line is
// scanned for the client secret, the federated token, the plaintexts, the data keys (seeds) the
// fake saw wrapped and any token it issued (the fixture's tear-down).
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/azure/fake_azure_server.h"
#include "tests/integration/audit_lines.h"
#include "tests/integration/metrics_scrape.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Every token the fake issues starts with this (fake_azure_state.py issue_token).
constexpr char kFakeTokenPrefix[] = "eyJ0eXAiOiJKV1QifQ.";

class AzurePluginE2eTest : public PluginTestBase {
 protected:
  void SetUp() override {
    PluginTestBase::SetUp();
    auto server = FakeAzureServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ITEST_ASSIGN_OR_FAIL(kid_, server_->CreateKey("kek"));
    client_secret_ = "client-secret-" + NewUuid();
    RecordSecret(client_secret_);
    ASSERT_THAT(server_->Admin("/admin/entra", {{"client_id", "app-1"}, {"secret", client_secret_}})
                    .status(),
                IsOk());
    ForbidInLogs(kFakeTokenPrefix);  // No access token, whichever.
  }

  void TearDown() override {
    // The data keys the plugin had wrapped: the base's tear-down scans every log for them.
    if (server_ != nullptr) {
      for (const std::string& seed : server_->Seeds()) RecordSecret(seed);
    }
    PluginTestBase::TearDown();
  }

  // `serve --kms azure` against the fake server; `env` holds the credential variables
  // (default: the client secret).
  PluginOptions AzureOptions(const std::string& name = "kms",
                             std::map<std::string, std::string> env = {}) {
    if (env.empty()) env = ClientSecretEnv();
    PluginOptions o = Options(name);
    o.args = {"--kms",
              "azure",
              "--azure-vault-url",
              server_->vault_url(),
              "--azure-key-name",
              "kek",
              "--azure-ca-file",
              server_->ca_file(),
              "--key-poll-interval",
              "1s",
              "--kms-timeout",
              "3s",
              "--log-level",
              "debug"};
    o.env = {"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"};
    for (const auto& [k, v] : env) o.env.push_back(absl::StrCat(k, "=", v));
    return o;
  }
  std::map<std::string, std::string> ClientSecretEnv() {
    return {{"AZURE_TENANT_ID", server_->tenant()},
            {"AZURE_CLIENT_ID", "app-1"},
            {"AZURE_CLIENT_SECRET", client_secret_},
            {"AZURE_AUTHORITY_HOST", server_->vault_url()}};
  }
  std::string KeyId(const std::string& kid) const { return "azure:" + kid; }

  std::unique_ptr<FakeAzureServer> server_;
  std::string kid_;
  std::string client_secret_;
};

TEST_F(AzurePluginE2eTest, ConformsToTheApiserverContractWithOneWrapForAThousandEncrypts) {
  PluginOptions options = AzureOptions();
  const std::string audit = dir_->File("audit.log");
  options.args.insert(options.args.end(), {"--audit-log", audit});
  SetArg(options.args, "--key-poll-interval", "1h");  // No background probe during the count.
  log_paths_.push_back(audit);
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  ApiserverView view;
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  ASSERT_THAT(view.ObserveStatus(status), IsOk());
  EXPECT_EQ(status.key_id(), KeyId(kid_));
  for (int i = 0; i < 1000; ++i) {
    const std::string plaintext =
        i % 100 == 0 ? Secret(std::to_string(i)) : "p" + std::to_string(i);
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
    if (i % 100 != 0) continue;
    EXPECT_THAT(ValidateEncryptResponse(enc, status.key_id()), IsOk());
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    EXPECT_EQ(dec.plaintext(), plaintext);
  }
  EXPECT_LE(server_->Count("wrapkey"), 2);  // One wrapped data key serves every object.
  EXPECT_EQ(server_->Seeds().size(), static_cast<size_t>(server_->Count("wrapkey")));
  EXPECT_GE(server_->Count("wrapkey"), 1);
  // Status is answered from memory: no Key Vault request for 20 of them.
  const int before = server_->VaultRequests();
  for (int i = 0; i < 20; ++i) {
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse again, client.Status());
    EXPECT_EQ(again.healthz(), "ok");
  }
  EXPECT_EQ(server_->VaultRequests(), before);
  // The token-less start never happens (the plugin asks for the scope up front), and the one
  // client-secret token served every call.
  EXPECT_EQ(server_->Count("entra-token"), 1);
  ITEST_ASSIGN_OR_FAIL(nlohmann::json log, server_->Requests());
  for (const auto& r : log) {
    if (r.value("path", "").rfind("/keys/", 0) == 0) EXPECT_TRUE(r["authorized"]) << r;
    if (r.value("op", "") == "wrapkey") EXPECT_EQ(r["alg"], "RSA-OAEP-256");
  }
  // One audit line per Key Vault or Entra request; the wrapkey names the key, the key_id and
  // Key Vault's request id.
  const std::vector<nlohmann::json> lines = OfType(AuditLines(audit), "kms_request");
  int wraps = 0;
  for (const nlohmann::json& j : lines) {
    EXPECT_EQ(j["backend"], "azure");
    if (j["operation"] != "wrapkey") continue;
    ++wraps;
    EXPECT_EQ(j["key"], server_->vault_url() + "/keys/kek");
    EXPECT_EQ(j["key_id"], KeyId(kid_));
    EXPECT_EQ(j["result"], "OK");
    EXPECT_EQ(j["request_id"].get<std::string>().size(), 36u) << j;
  }
  EXPECT_EQ(wraps, server_->Count("wrapkey"));
}

TEST_F(AzurePluginE2eTest, EachCredentialSourceServesThePlugin) {
  const std::string federated = "eyJhbGciOiJSUzI1NiJ9.projected-sa-token-" + NewUuid();
  RecordSecret(federated);
  const std::string token_file = dir_->File("azure-identity-token");
  ASSERT_THAT(WriteFile(token_file, federated), IsOk());
  ASSERT_THAT(
      server_->Admin("/admin/entra", {{"client_id", "wi-app"}, {"assertion", federated}}).status(),
      IsOk());
  ASSERT_THAT(server_->Admin("/admin/imds", {{"client_ids", {"system-mi", "user-mi"}}}).status(),
              IsOk());
  struct Source {
    std::string name;
    std::map<std::string, std::string> env;
    std::vector<std::string> flags;
    std::string token_op;    // The fake's operation that issued the token.
    std::string credential;  // entra-token: secret or assertion; imds-token: the client id.
  };
  const std::vector<Source> sources = {
      {"client-secret", ClientSecretEnv(), {}, "entra-token", "secret"},
      {"workload-identity",
       {{"AZURE_TENANT_ID", server_->tenant()},
        {"AZURE_CLIENT_ID", "wi-app"},
        {"AZURE_FEDERATED_TOKEN_FILE", token_file},
        {"AZURE_AUTHORITY_HOST", server_->vault_url()}},
       {},
       "entra-token",
       "assertion"},
      {"imds",
       {{"AZURE_POD_IDENTITY_AUTHORITY_HOST", server_->http_base()}},
       {},
       "imds-token",
       "system-mi"},
      {"imds-user-assigned",
       {{"AZURE_LOG_LEVEL", "info"}},
       {"--azure-imds-endpoint", server_->http_base(), "--azure-managed-identity-client-id",
        "user-mi"},
       "imds-token",
       "user-mi"}};
  for (const Source& s : sources) {
    SCOPED_TRACE(s.name);
    ASSERT_THAT(server_->Admin("/admin/requests/clear").status(), IsOk());
    PluginOptions options = AzureOptions(s.name, s.env);
    options.args.insert(options.args.end(), s.flags.begin(), s.flags.end());
    ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
    {
      ApiserverKmsClient client(plugin->grpc_target());
      const std::string plaintext = Secret(s.name);
      ITEST_ASSIGN_OR_FAIL(std::string back, client.RoundTrip(plaintext));
      EXPECT_EQ(back, plaintext);
    }
    EXPECT_EQ(server_->Count(s.token_op), 1);  // One token, cached for every call.
    ITEST_ASSIGN_OR_FAIL(nlohmann::json log, server_->Requests());
    for (const auto& r : log) {
      if (r.value("op", "") != s.token_op) continue;
      if (s.token_op == "entra-token") {
        EXPECT_EQ(r["credential"], s.credential);
        EXPECT_EQ(r["scope"], "https://vault.azure.net/.default");
      } else {
        EXPECT_EQ(r["client_id"], s.credential == "system-mi" ? "" : s.credential);
        EXPECT_EQ(r["resource"], "https://vault.azure.net");
        EXPECT_EQ(r["metadata_header"], "true");
      }
    }
    EXPECT_THAT(plugin->Log(), HasSubstr("access token from"));
    EXPECT_THAT(plugin->Terminate(), IsOk());
  }
}

TEST_F(AzurePluginE2eTest, RotationInKeyVaultAndRotateKekGiveNewKeyIdsAndOldDataDecrypts) {
  PluginOptions options = AzureOptions("node1");
  options.args.insert(options.args.end(), {"--key-change-confirmations", "1"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  PluginOptions pinned_options = AzureOptions("pinned");
  pinned_options.args.insert(pinned_options.args.end(),
                             {"--azure-key-version", kid_.substr(kid_.rfind('/') + 1)});
  ITEST_ASSIGN_OR_FAIL(auto pinned, Start(pinned_options));
  const std::string p1 = Secret("v1");
  const std::string p2 = Secret("v2");
  v2::EncryptResponse e1, e2;
  std::string kid2;
  {
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(e1, client.Encrypt(p1));
    EXPECT_EQ(e1.key_id(), KeyId(kid_));
    // `az keyvault key rotate`.
    ITEST_ASSIGN_OR_FAIL(kid2, server_->RotateKey("kek"));
    ASSERT_TRUE(WaitFor(client, [&](const auto& s) { return s.key_id() == KeyId(kid2); }));
    ITEST_ASSIGN_OR_FAIL(e2, client.Encrypt(p2));
    EXPECT_EQ(e2.key_id(), KeyId(kid2));
  }
  RunRotateKek(*plugin);
  EXPECT_EQ(server_->Count("rotate"), 1);
  {
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    EXPECT_THAT(status.key_id(), StartsWith(KeyId(server_->vault_url() + "/keys/kek/")));
    EXPECT_NE(status.key_id(), KeyId(kid_));
    EXPECT_NE(status.key_id(), KeyId(kid2));
  }
  {
    // The pinned node keeps the version it was given, whatever the current one is.
    ApiserverKmsClient client(pinned->grpc_target());
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    EXPECT_EQ(status.key_id(), KeyId(kid_));
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(e2)));
    EXPECT_EQ(dec.plaintext(), p2);  // Other versions of the same key still unwrap.
  }
  EXPECT_THAT(plugin->Terminate(), IsOk());

  // A fresh process has no cached data key: each old ciphertext goes to unwrapkey on its version.
  ITEST_ASSIGN_OR_FAIL(auto fresh, Start(AzureOptions("fresh")));
  ApiserverKmsClient again(fresh->grpc_target());
  for (const auto& [enc, plaintext] : {std::pair{&e1, &p1}, std::pair{&e2, &p2}}) {
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         again.Decrypt(ApiserverKmsClient::DecryptRequestFor(*enc)));
    EXPECT_EQ(dec.plaintext(), *plaintext);
  }
  ITEST_ASSIGN_OR_FAIL(nlohmann::json log, server_->Requests());
  std::vector<std::string> unwrapped;
  for (const auto& r : log) {
    if (r.value("op", "") == "unwrapkey" && r.value("status", 0) == 200) {
      unwrapped.push_back(r["version"]);
    }
  }
  EXPECT_THAT(unwrapped, ::testing::IsSupersetOf(
                             {kid_.substr(kid_.rfind('/') + 1), kid2.substr(kid2.rfind('/') + 1)}));
}

TEST_F(AzurePluginE2eTest, AKeyVaultOutageIsServedFromCachedKeysInsideTheWindow) {
  PluginOptions options = AzureOptions();
  options.args.insert(options.args.end(),
                      {"--kms-outage-window", "10m", "--health-addr", "127.0.0.1:0"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string before = Secret("before-outage");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_before, client.Encrypt(before));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status_before, client.Status());
  // Throttled (429 with Retry-After) and then failing with 503 on every call.
  ASSERT_THAT(
      server_->Admin("/admin/faults", {{"kind", "429"}, {"count", 2}, {"retry_after", 0}}).status(),
      IsOk());
  ASSERT_THAT(server_->Admin("/admin/faults", {{"kind", "503"}, {"count", -1}}).status(), IsOk());
  ASSERT_TRUE(PollUntil([&] { return plugin->Log().find("HTTP 503") != std::string::npos; },
                        absl::Seconds(20)))
      << "no probe saw the outage";
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_EQ(status.healthz(), "ok");
  EXPECT_EQ(status.key_id(), status_before.key_id());
  const std::string during = Secret("during-outage");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_during, client.Encrypt(during));
  EXPECT_THAT(ValidateEncryptResponse(enc_during, status.key_id()), IsOk());
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                       client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc_before)));
  EXPECT_EQ(dec.plaintext(), before);
  EXPECT_THAT(plugin->Log(), Not(HasSubstr("purging")));
  // /metrics counts the throttled and the failing retries under backend="azure" (the probes
  // after the first one retry on 503).
  ITEST_ASSIGN_OR_FAIL(int port, HealthPort(*plugin));
  std::map<std::string, double> retries;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto metrics = Scrape(port);
        if (!metrics.ok()) return false;
        for (const PromSample& sample : metrics->Samples("kms_plugin_kms_retries_total")) {
          EXPECT_EQ(sample.labels.at("backend"), "azure");
          retries[sample.labels.at("error_class")] = sample.value;
        }
        return retries["unavailable"] >= 1.0;
      },
      absl::Seconds(20)));
  EXPECT_GE(retries["throttled"], 1.0);
  EXPECT_EQ(retries["denied"], 0.0);
}

TEST_F(AzurePluginE2eTest, ADisabledKeyIsARevocationThatPurgesAndReEnablingItHeals) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(AzureOptions()));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string plaintext = Secret("before-disable");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
  ASSERT_THAT(server_->Admin("/admin/keys/enable", {{"name", "kek"}, {"enabled", false}}).status(),
              IsOk());
  ASSERT_TRUE(WaitFor(client, [](const auto& s) { return s.healthz() != "ok"; }))
      << "Status stayed ok";
  EXPECT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)), Not(IsOk()));
  EXPECT_THAT(client.Encrypt(Secret("after-disable")), Not(IsOk()));
  EXPECT_THAT(plugin->Log(), HasSubstr("purging every cached data key"));
  EXPECT_THAT(plugin->Log(), HasSubstr("disabled"));

  ASSERT_THAT(server_->Admin("/admin/keys/enable", {{"name", "kek"}, {"enabled", true}}).status(),
              IsOk());
  ASSERT_TRUE(WaitFor(client, [](const auto& s) { return s.healthz() == "ok"; }))
      << "re-enabling the key did not heal the plugin";
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse healed,
                       client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
  EXPECT_EQ(healed.plaintext(), plaintext);
  // Access denied (403 ForbiddenByRbac) is a revocation too.
  ASSERT_THAT(server_->Admin("/admin/deny", {{"ops", {"get", "wrapkey", "unwrapkey"}}}).status(),
              IsOk());
  ASSERT_TRUE(WaitFor(client, [](const auto& s) { return s.healthz() != "ok"; }));
  EXPECT_THAT(plugin->Log(), HasSubstr("ForbiddenByRbac"));
}

}  // namespace
}  // namespace kmsplugin::testing
