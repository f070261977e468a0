// CRC-32C (crypto/crc32c.h) against the check values of remote-kms-apis.md §5.3, and RS256 JWT
// signing (crypto/jwt_rs256.h): a signature made by `openssl dgst -sha256 -sign` with the same
// TEST-ONLY key is reproduced byte for byte, the compact JWT has the expected segments, and
// keys that are not RSA >= 2048 are refused without echoing them.
#include <string>

#include "crypto/crc32c.h"
#include "crypto/jwt_rs256.h"
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
using ::testing::Not;

constexpr char kSaKeyPem[] = KMSP_SOURCE_DIR "/tests/gcp/testdata/sa_test_key.pem";

TEST(Crc32cTest, MatchesTheCheckValuesOfTheCloudKmsNotes) {
  EXPECT_EQ(Crc32c("123456789"), 3808858755U);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 2324772522U);
  EXPECT_EQ(Crc32c("ping"), 2818189029U);
  EXPECT_EQ(Crc32c(""), 0U);
}

TEST(Crc32cTest, ExtendsAcrossPieces) {
  EXPECT_EQ(Crc32cExtend(Crc32c("1234"), "56789"), 3808858755U);
  EXPECT_EQ(Crc32cExtend(Crc32c(""), "ping"), Crc32c("ping"));
  // 32 bytes of 0xFF (RFC 3720 B.4): 0x62A8AB43.
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43U);
}

TEST(JwtRs256Test, Base64UrlHasNoPaddingAndTheUrlAlphabet) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");
  EXPECT_EQ(Base64UrlEncode("{\"iss\":\"x\"}"), "eyJpc3MiOiJ4In0");
}

TEST(JwtRs256Test, SignsTheSameBytesAsOpensslDgst) {
  const SecretBytes pem = SecretBytes::CopyFrom(ReadFileOrEmpty(kSaKeyPem));
  ASSERT_FALSE(pem.empty());
  // printf 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0' |
  //   openssl dgst -sha256 -sign sa_test_key.pem | basenc --base64url -w0 | tr -d =
  constexpr char kExpectedSig[] =
      "oDlQ8nbRnTpIByn7YY0nGqs_YaJvhTzscu_qgQt9_4yoYfjMPyGjUp4TBQi7PJHue12thtF7gNdXPDV-D8bhBYvs3"
      "XIRUfSSjnBxB0uFCvLrt8sTTERAdSOnrt9pq3X4tJSyDW2pWlltrUgd8LSDw_k0vc7T9Mmc5KC-tl8OJCmmVdQIDw"
      "_JgCfUbII-IZtYgahJQaHgUWytfi6z898SExfj-ceAIFFt0za_PBCgZ_BSlNBwY8JV6VPMwyDGtKxG2dkCREgwfOx"
      "pf6GIs2_ubbUDwM7ra1wqxKG6eZ3gOOsxiqYaZg6hcINO8STgrbNeUxAgI9Zo5RjlBtFjK8tiHg";
  absl::StatusOr<std::string> sig = SignRs256(pem, "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0");
  ASSERT_THAT(sig, IsOk());
  EXPECT_EQ(sig->size(), 256U);
  EXPECT_EQ(Base64UrlEncode(*sig), kExpectedSig);

  absl::StatusOr<SecretBytes> jwt = SignJwtRs256(pem, R"({"alg":"RS256"})", R"({"iss":"x"})");
  ASSERT_THAT(jwt, IsOk());
  EXPECT_EQ(jwt->Reveal(), std::string("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.") + kExpectedSig);
}

TEST(JwtRs256Test, RefusesWhatIsNotAnRsaKeyOfAtLeast2048Bits) {
  EXPECT_THAT(SignRs256(SecretBytes(), "x"), StatusIs(absl::StatusCode::kInvalidArgument));
  const SecretBytes garbage = SecretBytes::CopyFrom("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n");
  absl::StatusOr<std::string> bad = SignRs256(garbage, "x");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("c2VjcmV0")));
  // The 3072-bit recovery test key signs too (any RSA size >= 2048).
  const SecretBytes rsa3072 = SecretBytes::CopyFrom(ReadFileOrEmpty(testing::kRecoveryTestKeyPem));
  absl::StatusOr<std::string> sig = SignRs256(rsa3072, "x");
  ASSERT_THAT(sig, IsOk());
  EXPECT_EQ(sig->size(), 384U);
}

}  // namespace
}  // namespace kmsplugin
