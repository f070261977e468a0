// AesGcm against NIST CAVP and Wycheproof vectors (KMSP_SHARED_TESTDATA/aes-gcm, see its README),
// plus properties: round trip, fresh nonces, tamper and truncation detection, key-size checks.
#include "crypto/aes_gcm.h"
#include "crypto/init.h"

#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/vectors.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::HexField;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::ParseJson;
using ::kmsplugin::testing::ReadTestdata;
using ::kmsplugin::testing::StatusIs;
using ::kmsplugin::testing::StringField;
using ::testing::HasSubstr;

constexpr size_t kNistCaseCount = 50;
constexpr size_t kWycheproofCaseCount = 66;
constexpr size_t kWycheproofValidCount = 39;
constexpr size_t kWycheproofInvalidCount = 27;

// One AEAD test vector, all fields as raw bytes.
struct GcmVector {
  std::string name;  // For SCOPED_TRACE.
  std::string key;
  std::string iv;
  std::string pt;
  std::string aad;
  std::string ct;
  std::string tag;
  bool valid = true;
};

absl::StatusOr<GcmVector> VectorFromJson(const nlohmann::json& obj, std::string name,
                                         std::string_view pt_field) {
  GcmVector v;
  v.name = std::move(name);
  KMSP_ASSIGN_OR_RETURN(v.key, HexField(obj, "key"));
  KMSP_ASSIGN_OR_RETURN(v.iv, HexField(obj, "iv"));
  KMSP_ASSIGN_OR_RETURN(v.pt, HexField(obj, pt_field));
  KMSP_ASSIGN_OR_RETURN(v.aad, HexField(obj, "aad"));
  KMSP_ASSIGN_OR_RETURN(v.ct, HexField(obj, "ct"));
  KMSP_ASSIGN_OR_RETURN(v.tag, HexField(obj, "tag"));
  KMSP_ASSIGN_OR_RETURN(std::string result, StringField(obj, "result"));
  if (result == "valid") {
    v.valid = true;
  } else if (result == "invalid") {
    v.valid = false;
  } else {
    return absl::InvalidArgumentError(fmt::format("{}: unexpected result '{}'", v.name, result));
  }
  return v;
}

// aes-gcm/vectors.jsonl: one JSON object per line, `pt` holds the plaintext.
absl::StatusOr<std::vector<GcmVector>> LoadNistVectors() {
  KMSP_ASSIGN_OR_RETURN(std::string text, ReadTestdata("aes-gcm/vectors.jsonl"));
  std::vector<GcmVector> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    KMSP_ASSIGN_OR_RETURN(nlohmann::json obj, ParseJson(line));
    KMSP_ASSIGN_OR_RETURN(std::string section, StringField(obj, "section"));
    std::string count = obj.contains("count") ? obj["count"].dump() : "?";
    KMSP_ASSIGN_OR_RETURN(GcmVector v,
                          VectorFromJson(obj, fmt::format("{} Count = {}", section, count), "pt"));
    out.push_back(std::move(v));
  }
  return out;
}

// aes-gcm/wycheproof_aes256_iv96.json: testGroups[].tests[], `msg` holds the plaintext.
absl::StatusOr<std::vector<GcmVector>> LoadWycheproofVectors() {
  KMSP_ASSIGN_OR_RETURN(std::string text, ReadTestdata("aes-gcm/wycheproof_aes256_iv96.json"));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(text));
  if (!doc.contains("testGroups") || !doc["testGroups"].is_array()) {
    return absl::InvalidArgumentError("no testGroups array");
  }
  std::vector<GcmVector> out;
  for (const auto& group : doc["testGroups"]) {
    if (!group.contains("tests") || !group["tests"].is_array()) {
      return absl::InvalidArgumentError("test group without tests array");
    }
    for (const auto& test : group["tests"]) {
      std::string id = test.contains("tcId") ? test["tcId"].dump() : "?";
      KMSP_ASSIGN_OR_RETURN(GcmVector v, VectorFromJson(test, "tcId " + id, "msg"));
      out.push_back(std::move(v));
    }
  }
  return out;
}

