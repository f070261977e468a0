// SHA-256, HMAC-SHA256 and HKDF-SHA256 against published vectors: FIPS 180-2 examples, RFC 4231,
// RFC 5869 (KMSP_SHARED_TESTDATA/hkdf) and the KMS v2 type-1 DEK derivation of kube-apiserver
// v1.28 (KMSP_SHARED_TESTDATA/apiserver/kmsv2-hkdf-seed-v1.28.json).
#include "crypto/hash.h"
#include "crypto/init.h"

#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/vectors.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::HexField;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::Unhex;
using ::kmsplugin::testing::ParseJson;
using ::kmsplugin::testing::ReadTestdata;
using ::kmsplugin::testing::StatusIs;
using ::kmsplugin::testing::StringField;

constexpr size_t kRfc5869CaseCount = 3;

struct HkdfVector {
  std::string name;
  std::string ikm;
  std::string salt;
  std::string info;
  size_t length = 0;
  std::string prk;
  std::string okm;
};

absl::StatusOr<std::vector<HkdfVector>> LoadRfc5869Vectors() {
  KMSP_ASSIGN_OR_RETURN(std::string text, ReadTestdata("hkdf/rfc5869.json"));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(text));
  if (!doc.contains("tests") || !doc["tests"].is_array()) {
    return absl::InvalidArgumentError("no tests array");
  }
  std::vector<HkdfVector> out;
  for (const auto& test : doc["tests"]) {
    HkdfVector v;
    KMSP_ASSIGN_OR_RETURN(v.name, StringField(test, "name"));
    KMSP_ASSIGN_OR_RETURN(v.ikm, HexField(test, "ikm"));
    KMSP_ASSIGN_OR_RETURN(v.salt, HexField(test, "salt"));
    KMSP_ASSIGN_OR_RETURN(v.info, HexField(test, "info"));
    KMSP_ASSIGN_OR_RETURN(v.prk, HexField(test, "prk"));
    KMSP_ASSIGN_OR_RETURN(v.okm, HexField(test, "okm"));
    if (!test.contains("L") || !test["L"].is_number_unsigned()) {
      return absl::InvalidArgumentError(fmt::format("{}: missing L", v.name));
    }
    v.length = test["L"].get<size_t>();
    out.push_back(std::move(v));
  }
  return out;
}

class HashTest : public ::testing::Test {};

TEST_F(HashTest, Sha256GivesTheSameDigestOnBothEngines) {
  for (size_t size : {0, 1, 55, 56, 64, 1000}) {
    std::string data(size, 'd');
    SetCryptoEngine(CryptoEngine::kOpenSslOnly);
    std::string openssl = Sha256(data);
    SetCryptoEngine(CryptoEngine::kAuto);
    EXPECT_EQ(Sha256(data), openssl) << size;
  }
}

TEST_F(HashTest, Sha256MatchesFips180KnownAnswers) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_F(HashTest, Sha256ReturnsTheRawDigestOfSha256Hex) {
  std::string digest = Sha256("abc");
  EXPECT_EQ(digest.size(), kSha256Size);
  EXPECT_EQ(HexEncode(digest), Sha256Hex("abc"));
}

struct HmacCase {
  const char* name;
  std::string key;
  std::string data;
  const char* mac_hex;
};

