// End-to-end: the built `kms-plugin serve --kms aws` as a separate process against the python
// fake AWS server (SigV4 checked with botocore), driven like kube-apiserver drives a KMS v2
// plugin: the apiserver's conformance checks, each credential source of the default chain, a
// key-material rotation, an AWS outage, a disabled key, and no secret in any log line (the
// fixture's tear-down scans every plugin log for every secret the test recorded).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/rsa_oaep.h"
#include "plugin/recovery_format.h"
#include "tests/aws/aws_plugin_fixture.h"
#include "tests/aws/fake_aws_server.h"
#include "tests/crypto/rsa_test_keys.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST_F(AwsPluginE2eTest, ConformsToTheApiserverContractWithOneKmsEncryptForManyObjects) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(AwsOptions()));
  ApiserverKmsClient client(plugin->grpc_target());
  ApiserverView view;
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  ASSERT_THAT(view.ObserveStatus(status), IsOk());
  EXPECT_EQ(status.key_id(), KeyIdFor(key_["material_id"]));
  for (int i = 0; i < 20; ++i) {
    const std::string plaintext = Secret(std::to_string(i));
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
    EXPECT_THAT(ValidateEncryptResponse(enc, status.key_id()), IsOk());
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    EXPECT_EQ(dec.plaintext(), plaintext);
  }
  const nlohmann::json log = ServerLog();
  EXPECT_EQ(Count(log, "kms", "Encrypt"), 1);  // One wrapped data key serves every object.
  for (const auto& r : log) {
    if (r["op"] == "Encrypt" || r["op"] == "Decrypt") {
      EXPECT_EQ(r["context"],
                nlohmann::json({{"kms-plugin", "kubernetes-kms-v2"}, {"cluster", "e2e"}}));
    }
  }
}

// Issue 12: with --recovery-public-key every reply also carries the recovery wrap of its data key
// (one RSA wrap, one AWS Encrypt for all objects), and the offline private key opens a reply with
// no AWS call at all (the plugin is stopped first).
TEST_F(AwsPluginE2eTest, WithARecoveryKeyRepliesCarryAWrapThatOpensOfflineWithoutAws) {
  PluginOptions o = AwsOptions();
  o.args.push_back("--recovery-public-key");
  o.args.push_back(kRecoveryTestPubPem);
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  std::vector<std::pair<v2::EncryptResponse, std::string>> replies;
  for (int i = 0; i < 10; ++i) {
    const std::string plaintext = Secret("recovery-" + std::to_string(i));
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
    EXPECT_THAT(ValidateEncryptResponse(enc, status.key_id()), IsOk());
    EXPECT_EQ(enc.annotations_size(), 2);
    EXPECT_EQ(enc.annotations().count(std::string(kRecoveryAnnotation)), 1u);
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    EXPECT_EQ(dec.plaintext(), plaintext);
    replies.emplace_back(enc, plaintext);
  }
  EXPECT_EQ(Count(ServerLog(), "kms", "Encrypt"), 1);
  ASSERT_THAT(plugin->Terminate(), IsOk());
  const nlohmann::json before = ServerLog();

  std::string pem = ReadFileOrEmpty(kRecoveryTestKeyPem);
  auto priv = RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem));
  ASSERT_THAT(priv, IsOk());
  for (const auto& [enc, plaintext] : replies) {
    const Annotations annotations(enc.annotations().begin(), enc.annotations().end());
    auto opened = OpenWithRecoveryKey(enc.ciphertext(), enc.key_id(), annotations, {&*priv});
    ASSERT_THAT(opened, IsOk());
    EXPECT_EQ(opened->Reveal(), plaintext);
  }
  const nlohmann::json after = ServerLog();  // No AWS call to open them:
  EXPECT_EQ(Count(after, "kms", "Decrypt"), Count(before, "kms", "Decrypt"));
  EXPECT_EQ(Count(after, "kms", "Encrypt"), Count(before, "kms", "Encrypt"));
}