// Every test runs on both engines (crypto/init.h): kAuto (libsodium for 256-bit keys where the
// CPU allows) and kOpenSslOnly.
class AesGcmTest : public ::testing::TestWithParam<CryptoEngine> {
 protected:
  void SetUp() override {
    SetCryptoEngine(GetParam());
    auto key = RandomSecret(AesGcm::kKeySize);
    ASSERT_THAT(key, IsOk());
    auto aead = AesGcm::Create(std::move(*key));
    ASSERT_THAT(aead, IsOk());
    aead_ = std::move(*aead);
  }

  static std::unique_ptr<AesGcm> AeadForKey(std::string_view key) {
    auto aead = AesGcm::Create(SecretBytes::CopyFrom(key));
    EXPECT_THAT(aead, IsOk());
    return aead.ok() ? std::move(*aead) : nullptr;
  }

  void TearDown() override { SetCryptoEngine(CryptoEngine::kAuto); }

  std::unique_ptr<AesGcm> aead_;
};

INSTANTIATE_TEST_SUITE_P(Engines, AesGcmTest,
                         ::testing::Values(CryptoEngine::kAuto, CryptoEngine::kOpenSslOnly),
                         [](const ::testing::TestParamInfo<CryptoEngine>& info) {
                           return info.param == CryptoEngine::kAuto ? std::string("Auto")
                                                                    : std::string("OpenSslOnly");
                         });

TEST(AesGcmEngineTest, BothEnginesProduceTheSameBytesAndOpenEachOthersOutput) {
  auto key = RandomSecret(AesGcm::kKeySize);
  ASSERT_THAT(key, IsOk());
  SetCryptoEngine(CryptoEngine::kAuto);
  auto fast = AesGcm::Create(key->Clone());
  SetCryptoEngine(CryptoEngine::kOpenSslOnly);
  auto openssl = AesGcm::Create(key->Clone());
  SetCryptoEngine(CryptoEngine::kAuto);
  ASSERT_THAT(fast, IsOk());
  ASSERT_THAT(openssl, IsOk());
  const std::string nonce(12, '\x07');
  for (size_t size : {0, 1, 15, 16, 17, 32, 61, 1000}) {
    std::string plaintext(size, 'p');
    auto a = (*fast)->SealDetached(nonce, plaintext, "aad");
    auto b = (*openssl)->SealDetached(nonce, plaintext, "aad");
    ASSERT_THAT(a, IsOk());
    ASSERT_THAT(b, IsOk());
    EXPECT_EQ(*a, *b) << size;
    auto back = (*openssl)->OpenDetached(nonce, *a, "aad");
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(back->Reveal(), plaintext);
    auto back2 = (*fast)->OpenDetached(nonce, *b, "aad");
    ASSERT_THAT(back2, IsOk());
    EXPECT_EQ(back2->Reveal(), plaintext);
  }
}

TEST_P(AesGcmTest, SealDetachedMatchesEveryNistVector) {
  auto vectors = LoadNistVectors();
  ASSERT_THAT(vectors, IsOk());
  ASSERT_EQ(vectors->size(), kNistCaseCount);
  for (const GcmVector& v : *vectors) {
    SCOPED_TRACE(v.name);
    ASSERT_TRUE(v.valid);
    auto aead = AeadForKey(v.key);
    ASSERT_NE(aead, nullptr);
    auto sealed = aead->SealDetached(v.iv, v.pt, v.aad);
    ASSERT_THAT(sealed, IsOk());
    EXPECT_EQ(HexEncode(*sealed), HexEncode(v.ct + v.tag));
  }
}

TEST_P(AesGcmTest, OpenDetachedRecoversEveryNistPlaintext) {
  auto vectors = LoadNistVectors();
  ASSERT_THAT(vectors, IsOk());
  ASSERT_EQ(vectors->size(), kNistCaseCount);
  for (const GcmVector& v : *vectors) {
    SCOPED_TRACE(v.name);
    auto aead = AeadForKey(v.key);
    ASSERT_NE(aead, nullptr);
    auto opened = aead->OpenDetached(v.iv, v.ct + v.tag, v.aad);
    ASSERT_THAT(opened, IsOk());
    EXPECT_EQ(HexEncode(opened->Reveal()), HexEncode(v.pt));
  }
}

