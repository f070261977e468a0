// AwsPluginE2eTest: the fixture of the end-to-end tests of `kms-plugin serve --kms aws` (the
// built binary as a process) against the python fake AWS server: the server with one key aliased
// k8s, the plugin's flags and environment, and a tear-down that also scans every log for the
// server's session tokens and request signatures.
#ifndef KMSP_TESTS_AWS_AWS_PLUGIN_FIXTURE_H_
#define KMSP_TESTS_AWS_AWS_PLUGIN_FIXTURE_H_

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/aws/fake_aws_server.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {

class AwsPluginE2eTest : public PluginTestBase {
 protected:
  void SetUp() override {
    PluginTestBase::SetUp();
    auto server = FakeAwsServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto key = server_->Admin("/admin/keys", {{"alias", "k8s"}});
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *key;
    RecordSecret(FakeAwsServer::kSecretKey);
  }

  void TearDown() override {
    PluginTestBase::TearDown();
    // Temporary credentials the server issued (session tokens start with "FQoG") and request
    // signatures must not be in any log either.
    for (const std::string& path : log_paths_) {
      auto log = ReadFile(path);
      if (!log.ok()) continue;
      EXPECT_THAT(*log, ::testing::Not(::testing::HasSubstr("FQoG"))) << path;
      EXPECT_THAT(*log, ::testing::Not(::testing::HasSubstr("Signature="))) << path;
      EXPECT_THAT(*log, ::testing::Not(::testing::HasSubstr("X-Amz-Security-Token"))) << path;
    }
  }

  // `serve --kms aws` against the fake server; credentials from `env` (static keys by default).
  PluginOptions AwsOptions(const std::string& name = "kms",
                           std::map<std::string, std::string> env = {}) {
    PluginOptions o = Options(name);
    o.args = {"--kms",
              "aws",
              "--aws-key-id",
              "alias/k8s",
              "--aws-region",
              "us-east-1",
              "--aws-endpoint",
              server_->kms_endpoint(),
              "--aws-ca-file",
              server_->ca_file(),
              "--aws-encryption-context",
              "cluster=e2e",
              "--key-poll-interval",
              "1s",
              "--kms-timeout",
              "3s",
              "--log-level",
              "debug"};
    std::map<std::string, std::string> vars = {
        {"AWS_EC2_METADATA_DISABLED", "true"},
        {"AWS_SHARED_CREDENTIALS_FILE", dir_->File("no-credentials")},
        {"AWS_CONFIG_FILE", dir_->File("no-config")},
        {"HOME", dir_->path()},
        {"NO_PROXY", "127.0.0.1,localhost"},
        {"no_proxy", "127.0.0.1,localhost"}};
    if (env.empty()) {
      env = {{"AWS_ACCESS_KEY_ID", FakeAwsServer::kAccessKey},
             {"AWS_SECRET_ACCESS_KEY", FakeAwsServer::kSecretKey}};
    }
    for (auto& [k, v] : env) vars[k] = v;
    for (const auto& [k, v] : vars) o.env.push_back(absl::StrCat(k, "=", v));
    return o;
  }

  std::string KeyIdFor(const std::string& material) const {
    return "aws:" + key_["arn"].get<std::string>() + "/" + material;
  }

  // A plaintext the leak scan looks for afterwards.

  nlohmann::json ServerLog() {
    auto log = server_->Requests();
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *log : nlohmann::json::array();
  }

  static int Count(const nlohmann::json& log, const std::string& service, const std::string& op) {
    int n = 0;
    for (const auto& r : log) {
      if (r["service"] == service && r["op"] == op && !r.contains("error")) ++n;
    }
    return n;
  }

  // Disables the key in AWS and waits until the plugin's Status is no longer healthy.
  void DisableTheKeyAndWaitUntilUnhealthy(ApiserverKmsClient& client) {
    ASSERT_THAT(server_->Admin("/admin/keys/" + key_["key_id"].get<std::string>() + "/disable"),
                IsOk());
    ASSERT_TRUE(PollUntil(
        [&] {
          auto s = client.Status();
          return s.ok() && s->healthz() != "ok";
        },
        absl::Seconds(20)))
        << "Status stayed ok with the key disabled";
  }

  // While the plugin cannot reach AWS: Status stays healthy on the key_id it had before, a new
  // Encrypt (of a secret labelled `label`) works, and so do Decrypt of it and, from the cache, of
  // `enc_before` (the encryption of `before`).
  void ExpectServingThroughTheOutage(ApiserverKmsClient& client,
                                     const v2::StatusResponse& status_before,
                                     const v2::EncryptResponse& enc_before,
                                     const std::string& before, const std::string& label) {
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    EXPECT_EQ(status.healthz(), "ok");
    EXPECT_EQ(status.key_id(), status_before.key_id());
    const std::string during = Secret(label);
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_during, client.Encrypt(during));
    EXPECT_THAT(ValidateEncryptResponse(enc_during, status.key_id()), IsOk());
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec_before,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc_before)));
    EXPECT_EQ(dec_before.plaintext(), before);
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec_during,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc_during)));
    EXPECT_EQ(dec_during.plaintext(), during);
  }

  std::unique_ptr<FakeAwsServer> server_;
  nlohmann::json key_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_AWS_AWS_PLUGIN_FIXTURE_H_
