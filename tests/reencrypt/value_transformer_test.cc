// value_transformer: per-provider value formats and the prefix dispatch of a provider chain,
// checked against the independent encoders of corpus.h and an in-process base64 KMS.
#include "tools/reencrypt/value_transformer.h"

#include <atomic>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/fake_kms_server.h"
#include "tools/reencrypt/storage_format.h"

namespace kmsplugin::reencrypt {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kEtcdKey[] = "/registry/secrets/default/db";
const std::string kKeyA(32, 'a');
const std::string kKeyB(32, 'b');

// In-process KMS v2 client with the fake plugin's base64 scheme.
class Base64KmsV2Client final : public KmsV2Client {
 public:
  // `lies` (may be null): when true, Decrypt returns other bytes than were wrapped.
  Base64KmsV2Client(std::string key_id, std::atomic<int>* decrypts,
                    std::atomic<bool>* lies = nullptr)
      : key_id_(std::move(key_id)), decrypts_(decrypts), lies_(lies) {}
  absl::StatusOr<KmsV2Status> Status() override { return KmsV2Status{"v2", "ok", key_id_}; }
  absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes& pt, std::string_view uid) override {
    if (uid.empty()) return absl::InvalidArgumentError("uid");
    return KmsV2EncryptResult{Base64Encode(pt.Reveal()),
                              key_id_,
                              {{testing::kFakeAnnotationKey, testing::kFakeAnnotationValue}}};
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ct, std::string_view,
                                      const std::map<std::string, std::string>&,
                                      std::string_view uid) override {
    if (uid.empty()) return absl::InvalidArgumentError("uid");
    ++*decrypts_;
    auto pt = Base64DecodeSecret(ct);
    if (pt.ok() && lies_ != nullptr && *lies_ && !pt->empty()) pt->RevealMutable()[0] ^= 1;
    return pt;
  }

 private:
  std::string key_id_;
  std::atomic<int>* decrypts_;
  std::atomic<bool>* lies_;
};

class Base64KmsV1Client final : public KmsV1Client {
 public:
  absl::StatusOr<std::string> Encrypt(const SecretBytes& pt) override {
    return Base64Encode(pt.Reveal());
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ct) override {
    return Base64DecodeSecret(ct);
  }
};

std::string B64(const std::string& s) { return Base64Encode(s); }