TEST_P(AesGcmTest, ValidWycheproofVectorsRoundTripExactly) {
  auto vectors = LoadWycheproofVectors();
  ASSERT_THAT(vectors, IsOk());
  ASSERT_EQ(vectors->size(), kWycheproofCaseCount);
  size_t valid = 0;
  for (const GcmVector& v : *vectors) {
    if (!v.valid) continue;
    ++valid;
    SCOPED_TRACE(v.name);
    auto aead = AeadForKey(v.key);
    ASSERT_NE(aead, nullptr);
    auto sealed = aead->SealDetached(v.iv, v.pt, v.aad);
    ASSERT_THAT(sealed, IsOk());
    EXPECT_EQ(HexEncode(*sealed), HexEncode(v.ct + v.tag));
    auto opened = aead->OpenDetached(v.iv, v.ct + v.tag, v.aad);
    ASSERT_THAT(opened, IsOk());
    EXPECT_EQ(HexEncode(opened->Reveal()), HexEncode(v.pt));
  }
  EXPECT_EQ(valid, kWycheproofValidCount);
}

TEST_P(AesGcmTest, InvalidWycheproofVectorsAreRejectedWithoutPlaintext) {
  auto vectors = LoadWycheproofVectors();
  ASSERT_THAT(vectors, IsOk());
  ASSERT_EQ(vectors->size(), kWycheproofCaseCount);
  size_t invalid = 0;
  for (const GcmVector& v : *vectors) {
    if (v.valid) continue;
    ++invalid;
    SCOPED_TRACE(v.name);
    auto aead = AeadForKey(v.key);
    ASSERT_NE(aead, nullptr);
    auto opened = aead->OpenDetached(v.iv, v.ct + v.tag, v.aad);
    EXPECT_THAT(opened, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_FALSE(opened.ok());  // No plaintext is handed back.
    // Sealing the same inputs never reproduces an invalid ciphertext.
    auto sealed = aead->SealDetached(v.iv, v.pt, v.aad);
    ASSERT_THAT(sealed, IsOk());
    EXPECT_NE(*sealed, v.ct + v.tag);
  }
  EXPECT_EQ(invalid, kWycheproofInvalidCount);
}

TEST_P(AesGcmTest, OpenRecoversWhatSealProduced) {
  const std::string plaintext = "a data encryption key, 32 bytes!";
  const std::string aad = "/registry/secrets/default/token";
  auto sealed = aead_->Seal(plaintext, aad);
  ASSERT_THAT(sealed, IsOk());
  EXPECT_EQ(sealed->size(), AesGcm::kNonceSize + plaintext.size() + AesGcm::kTagSize);
  EXPECT_EQ(sealed->find(plaintext), std::string::npos);
  auto opened = aead_->Open(*sealed, aad);
  ASSERT_THAT(opened, IsOk());
  EXPECT_EQ(opened->Reveal(), plaintext);
}

TEST_P(AesGcmTest, OpenRecoversEmptyPlaintextWithEmptyAad) {
  auto sealed = aead_->Seal("", "");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_EQ(sealed->size(), AesGcm::kNonceSize + AesGcm::kTagSize);
  auto opened = aead_->Open(*sealed, "");
  ASSERT_THAT(opened, IsOk());
  EXPECT_TRUE(opened->empty());
}

TEST_P(AesGcmTest, SealDetachedAgreesWithSeal) {
  auto sealed = aead_->Seal("plaintext", "aad");
  ASSERT_THAT(sealed, IsOk());
  std::string nonce = sealed->substr(0, AesGcm::kNonceSize);
  auto detached = aead_->SealDetached(nonce, "plaintext", "aad");
  ASSERT_THAT(detached, IsOk());
  EXPECT_EQ(nonce + *detached, *sealed);
}

TEST_P(AesGcmTest, EverySealUsesAFreshNonce) {
  constexpr int kSeals = 1000;
  std::set<std::string> nonces;
  std::set<std::string> sealed_messages;
  for (int i = 0; i < kSeals; ++i) {
    auto sealed = aead_->Seal("same plaintext", "same aad");
    ASSERT_THAT(sealed, IsOk());
    nonces.insert(sealed->substr(0, AesGcm::kNonceSize));
    sealed_messages.insert(*sealed);
  }
  EXPECT_EQ(nonces.size(), static_cast<size_t>(kSeals));
  EXPECT_EQ(sealed_messages.size(), static_cast<size_t>(kSeals));
}

TEST_P(AesGcmTest, OpenRejectsEverySingleBitFlipOfTheSealedMessage) {
  const std::string aad = "aad";
  auto sealed = aead_->Seal("twenty bytes of text", aad);
  ASSERT_THAT(sealed, IsOk());
  ASSERT_THAT(aead_->Open(*sealed, aad), IsOk());
  for (size_t bit = 0; bit < sealed->size() * 8; ++bit) {
    std::string tampered = *sealed;
    tampered[bit / 8] = static_cast<char>(tampered[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_THAT(aead_->Open(tampered, aad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("authentication")))
        << "bit " << bit;
  }
}

TEST_P(AesGcmTest, OpenRejectsEverySingleBitFlipOfTheAad) {
  const std::string aad = "/registry/secrets/ns/name";
  auto sealed = aead_->Seal("plaintext", aad);
  ASSERT_THAT(sealed, IsOk());
  ASSERT_THAT(aead_->Open(*sealed, aad), IsOk());
  for (size_t bit = 0; bit < aad.size() * 8; ++bit) {
    std::string tampered = aad;
    tampered[bit / 8] = static_cast<char>(tampered[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_THAT(aead_->Open(*sealed, tampered), StatusIs(absl::StatusCode::kInvalidArgument))
        << "bit " << bit;
  }
  EXPECT_THAT(aead_->Open(*sealed, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(aead_->Open(*sealed, aad + "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(AesGcmTest, OpenRejectsEveryTruncationOfTheSealedMessage) {
  auto sealed = aead_->Seal("plaintext", "aad");
  ASSERT_THAT(sealed, IsOk());
  for (size_t len = 0; len < sealed->size(); ++len) {
    EXPECT_THAT(aead_->Open(sealed->substr(0, len), "aad"),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "length " << len;
  }
}

TEST_P(AesGcmTest, OpenRejectsAnAppendedByte) {
  auto sealed = aead_->Seal("plaintext", "aad");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_THAT(aead_->Open(*sealed + '\0', "aad"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(AesGcmTest, OpenRejectsAMessageSealedUnderAnotherKey) {
  auto other_key = RandomSecret(AesGcm::kKeySize);
  ASSERT_THAT(other_key, IsOk());
  auto other = AesGcm::Create(std::move(*other_key));
  ASSERT_THAT(other, IsOk());
  auto sealed = (*other)->Seal("plaintext", "aad");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_THAT(aead_->Open(*sealed, "aad"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(AesGcmTest, DetachedCallsRejectANonceThatIsNotTwelveBytes) {
  auto sealed = aead_->SealDetached(std::string(12, 'n'), "plaintext", "");
  ASSERT_THAT(sealed, IsOk());
  for (size_t size : {0, 8, 11, 13, 16}) {
    std::string nonce(size, 'n');
    EXPECT_THAT(aead_->SealDetached(nonce, "plaintext", ""),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "nonce size " << size;
    EXPECT_THAT(aead_->OpenDetached(nonce, *sealed, ""),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << "nonce size " << size;
  }
}

TEST_P(AesGcmTest, CreateRejectsWrongKeySizes) {
  for (size_t size : {0, 1, 15, 17, 23, 25, 31, 33, 48, 64}) {
    EXPECT_THAT(AesGcm::Create(SecretBytes(size)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16, 24 or 32")))
        << "key size " << size;
  }
}

TEST_P(AesGcmTest, CreateAcceptsAes128Aes192AndAes256Keys) {
  for (size_t size : {16, 24, 32}) {
    auto aead = AesGcm::Create(SecretBytes(size));
    ASSERT_THAT(aead, IsOk()) << "key size " << size;
    auto sealed = (*aead)->Seal("plaintext", "aad");
    ASSERT_THAT(sealed, IsOk());
    auto opened = (*aead)->Open(*sealed, "aad");
    ASSERT_THAT(opened, IsOk());
    EXPECT_EQ(opened->Reveal(), "plaintext");
  }
}

}  // namespace
}  // namespace kmsplugin
