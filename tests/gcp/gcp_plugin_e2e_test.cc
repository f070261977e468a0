// End-to-end: the built `kms-plugin serve --kms gcp` as a separate process against the python
// fake Google Cloud server (tests/gcp/fake_gcp_server.py), driven like kube-apiserver drives a
// KMS v2 plugin: the apiserver's conformance checks, 1,000 Encrypts for at most 2 remote wraps
// (a corrupted CRC32C answer retried once) and Status for none, each credential source (service
// account key, external_account with impersonation, metadata server), rotation by Cloud KMS and
// by `kms-plugin rotate --kek` with old data decrypting, an outage (served from cached keys), a
// disabled version and a denied permission (revocations, healed when re-enabled), bad flags, and
// leak scans of every log and audit line for tokens, private keys, subject tokens and plaintexts.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/gcp/fake_gcp_server.h"
#include "tests/integration/audit_lines.h"
#include "tests/integration/metrics_scrape.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] = "projects/fake-project/locations/global/keyRings/k8s/cryptoKeys/etcd";

class GcpPluginE2eTest : public PluginTestBase {
 protected:
  void SetUp() override {
    PluginTestBase::SetUp();
    auto server = FakeGcpServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_THAT(server_->CreateKey(kKey), IsOk());
    subject_token_ = "eyJhbGciOiJSUzI1NiJ9.k8s-sa-token-" + NewUuid() + ".sig";
    RecordSecret(subject_token_);
    ASSERT_THAT(server_->Admin("/admin/sts", {{"subject_token", subject_token_}}).status(), IsOk());
    auto key_file = ReadFile(server_->sa_key_file());
    ASSERT_TRUE(key_file.ok());
    const std::string private_key =
        nlohmann::json::parse(*key_file)["private_key"].get<std::string>();
    // No access token (the fake's all start with ya29.), no private key (its PEM lines), no
    // subject token (recorded above) or assertion in any log or audit file.
    ForbidInLogs("ya29.");
    ForbidInLogs("PRIVATE KEY");
    ForbidInLogs("assertion=");
    for (const std::string& line : std::vector<std::string>(absl::StrSplit(private_key, '\n'))) {
      if (line.size() >= 32) RecordSecret(line);
    }
  }

  // `serve --kms gcp` against the fake server; credentials per `env` (the service-account key
  // file through GOOGLE_APPLICATION_CREDENTIALS by default). The metadata server is always the
  // fake's, so no test can reach a real one.
  PluginOptions GcpOptions(const std::string& name = "kms",
                           std::map<std::string, std::string> env = {}) {
    PluginOptions o = Options(name);
    o.args = {"--kms",
              "gcp",
              "--gcp-key",
              kKey,
              "--gcp-endpoint",
              server_->endpoint(),
              "--gcp-ca-file",
              server_->ca_file(),
              "--key-poll-interval",
              "1s",
              "--kms-timeout",
              "3s",
              "--log-level",
              "debug"};
    std::map<std::string, std::string> vars = {
        {"GOOGLE_APPLICATION_CREDENTIALS", server_->sa_key_file()},
        {"GCE_METADATA_HOST", server_->metadata_host()},
        {"HOME", dir_->path()},
        {"NO_PROXY", "127.0.0.1,localhost"},
        {"no_proxy", "127.0.0.1,localhost"}};
    for (auto& [k, v] : env) vars[k] = v;
    for (const auto& [k, v] : vars) o.env.push_back(absl::StrCat(k, "=", v));
    return o;
  }

  // An external_account file: the subject token file, STS, then impersonation of the fake's
  // workload identity service account.
  std::string ExternalAccountFile() {
    const std::string token_path = dir_->File("k8s-sa-token");
    EXPECT_THAT(WriteFile(token_path, subject_token_), IsOk());
    const nlohmann::json doc = {{"type", "external_account"},
                                {"audience", server_->sts_audience()},
                                {"subject_token_type", "urn:ietf:params:oauth:token-type:jwt"},
                                {"token_url", server_->sts_url()},
                                {"credential_source", {{"file", token_path}}},
                                {"service_account_impersonation_url",
                                 server_->impersonation_url(server_->impersonated_email())}};
    std::string path = dir_->File("wif.json");
    EXPECT_THAT(WriteFile(path, doc.dump()), IsOk());
    return path;
  }

