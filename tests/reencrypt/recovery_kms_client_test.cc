// RecoveryKmsV2Client (tools/reencrypt/recovery_kms_client.h): a dead plugin is asked once per
// run, values it cannot decrypt open with the recovery key, and only read-only KMS v2 providers
// are decorated.
#include "tools/reencrypt/recovery_kms_client.h"

#include <fstream>
#include <map>
#include <set>

#include "crypto/aes_gcm.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/envelope_format.h"
#include "plugin/recovery_format.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {
namespace {

using ::testing::HasSubstr;

// A plugin whose Decrypt fails with `error` (or, when OK, answers fixed bytes); counts calls.
class ScriptedPlugin final : public KmsV2Client {
 public:
  ScriptedPlugin(absl::Status error, int* calls) : error_(std::move(error)), calls_(calls) {}
  absl::StatusOr<KmsV2Status> Status() override { return KmsV2Status{"v2", "ok", "k1"}; }
  absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes&, std::string_view) override {
    return absl::UnimplementedError("not in this test");
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view, std::string_view,
                                      const std::map<std::string, std::string>&,
                                      std::string_view) override {
    ++*calls_;
    if (!error_.ok()) return error_;
    return SecretBytes::CopyFrom("from the plugin");
  }

 private:
  const absl::Status error_;
  int* const calls_;
};

// What `serve --recovery-public-key` answers for `seed`: the envelope and its annotations.
struct Wrapped {
  std::string ciphertext;
  std::map<std::string, std::string> annotations;
};

class RecoveryKmsV2ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pair = GenerateRsaKeyPair(3072);
    ASSERT_TRUE(pair.ok()) << pair.status();
    auto pub = RsaPublicKey::FromPem(pair->public_pem);
    auto priv = RsaPrivateKey::FromPem(pair->private_pem);
    ASSERT_TRUE(pub.ok() && priv.ok());
    public_key_ = new RsaPublicKey(std::move(*pub));
    private_pem_ = new std::string(pair->private_pem.Reveal());
    std::vector<RsaPrivateKey> keys;
    keys.push_back(std::move(*priv));
    keys_ = new std::shared_ptr<const RecoveryKeySet>(RecoveryKeySet::FromKeys(std::move(keys)));
  }

  static Wrapped Wrap(std::string_view seed) {
    Wrapped w;
    auto dek = RandomSecret(32);
    EXPECT_TRUE(dek.ok());
    auto annotation = MakeRecoveryAnnotation(*public_key_, *dek);
    EXPECT_TRUE(annotation.ok()) << annotation.status();
    w.annotations = {{std::string(kDekAnnotation), "wrapped-by-the-lost-kek"},
                     {std::string(kRecoveryAnnotation), *annotation}};
    auto gcm = AesGcm::Create(std::move(*dek));
    auto nonce = RandomBytes(kEnvelopeNonceSize);
    auto sealed = (*gcm)->SealDetached(*nonce, seed, EnvelopeAad("k1", w.annotations));
    EXPECT_TRUE(sealed.ok());
    w.ciphertext = SerializeEnvelope(*nonce, *sealed);
    return w;
  }

  static RsaPublicKey* public_key_;
  static std::string* private_pem_;
  static std::shared_ptr<const RecoveryKeySet>* keys_;
};
RsaPublicKey* RecoveryKmsV2ClientTest::public_key_ = nullptr;
std::string* RecoveryKmsV2ClientTest::private_pem_ = nullptr;
std::shared_ptr<const RecoveryKeySet>* RecoveryKmsV2ClientTest::keys_ = nullptr;

TEST_F(RecoveryKmsV2ClientTest, ADeadPluginIsAskedOnceAndEveryValueOpensWithTheRecoveryKey) {
  int calls = 0;
  auto client = NewRecoveryKmsV2Client(
      "old", std::make_unique<ScriptedPlugin>(absl::UnavailableError("dead"), &calls), *keys_);
  for (int i = 0; i < 5; ++i) {
    const std::string seed(32, static_cast<char>('a' + i));
    Wrapped w = Wrap(seed);
    auto opened = client->Decrypt(w.ciphertext, "k1", w.annotations, "uid");
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->Reveal(), seed);
  }
  EXPECT_EQ(calls, 1);
}

TEST_F(RecoveryKmsV2ClientTest, APluginThatRefusesIsAskedEachTimeThenTheRecoveryKeyOpens) {
  int calls = 0;
  auto client = NewRecoveryKmsV2Client(
      "old", std::make_unique<ScriptedPlugin>(absl::InvalidArgumentError("no KEK"), &calls),
      *keys_);
  for (int i = 0; i < 3; ++i) {
    Wrapped w = Wrap(std::string(32, 's'));
    auto opened = client->Decrypt(w.ciphertext, "k1", w.annotations, "uid");
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->Reveal(), std::string(32, 's'));
  }
  EXPECT_EQ(calls, 3);
}