TEST_F(AwsPluginE2eTest, EachCredentialSourceOfTheChainServesThePlugin) {
  const std::string role = "arn:aws:iam::111122223333:role/kms-plugin";
  const std::string jwt = "eyJhbGciOiJSUzI1NiJ9.irsa-token-" + NewUuid();
  const std::string pod_token = "pod-identity-token-" + NewUuid();
  RecordSecret(jwt);
  RecordSecret(pod_token);
  const std::string token_file = dir_->File("irsa-token");
  const std::string pod_token_file = dir_->File("pod-token");
  const std::string creds_file = dir_->File("credentials");
  ASSERT_THAT(WriteFile(token_file, jwt), IsOk());
  ASSERT_THAT(WriteFile(pod_token_file, pod_token), IsOk());
  ASSERT_THAT(
      WriteFile(creds_file, fmt::format("[ops]\naws_access_key_id = {}\n"
                                        "aws_secret_access_key = {}\n",
                                        FakeAwsServer::kAccessKey, FakeAwsServer::kSecretKey)),
      IsOk());
  ASSERT_THAT(server_->Admin("/admin/sts", {{"role_arn", role}, {"token", jwt}}), IsOk());
  ASSERT_THAT(
      server_->Admin("/admin/container", {{"path", "/v1/credentials"}, {"token", pod_token}}),
      IsOk());
  ASSERT_THAT(server_->Admin("/admin/imds", {{"role", "node-role"}}), IsOk());

  struct Source {
    std::string name;
    std::map<std::string, std::string> env;
    std::string service;  // Where the plugin should have fetched credentials ("" = nowhere).
    std::string op;
  };
  const std::vector<Source> sources = {
      {"environment",
       {{"AWS_ACCESS_KEY_ID", FakeAwsServer::kAccessKey},
        {"AWS_SECRET_ACCESS_KEY", FakeAwsServer::kSecretKey}},
       "",
       ""},
      {"shared-file",
       {{"AWS_SHARED_CREDENTIALS_FILE", creds_file}, {"AWS_PROFILE", "ops"}},
       "",
       ""},
      {"web-identity",
       {{"AWS_ROLE_ARN", role},
        {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
        {"AWS_ENDPOINT_URL_STS", server_->kms_endpoint()}},
       "sts",
       "AssumeRoleWithWebIdentity"},
      {"container",
       {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server_->http_base() + "/v1/credentials"},
        {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", pod_token_file}},
       "container",
       "GET"},
      {"imds",
       {{"AWS_EC2_METADATA_DISABLED", "false"},
        {"AWS_EC2_METADATA_SERVICE_ENDPOINT", server_->http_base()}},
       "imds",
       "credentials"},
  };
  for (const Source& source : sources) {
    SCOPED_TRACE(source.name);
    ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());
    ITEST_ASSIGN_OR_FAIL(auto plugin, Start(AwsOptions(source.name, source.env)));
    {  // The client goes before Terminate(): an open connection would hold up the drain.
      ApiserverKmsClient client(plugin->grpc_target());
      const std::string plaintext = Secret(source.name);
      ITEST_ASSIGN_OR_FAIL(std::string back, client.RoundTrip(plaintext));
      EXPECT_EQ(back, plaintext);
    }
    const nlohmann::json log = ServerLog();
    std::string kms_key;
    for (const auto& r : log) {
      if (r["service"] == "kms" && r.contains("access_key")) kms_key = r["access_key"];
    }
    if (source.service.empty()) {
      EXPECT_EQ(kms_key, FakeAwsServer::kAccessKey);
    } else {
      EXPECT_EQ(Count(log, source.service, source.op), 1);  // Fetched once, then cached.
      EXPECT_THAT(kms_key, StartsWith("ASIA"));
    }
    EXPECT_THAT(plugin->Terminate(), IsOk());
  }
}

TEST_F(AwsPluginE2eTest, KeyMaterialRotationGivesANewKeyIdAndOldCiphertextsStillDecrypt) {
  PluginOptions options = AwsOptions();
  options.args.push_back("--key-change-confirmations");
  options.args.push_back("1");
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  const std::string old_plaintext = Secret("before-rotation");
  const std::string new_plaintext = Secret("after-rotation");
  v2::EncryptResponse old_enc, new_enc;
  {  // The client goes before Terminate(): an open connection would hold up the drain.
    ApiserverKmsClient client(plugin->grpc_target());
    ITEST_ASSIGN_OR_FAIL(old_enc, client.Encrypt(old_plaintext));
    EXPECT_EQ(old_enc.key_id(), KeyIdFor(key_["material_id"]));

    auto rotated = server_->Admin("/admin/keys/" + key_["key_id"].get<std::string>() + "/rotate");
    ASSERT_TRUE(rotated.ok()) << rotated.status();
    const std::string new_key_id = KeyIdFor((*rotated)["material_id"]);
    ASSERT_TRUE(PollUntil(
        [&] {
          auto s = client.Status();
          return s.ok() && s->key_id() == new_key_id;
        },
        absl::Seconds(20)))
        << "Status never reported the rotated key material";
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    EXPECT_EQ(status.healthz(), "ok");
    ITEST_ASSIGN_OR_FAIL(new_enc, client.Encrypt(new_plaintext));
    EXPECT_EQ(new_enc.key_id(), new_key_id);
    EXPECT_THAT(ValidateEncryptResponse(new_enc, status.key_id()), IsOk());
  }

  // A fresh process has no cached data key: the old ciphertext goes to AWS Decrypt, which opens
  // it with the old key material.
  EXPECT_THAT(plugin->Terminate(), IsOk());
  ITEST_ASSIGN_OR_FAIL(auto restarted, Start(AwsOptions("restarted")));
  ApiserverKmsClient again(restarted->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse old_dec,
                       again.Decrypt(ApiserverKmsClient::DecryptRequestFor(old_enc)));
  EXPECT_EQ(old_dec.plaintext(), old_plaintext);
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse new_dec,
                       again.Decrypt(ApiserverKmsClient::DecryptRequestFor(new_enc)));
  EXPECT_EQ(new_dec.plaintext(), new_plaintext);
  bool old_material_used = false;
  for (const auto& r : ServerLog()) {
    if (r["op"] == "Decrypt" && r.value("material", "") == key_["material_id"]) {
      old_material_used = true;
    }
  }
  EXPECT_TRUE(old_material_used);
}

