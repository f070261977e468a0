// Hex and base64 (crypto/encoding.h): RFC 4648 vectors, round trips, strict rejection of malformed
// input; and the CSPRNG helpers of crypto/random.h (sizes, RFC 4122 version-4 UUIDs).
#include "crypto/encoding.h"

#include <set>
#include <string>
#include <vector>

#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::IsOkAndHolds;
using ::kmsplugin::testing::StatusIs;
using ::testing::Eq;

std::string AllByteValues() {
  std::string out;
  for (int i = 0; i < 256; ++i) out.push_back(static_cast<char>(i));
  return out;
}

class EncodingTest : public ::testing::Test {};

TEST_F(EncodingTest, HexEncodeIsLowerCaseTwoDigitsPerByte) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x01\x7f\x80\xab\xff", 6)), "00017f80abff");
}

TEST_F(EncodingTest, HexRoundTripsEveryByteValue) {
  const std::string bytes = AllByteValues();
  const std::string hex = HexEncode(bytes);
  EXPECT_EQ(hex.size(), 512u);
  EXPECT_THAT(HexDecode(hex), IsOkAndHolds(Eq(bytes)));
}

TEST_F(EncodingTest, HexDecodeAcceptsUpperAndMixedCase) {
  EXPECT_THAT(HexDecode("ABCDEF"), IsOkAndHolds(Eq(std::string("\xab\xcd\xef"))));
  EXPECT_THAT(HexDecode("aBcDeF"), IsOkAndHolds(Eq(std::string("\xab\xcd\xef"))));
  EXPECT_THAT(HexDecode(""), IsOkAndHolds(Eq(std::string())));
}

