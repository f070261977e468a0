// `kms-plugin serve --recovery-public-key` and `kms-plugin recovery-keygen` through the built
// binary (issue 12): conformance round trips with the second annotation, a tampered recovery
// annotation rejected, the fingerprint in the log and on /metrics, offline opening of the replies
// with the private key, and the start-up refusals.
#include <set>

#include "crypto/encoding.h"
#include "crypto/rsa_oaep.h"
#include "plugin/recovery_format.h"
#include "tests/crypto/rsa_test_keys.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRecoveryKey[] = "recovery.kms-plugin.io";

class PluginRecoveryTest : public PluginTestBase {
 protected:
  PluginOptions RecoveryOptions(const std::string& name = "kms",
                                const std::string& pub = kRecoveryTestPubPem) {
    PluginOptions o = Options(name);
    o.args.push_back("--recovery-public-key");
    o.args.push_back(pub);
    return o;
  }

  static RsaPrivateKey LoadPrivate(const std::string& path) {
    std::string pem = ReadFileOrEmpty(path);
    auto key = RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem));
    EXPECT_THAT(key, IsOk());
    return *std::move(key);
  }

  static Annotations AsAnnotations(const v2::EncryptResponse& r) {
    return Annotations(r.annotations().begin(), r.annotations().end());
  }

  // Runs a plugin that must refuse to start; returns its log.
  std::string ExpectStartRefused(const PluginOptions& o) {
    auto plugin = StartNoWait(o);
    EXPECT_THAT(plugin, IsOk());
    if (!plugin.ok()) return "";
    auto exit = (*plugin)->process().Wait(absl::Seconds(30));
    EXPECT_THAT(exit, IsOk()) << (*plugin)->Log();
    if (exit.ok()) {
      EXPECT_TRUE(exit->exited) << exit->ToString();
      EXPECT_EQ(exit->code, 1);
    }
    return (*plugin)->Log();
  }
};

TEST_F(PluginRecoveryTest, ConformanceRoundTripsCarryOneRecoveryWrapAndOpenOffline) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(RecoveryOptions()));
  ApiserverKmsClient client(plugin->grpc_target());
  ApiserverView view;
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  ASSERT_THAT(view.ObserveStatus(status), IsOk());
  RsaPrivateKey priv = LoadPrivate(kRecoveryTestKeyPem);
  constexpr int kCalls = 20;
  std::set<std::string> recovery_values;
  for (int i = 0; i < kCalls; ++i) {
    const std::string seed = NewSeed();
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(seed));
    EXPECT_THAT(view.CheckEncrypt(enc), IsOk());
    ASSERT_EQ(enc.annotations_size(), 2);
    ASSERT_EQ(enc.annotations().count(kRecoveryKey), 1u);
    recovery_values.insert(enc.annotations().at(kRecoveryKey));
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    EXPECT_EQ(dec.plaintext(), seed);
    auto offline = OpenWithRecoveryKey(enc.ciphertext(), enc.key_id(), AsAnnotations(enc), {&priv});
    ASSERT_THAT(offline, IsOk());
    EXPECT_EQ(offline->Reveal(), seed);
  }
  EXPECT_EQ(recovery_values.size(), 1u);  // One data key, one RSA wrap.
  EXPECT_THAT(plugin->Terminate(), IsOkAndHolds(::testing::Field(&ExitInfo::code, 0)));
}

TEST_F(PluginRecoveryTest, TamperedRemovedOrSwappedRecoveryAnnotationIsRejected) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(RecoveryOptions()));
  // A second process on the same keyring makes another data key (another recovery wrap).
  ITEST_ASSIGN_OR_FAIL(auto other, Start(RecoveryOptions("other")));
  ApiserverKmsClient client(plugin->grpc_target());
  ApiserverKmsClient other_client(other->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(NewSeed()));
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc2, other_client.Encrypt(NewSeed()));
  ASSERT_NE(enc.annotations().at(kRecoveryKey), enc2.annotations().at(kRecoveryKey));
  std::vector<std::pair<std::string, v2::DecryptRequest>> cases;
  for (size_t pos : {size_t{0}, size_t{5}, size_t{40}, size_t{416}}) {
    v2::DecryptRequest r = ApiserverKmsClient::DecryptRequestFor(enc);
    std::string& v = (*r.mutable_annotations())[kRecoveryKey];
    v[pos] = static_cast<char>(v[pos] ^ 0x01);
    cases.emplace_back("byte " + std::to_string(pos) + " changed", r);
  }
  v2::DecryptRequest removed = ApiserverKmsClient::DecryptRequestFor(enc);
  removed.mutable_annotations()->erase(kRecoveryKey);
  cases.emplace_back("removed", removed);
  v2::DecryptRequest swapped = ApiserverKmsClient::DecryptRequestFor(enc);
  (*swapped.mutable_annotations())[kRecoveryKey] = enc2.annotations().at(kRecoveryKey);
  cases.emplace_back("swapped from another data key", swapped);
  for (const auto& [what, request] : cases) {
    EXPECT_THAT(client.Decrypt(request),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("authentication")))
        << what;
  }
  EXPECT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)), IsOk());
}