TEST_F(RecoveryKmsV2ClientTest, AWorkingPluginAnswersAndTheRecoveryKeyIsNotUsed) {
  int calls = 0;
  auto client = NewRecoveryKmsV2Client(
      "old", std::make_unique<ScriptedPlugin>(absl::OkStatus(), &calls), *keys_);
  auto opened = client->Decrypt("anything", "k1", {}, "uid");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->Reveal(), "from the plugin");
}

TEST_F(RecoveryKmsV2ClientTest, ValuesWithoutAUsableWrapFailWithTheReason) {
  int calls = 0;
  auto client = NewRecoveryKmsV2Client(
      "old", std::make_unique<ScriptedPlugin>(absl::UnavailableError("dead"), &calls), *keys_);
  Wrapped w = Wrap(std::string(32, 's'));
  std::map<std::string, std::string> no_wrap = {{std::string(kDekAnnotation), "x"}};
  auto missing = client->Decrypt(w.ciphertext, "k1", no_wrap, "uid");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no recovery wrap"));
  EXPECT_THAT(missing.status().message(), HasSubstr("provider old"));
  auto edited = client->Decrypt(w.ciphertext, "k2", w.annotations, "uid");  // key_id changed
  EXPECT_EQ(edited.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RecoveryKmsV2ClientTest, WithoutKeysADeadPluginFailsAtOnceAfterTheFirstCall) {
  int calls = 0;
  auto client = NewRecoveryKmsV2Client(
      "old", std::make_unique<ScriptedPlugin>(absl::DeadlineExceededError("slow"), &calls),
      RecoveryKeySet::FromKeys({}));
  Wrapped w = Wrap(std::string(32, 's'));
  for (int i = 0; i < 4; ++i) {
    auto r = client->Decrypt(w.ciphertext, "k1", w.annotations, "uid");
    EXPECT_FALSE(r.ok());
  }
  EXPECT_EQ(calls, 1);
}

TEST_F(RecoveryKmsV2ClientTest, LoadReadsAPemKeyAndRefusesAnythingElse) {
  const std::string good = ::testing::TempDir() + "/recovery-good.key";
  const std::string bad = ::testing::TempDir() + "/recovery-bad.key";
  std::ofstream(good) << *private_pem_;
  std::ofstream(bad) << "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  auto loaded = RecoveryKeySet::Load({good});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->FingerprintTexts(),
            std::vector<std::string>{public_key_->FingerprintText()});
  auto refused = RecoveryKeySet::Load({bad});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("not an RSA 3072 or 4096 private key"));
  EXPECT_THAT(refused.status().message(), HasSubstr(bad));
  EXPECT_EQ(RecoveryKeySet::Load({good, good}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecoveryWrapLabelTest, NamesTheFingerprintOrSaysNoneOrInvalid) {
  EXPECT_EQ(RecoveryWrapLabel({}), "none");
  EXPECT_EQ(RecoveryWrapLabel({{std::string(kRecoveryAnnotation), "junk"}}), "invalid");
  RecoveryWrap wrap{std::string(32, '\x01'), std::string(384, 'w')};
  EXPECT_EQ(RecoveryWrapLabel({{std::string(kRecoveryAnnotation), SerializeRecoveryWrap(wrap)}}),
            FingerprintText(wrap.fingerprint));
}

TEST(TransformerSetRecoveryTest, OnlyKmsV2ProvidersThatNoRuleWritesWithAreDecorated) {
  auto config = ParseEncryptionConfig(R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {apiVersion: v2, name: new, endpoint: "unix:///tmp/new.sock"}
      - kms: {apiVersion: v2, name: old, endpoint: "unix:///tmp/old.sock"}
  - resources: [configmaps]
    providers:
      - kms: {apiVersion: v2, name: old2, endpoint: "unix:///tmp/old2.sock"}
      - kms: {apiVersion: v2, name: older, endpoint: "unix:///tmp/older.sock"}
      - kms: {apiVersion: v2, name: new, endpoint: "unix:///tmp/new.sock"}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  std::set<std::string> decorated;
  KmsClientFactory factory;
  factory.wrap_read_only_v2 = [&decorated](std::string_view name,
                                           std::unique_ptr<KmsV2Client> client) {
    decorated.insert(std::string(name));
    return client;
  };
  ASSERT_TRUE(TransformerSet::Create(*config, factory).ok());
  EXPECT_EQ(decorated, (std::set<std::string>{"old", "older"}));
}

}  // namespace
}  // namespace kmsplugin::reencrypt