TEST_F(EncodingTest, HexDecodeRejectsOddLength) {
  for (const char* bad : {"0", "abc", "00112"}) {
    EXPECT_THAT(HexDecode(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST_F(EncodingTest, HexDecodeRejectsNonHexCharactersAndWhitespace) {
  for (const char* bad : {"0g", "zz", "+1", "0x00", "-1", "0a 0", " 0a0", "0a0b\n\n", "0\t"}) {
    EXPECT_THAT(HexDecode(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_THAT(HexDecode(std::string("0\0", 2)), StatusIs(absl::StatusCode::kInvalidArgument));
}

// RFC 4648 section 10.
struct Base64Vector {
  std::string plain;
  std::string encoded;
};
const std::vector<Base64Vector>& Rfc4648Vectors() {
  static const auto* vectors = new std::vector<Base64Vector>{
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  return *vectors;
}

TEST_F(EncodingTest, Base64EncodeMatchesRfc4648Vectors) {
  for (const Base64Vector& v : Rfc4648Vectors()) {
    EXPECT_EQ(Base64Encode(v.plain), v.encoded) << v.plain;
  }
}

TEST_F(EncodingTest, Base64DecodeMatchesRfc4648Vectors) {
  for (const Base64Vector& v : Rfc4648Vectors()) {
    EXPECT_THAT(Base64Decode(v.encoded), IsOkAndHolds(Eq(v.plain))) << v.encoded;
    auto secret = Base64DecodeSecret(v.encoded);
    ASSERT_THAT(secret, IsOk()) << v.encoded;
    EXPECT_EQ(secret->Reveal(), v.plain) << v.encoded;
  }
}

TEST_F(EncodingTest, Base64UsesTheStandardAlphabet) {
  EXPECT_EQ(Base64Encode("\xfb\xff\xbf"), "+/+/");
  EXPECT_THAT(Base64Decode("+/+/"), IsOkAndHolds(Eq(std::string("\xfb\xff\xbf"))));
}

TEST_F(EncodingTest, Base64RoundTripsEveryByteValueAndEveryLength) {
  const std::string all = AllByteValues();
  for (size_t len = 0; len <= all.size(); ++len) {
    const std::string bytes = all.substr(all.size() - len);
    const std::string encoded = Base64Encode(bytes);
    EXPECT_EQ(encoded.size(), 4 * ((len + 2) / 3));
    EXPECT_THAT(Base64Decode(encoded), IsOkAndHolds(Eq(bytes))) << "length " << len;
    auto secret = Base64DecodeSecret(encoded);
    ASSERT_THAT(secret, IsOk()) << "length " << len;
    EXPECT_EQ(secret->Reveal(), bytes) << "length " << len;
  }
}

void ExpectBase64Rejected(std::string_view bad) {
  std::string shown(bad);
  EXPECT_THAT(Base64Decode(bad), StatusIs(absl::StatusCode::kInvalidArgument))
      << "'" << shown << "'";
  EXPECT_THAT(Base64DecodeSecret(bad), StatusIs(absl::StatusCode::kInvalidArgument))
      << "'" << shown << "'";
}

TEST_F(EncodingTest, Base64DecodeRejectsCharactersOutsideTheAlphabet) {
  // Includes the URL-safe alphabet's '-' and '_', which the standard alphabet does not have.
  for (const char* bad : {"Zm9v!A==", "Zm9-", "Zm9_", "Zm.v", "Zm9v\x80\x80==", "Zm9v*mFy"}) {
    ExpectBase64Rejected(bad);
  }
  ExpectBase64Rejected(std::string_view("Zm9\0", 4));
}

TEST_F(EncodingTest, Base64DecodeRejectsLengthsThatAreNotAMultipleOfFour) {
  for (const char* bad : {"Z", "Zm", "Zm9", "Zg=", "Zm9vY", "Zm9vYmF", "Zm9vYg="}) {
    ExpectBase64Rejected(bad);
  }
}

TEST_F(EncodingTest, Base64DecodeRejectsWhitespaceAnywhere) {
  // Each of these is a multiple of four long, so only the whitespace makes it invalid.
  for (const char* bad :
       {"Zm9v YmE", "Zm9v\nYmE", "Zm9v\r\nYm", "Zm9v\tYmE", " Zm9vYmE", "Zm9vYmE ", "Zm9vYmE\n",
        "\nZm9vYmE", "  Zm9vYmFy  ", "Zm9vYmFy\n\n\n\n"}) {
    ExpectBase64Rejected(bad);
  }
}

TEST_F(EncodingTest, Base64DecodeRejectsPaddingThatIsNotAtTheEnd) {
  // '=' may only appear as one or two final characters (RFC 4648 section 3.2/4).
  for (const char* bad : {"====", "Z===", "=Zm9", "Zm=v", "Z=9v", "Zg=A", "Zg==Zm9v", "Zm8=Zm9v",
                          "Zm9v====", "Zm9v=m9v"}) {
    ExpectBase64Rejected(bad);
  }
}

class RandomTest : public ::testing::Test {};

// xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx, lower-case hex.
bool IsV4Uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return s[14] == '4' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}

TEST_F(RandomTest, UuidCheckerRejectsNonV4Forms) {
  EXPECT_TRUE(IsV4Uuid("87c514b4-9c26-4041-ad0d-0d07dca557ed"));
  EXPECT_FALSE(IsV4Uuid("87c514b4-9c26-1041-ad0d-0d07dca557ed"));  // Version 1.
  EXPECT_FALSE(IsV4Uuid("87c514b4-9c26-4041-cd0d-0d07dca557ed"));  // Wrong variant.
  EXPECT_FALSE(IsV4Uuid("87C514B4-9C26-4041-AD0D-0D07DCA557ED"));  // Upper case.
  EXPECT_FALSE(IsV4Uuid("87c514b49c264041ad0d0d07dca557ed"));      // No dashes.
}

TEST_F(RandomTest, RandomUuidIsVersionFourAndUnique) {
  constexpr int kCount = 500;
  std::set<std::string> seen;
  for (int i = 0; i < kCount; ++i) {
    auto uuid = RandomUuid();
    ASSERT_THAT(uuid, IsOk());
    EXPECT_TRUE(IsV4Uuid(*uuid)) << *uuid;
    seen.insert(*uuid);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kCount));
}

TEST_F(RandomTest, RandomBytesAndSecretHaveTheRequestedSizeAndDiffer) {
  for (size_t n : {0, 1, 12, 32, 1000}) {
    auto bytes = RandomBytes(n);
    ASSERT_THAT(bytes, IsOk());
    EXPECT_EQ(bytes->size(), n);
    auto secret = RandomSecret(n);
    ASSERT_THAT(secret, IsOk());
    EXPECT_EQ(secret->size(), n);
  }
  auto a = RandomSecret(32);
  auto b = RandomSecret(32);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_FALSE(a->ConstantTimeEquals(*b));
  EXPECT_FALSE(a->ConstantTimeEquals(SecretBytes(32)));
}

TEST_F(RandomTest, RandomHexIsLowerCaseHexOfTwiceTheLength) {
  auto hex = RandomHex(16);
  ASSERT_THAT(hex, IsOk());
  EXPECT_EQ(hex->size(), 32u);
  EXPECT_EQ(hex->find_first_not_of("0123456789abcdef"), std::string::npos) << *hex;
  EXPECT_THAT(HexDecode(*hex), IsOk());
}

}  // namespace
}  // namespace kmsplugin