  static std::string KeyId(int version) {
    return absl::StrCat("gcp:", kKey, "/cryptoKeyVersions/", version);
  }
  nlohmann::json ServerLog() {
    auto log = server_->Requests();
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *log : nlohmann::json::array();
  }

  std::unique_ptr<FakeGcpServer> server_;
  std::string subject_token_;
};

TEST_F(GcpPluginE2eTest, ConformsToTheApiserverContractAThousandEncryptsCostAtMostTwoWraps) {
  // The first encrypt answer carries a wrong ciphertextCrc32c: discarded and asked once more.
  ASSERT_THAT(
      server_->Admin("/admin/corrupt", {{"field", "ciphertextCrc32c"}, {"count", 1}}).status(),
      IsOk());
  PluginOptions options = GcpOptions();
  const std::string audit = dir_->File("audit.log");
  options.args.insert(options.args.end(), {"--audit-log", audit});
  SetArg(options.args, "--key-poll-interval", "1h");  // No background probe during the count.
  log_paths_.push_back(audit);
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  ApiserverView view;
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  ASSERT_THAT(view.ObserveStatus(status), IsOk());
  EXPECT_EQ(status.key_id(), KeyId(1));
  for (int i = 0; i < 1000; ++i) {
    const std::string plaintext =
        i % 100 == 0 ? Secret(std::to_string(i)) : "object-" + std::to_string(i);
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
    if (i % 100 != 0) continue;
    EXPECT_THAT(ValidateEncryptResponse(enc, status.key_id()), IsOk());
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    EXPECT_EQ(dec.plaintext(), plaintext);
  }
  EXPECT_LE(server_->Count("encrypt"), 2);
  EXPECT_EQ(server_->Count("token"), 1);  // One JWT exchange; the token is reused.
  const size_t requests_before = ServerLog().size();
  for (int i = 0; i < 50; ++i) ASSERT_THAT(client.Status().status(), IsOk());
  EXPECT_EQ(ServerLog().size(), requests_before);  // Status costs no remote call.
  const nlohmann::json log = ServerLog();
  int encrypts = 0;
  for (const auto& r : log) {
    if (r["op"] != "encrypt") continue;
    ++encrypts;
    EXPECT_EQ(r["identity"], server_->sa_email());
    EXPECT_EQ(r["plaintext_crc32c"], true);
    EXPECT_EQ(r["aad_crc32c"], true);
    EXPECT_EQ(r["aad_size"],
              std::string("kms-plugin/kubernetes-kms-v2:").size() + std::string(kKey).size());
  }
  EXPECT_EQ(encrypts, 2);
  EXPECT_THAT(plugin->Log(), HasSubstr("integrity check failed"));
  // One audit line per Cloud KMS request, naming the key and, for the encrypts, the version.
  const std::vector<nlohmann::json> lines = OfType(AuditLines(audit), "kms_request");
  int audited_encrypts = 0;
  for (const nlohmann::json& j : lines) {
    EXPECT_EQ(j["backend"], "gcp");
    if (j["operation"] != "encrypt") continue;
    ++audited_encrypts;
    EXPECT_EQ(j["key"], kKey);
    EXPECT_EQ(j["key_id"], KeyId(1));
  }
  EXPECT_EQ(audited_encrypts, 2);
}

