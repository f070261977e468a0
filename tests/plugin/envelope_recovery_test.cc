// EnvelopeService with an offline recovery key (issue 12, EnvelopeOptions::recovery_key): the
// second annotation, its AAD binding, one RSA wrap per data key, and the unchanged behaviour
// without the key.
#include <memory>
#include <set>
#include <string>

#include "crypto/encoding.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/envelope_service.h"
#include "plugin/recovery_format.h"
#include "tests/crypto/rsa_test_keys.h"
#include "tests/integration/apiserver_validation.h"
#include "tests/matchers.h"
#include "tests/plugin/envelope_service_fixture.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::EnvelopeServiceFixture;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::ReadFileOrEmpty;
using ::kmsplugin::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Key;

constexpr char kAuthError[] = "ciphertext failed authentication";

std::shared_ptr<const RsaPublicKey> TestRecoveryKey() {
  auto key = RsaPublicKey::FromPem(ReadFileOrEmpty(testing::kRecoveryTestPubPem));
  EXPECT_THAT(key, IsOk());
  return std::make_shared<const RsaPublicKey>(*std::move(key));
}

class EnvelopeRecoveryTest : public EnvelopeServiceFixture {
 protected:
  void SetUp() override {
    EnvelopeOptions options;
    options.recovery_key = TestRecoveryKey();
    Make(options);
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(3), "test"); }
  static std::string Seed() { return *RandomBytes(32); }

  EncryptResult MustEncrypt(const std::string& seed) {
    auto enc = svc_->Encrypt(seed, Ctx());
    EXPECT_THAT(enc, IsOk());
    return enc.ok() ? *std::move(enc) : EncryptResult{};
  }
  absl::StatusOr<SecretBytes> Decrypt(const EncryptResult& r) {
    return svc_->Decrypt(r.ciphertext, r.key_id, r.annotations, Ctx());
  }
};

TEST_F(EnvelopeRecoveryTest, EncryptResponsesCarryBothAnnotationsAndPassApiserverValidation) {
  const std::string seed = Seed();
  EncryptResult enc = MustEncrypt(seed);
  EXPECT_THAT(enc.annotations,
              ElementsAre(Key(std::string(kDekAnnotation)), Key(std::string(kRecoveryAnnotation))));
  EXPECT_THAT(testing::ValidateEncryptResult(enc.ciphertext, enc.key_id, enc.annotations,
                                             svc_->Status().key_id),
              IsOk());
  EXPECT_THAT(ValidateAnnotations(enc.annotations), IsOk());
  const std::string& rec = enc.annotations.at(std::string(kRecoveryAnnotation));
  EXPECT_EQ(rec.size(), 1u + 32 + 384);
  auto wrap = ParseRecoveryWrap(rec);
  ASSERT_THAT(wrap, IsOk());
  EXPECT_EQ(HexEncode(wrap->fingerprint), testing::kRecoveryTestKeyFingerprintHex);
  auto dec = Decrypt(enc);
  ASSERT_THAT(dec, IsOk());
  EXPECT_EQ(dec->Reveal(), seed);
}

TEST_F(EnvelopeRecoveryTest, NEncryptsOnOneDataKeyMakeExactlyOneRecoveryWrap) {
  constexpr int kEncrypts = 200;
  EXPECT_EQ(svc_->recovery_wraps(), 1u);  // The first data key, made by Refresh.
  std::set<std::string> values;
  for (int i = 0; i < kEncrypts; ++i) {
    values.insert(MustEncrypt(Seed()).annotations.at(std::string(kRecoveryAnnotation)));
    bool due = false;
    auto fast = svc_->TryEncrypt(Seed(), &due);
    ASSERT_TRUE(fast.has_value());
    ASSERT_THAT(*fast, IsOk());
    values.insert((*fast)->annotations.at(std::string(kRecoveryAnnotation)));
  }
  EXPECT_EQ(values.size(), 1u);
  EXPECT_EQ(svc_->recovery_wraps(), 1u);
  EXPECT_EQ(svc_->Report().recovery_wraps, 1u);
  EXPECT_EQ(svc_->Report().recovery_key_fingerprint,
            std::string("sha256:") + testing::kRecoveryTestKeyFingerprintHex);
  ASSERT_THAT(svc_->RotateDataKey(Ctx()), IsOk());
  EXPECT_EQ(svc_->recovery_wraps(), 2u);
  EXPECT_EQ(values.count(MustEncrypt(Seed()).annotations.at(std::string(kRecoveryAnnotation))), 0u);
}

