// The frozen formats of the PKCS#11 backend (kms/pkcs11/pkcs11_blob.h): kek_id, CKA_ID versions,
// blob parsing, the CKR names; and the golden vector: a blob computed independently (python
// AESGCM) under a known AES key imported into a real SoftHSM token unwraps to the known data key.
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/pkcs11/pkcs11_blob.h"
#include "kms/pkcs11/pkcs11_kms.h"
#include "tests/matchers.h"
#include "tests/pkcs11/pkcs11_test_util.h"

namespace kmsplugin::pkcs11 {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::SoftHsmToken;
using ::kmsplugin::testing::StatusIs;
using ::kmsplugin::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Optional;

TEST(Pkcs11KekIdTest, IsPrefixSerialLabelAndDecimalVersionWithOddBytesPercentEncoded) {
  EXPECT_EQ(MakeKekId("93ece3a5263bcd4d", "kek", 1), "pkcs11:93ece3a5263bcd4d/kek/v1");
  EXPECT_EQ(MakeKekId("A B", "k8s/kek:1%", 256), "pkcs11:A%20B/k8s%2Fkek%3A1%25/v256");
  EXPECT_EQ(MakeKekId("s", "a.b_c-D9", 4294967295U), "pkcs11:s/a.b_c-D9/v4294967295");
}

TEST(Pkcs11KekIdTest, ParsesOnlyItsOwnTokenAndLabelAndCanonicalVersions) {
  EXPECT_THAT(ParseKekId("pkcs11:s1/kek/v7", "s1", "kek"), Optional(7U));
  EXPECT_THAT(ParseKekId("pkcs11:A%20B/k%2F/v1", "A B", "k/"), Optional(1U));
  for (const char* other :
       {"pkcs11:s2/kek/v7", "pkcs11:s1/kek2/v7", "pkcs11:s1/ke/v7", "pkcs11:s1/kek/v0",
        "pkcs11:s1/kek/v07", "pkcs11:s1/kek/v", "pkcs11:s1/kek/v4294967296", "pkcs11:s1/kek/v1x",
        "aws:s1/kek/v1", "pkcs11:s1/kek/7", ""}) {
    EXPECT_EQ(ParseKekId(other, "s1", "kek"), std::nullopt) << other;
  }
}

TEST(Pkcs11VersionIdTest, IsTheBigEndianValueOfCkaId) {
  EXPECT_EQ(EncodeVersionId(1), std::string("\x01", 1));
  EXPECT_EQ(EncodeVersionId(256), std::string("\x01\x00", 2));
  EXPECT_EQ(EncodeVersionId(0x01020304), "\x01\x02\x03\x04");
  EXPECT_THAT(ParseVersionId(std::string("\x02", 1)), Optional(2U));
  EXPECT_THAT(ParseVersionId(std::string("\x01\x00", 2)), Optional(256U));
  EXPECT_THAT(ParseVersionId(std::string("\x00\x05", 2)), Optional(5U));
  EXPECT_EQ(ParseVersionId(""), std::nullopt);
  EXPECT_EQ(ParseVersionId(std::string("\x00", 1)), std::nullopt);
  EXPECT_EQ(ParseVersionId("\x01\x02\x03\x04\x05"), std::nullopt);
  EXPECT_EQ(ParseVersionId("kek-id"), std::nullopt);
}

TEST(Pkcs11BlobTest, ParsesFormatOneAndRefusesEverythingElse) {
  const std::string iv(kGcmIvSize, 'i');
  const std::string body(48, 'b');
  const std::string gcm_blob = EncodeBlob(Mechanism::kAesGcm, iv, body);
  auto gcm = ParseBlob(gcm_blob);
  ASSERT_THAT(gcm.status(), IsOk());
  EXPECT_EQ(gcm->mechanism, Mechanism::kAesGcm);
  EXPECT_EQ(gcm->iv, iv);
  EXPECT_EQ(gcm->body, body);
  EXPECT_EQ(gcm->header, std::string("\x01\x01", 2));
  const std::string kwp_blob = EncodeBlob(Mechanism::kAesKeyWrapPad, "", std::string(40, 'w'));
  auto kwp = ParseBlob(kwp_blob);
  ASSERT_THAT(kwp.status(), IsOk());
  EXPECT_EQ(kwp->mechanism, Mechanism::kAesKeyWrapPad);
  EXPECT_EQ(kwp->body.size(), 40U);
  for (const std::string& bad :
       {std::string(), std::string("\x01", 1), absl::StrCat(std::string("\x02\x01", 2), iv, body),
        absl::StrCat(std::string("\x01\x03", 2), iv, body),
        std::string("\x01\x01", 2) + iv + "0123456789abcdef",
        std::string("\x01\x02", 2) + std::string(41, 'w'), std::string("\x01\x02", 2) + "12345678",
        std::string("\x01\x01", 2) + std::string(kMaxBlobSize, 'x')}) {
    EXPECT_THAT(ParseBlob(bad).status(), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad.size();
  }
}

TEST(Pkcs11ModuleTest, NamesReturnCodesAndClassifiesTheRecoverableOnes) {
  EXPECT_EQ(CkrName(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT (0xa0)");
  EXPECT_EQ(CkrName(0x8000abcdUL), "CKR 0x8000abcd");
  for (ck_rv_t rv : {0xB3UL, 0xB0UL}) EXPECT_TRUE(IsSessionLost(rv)) << rv;
  for (ck_rv_t rv : {0x82UL, 0x60UL, 0x32UL, 0xE0UL, 0xE1UL, 0x30UL, 0x3UL, 0x190UL}) {
    EXPECT_TRUE(IsTokenLost(rv)) << rv;
    EXPECT_FALSE(IsSessionLost(rv)) << rv;
  }
  for (ck_rv_t rv : {0x5UL, 0x40UL, 0xA0UL, 0xA4UL}) EXPECT_FALSE(IsTokenLost(rv)) << rv;
}

std::map<std::string, std::string> ReadGolden() {
  std::map<std::string, std::string> fields;
  auto text =
      testing::ReadFile(std::string(KMSP_SOURCE_DIR) + "/tests/pkcs11/testdata/golden_blob_v1.txt");
  EXPECT_TRUE(text.ok()) << text.status();
  for (absl::string_view line : absl::StrSplit(text.value_or(""), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    fields[kv.first] = kv.second;
  }
  return fields;
}

TEST(Pkcs11GoldenTest, TheFrozenBlobUnwrapsToTheKnownDataKeyInASoftHsmToken) {
  std::map<std::string, std::string> g = ReadGolden();
  ASSERT_EQ(g.size(), 6U);
  auto dir = TempDir::Create("kmsp-pkcs11-golden");
  ASSERT_TRUE(dir.ok()) << dir.status();
  auto token = SoftHsmToken::Create(dir->path());
  ASSERT_TRUE(token.ok()) << token.status();
  token->SetProcessEnv();
  auto id = HexDecode(g["kek_cka_id"]);
  auto kek = HexDecode(g["kek_value"]);
  auto data_key = HexDecode(g["data_key"]);
  auto blob = HexDecode(g["blob"]);
  ASSERT_TRUE(id.ok() && kek.ok() && data_key.ok() && blob.ok());
  ASSERT_THAT(
      testing::ImportAesKey("kms-test", SoftHsmToken::kDefaultPin, g["kek_label"], *id, *kek),
      IsOk());
  auto serial = token->Serial();
  ASSERT_TRUE(serial.ok()) << serial.status();

  Pkcs11KmsOptions options;
  options.module_path = testing::kSoftHsmModule;
  options.token_label = "kms-test";
  options.key_label = g["kek_label"];
  options.pin = SecretBytes::CopyFrom(SoftHsmToken::kDefaultPin);
  options.create_key_if_absent = false;
  auto kms = Pkcs11Kms::Create(std::move(options));
  ASSERT_TRUE(kms.ok()) << kms.status();
  const std::string kek_id = "pkcs11:" + *serial + "/golden-kek/v258";
  auto probe = (*kms)->Probe(CallContext::WithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->kek_id, kek_id);
  auto key = (*kms)->Unwrap({kek_id, *blob}, CallContext::WithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(HexEncode(key->Reveal()), g["data_key"]);
  // The AAD the golden file states is the one the format defines.
  EXPECT_EQ(HexEncode(GcmAad(blob->substr(0, 2), "golden-kek", 258)), g["aad"]);
  // One bit off anywhere after the header: the token refuses to authenticate it.
  for (size_t i : {size_t{2}, size_t{14}, blob->size() - 1}) {
    std::string tampered = *blob;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    EXPECT_THAT(
        (*kms)->Unwrap({kek_id, tampered}, CallContext::WithTimeout(absl::Seconds(30))).status(),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not authenticate")))
        << i;
  }
  // The same blob under another version of the label does not open either (AAD binds it).
  ASSERT_THAT((*kms)->RotateKek(CallContext::WithTimeout(absl::Seconds(30))), IsOk());
  EXPECT_THAT((*kms)
                  ->Unwrap({"pkcs11:" + *serial + "/golden-kek/v259", *blob},
                           CallContext::WithTimeout(absl::Seconds(30)))
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin::pkcs11