TEST_F(AwsPluginE2eTest, RotateCommandRotatesTheCmkOnDemandAcrossTwoPlugins) {
  ITEST_ASSIGN_OR_FAIL(auto node1, Start(AwsOptions("node1")));
  ITEST_ASSIGN_OR_FAIL(auto node2, Start(AwsOptions("node2")));
  const std::string plaintext = Secret("before-kek-rotation");
  v2::EncryptResponse old_enc;
  {
    ApiserverKmsClient client(node1->grpc_target());
    ITEST_ASSIGN_OR_FAIL(old_enc, client.Encrypt(plaintext));
  }
  ProcessOptions rotate;
  rotate.binary = PluginBinary();
  rotate.args = {"rotate", "--socket", node1->options().listen, "--socket", node2->options().listen,
                 "--kek",  "--quiet"};
  rotate.stdout_path = dir_->File("rotate.out");
  rotate.stderr_path = dir_->File("rotate.out");
  log_paths_.push_back(rotate.stdout_path);
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, Subprocess::Run(rotate, absl::Seconds(60)));
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString() << "\n"
                                             << ReadFile(rotate.stdout_path).value_or("");
  EXPECT_EQ(Count(ServerLog(), "kms", "RotateKeyOnDemand"), 1);
  std::string key_id;
  for (PluginProcess* node : {node1.get(), node2.get()}) {
    ApiserverKmsClient client(node->grpc_target());
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    EXPECT_EQ(status.healthz(), "ok");
    EXPECT_THAT(status.key_id(), StartsWith("aws:" + key_["arn"].get<std::string>() + "/"));
    EXPECT_NE(status.key_id(), old_enc.key_id());
    if (key_id.empty()) key_id = status.key_id();
    EXPECT_EQ(status.key_id(), key_id);  // Both nodes agree on the new KEK version.
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(old_enc)));
    EXPECT_EQ(dec.plaintext(), plaintext);
  }
}