TEST_F(GcpPluginE2eTest, EachCredentialSourceServesThePlugin) {
  struct Source {
    std::string name;
    std::map<std::string, std::string> env;
    std::vector<std::string> flags;
    std::string identity;  // Who the KMS calls were made as.
    std::string token_op;  // The exchange that gave the token.
  };
  const std::vector<Source> sources = {{"service-account", {}, {}, server_->sa_email(), "token"},
                                       {"external-account",
                                        {{"GOOGLE_APPLICATION_CREDENTIALS", ""}},
                                        {"--gcp-credentials-file", ExternalAccountFile()},
                                        server_->impersonated_email(),
                                        "generateAccessToken"},
                                       {"metadata-server",
                                        {{"GOOGLE_APPLICATION_CREDENTIALS", ""}},
                                        {},
                                        server_->metadata_email(),
                                        "metadata-token"}};
  for (const Source& s : sources) {
    SCOPED_TRACE(s.name);
    ASSERT_THAT(server_->Admin("/admin/requests/clear").status(), IsOk());
    PluginOptions options = GcpOptions(s.name, s.env);
    options.args.insert(options.args.end(), s.flags.begin(), s.flags.end());
    ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
    {
      ApiserverKmsClient client(plugin->grpc_target());
      const std::string plaintext = Secret(s.name);
      ITEST_ASSIGN_OR_FAIL(std::string back, client.RoundTrip(plaintext));
      EXPECT_EQ(back, plaintext);
    }
    EXPECT_EQ(server_->Count(s.token_op), 1);
    if (s.name == "external-account") {
      EXPECT_EQ(server_->Count("sts"), 1);
    }
    int kms_calls = 0;
    for (const auto& r : ServerLog()) {
      if (r["op"] != "encrypt" && r["op"] != "get" && r["op"] != "decrypt") continue;
      ++kms_calls;
      EXPECT_EQ(r["identity"], s.identity) << r;
    }
    EXPECT_GE(kms_calls, 2);
    EXPECT_THAT(plugin->Terminate(), IsOk());
  }
}