TEST_F(HashTest, HmacSha256MatchesRfc4231TestCases) {
  const std::string kLongKey(131, '\xaa');
  const std::vector<HmacCase> cases = {
      {"4231 case 1", std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"4231 case 2", "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"4231 case 3", std::string(20, '\xaa'), std::string(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"4231 case 4", Unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
       std::string(50, '\xcd'), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {"4231 case 6", kLongKey, "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"4231 case 7", kLongKey,
       "This is a test using a larger than block-size key and a larger than block-size data. "
       "The key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const HmacCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto mac = HmacSha256(SecretBytes::CopyFrom(c.key), c.data);
    ASSERT_THAT(mac, IsOk());
    EXPECT_EQ(HexEncode(mac->Reveal()), c.mac_hex);
  }
}

TEST_F(HashTest, HmacSha256AcceptsAnEmptyKey) {
  // HMAC-SHA256("", ""), computed with Python's hmac module.
  auto mac = HmacSha256(SecretBytes(), "");
  ASSERT_THAT(mac, IsOk());
  EXPECT_EQ(HexEncode(mac->Reveal()),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_F(HashTest, HkdfMatchesRfc5869Vectors) {
  auto vectors = LoadRfc5869Vectors();
  ASSERT_THAT(vectors, IsOk());
  ASSERT_EQ(vectors->size(), kRfc5869CaseCount);
  for (const HkdfVector& v : *vectors) {
    SCOPED_TRACE(v.name);
    const SecretBytes ikm = SecretBytes::CopyFrom(v.ikm);

    auto prk = HkdfSha256Extract(v.salt, ikm);
    ASSERT_THAT(prk, IsOk());
    EXPECT_EQ(HexEncode(prk->Reveal()), HexEncode(v.prk));

    auto okm = HkdfSha256Expand(SecretBytes::CopyFrom(v.prk), v.info, v.length);
    ASSERT_THAT(okm, IsOk());
    EXPECT_EQ(HexEncode(okm->Reveal()), HexEncode(v.okm));

    auto full = HkdfSha256(ikm, v.salt, v.info, v.length);
    ASSERT_THAT(full, IsOk());
    EXPECT_EQ(HexEncode(full->Reveal()), HexEncode(v.okm));
  }
}

TEST_F(HashTest, HkdfExtractTreatsEmptySaltAsThirtyTwoZeroBytes) {
  const SecretBytes ikm = SecretBytes::CopyFrom(std::string(22, '\x0b'));
  auto with_empty = HkdfSha256Extract("", ikm);
  auto with_zeros = HkdfSha256Extract(std::string(kSha256Size, '\0'), ikm);
  ASSERT_THAT(with_empty, IsOk());
  ASSERT_THAT(with_zeros, IsOk());
  EXPECT_TRUE(with_empty->ConstantTimeEquals(*with_zeros));
}

TEST_F(HashTest, HkdfExpandAcceptsLengthsFromOneTo255Blocks) {
  const SecretBytes prk(kSha256Size);
  for (size_t length : {size_t{1}, size_t{32}, size_t{33}, 255 * kSha256Size}) {
    auto okm = HkdfSha256Expand(prk, "info", length);
    ASSERT_THAT(okm, IsOk()) << "length " << length;
    EXPECT_EQ(okm->size(), length);
  }
}

TEST_F(HashTest, HkdfExpandRejectsZeroAndMoreThan255Blocks) {
  const SecretBytes prk(kSha256Size);
  EXPECT_THAT(HkdfSha256Expand(prk, "info", 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfSha256Expand(prk, "info", 255 * kSha256Size + 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfSha256(prk, "salt", "info", 255 * kSha256Size + 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(HashTest, HkdfExpandRejectsAPrkShorterThanTheHash) {
  EXPECT_THAT(HkdfSha256Expand(SecretBytes(kSha256Size - 1), "info", 32),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfSha256Expand(SecretBytes(), "info", 32),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(HashTest, HkdfExpandOutputIsAPrefixOfALongerOutput) {
  const SecretBytes prk = SecretBytes::CopyFrom(std::string(kSha256Size, '\x42'));
  auto short_okm = HkdfSha256Expand(prk, "info", 40);
  auto long_okm = HkdfSha256Expand(prk, "info", 100);
  ASSERT_THAT(short_okm, IsOk());
  ASSERT_THAT(long_okm, IsOk());
  EXPECT_EQ(long_okm->Reveal().substr(0, 40), short_okm->Reveal());
}

// KMS v2 with KDF (EncryptedObject type 1): DEK = HKDF-Expand(seed, info, 32), which for one
// block is HMAC-SHA256(seed, info || 0x01). Record written by kube-apiserver v1.28.0.
TEST_F(HashTest, DerivesTheKmsV2TypeOneDekOfKubeApiserver) {
  auto text = ReadTestdata("apiserver/kmsv2-hkdf-seed-v1.28.json");
  ASSERT_THAT(text, IsOk());
  auto doc = ParseJson(*text);
  ASSERT_THAT(doc, IsOk());
  auto seed = HexField(*doc, "seed_hex");
  auto info = HexField(*doc, "info_hex");
  auto dek = HexField(*doc, "derived_dek_hex");
  ASSERT_THAT(seed, IsOk());
  ASSERT_THAT(info, IsOk());
  ASSERT_THAT(dek, IsOk());
  ASSERT_EQ(seed->size(), 32u);
  ASSERT_EQ(dek->size(), 32u);
  const SecretBytes seed_secret = SecretBytes::CopyFrom(*seed);

  auto by_hmac = HmacSha256(seed_secret, *info + '\x01');
  ASSERT_THAT(by_hmac, IsOk());
  EXPECT_EQ(HexEncode(by_hmac->Reveal()), HexEncode(*dek));

  auto by_expand = HkdfSha256Expand(seed_secret, *info, 32);
  ASSERT_THAT(by_expand, IsOk());
  EXPECT_EQ(HexEncode(by_expand->Reveal()), HexEncode(*dek));
}

}  // namespace
}  // namespace kmsplugin