TEST_F(AwsPluginE2eTest, DuringAnAwsOutageEncryptAndCachedDecryptKeepWorkingAndStatusStaysOk) {
  PluginOptions options = AwsOptions();
  options.args.push_back("--kms-outage-window");
  options.args.push_back("10m");
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string before = Secret("before-outage");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_before, client.Encrypt(before));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status_before, client.Status());

  server_->Stop();  // AWS is unreachable from now on.
  ASSERT_TRUE(PollUntil([&] { return plugin->Log().find("KMS probe failed") != std::string::npos; },
                        absl::Seconds(20)))
      << "no probe saw the outage";

  ExpectServingThroughTheOutage(client, status_before, enc_before, before, "during-outage");
}

TEST_F(AwsPluginE2eTest, DisablingTheKeyMakesStatusUnhealthyAndPurgesTheCachedKeys) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(AwsOptions()));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string plaintext = Secret("before-disable");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(plaintext));
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                       client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
  ASSERT_EQ(dec.plaintext(), plaintext);  // Served from the cached data key.

  ASSERT_NO_FATAL_FAILURE(DisableTheKeyAndWaitUntilUnhealthy(client));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_THAT(status.healthz(), Not("ok"));
  // The data key is gone from memory, and AWS refuses to unwrap it again.
  EXPECT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)), Not(IsOk()));
  EXPECT_THAT(client.Encrypt(Secret("after-disable")), Not(IsOk()));
  EXPECT_THAT(plugin->Log(), HasSubstr("is Disabled"));

  // Re-enabling the key heals the plugin.
  ASSERT_THAT(server_->Admin("/admin/keys/" + key_["key_id"].get<std::string>() + "/enable"),
              IsOk());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto s = client.Status();
        return s.ok() && s->healthz() == "ok";
      },
      absl::Seconds(20)));
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse healed,
                       client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
  EXPECT_EQ(healed.plaintext(), plaintext);
}

TEST_F(AwsPluginE2eTest, AccessDeniedAfterStartMakesStatusUnhealthyAndRefusesCachedKeys) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(AwsOptions()));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(Secret("x")));
  // IAM stops allowing kms:DescribeKey (the probe): the plugin must treat it as a revocation.
  ASSERT_THAT(server_->Admin("/admin/deny", {{"ops", {"DescribeKey", "Decrypt", "Encrypt"}}}),
              IsOk());
  ASSERT_TRUE(PollUntil(
      [&] {
        auto s = client.Status();
        return s.ok() && s->healthz() != "ok";
      },
      absl::Seconds(20)));
  EXPECT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)), Not(IsOk()));
}

TEST_F(AwsPluginE2eTest, AnIrsaTokenFileGoneAtRefreshIsAnOutageAndADisabledKeyStillRevokes) {
  const std::string role = "arn:aws:iam::111122223333:role/kms-plugin";
  const std::string jwt = "eyJhbGciOiJSUzI1NiJ9.irsa-token-" + NewUuid();
  RecordSecret(jwt);
  const std::string token_file = dir_->File("irsa-token");
  ASSERT_THAT(WriteFile(token_file, jwt), IsOk());
  // Short-lived STS credentials: 15 s, so they reach the 10 s mandatory refresh window fast.
  ASSERT_THAT(server_->Admin("/admin/sts", {{"role_arn", role}, {"token", jwt}, {"duration", 15}}),
              IsOk());
  PluginOptions options = AwsOptions("irsa", {{"AWS_ROLE_ARN", role},
                                              {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
                                              {"AWS_ENDPOINT_URL_STS", server_->kms_endpoint()}});
  options.args.push_back("--kms-outage-window");
  options.args.push_back("10m");
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string before = Secret("before-token-gone");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_before, client.Encrypt(before));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status_before, client.Status());
  ASSERT_EQ(status_before.healthz(), "ok");

  ASSERT_EQ(unlink(token_file.c_str()), 0);  // kubelet's projected token is gone.
  ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());
  ASSERT_TRUE(PollUntil(
      [&] { return plugin->Log().find("cannot obtain AWS credentials") != std::string::npos; },
      absl::Seconds(40)))
      << "the cached credentials never ran out";
  ASSERT_TRUE(PollUntil([&] { return plugin->Log().find("KMS probe failed") != std::string::npos; },
                        absl::Seconds(20)));

  // Inside the outage window: healthy, same key_id, Encrypt and cached Decrypt work, nothing
  // purged (the plugin cannot reach KMS, so the old data key can only come from its cache).
  ASSERT_NO_FATAL_FAILURE(ExpectServingThroughTheOutage(client, status_before, enc_before, before,
                                                        "during-token-gone"));
  EXPECT_THAT(plugin->Log(), Not(HasSubstr("purging")));
  EXPECT_EQ(Count(ServerLog(), "kms", "Decrypt"), 0);

  // The token comes back; a DisableKey afterwards is still a revocation that purges.
  ASSERT_THAT(WriteFile(token_file, jwt), IsOk());
  ASSERT_TRUE(
      PollUntil([&] { return Count(ServerLog(), "kms", "DescribeKey") > 0; }, absl::Seconds(20)))
      << "the plugin never reached KMS again";
  ASSERT_NO_FATAL_FAILURE(DisableTheKeyAndWaitUntilUnhealthy(client));
  EXPECT_THAT(plugin->Log(), HasSubstr("purging every cached data key"));
  EXPECT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc_before)), Not(IsOk()));
}

