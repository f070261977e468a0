// The recovery annotation (plugin/recovery_format.h): its format-1 layout and parser, and the
// offline opening of an EncryptResponse with the recovery private key.
#include "plugin/recovery_format.h"

#include <string>

#include "crypto/aes_gcm.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/rsa_test_keys.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::ReadFileOrEmpty;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;

RsaPublicKey TestPublicKey() {
  auto key = RsaPublicKey::FromPem(ReadFileOrEmpty(testing::kRecoveryTestPubPem));
  EXPECT_THAT(key, IsOk());
  return *std::move(key);
}

RsaPrivateKey TestPrivateKey() {
  std::string pem = ReadFileOrEmpty(testing::kRecoveryTestKeyPem);
  auto key = RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem));
  EXPECT_THAT(key, IsOk());
  return *std::move(key);
}

// An EncryptResponse as the plugin makes it with a recovery key: the data key seals `plaintext`
// under the AAD of both annotations.
struct Response {
  std::string ciphertext;
  std::string key_id = "local:v1";
  Annotations annotations;
};

Response MakeResponse(const RsaPublicKey& pub, std::string_view plaintext) {
  Response r;
  auto dek = RandomSecret(32);
  EXPECT_THAT(dek, IsOk());
  auto rec = MakeRecoveryAnnotation(pub, *dek);
  EXPECT_THAT(rec, IsOk());
  r.annotations.emplace(std::string(kDekAnnotation), "wrapped-by-the-kms");
  r.annotations.emplace(std::string(kRecoveryAnnotation), *rec);
  auto aead = AesGcm::Create(*std::move(dek));
  EXPECT_THAT(aead, IsOk());
  const std::string nonce(kEnvelopeNonceSize, 'n');
  auto sealed = (*aead)->SealDetached(nonce, plaintext, EnvelopeAad(r.key_id, r.annotations));
  EXPECT_THAT(sealed, IsOk());
  r.ciphertext = SerializeEnvelope(nonce, *sealed);
  return r;
}

// --- format ---

TEST(RecoveryFormatTest, SerializedWrapIsVersionFingerprintThenWrappedKey) {
  RecoveryWrap w{std::string(32, 'f'), std::string(384, 'w')};
  const std::string v = SerializeRecoveryWrap(w);
  ASSERT_EQ(v.size(), 1u + 32 + 384);
  EXPECT_EQ(v[0], '\x01');
  EXPECT_EQ(v.substr(1, 32), w.fingerprint);
  EXPECT_EQ(v.substr(33), w.wrapped_key);
  auto parsed = ParseRecoveryWrap(v);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->fingerprint, w.fingerprint);
  EXPECT_EQ(parsed->wrapped_key, w.wrapped_key);
  const std::string v4096 = SerializeRecoveryWrap({std::string(32, 'f'), std::string(512, 'w')});
  EXPECT_THAT(ParseRecoveryWrap(v4096), IsOk());
}

TEST(RecoveryFormatTest, ParseRefusesAnUnknownVersionAndEverySizeBut417And545) {
  std::string v = SerializeRecoveryWrap({std::string(32, 'f'), std::string(384, 'w')});
  std::string v2 = v;
  v2[0] = '\x02';
  EXPECT_THAT(ParseRecoveryWrap(v2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("format version 2")));
  for (size_t size : {size_t{0}, size_t{1}, size_t{33}, size_t{1 + 32 + 256}, size_t{416},
                      size_t{418}, size_t{544}, size_t{546}}) {
    std::string s = v;
    s.resize(size, 'x');
    EXPECT_THAT(ParseRecoveryWrap(s), StatusIs(absl::StatusCode::kInvalidArgument)) << size;
  }
}

TEST(RecoveryFormatTest, MadeAnnotationCarriesTheKeyFingerprintAndUnwraps) {
  RsaPublicKey pub = TestPublicKey();
  RsaPrivateKey priv = TestPrivateKey();
  SecretBytes dek(32);
  dek.RevealMutable()[0] = 7;
  auto value = MakeRecoveryAnnotation(pub, dek);
  ASSERT_THAT(value, IsOk());
  EXPECT_EQ(value->size(), 1u + 32 + 384);
  EXPECT_EQ(HexEncode(value->substr(1, 32)), testing::kRecoveryTestKeyFingerprintHex);
  auto out = UnwrapRecoveryAnnotation(*value, {&priv});
  ASSERT_THAT(out, IsOk());
  EXPECT_TRUE(out->ConstantTimeEquals(dek));
}

// --- OpenWithRecoveryKey ---

TEST(OpenWithRecoveryKeyTest, OpensWhatTheDataKeySealed) {
  RsaPrivateKey priv = TestPrivateKey();
  Response r = MakeResponse(TestPublicKey(), "the apiserver's seed");
  auto out = OpenWithRecoveryKey(r.ciphertext, r.key_id, r.annotations, {&priv});
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->Reveal(), "the apiserver's seed");
}

TEST(OpenWithRecoveryKeyTest, NoRecoveryAnnotationIsNotFound) {
  RsaPrivateKey priv = TestPrivateKey();
  Response r = MakeResponse(TestPublicKey(), "seed");
  r.annotations.erase(std::string(kRecoveryAnnotation));
  EXPECT_THAT(OpenWithRecoveryKey(r.ciphertext, r.key_id, r.annotations, {&priv}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no recovery wrap")));
}

TEST(OpenWithRecoveryKeyTest, AbsentMatchingKeyIsNotFoundNamingTheFingerprint) {
  Response r = MakeResponse(TestPublicKey(), "seed");
  auto other_pem = GenerateRsaKeyPair(3072);
  ASSERT_THAT(other_pem, IsOk());
  auto other = RsaPrivateKey::FromPem(other_pem->private_pem);
  ASSERT_THAT(other, IsOk());
  EXPECT_THAT(OpenWithRecoveryKey(r.ciphertext, r.key_id, r.annotations, {&*other}),
              StatusIs(absl::StatusCode::kNotFound, std::string("recovery key sha256:") +
                                                        testing::kRecoveryTestKeyFingerprintHex +
                                                        " not given"));
  EXPECT_THAT(OpenWithRecoveryKey(r.ciphertext, r.key_id, r.annotations, {}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(OpenWithRecoveryKeyTest, TamperedKeyIdAnnotationOrCiphertextFailsAuthentication) {
  RsaPrivateKey priv = TestPrivateKey();
  const Response r = MakeResponse(TestPublicKey(), "seed");
  EXPECT_THAT(OpenWithRecoveryKey(r.ciphertext, "local:v2", r.annotations, {&priv}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("authentication")));
  Response dek_edited = r;
  dek_edited.annotations[std::string(kDekAnnotation)] = "wrapped-by-the-kmz";
  EXPECT_THAT(OpenWithRecoveryKey(r.ciphertext, r.key_id, dek_edited.annotations, {&priv}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("authentication")));
  Response extra = r;
  extra.annotations["other.example.com"] = "x";
  EXPECT_THAT(OpenWithRecoveryKey(r.ciphertext, r.key_id, extra.annotations, {&priv}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("authentication")));
  std::string ct = r.ciphertext;
  ct.back() = static_cast<char>(ct.back() ^ 1);
  EXPECT_THAT(OpenWithRecoveryKey(ct, r.key_id, r.annotations, {&priv}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("authentication")));
  Response wrap_edited = r;
  wrap_edited.annotations[std::string(kRecoveryAnnotation)].back() ^= 1;
  EXPECT_THAT(OpenWithRecoveryKey(r.ciphertext, r.key_id, wrap_edited.annotations, {&priv}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin
