// Frozen format: the annotations an Encrypt returns. Exactly one entry, key "dek.kms-plugin.io"
// (the apiserver stores it and hands it back on Decrypt; kmsv2-contract.md §2.2), value = the
// backend's wrapped data key blob, byte for byte. The blob here is FakeKes-style (60 bytes, see
// below), fixed; a FixedBlobKes returns it from Wrap. The apiserver-side checks (tests/integration/
// apiserver_validation.h) must accept the result. Never edit the constants.
#include <string>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/envelope_format.h"
#include "plugin/envelope_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/integration/apiserver_validation.h"
#include "tests/matchers.h"
#include "tests/plugin/fixed_blob_kes.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FixedBlobKes;
using ::kmsplugin::testing::IsOk;

// "dek.kms-plugin.io" as bytes.
constexpr char kAnnotationKeyHex[] = "64656b2e6b6d732d706c7567696e2e696f";
constexpr char kKekId[] = "fake:v1";
// A FakeKes-style wrapped data key: nonce(12) || AES-256-GCM ciphertext(32) || tag(16), made once
// with python3-cryptography: AESGCM(KEK 60..7f).encrypt(nonce 0c..17, data key 40..5f,
// aad "fake:v1"), nonce prepended.
constexpr char kWrappedBlobHex[] =
    "0c0d0e0f1011121314151617d9e0b97b24225962fb02b82301e3563a107f66a7f86aa87f61b6c0f8a701dda8cb"
    "bcd181fbeb832cfa82ce91a188c16b";

class AnnotationGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    blob_ = *HexDecode(kWrappedBlobHex);
    ASSERT_EQ(blob_.size(), 60u);
    auto kes = std::make_unique<FixedBlobKes>(kKekId, blob_, SecretBytes(32));
    kes_ = kes.get();
    auto svc = EnvelopeService::Create(EnvelopeOptions{}, std::move(kes), &clock_);
    ASSERT_THAT(svc, IsOk());
    svc_ = std::move(*svc);
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(10), "golden"); }

  FakeClock clock_;
  std::string blob_;
  FixedBlobKes* kes_ = nullptr;
  std::unique_ptr<EnvelopeService> svc_;
};

TEST_F(AnnotationGoldenTest, TheAnnotationKeyIsTheFrozenString) {
  EXPECT_EQ(HexEncode(kDekAnnotation), kAnnotationKeyHex);
}

TEST_F(AnnotationGoldenTest, AnEncryptResultCarriesExactlyTheDekAnnotationWithTheBackendBlob) {
  auto r = svc_->Encrypt("a 32-byte seed from the apiserver", Ctx());
  ASSERT_THAT(r, IsOk());
  const Annotations expected = {{*HexDecode(kAnnotationKeyHex), blob_}};
  EXPECT_EQ(r->annotations, expected);
  ASSERT_EQ(r->annotations.size(), 1u);
  EXPECT_EQ(HexEncode(r->annotations.begin()->first), kAnnotationKeyHex);
  EXPECT_EQ(HexEncode(r->annotations.begin()->second), kWrappedBlobHex);
  EXPECT_EQ(r->key_id, kKekId);
  EXPECT_EQ(kes_->wraps, 1);
}

TEST_F(AnnotationGoldenTest, EveryEncryptUnderOneDataKeyReturnsTheSameAnnotations) {
  auto first = svc_->Encrypt("seed one", Ctx());
  auto second = svc_->Encrypt("seed two", Ctx());
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(first->annotations, second->annotations);
  EXPECT_NE(first->ciphertext, second->ciphertext);
  EXPECT_EQ(kes_->wraps, 1);
}

TEST_F(AnnotationGoldenTest, TheApiserverValidationAcceptsTheGoldenEncryptResult) {
  auto r = svc_->Encrypt("a 32-byte seed from the apiserver", Ctx());
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(testing::ValidateAnnotationKey(kDekAnnotation), IsOk());
  EXPECT_THAT(testing::ValidateAnnotations(r->annotations), IsOk());
  EXPECT_THAT(testing::ValidateEncryptResult(r->ciphertext, r->key_id, r->annotations,
                                             svc_->Status().key_id),
              IsOk());
  // Our own copy of the apiserver's annotation check agrees.
  EXPECT_THAT(ValidateAnnotations(r->annotations), IsOk());
}

TEST_F(AnnotationGoldenTest, TheGoldenAnnotationsDecryptWhatEncryptReturned) {
  const std::string seed = "a 32-byte seed from the apiserver";
  auto r = svc_->Encrypt(seed, Ctx());
  ASSERT_THAT(r, IsOk());
  const Annotations golden = {{*HexDecode(kAnnotationKeyHex), *HexDecode(kWrappedBlobHex)}};
  auto back = svc_->Decrypt(r->ciphertext, kKekId, golden, Ctx());
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->Reveal(), seed);
}

}  // namespace
}  // namespace kmsplugin