class ValueTransformerTest : public ::testing::Test {
 protected:
  // secrets: kms v2 (current key_id "2") first, then every legacy provider, then identity.
  void SetUp() override {
    std::string yaml = R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {apiVersion: v2, name: kms-provider, endpoint: unix:///unused.sock}
      - kms: {name: legacy-v1, endpoint: unix:///unused-v1.sock}
      - aescbc: {keys: [{name: cbc1, secret: )" +
                       B64(kKeyA) + R"(}, {name: cbc0, secret: )" + B64(kKeyB) + R"(}]}
      - aesgcm: {keys: [{name: gcm1, secret: )" +
                       B64(kKeyA) + R"(}]}
      - secretbox: {keys: [{name: box1, secret: )" +
                       B64(kKeyA) + R"(}]}
      - identity: {}
  - resources: [configmaps]
    providers:
      - aescbc: {keys: [{name: cbc1, secret: )" +
                       B64(kKeyA) + R"(}]}
      - identity: {}
)";
    auto config = ParseEncryptionConfig(yaml);
    ASSERT_THAT(config, IsOk());
    config_ = std::make_unique<EncryptionConfig>(std::move(*config));
    KmsClientFactory factory;
    factory.v2 = [this](std::string_view,
                        absl::Duration) -> absl::StatusOr<std::unique_ptr<KmsV2Client>> {
      return std::make_unique<Base64KmsV2Client>("2", &kms_decrypts_, &kms_lies_);
    };
    factory.v1 = [](std::string_view,
                    absl::Duration) -> absl::StatusOr<std::unique_ptr<KmsV1Client>> {
      return std::make_unique<Base64KmsV1Client>();
    };
    auto set = TransformerSet::Create(*config_, factory);
    ASSERT_THAT(set, IsOk());
    set_ = std::move(*set);
    chain_ = &set_->ChainFor(GroupResource::Parse("secrets"));
    ASSERT_THAT(chain_->transformers().front()->PrepareForWrite(), IsOk());
  }

  std::string Plain() { return testing::MakePlaintext("db", 300); }

  std::atomic<bool> kms_lies_{false};
  std::unique_ptr<EncryptionConfig> config_;
  std::unique_ptr<TransformerSet> set_;
  const ProviderChain* chain_ = nullptr;
  std::atomic<int> kms_decrypts_{0};
};

TEST_F(ValueTransformerTest, EveryLegacyFormatDecryptsAndIsStale) {
  const std::string pt = Plain();
  struct Case {
    std::string value;
    std::string provider;
    std::string key_id;
    int index;
  };
  std::vector<Case> cases = {
      {*testing::EncodeAesCbc("cbc1", kKeyA, pt), "aescbc", "cbc1", 2},
      {*testing::EncodeAesCbc("cbc0", kKeyB, pt), "aescbc", "cbc0", 2},
      {*testing::EncodeAesGcm("gcm1", kKeyA, kEtcdKey, pt), "aesgcm", "gcm1", 3},
      {*testing::EncodeSecretbox("box1", kKeyA, pt), "secretbox", "box1", 4},
      {*testing::EncodeKmsV2Type0("kms-provider", "1", kKeyA, kEtcdKey, pt), "kms-v2:kms-provider",
       "1", 0},
      {*testing::EncodeKmsV2Type1("kms-provider", "1", kKeyB, kEtcdKey, pt), "kms-v2:kms-provider",
       "1", 0},
      {*testing::EncodeKmsV2Type0("kms-provider", "2", kKeyA, kEtcdKey, pt), "kms-v2:kms-provider",
       "2", 0},
      {*testing::EncodeKmsV1("legacy-v1", kKeyA, kEtcdKey, pt), "kms-v1:legacy-v1", "", 1},
      {pt, "identity", "", 5},
  };
  for (const Case& c : cases) {
    ValueOrigin o = chain_->Classify(c.value);
    EXPECT_EQ(o.provider, c.provider) << c.provider;
    EXPECT_EQ(o.key_id, c.key_id) << c.provider;
    EXPECT_EQ(o.provider_index, c.index) << c.provider;
    EXPECT_FALSE(chain_->IsCurrent(o)) << c.provider << " " << c.key_id;
    auto got = chain_->Decrypt(kEtcdKey, c.value);
    ASSERT_THAT(got, IsOk()) << c.provider;
    EXPECT_EQ(got->Reveal(), pt) << c.provider;
  }
}

TEST_F(ValueTransformerTest, EncryptWritesType1UnderTheStatusKeyIdAndIsCurrent) {
  const std::string pt = Plain();
  auto value = chain_->Encrypt(kEtcdKey, SecretBytes::CopyFrom(pt));
  ASSERT_THAT(value, IsOk());
  ValueOrigin o = chain_->Classify(*value);
  EXPECT_EQ(o.provider, "kms-v2:kms-provider");
  EXPECT_EQ(o.key_id, "2");
  EXPECT_EQ(o.dek_type, 1);
  EXPECT_TRUE(chain_->IsCurrent(o));
  auto decoded = testing::DecodeKmsV2(*value, kEtcdKey);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->type, 1);
  EXPECT_EQ(decoded->key_id, "2");
  EXPECT_EQ(decoded->annotation, testing::kFakeAnnotationValue);
  EXPECT_EQ(decoded->plaintext, pt);
}

TEST_F(ValueTransformerTest, OneSeedServesTheWholeRunWithOnlyTheWrapCheckDecrypt) {
  // PrepareForWrite (in SetUp) made exactly one plugin Decrypt: the check that the plugin can
  // unwrap the seed it wrapped. Writing and reading back 20 objects adds none.
  EXPECT_EQ(kms_decrypts_.load(), 1);
  std::string first_source;
  for (int i = 0; i < 20; ++i) {
    std::string key = std::string(kEtcdKey) + std::to_string(i);
    auto value = chain_->Encrypt(key, SecretBytes::CopyFrom("x"));
    ASSERT_THAT(value, IsOk());
    std::string_view name, rest;
    ASSERT_TRUE(SplitKmsValue(*value, kKmsV2Prefix, &name, &rest));
    auto obj = ParseEncryptedObject(rest);
    ASSERT_THAT(obj, IsOk());
    if (i == 0) first_source = obj->encrypted_dek_source;
    EXPECT_EQ(obj->encrypted_dek_source, first_source);
    ASSERT_THAT(chain_->Decrypt(key, *value), IsOk());
  }
  EXPECT_EQ(kms_decrypts_.load(), 1) << "the run's own seed must come from the cache";
}

TEST_F(ValueTransformerTest, PrepareForWriteRefusesAPluginThatCannotUnwrapItsOwnSeed) {
  kms_lies_ = true;
  KmsClientFactory factory;
  factory.v2 = [this](std::string_view,
                      absl::Duration) -> absl::StatusOr<std::unique_ptr<KmsV2Client>> {
    return std::make_unique<Base64KmsV2Client>("2", &kms_decrypts_, &kms_lies_);
  };
  factory.v1 = [](std::string_view,
                  absl::Duration) -> absl::StatusOr<std::unique_ptr<KmsV1Client>> {
    return std::make_unique<Base64KmsV1Client>();
  };
  auto set = TransformerSet::Create(*config_, factory);
  ASSERT_THAT(set, IsOk());
  auto& chain = (*set)->ChainFor(GroupResource::Parse("secrets"));
  EXPECT_THAT(chain.transformers().front()->PrepareForWrite(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("freshly wrapped seed")));
  EXPECT_THAT(chain.Encrypt(kEtcdKey, SecretBytes::CopyFrom("x")), Not(IsOk()));
}

TEST_F(ValueTransformerTest, MovedValueFailsUnderAnotherKeyForAeadFormats) {
  const std::string pt = Plain();
  auto value = chain_->Encrypt(kEtcdKey, SecretBytes::CopyFrom(pt));
  ASSERT_THAT(value, IsOk());
  EXPECT_THAT(chain_->Decrypt("/registry/secrets/default/other", *value),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto gcm = testing::EncodeAesGcm("gcm1", kKeyA, kEtcdKey, pt);
  EXPECT_THAT(chain_->Decrypt("/registry/secrets/default/other", *gcm),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ValueTransformerTest, UnknownKeyNameOrProviderIsNotDecryptable) {
  auto unknown_key = testing::EncodeAesCbc("retired", kKeyA, Plain());
  ValueOrigin o = chain_->Classify(*unknown_key);
  EXPECT_EQ(o.provider, "aescbc");
  EXPECT_EQ(o.key_id, "retired");
  EXPECT_EQ(o.provider_index, -1);
  EXPECT_EQ(o.prefix, "k8s:enc:aescbc:v1:retired:");
  EXPECT_THAT(chain_->Decrypt(kEtcdKey, *unknown_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no matching prefix")));
  auto other_kms = testing::EncodeKmsV2Type1("other-plugin", "9", kKeyA, kEtcdKey, Plain());
  o = chain_->Classify(*other_kms);
  EXPECT_EQ(o.provider, "kms-v2:other-plugin");
  EXPECT_EQ(o.key_id, "9");
  EXPECT_EQ(o.provider_index, -1);
}

TEST_F(ValueTransformerTest, WrongKeyUnderAKnownNameFailsAuthentication) {
  auto forged = testing::EncodeAesGcm("gcm1", kKeyB, kEtcdKey, Plain());
  EXPECT_THAT(chain_->Decrypt(kEtcdKey, *forged), StatusIs(absl::StatusCode::kInvalidArgument));
  auto forged_box = testing::EncodeSecretbox("box1", kKeyB, Plain());
  EXPECT_THAT(chain_->Decrypt(kEtcdKey, *forged_box), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ValueTransformerTest, FirstAesKeyIsCurrentForAChainLedByAescbc) {
  const ProviderChain& cm = set_->ChainFor(GroupResource::Parse("configmaps"));
  auto value = cm.Encrypt("/registry/configmaps/ns/a", SecretBytes::CopyFrom("data"));
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->substr(0, 23), "k8s:enc:aescbc:v1:cbc1:");
  EXPECT_TRUE(cm.IsCurrent(cm.Classify(*value)));
  EXPECT_FALSE(cm.IsCurrent(cm.Classify("plain")));
}

TEST_F(ValueTransformerTest, ResourceWithoutRuleUsesIdentityOnly) {
  const ProviderChain& pods = set_->ChainFor(GroupResource::Parse("pods"));
  EXPECT_TRUE(pods.IsCurrent(pods.Classify("plain")));
  EXPECT_THAT(pods.Decrypt("/registry/pods/a", *testing::EncodeAesCbc("cbc1", kKeyA, "x")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ValueTransformerTest, EncryptFailsBeforePrepare) {
  const ProviderChain& cm = set_->ChainFor(GroupResource::Parse("configmaps"));
  ASSERT_THAT(cm.Encrypt("/k", SecretBytes::CopyFrom("x")), IsOk()) << "aescbc needs no prepare";
  auto fresh = NewKmsV2Transformer("p", std::make_unique<Base64KmsV2Client>("1", &kms_decrypts_));
  EXPECT_THAT(fresh->Encrypt("/k", SecretBytes::CopyFrom("x")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace kmsplugin::reencrypt

namespace kmsplugin::reencrypt {
namespace {

TEST_F(ValueTransformerTest, UnclaimedValueIsDescribedWithoutRawBytes) {
  std::string value = std::string("k8s:enc:kms:v2:na\x01me:") + std::string("\xff\xfe\x00\x7f", 4);
  ValueOrigin o = chain_->Classify(value);
  for (char c : o.prefix + o.provider + o.key_id) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "raw byte in the description";
  }
  std::string short_value = std::string("k8s:enc:\x01\x02\xff", 11);
  ValueOrigin s = chain_->Classify(short_value);
  for (char c : s.prefix) EXPECT_TRUE(c >= 0x20 && c < 0x7f);
}

}  // namespace
}  // namespace kmsplugin::reencrypt