TEST_F(AwsPluginE2eTest, AnUnavailableKeyStateIsAnOutageThatKeepsServingCachedKeys) {
  PluginOptions options = AwsOptions();
  options.args.push_back("--kms-outage-window");
  options.args.push_back("10m");
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(options));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string before = Secret("before-unavailable");
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_before, client.Encrypt(before));
  // A custom key store disconnects: AWS reports the key Unavailable.
  ASSERT_THAT(server_->Admin("/admin/keys/" + key_["key_id"].get<std::string>() + "/state",
                             {{"state", "Unavailable"}}),
              IsOk());
  ASSERT_TRUE(PollUntil(
      [&] { return plugin->Log().find("is Unavailable, not Enabled") != std::string::npos; },
      absl::Seconds(20)));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_EQ(status.healthz(), "ok");
  ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                       client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc_before)));
  EXPECT_EQ(dec.plaintext(), before);
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc_during, client.Encrypt(Secret("during")));
  EXPECT_THAT(ValidateEncryptResponse(enc_during, status.key_id()), IsOk());
  EXPECT_THAT(plugin->Log(), Not(HasSubstr("purging")));
}

TEST_F(AwsPluginE2eTest, APlainHttpEndpointStopsTheProcessNamingTheTestsOnlyFlag) {
  PluginOptions options = AwsOptions();
  for (size_t i = 0; i + 1 < options.args.size(); ++i) {
    if (options.args[i] == "--aws-endpoint") options.args[i + 1] = server_->http_base();
  }
  ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(options));
  auto exit = plugin->process().Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_NE(exit->code, 0);
  EXPECT_THAT(plugin->Log(), HasSubstr("--aws-insecure-http-for-tests"));
}

TEST_F(AwsPluginE2eTest, BadAwsFlagsStopTheProcessWithAClearMessage) {
  PluginOptions options = AwsOptions();
  options.args = {"--kms", "aws", "--aws-region", "us-east-1", "--log-level", "debug"};
  ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(options));
  auto exit = plugin->process().Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_NE(exit->code, 0);
  EXPECT_THAT(plugin->Log(), HasSubstr("--aws-key-id"));
}

// libcurl is loaded on demand (kms/http_client.h): an AWS plugin has it mapped once it has talked
// to AWS (the `--kms local` counterpart is tests/integration/plugin_libcurl_test.cc).
TEST_F(AwsPluginE2eTest, LibcurlIsMappedInAnAwsPluginAfterItsFirstKmsCall) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(AwsOptions()));
  {
    ApiserverKmsClient client(plugin->grpc_target());
    const std::string plaintext = Secret("libcurl");
    ITEST_ASSIGN_OR_FAIL(std::string back, client.RoundTrip(plaintext));
    EXPECT_EQ(back, plaintext);
  }
  EXPECT_GE(Count(ServerLog(), "kms", "Encrypt"), 1);
  ITEST_ASSIGN_OR_FAIL(std::string maps,
                       ReadFile("/proc/" + std::to_string(plugin->process().pid()) + "/maps"));
  EXPECT_THAT(maps, HasSubstr("libcurl.so.4"));
}

}  // namespace
}  // namespace kmsplugin::testing