TEST_F(PluginRecoveryTest, FingerprintIsInTheLogAndInMetrics) {
  ITEST_ASSIGN_OR_FAIL(int port, PickUnusedLoopbackPort());
  PluginOptions o = RecoveryOptions();
  o.args.push_back("--health-addr");
  o.args.push_back("127.0.0.1:" + std::to_string(port));
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  const std::string fp = std::string("sha256:") + kRecoveryTestKeyFingerprintHex;
  EXPECT_THAT(plugin->Log(), HasSubstr("recovery key " + fp));
  ITEST_ASSIGN_OR_FAIL(HttpResponse metrics, HttpGetWhenUp(port, "/metrics", absl::Seconds(10)));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body,
              HasSubstr("kms_plugin_recovery_key_info{fingerprint=\"" + fp + "\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("kms_plugin_recovery_wraps_total 1"));
}

TEST_F(PluginRecoveryTest, WithoutTheFlagRepliesHaveOneAnnotationAndNoRecoveryMetric) {
  ITEST_ASSIGN_OR_FAIL(int port, PickUnusedLoopbackPort());
  PluginOptions o = Options();
  o.args.push_back("--health-addr");
  o.args.push_back("127.0.0.1:" + std::to_string(port));
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(NewSeed()));
  EXPECT_EQ(enc.annotations_size(), 1);
  EXPECT_EQ(enc.annotations().count("dek.kms-plugin.io"), 1u);
  ITEST_ASSIGN_OR_FAIL(HttpResponse metrics, HttpGetWhenUp(port, "/metrics", absl::Seconds(10)));
  EXPECT_THAT(metrics.body, Not(HasSubstr("recovery")));
}

TEST_F(PluginRecoveryTest, ServeRefusesA2048BitEcPrivateOrMissingKeyAtStart) {
  EXPECT_THAT(ExpectStartRefused(RecoveryOptions("k2048", kRsa2048TestPubPem)),
              HasSubstr("bad --recovery-public-key: INVALID_ARGUMENT: the recovery key is "
                        "RSA-2048; only RSA-3072 and RSA-4096 are accepted"));
  EXPECT_THAT(ExpectStartRefused(RecoveryOptions("ec", kEcP256TestPubPem)),
              HasSubstr("RSA key of 3072 or 4096 bits is required"));
  EXPECT_THAT(ExpectStartRefused(RecoveryOptions("priv", kRecoveryTestKeyPem)),
              HasSubstr("holds a PRIVATE key"));
  EXPECT_THAT(ExpectStartRefused(RecoveryOptions("missing", dir_->File("nope.pem"))),
              HasSubstr("bad --recovery-public-key"));
}

TEST_F(PluginRecoveryTest, RecoveryKeygenWritesAPairServeUsesAndRefusesToOverwrite) {
  const std::string priv_path = dir_->File("recovery.key");
  const std::string pub_path = dir_->File("recovery.pub");
  ProcessOptions p;
  p.binary = PluginBinary();
  p.args = {"recovery-keygen",
            "--private-key-out",
            priv_path,
            "--public-key-out",
            pub_path,
            "--bits",
            "3072"};
  p.stdout_path = dir_->File("keygen.out");
  p.stderr_path = dir_->File("keygen.err");
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, Subprocess::Run(p, absl::Seconds(60)));
  ASSERT_EQ(exit.code, 0) << ReadFileOrEmpty(p.stderr_path);
  EXPECT_EQ(ModeOf(priv_path), 0600);
  EXPECT_THAT(ReadFileOrEmpty(priv_path), ::testing::StartsWith("-----BEGIN PRIVATE KEY-----"));
  RsaPrivateKey priv = LoadPrivate(priv_path);
  EXPECT_EQ(priv.bits(), 3072);
  EXPECT_EQ(ReadFileOrEmpty(p.stdout_path), priv.FingerprintText() + "\n");

  // Serve with the new public key; a reply opens offline with the new private key.
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(RecoveryOptions("kms", pub_path)));
  ApiserverKmsClient client(plugin->grpc_target());
  const std::string seed = NewSeed();
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(seed));
  auto offline = OpenWithRecoveryKey(enc.ciphertext(), enc.key_id(), AsAnnotations(enc), {&priv});
  ASSERT_THAT(offline, IsOk());
  EXPECT_EQ(offline->Reveal(), seed);

  // Either file existing: refused, nothing written.
  const std::string priv_before = ReadFileOrEmpty(priv_path);
  const std::string new_pub = dir_->File("new.pub");
  p.args = {"recovery-keygen", "--private-key-out", priv_path, "--public-key-out", new_pub};
  ITEST_ASSIGN_OR_FAIL(ExitInfo again, Subprocess::Run(p, absl::Seconds(60)));
  EXPECT_EQ(again.code, 1);
  EXPECT_THAT(ReadFileOrEmpty(p.stderr_path), HasSubstr("refusing to overwrite " + priv_path));
  EXPECT_EQ(ReadFileOrEmpty(priv_path), priv_before);
  EXPECT_EQ(ModeOf(new_pub), -1);
  const std::string new_priv = dir_->File("new.key");
  p.args = {"recovery-keygen", "--private-key-out", new_priv, "--public-key-out", pub_path};
  ITEST_ASSIGN_OR_FAIL(ExitInfo again2, Subprocess::Run(p, absl::Seconds(60)));
  EXPECT_EQ(again2.code, 1);
  EXPECT_THAT(ReadFileOrEmpty(p.stderr_path), HasSubstr("refusing to overwrite " + pub_path));
  EXPECT_EQ(ModeOf(new_priv), -1);
  // 2048 bits refused by the flag check.
  p.args = {"recovery-keygen",
            "--private-key-out",
            new_priv,
            "--public-key-out",
            new_pub,
            "--bits",
            "2048"};
  ITEST_ASSIGN_OR_FAIL(ExitInfo small, Subprocess::Run(p, absl::Seconds(60)));
  EXPECT_NE(small.code, 0);
  EXPECT_EQ(ModeOf(new_priv), -1);
}

}  // namespace
}  // namespace kmsplugin::testing
