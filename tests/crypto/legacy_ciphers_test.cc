// crypto/aes_cbc and crypto/secretbox: the ciphers of kube-apiserver's aescbc and secretbox
// providers (kmsv2-contract.md §4.2).
#include "crypto/aes_cbc.h"
#include "crypto/encoding.h"
#include "crypto/secretbox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;

// NIST SP 800-38A F.2.5 (CBC-AES256), plus the PKCS#7 padding block (computed with pyca).
constexpr char kKey[] = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
constexpr char kIv[] = "000102030405060708090a0b0c0d0e0f";
constexpr char kPlain[] =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
constexpr char kCipher[] =
    "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
    "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"
    "3f461796d6b0d6b2e0c2a72b4d80e644";

class AesCbcTest : public ::testing::Test {
 protected:
  std::unique_ptr<AesCbc> Cipher() {
    auto c = AesCbc::Create(SecretBytes::CopyFrom(*HexDecode(kKey)));
    EXPECT_THAT(c, IsOk());
    return c.ok() ? std::move(*c) : nullptr;
  }
};

TEST_F(AesCbcTest, DecryptMatchesNistVectorWithPkcs7Padding) {
  auto pt = Cipher()->Decrypt(*HexDecode(kIv) + *HexDecode(kCipher));
  ASSERT_THAT(pt, IsOk());
  EXPECT_EQ(HexEncode(pt->Reveal()), kPlain);
}

TEST_F(AesCbcTest, EncryptUsesFreshIvAndRoundTrips) {
  auto c = Cipher();
  auto a = c->Encrypt("secret data");
  auto b = c->Encrypt("secret data");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->size(), 16u + 16u);
  EXPECT_NE(a->substr(0, 16), b->substr(0, 16));
  auto pt = c->Decrypt(*a);
  ASSERT_THAT(pt, IsOk());
  EXPECT_EQ(pt->Reveal(), "secret data");
}

TEST_F(AesCbcTest, EmptyPlaintextGetsAFullPaddingBlock) {
  auto c = Cipher();
  auto a = c->Encrypt("");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->size(), 32u);
  auto pt = c->Decrypt(*a);
  ASSERT_THAT(pt, IsOk());
  EXPECT_TRUE(pt->empty());
}

TEST_F(AesCbcTest, DecryptRejectsPartialBlocksAndBadPadding) {
  auto c = Cipher();
  EXPECT_THAT(c->Decrypt(std::string(16 + 15, 'a')), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(c->Decrypt(std::string(16, 'a')), StatusIs(absl::StatusCode::kInvalidArgument));
  // Flip the last byte of the padding block: 0x44 is never a valid pad for this vector.
  std::string bad = *HexDecode(kIv) + *HexDecode(kCipher);
  bad.back() ^= 0x55;
  EXPECT_THAT(c->Decrypt(bad), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(AesCbcTest, CreateRejectsBadKeySize) {
  EXPECT_THAT(AesCbc::Create(SecretBytes(20)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AesCbc::Create(SecretBytes(16)), IsOk());
  EXPECT_THAT(AesCbc::Create(SecretBytes(24)), IsOk());
}

class SecretboxTest : public ::testing::Test {
 protected:
  std::unique_ptr<Secretbox> Box(char fill = 'k') {
    auto b = Secretbox::Create(SecretBytes::CopyFrom(std::string(32, fill)));
    EXPECT_THAT(b, IsOk());
    return b.ok() ? std::move(*b) : nullptr;
  }
};

TEST_F(SecretboxTest, SealLayoutIsNonceTagCiphertextAndRoundTrips) {
  auto box = Box();
  auto sealed = box->Seal("hello secretbox");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_EQ(sealed->size(), 24u + 16u + 15u);
  auto pt = box->Open(*sealed);
  ASSERT_THAT(pt, IsOk());
  EXPECT_EQ(pt->Reveal(), "hello secretbox");
}

TEST_F(SecretboxTest, OpenFailsWithAnotherKeyOrModifiedBytes) {
  auto sealed = Box()->Seal("hello");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_THAT(Box('x')->Open(*sealed), StatusIs(absl::StatusCode::kInvalidArgument));
  for (size_t i : {size_t{0}, size_t{24}, sealed->size() - 1}) {
    std::string bad = *sealed;
    bad[i] ^= 1;
    EXPECT_THAT(Box()->Open(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << "byte " << i;
  }
  EXPECT_THAT(Box()->Open(sealed->substr(0, 39)), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SecretboxTest, EmptyPlaintextRoundTrips) {
  auto box = Box();
  auto sealed = box->Seal("");
  ASSERT_THAT(sealed, IsOk());
  auto pt = box->Open(*sealed);
  ASSERT_THAT(pt, IsOk());
  EXPECT_TRUE(pt->empty());
}

TEST_F(SecretboxTest, CreateRejectsKeysThatAreNot32Bytes) {
  EXPECT_THAT(Secretbox::Create(SecretBytes(16)), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin
