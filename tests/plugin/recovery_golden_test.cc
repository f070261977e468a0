// Frozen format: the recovery annotation (format 1) and a full plugin EncryptResponse carrying it,
// committed in testdata/recovery_golden.json. Made once, independently of this code base, by
// testdata/make_recovery_golden.py with python3-cryptography (RSA-OAEP is randomised, so the JSON
// is frozen; a ctest, RecoveryGoldenMatchesItsPythonGenerator, re-checks it in --check mode).
// The key is the TEST-ONLY RSA-3072 key tests/crypto/testdata/recovery_test_key_3072.pem. Never
// edit the JSON or the constants: a change that breaks this test breaks every recovery wrap a
// cluster stored, and with it the disaster recovery of issue 12.
#include <fstream>
#include <string>

#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "plugin/envelope_service.h"
#include "plugin/recovery_format.h"
#include "tests/crypto/rsa_test_keys.h"
#include "tests/crypto/vectors.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"
#include "tests/plugin/fixed_blob_kes.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FixedBlobKes;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::Unhex;
using ::kmsplugin::testing::ReadFileOrEmpty;

constexpr char kRecoveryGoldenFile[] =
    KMSP_SOURCE_DIR "/tests/plugin/testdata/recovery_golden.json";
// Pinned here too, so that regenerating the JSON cannot pass unnoticed.
constexpr char kGoldenFingerprintHex[] =
    "274e75082d2c204e1824e77988da938df7b6bc1e0ba7572c7ab32d2d6b443f44";
constexpr char kGoldenRecoveryAnnotationSha256[] =
    "a68d62f1e774d265bb7c4ccd433328c79cef2657ea25276e8f70aaeb52891650";
constexpr char kRecoveryGoldenCiphertextHex[] =
    "01c0c1c2c3c4c5c6c7c8c9cacb9345f3b86376a99a4f8b776eebbc7635f5586737f491fac40910321d84cbfc97019e"
    "babdb7301cd0466db6cc984a3aa3";

struct RecoveryGolden {
  std::string fingerprint, label, data_key, seed, key_id, ciphertext;
  Annotations annotations;
};

RecoveryGolden LoadRecoveryGolden() {
  std::ifstream in(kRecoveryGoldenFile, std::ios::binary);
  EXPECT_TRUE(in.good()) << kRecoveryGoldenFile;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded());
  RecoveryGolden g;
  if (j.is_discarded()) return g;
  g.fingerprint = Unhex(j.value("fingerprint_hex", ""));
  g.label = j.value("oaep_label", "");
  g.data_key = Unhex(j.value("data_key_hex", ""));
  g.seed = Unhex(j.value("seed_hex", ""));
  g.key_id = j.value("key_id", "");
  g.ciphertext = Unhex(j.value("ciphertext_hex", ""));
  for (const auto& [k, v] : j["annotations_hex"].items()) g.annotations[k] = Unhex(v);
  return g;
}

RsaPrivateKey TestPrivateKey() {
  std::string pem = ReadFileOrEmpty(testing::kRecoveryTestKeyPem);
  auto key = RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem));
  EXPECT_THAT(key, IsOk());
  return *std::move(key);
}

TEST(RecoveryGoldenTest, TheVectorIsTheOnePinnedHere) {
  RecoveryGolden g = LoadRecoveryGolden();
  EXPECT_EQ(HexEncode(g.ciphertext), kRecoveryGoldenCiphertextHex);
  EXPECT_EQ(Sha256Hex(g.annotations.at(std::string(kRecoveryAnnotation))),
            kGoldenRecoveryAnnotationSha256);
  EXPECT_EQ(g.label, kRecoveryOaepLabel);
  EXPECT_EQ(kRecoveryAnnotation, "recovery.kms-plugin.io");
  EXPECT_EQ(kRecoveryFormatVersion, 1);
}

TEST(RecoveryGoldenTest, TestKeyFingerprintIsTheFixedHexString) {
  EXPECT_EQ(HexEncode(TestPrivateKey().fingerprint()), kGoldenFingerprintHex);
  EXPECT_EQ(HexEncode(LoadRecoveryGolden().fingerprint), kGoldenFingerprintHex);
  EXPECT_EQ(TestPrivateKey().FingerprintText(), std::string("sha256:") + kGoldenFingerprintHex);
}

TEST(RecoveryGoldenTest, AnnotationIsVersionOneThenFingerprintThenA384ByteWrap) {
  RecoveryGolden g = LoadRecoveryGolden();
  const std::string& value = g.annotations.at(std::string(kRecoveryAnnotation));
  ASSERT_EQ(value.size(), 1u + 32 + 384);
  EXPECT_EQ(value[0], '\x01');
  EXPECT_EQ(HexEncode(value.substr(1, 32)), kGoldenFingerprintHex);
}

TEST(RecoveryGoldenTest, ParseRecoveryWrapAndUnwrapGiveTheKnownDataKey) {
  RecoveryGolden g = LoadRecoveryGolden();
  auto wrap = ParseRecoveryWrap(g.annotations.at(std::string(kRecoveryAnnotation)));
  ASSERT_THAT(wrap, IsOk());
  EXPECT_EQ(wrap->fingerprint, g.fingerprint);
  auto dek = TestPrivateKey().Unwrap(wrap->wrapped_key, kRecoveryOaepLabel);
  ASSERT_THAT(dek, IsOk());
  EXPECT_EQ(HexEncode(dek->Reveal()), HexEncode(g.data_key));
}

TEST(RecoveryGoldenTest, OpenWithRecoveryKeyGivesTheKnownPlaintext) {
  RecoveryGolden g = LoadRecoveryGolden();
  RsaPrivateKey priv = TestPrivateKey();
  auto seed = OpenWithRecoveryKey(g.ciphertext, g.key_id, g.annotations, {&priv});
  ASSERT_THAT(seed, IsOk());
  EXPECT_EQ(seed->Reveal(), g.seed);
}

TEST(RecoveryGoldenTest, ThePluginDecryptsTheGoldenResponseWithItsKmsToo) {
  RecoveryGolden g = LoadRecoveryGolden();
  FakeClock clock;
  auto svc = EnvelopeService::Create(
      EnvelopeOptions{},
      std::make_unique<FixedBlobKes>(g.key_id, g.annotations.at(std::string(kDekAnnotation)),
                                     SecretBytes::CopyFrom(g.data_key)),
      &clock);
  ASSERT_THAT(svc, IsOk());
  auto seed = (*svc)->Decrypt(g.ciphertext, g.key_id, g.annotations,
                              CallContext::WithTimeout(absl::Seconds(3), "golden"));
  ASSERT_THAT(seed, IsOk());
  EXPECT_EQ(seed->Reveal(), g.seed);
}

}  // namespace
}  // namespace kmsplugin