TEST_F(GcpPluginE2eTest, RotationByCloudKmsAndByRotateKekGivesNewKeyIdsOldDataDecrypts) {
  PluginOptions options = GcpOptions("node1");
  options.args.insert(options.args.end(), {"--key-change-confirmations", "1"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  const std::string p1 = Secret("v1");
  const std::string p2 = Secret("v2");
  v2::EncryptResponse e1, e2;
  {
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(e1, client.Encrypt(p1));
    EXPECT_EQ(e1.key_id(), KeyId(1));
    ASSERT_THAT(server_->RotateKey(kKey), IsOk());  // A scheduled rotation.
    ASSERT_TRUE(WaitFor(client, [](const auto& s) { return s.key_id() == KeyId(2); }));
    ITEST_ASSIGN_OR_FAIL(e2, client.Encrypt(p2));
    EXPECT_EQ(e2.key_id(), KeyId(2));
  }
  RunRotateKek(*plugin);
  EXPECT_EQ(server_->Count("versions.create"), 1);
  EXPECT_EQ(server_->Count("updatePrimaryVersion"), 1);
  {
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    EXPECT_EQ(status.key_id(), KeyId(3));
  }
  EXPECT_THAT(plugin->Terminate(), IsOk());
  // A fresh process has no cached data key: each old ciphertext goes to Cloud KMS decrypt.
  ITEST_ASSIGN_OR_FAIL(auto fresh, Start(GcpOptions("fresh")));
  ApiserverKmsClient again(fresh->grpc_target());
  for (const auto& [enc, plaintext] : {std::pair{&e1, &p1}, std::pair{&e2, &p2}}) {
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         again.Decrypt(ApiserverKmsClient::DecryptRequestFor(*enc)));
    EXPECT_EQ(dec.plaintext(), *plaintext);
  }
  EXPECT_EQ(server_->Count("decrypt"), 2);
}

// Short-lived tokens are replaced before they expire (no call is ever refused with 401), an
// expired one is replaced at the first 401, and 503s are retried without turning unhealthy.
TEST_F(GcpPluginE2eTest, TokensAreRefreshedBeforeExpiryAnd401And503AreRetried) {
  ASSERT_THAT(server_->Admin("/admin/token-lifetime", {{"seconds", 120}}).status(), IsOk());
  PluginOptions options = GcpOptions();
  options.args.insert(options.args.end(), {"--health-addr", "127.0.0.1:0"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  // Inside the refresh window from the start: each 1 s poll refreshes the token ahead of expiry.
  ASSERT_TRUE(PollUntil([&] { return server_->Count("token") >= 3; }, absl::Seconds(20)));
  for (const auto& r : ServerLog()) EXPECT_NE(r.value("status", 0), 401) << r;

  // Once a one-hour token is cached, no refresh is due: the next call after expiry meets a 401.
  ASSERT_THAT(server_->Admin("/admin/token-lifetime", {{"seconds", 3600}}).status(), IsOk());
  ASSERT_TRUE(PollUntil(
      [&] {
        int lifetime = 0;
        for (const auto& r : ServerLog()) {
          if (r["op"] == "token") lifetime = r.value("lifetime", 0);
        }
        return lifetime == 3600;
      },
      absl::Seconds(20)));
  const int tokens = server_->Count("token");
  const int gets = server_->Count("get");
  ASSERT_THAT(server_->Admin("/admin/tokens/expire").status(), IsOk());
  ASSERT_THAT(server_->Fault("get", "503", 2), IsOk());
  // The next polls: 401, a new token, then 503 twice (retried), then the answer.
  ASSERT_TRUE(PollUntil([&] { return server_->Count("get") > gets + 1; }, absl::Seconds(20)));
  EXPECT_GE(server_->Count("token"), tokens + 1);
  int unauthorized = 0;
  int unavailable = 0;
  for (const auto& r : ServerLog()) {
    unauthorized += r.value("status", 0) == 401;
    unavailable += r.value("status", 0) == 503;
  }
  EXPECT_EQ(unauthorized, 1);
  EXPECT_EQ(unavailable, 2);
  // /metrics counts the same retries: the 401 (credentials) and the two 503s (unavailable).
  ITEST_ASSIGN_OR_FAIL(int port, HealthPort(*plugin));
  ITEST_ASSIGN_OR_FAIL(PromText metrics, Scrape(port));
  const auto retries = metrics.Samples("kms_plugin_kms_retries_total");
  EXPECT_EQ(retries.size(), 9U);
  for (const PromSample& s : retries) {
    EXPECT_EQ(s.labels.at("backend"), "gcp");
    const std::string& error_class = s.labels.at("error_class");
    EXPECT_EQ(s.value, error_class == "unavailable"   ? 2.0
                       : error_class == "credentials" ? 1.0
                                                      : 0.0)
        << error_class;
  }
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_EQ(status.healthz(), "ok");
  const std::string plaintext = Secret("after-refresh");
  ITEST_ASSIGN_OR_FAIL(std::string back, client.RoundTrip(plaintext));
  EXPECT_EQ(back, plaintext);
  EXPECT_THAT(plugin->Log(), Not(HasSubstr("purging")));
}

TEST_F(GcpPluginE2eTest, DuringAnOutageEncryptAndCachedDecryptKeepWorkingAndStatusStaysOk) {
  PluginOptions options = GcpOptions();
  options.args.insert(options.args.end(), {"--kms-outage-window", "10m"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string before = Secret("before-outage");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_before, client.Encrypt(before));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status_before, client.Status());

  server_->Stop();  // Google is unreachable from now on.
  ASSERT_TRUE(PollUntil([&] { return plugin->Log().find("KMS probe failed") != std::string::npos; },
                        absl::Seconds(20)))
      << "no probe saw the outage";
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_EQ(status.healthz(), "ok");
  EXPECT_EQ(status.key_id(), status_before.key_id());
  const std::string during = Secret("during-outage");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_during, client.Encrypt(during));
  EXPECT_THAT(ValidateEncryptResponse(enc_during, status.key_id()), IsOk());
  for (const auto& [enc, plaintext] :
       {std::pair{&enc_before, &before}, std::pair{&enc_during, &during}}) {
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(*enc)));
    EXPECT_EQ(dec.plaintext(), *plaintext);
  }
  EXPECT_THAT(plugin->Log(), Not(HasSubstr("purging")));
}