TEST_F(EnvelopeRecoveryTest, RecoveryAnnotationWithOneByteChangedIsRejectedByDecrypt) {
  const EncryptResult enc = MustEncrypt(Seed());
  const std::string rec = enc.annotations.at(std::string(kRecoveryAnnotation));
  for (size_t pos : {size_t{0}, size_t{1}, size_t{32}, size_t{33}, size_t{200}, rec.size() - 1}) {
    EncryptResult bad = enc;
    bad.annotations[std::string(kRecoveryAnnotation)][pos] ^= 0x01;
    EXPECT_THAT(Decrypt(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kAuthError)))
        << pos;
  }
  EXPECT_THAT(Decrypt(enc), IsOk());
}

TEST_F(EnvelopeRecoveryTest, RemovedRecoveryAnnotationIsRejectedByDecrypt) {
  EncryptResult bad = MustEncrypt(Seed());
  bad.annotations.erase(std::string(kRecoveryAnnotation));
  EXPECT_THAT(Decrypt(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kAuthError)));
}

TEST_F(EnvelopeRecoveryTest, RecoveryAnnotationSwappedFromAnotherDataKeyIsRejectedByDecrypt) {
  const EncryptResult old_key = MustEncrypt(Seed());
  ASSERT_THAT(svc_->RotateDataKey(Ctx()), IsOk());
  const EncryptResult new_key = MustEncrypt(Seed());
  const std::string rec_key(kRecoveryAnnotation);
  ASSERT_NE(old_key.annotations.at(rec_key), new_key.annotations.at(rec_key));
  // On the current data key (its AAD precomputed) and on the previous one (from the cache).
  EncryptResult swapped_new = new_key;
  swapped_new.annotations[rec_key] = old_key.annotations.at(rec_key);
  EncryptResult swapped_old = old_key;
  swapped_old.annotations[rec_key] = new_key.annotations.at(rec_key);
  EXPECT_THAT(Decrypt(swapped_new),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kAuthError)));
  EXPECT_THAT(Decrypt(swapped_old),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kAuthError)));
  EXPECT_THAT(Decrypt(old_key), IsOk());
  EXPECT_THAT(Decrypt(new_key), IsOk());
}

TEST_F(EnvelopeRecoveryTest, TryDecryptAlsoRejectsAChangedRecoveryAnnotation) {
  EncryptResult bad = MustEncrypt(Seed());
  bad.annotations[std::string(kRecoveryAnnotation)].back() ^= 0x01;
  auto fast = svc_->TryDecrypt(bad.ciphertext, bad.key_id, bad.annotations);
  ASSERT_TRUE(fast.has_value());
  EXPECT_THAT(*fast, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kAuthError)));
}

TEST_F(EnvelopeRecoveryTest, AThirdAnnotationOrARecoveryAnnotationAloneIsRefused) {
  EncryptResult extra = MustEncrypt(Seed());
  extra.annotations["other.example.com"] = "x";
  EXPECT_THAT(Decrypt(extra),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got 3 annotations")));
  EncryptResult alone = MustEncrypt(Seed());
  alone.annotations.erase(std::string(kDekAnnotation));
  EXPECT_THAT(Decrypt(alone), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("expected the annotation dek.kms-plugin.io")));
}

TEST_F(EnvelopeRecoveryTest, OpenWithRecoveryKeyOpensAnEncryptResponseOffline) {
  std::string pem = ReadFileOrEmpty(testing::kRecoveryTestKeyPem);
  auto priv = RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem));
  ASSERT_THAT(priv, IsOk());
  const std::string seed = Seed();
  const EncryptResult enc = MustEncrypt(seed);
  auto out = OpenWithRecoveryKey(enc.ciphertext, enc.key_id, enc.annotations, {&*priv});
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->Reveal(), seed);
}

class EnvelopeWithoutRecoveryKeyTest : public EnvelopeServiceFixture {};

TEST_F(EnvelopeWithoutRecoveryKeyTest, EncryptHasExactlyTheDekAnnotationAndMakesNoRecoveryWrap) {
  const CallContext ctx = CallContext::WithTimeout(absl::Seconds(3), "test");
  ASSERT_THAT(svc_->Refresh(ctx), IsOk());
  auto enc = svc_->Encrypt("seed", ctx);
  ASSERT_THAT(enc, IsOk());
  EXPECT_THAT(enc->annotations, ElementsAre(Key(std::string(kDekAnnotation))));
  EXPECT_EQ(svc_->recovery_wraps(), 0u);
  EXPECT_EQ(svc_->Report().recovery_key_fingerprint, "");
}

}  // namespace
}  // namespace kmsplugin