TEST_F(GcpPluginE2eTest, ADisabledVersionOrADeniedPermissionRevokesAndReEnablingHeals) {
  for (const std::string how : {"disabled-version", "permission-denied"}) {
    SCOPED_TRACE(how);
    ITEST_ASSIGN_OR_FAIL(auto plugin, Start(GcpOptions(how)));
    ApiserverKmsClient client(plugin->grpc_target());
    const std::string plaintext = Secret(how);
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    const std::string version = status.key_id().substr(4);
    if (how == "disabled-version") {
      ASSERT_THAT(server_->SetVersionState(version, "DISABLED"), IsOk());
    } else {
      ASSERT_THAT(
          server_
              ->Admin("/admin/deny", {{"ops", {{"get", "*"}, {"encrypt", "*"}, {"decrypt", "*"}}}})
              .status(),
          IsOk());
    }
    ASSERT_TRUE(WaitFor(client, [](const auto& s) { return s.healthz() != "ok"; }))
        << "Status stayed ok";
    EXPECT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)), Not(IsOk()));
    EXPECT_THAT(client.Encrypt(Secret("after-" + how)), Not(IsOk()));
    EXPECT_THAT(plugin->Log(), HasSubstr("purging every cached data key"));
    EXPECT_THAT(plugin->Log(),
                HasSubstr(how == "disabled-version" ? "DISABLED" : "PERMISSION_DENIED"));
    // Re-enabled: healthy again, and the old data decrypts (through Cloud KMS).
    if (how == "disabled-version") {
      ASSERT_THAT(server_->SetVersionState(version, "ENABLED"), IsOk());
    } else {
      ASSERT_THAT(server_->Admin("/admin/deny", {{"ops", nlohmann::json::object()}}).status(),
                  IsOk());
    }
    ASSERT_TRUE(WaitFor(client, [](const auto& s) { return s.healthz() == "ok"; }))
        << "Status did not heal";
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse healed,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    EXPECT_EQ(healed.plaintext(), plaintext);
    EXPECT_THAT(plugin->Terminate(), IsOk());
  }
}

TEST_F(GcpPluginE2eTest, BadGcpFlagsStopTheProcessWithAClearMessage) {
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, std::string>> replace;  // flag -> value ("" drops it)
    std::string expected;
  };
  const std::string broken = dir_->File("broken.json");
  ASSERT_THAT(WriteFile(broken, R"({"type":"authorized_user"})"), IsOk());
  const std::vector<Case> cases = {
      {"no-key", {{"--gcp-key", ""}}, "--gcp-key"},
      {"bad-key", {{"--gcp-key", "projects/p/keyRings/r"}}, "is not projects/P/locations"},
      {"http", {{"--gcp-endpoint", "http://127.0.0.1:1"}}, "is not an https:// URL"},
      {"creds", {{"--gcp-credentials-file", broken}}, "is not service_account or external"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    PluginOptions options = GcpOptions(c.name);
    for (const auto& [flag, value] : c.replace) {
      bool found = false;
      for (size_t i = 0; i + 1 < options.args.size(); ++i) {
        if (options.args[i] != flag) continue;
        found = true;
        if (value.empty()) {
          options.args.erase(options.args.begin() + static_cast<long>(i),
                             options.args.begin() + static_cast<long>(i) + 2);
        } else {
          options.args[i + 1] = value;
        }
        break;
      }
      if (!found) options.args.insert(options.args.end(), {flag, value});
    }
    ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(options));
    auto exit = plugin->process().Wait(absl::Seconds(20));
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_NE(exit->code, 0);
    EXPECT_THAT(plugin->Log(), HasSubstr(c.expected));
  }
  EXPECT_EQ(server_->Count("token"), 0);  // Refused before any remote call.
}

}  // namespace
}  // namespace kmsplugin::testing
