// storage_format: the KMS v2 EncryptedObject codec and value crypto, against the apiserver's
// own v1.28 record (../shared/testdata/apiserver/kmsv2-hkdf-seed-v1.28.json).
#include "tools/reencrypt/storage_format.h"

#include <fstream>
#include <sstream>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/matchers.h"

namespace kmsplugin::reencrypt {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;

struct Vector {
  std::string provider;
  std::string etcd_key;
  std::string value;
  std::string key_id;
  std::string encrypted_dek_source;
  std::string seed;
  std::string info;
  std::string nonce;
  std::string derived_dek;
  std::string plaintext;
};

Vector LoadVector() {
  std::ifstream in(std::string(KMSP_SHARED_TESTDATA) + "/apiserver/kmsv2-hkdf-seed-v1.28.json");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  Vector v;
  if (j.is_discarded()) return v;
  auto hex = [](const nlohmann::json& s) { return *HexDecode(s.get<std::string>()); };
  v.provider = j["provider_name"];
  v.etcd_key = j["etcd_key"];
  v.value = hex(j["value_hex"]);
  v.key_id = j["key_id"];
  v.encrypted_dek_source = j["encrypted_dek_source_ascii"];
  v.seed = hex(j["seed_hex"]);
  v.info = hex(j["info_hex"]);
  v.nonce = hex(j["nonce_hex"]);
  v.derived_dek = hex(j["derived_dek_hex"]);
  v.plaintext = hex(j["plaintext_hex"]);
  return v;
}

class StorageFormatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v_ = LoadVector();
    ASSERT_FALSE(v_.value.empty()) << "cannot read the shared apiserver vector";
  }
  Vector v_;
};

TEST_F(StorageFormatTest, KnownAnswerRecordSplitsIntoProviderAndObject) {
  std::string_view name, rest;
  ASSERT_TRUE(SplitKmsValue(v_.value, kKmsV2Prefix, &name, &rest));
  EXPECT_EQ(name, v_.provider);
  auto obj = ParseEncryptedObject(rest);
  ASSERT_THAT(obj, IsOk());
  EXPECT_EQ(obj->key_id, v_.key_id);
  EXPECT_EQ(obj->encrypted_dek_source, v_.encrypted_dek_source);
  EXPECT_EQ(obj->type, DekSourceType::kHkdfSha256XNonceAesGcmSeed);
  EXPECT_EQ(obj->annotations.at("local-kek.kms.kubernetes.io"), "encrypted-local-kek");
  EXPECT_EQ(obj->encrypted_data.substr(0, 32), v_.info);
  EXPECT_EQ(obj->encrypted_data.substr(32, 12), v_.nonce);
}

TEST_F(StorageFormatTest, KnownAnswerRecordReserializesByteForByte) {
  std::string_view name, rest;
  ASSERT_TRUE(SplitKmsValue(v_.value, kKmsV2Prefix, &name, &rest));
  auto obj = ParseEncryptedObject(rest);
  ASSERT_THAT(obj, IsOk());
  EXPECT_EQ(SerializeEncryptedObject(*obj), rest);
}

TEST_F(StorageFormatTest, KnownAnswerDekDerivationMatches) {
  auto dek = DeriveKmsV2Type1Dek(SecretBytes::CopyFrom(v_.seed), v_.info);
  ASSERT_THAT(dek, IsOk());
  EXPECT_EQ(HexEncode(dek->Reveal()), HexEncode(v_.derived_dek));
}

TEST_F(StorageFormatTest, KnownAnswerRecordDecryptsExactly) {
  std::string_view name, rest;
  ASSERT_TRUE(SplitKmsValue(v_.value, kKmsV2Prefix, &name, &rest));
  auto obj = ParseEncryptedObject(rest);
  ASSERT_THAT(obj, IsOk());
  // The upstream test plugin "encrypts" by base64: the seed is the decoded encryptedDEKSource.
  auto seed = Base64DecodeSecret(obj->encrypted_dek_source);
  ASSERT_THAT(seed, IsOk());
  EXPECT_EQ(HexEncode(seed->Reveal()), HexEncode(v_.seed));
  auto pt = OpenKmsV2Data(obj->type, *seed, obj->encrypted_data, v_.etcd_key);
  ASSERT_THAT(pt, IsOk());
  EXPECT_EQ(pt->Reveal(), v_.plaintext);
}

TEST_F(StorageFormatTest, SealWithTheVectorsInfoAndNonceReproducesTheRecord) {
  std::string_view name, rest;
  ASSERT_TRUE(SplitKmsValue(v_.value, kKmsV2Prefix, &name, &rest));
  auto obj = ParseEncryptedObject(rest);
  ASSERT_THAT(obj, IsOk());
  auto data = SealKmsV2Type1WithInfoAndNonce(SecretBytes::CopyFrom(v_.seed), v_.info, v_.nonce,
                                             v_.plaintext, v_.etcd_key);
  ASSERT_THAT(data, IsOk());
  EXPECT_EQ(*data, obj->encrypted_data);
}

TEST_F(StorageFormatTest, DecryptFailsUnderAnotherEtcdKey) {
  std::string_view name, rest;
  ASSERT_TRUE(SplitKmsValue(v_.value, kKmsV2Prefix, &name, &rest));
  auto obj = ParseEncryptedObject(rest);
  ASSERT_THAT(obj, IsOk());
  std::string other_key = v_.etcd_key.substr(v_.etcd_key.find("/registry"));
  EXPECT_THAT(
      OpenKmsV2Data(obj->type, SecretBytes::CopyFrom(v_.seed), obj->encrypted_data, other_key),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StorageFormatTest, DecryptFailsWhenTagIsModified) {
  std::string_view name, rest;
  ASSERT_TRUE(SplitKmsValue(v_.value, kKmsV2Prefix, &name, &rest));
  auto obj = ParseEncryptedObject(rest);
  ASSERT_THAT(obj, IsOk());
  obj->encrypted_data.back() ^= 1;
  EXPECT_THAT(
      OpenKmsV2Data(obj->type, SecretBytes::CopyFrom(v_.seed), obj->encrypted_data, v_.etcd_key),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StorageFormatTest, Type1WithoutField5IsReadAsType0AndFailsAuthentication) {
  // Pitfall 12: a type-1 record that lost field 5 is read as a raw AES key.
  std::string_view name, rest;
  ASSERT_TRUE(SplitKmsValue(v_.value, kKmsV2Prefix, &name, &rest));
  auto obj = ParseEncryptedObject(rest);
  ASSERT_THAT(obj, IsOk());
  obj->type = DekSourceType::kAesGcmKey;
  auto reparsed = ParseEncryptedObject(SerializeEncryptedObject(*obj));
  ASSERT_THAT(reparsed, IsOk());
  EXPECT_EQ(reparsed->type, DekSourceType::kAesGcmKey);
  EXPECT_THAT(OpenKmsV2Data(reparsed->type, SecretBytes::CopyFrom(v_.seed),
                            reparsed->encrypted_data, v_.etcd_key),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(StorageFormatTest, Type1RoundTripsWithFreshInfoAndNonce) {
  SecretBytes seed = SecretBytes::CopyFrom(v_.seed);
  auto a = SealKmsV2Type1(seed, "hello", "/registry/secrets/ns/a");
  auto b = SealKmsV2Type1(seed, "hello", "/registry/secrets/ns/a");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->substr(0, 44), b->substr(0, 44));
  auto pt =
      OpenKmsV2Data(DekSourceType::kHkdfSha256XNonceAesGcmSeed, seed, *a, "/registry/secrets/ns/a");
  ASSERT_THAT(pt, IsOk());
  EXPECT_EQ(pt->Reveal(), "hello");
}

TEST_F(StorageFormatTest, Type1RejectsSeedShorterThan32Bytes) {
  EXPECT_THAT(SealKmsV2Type1(SecretBytes::CopyFrom(std::string(31, 'k')), "x", "/k"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seed")));
}

TEST_F(StorageFormatTest, ParseRejectsWhatTheApiserverRejects) {
  EncryptedObject good;
  good.encrypted_data = "data";
  good.key_id = "k1";
  good.encrypted_dek_source = "src";
  good.type = DekSourceType::kHkdfSha256XNonceAesGcmSeed;
  ASSERT_THAT(ParseEncryptedObject(SerializeEncryptedObject(good)), IsOk());

  EncryptedObject bad = good;
  bad.key_id.clear();
  EXPECT_THAT(ParseEncryptedObject(SerializeEncryptedObject(bad)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keyID")));
  bad = good;
  bad.key_id = std::string(1025, 'k');
  EXPECT_THAT(ParseEncryptedObject(SerializeEncryptedObject(bad)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keyID")));
  bad = good;
  bad.encrypted_dek_source = std::string(1025, 'c');
  EXPECT_THAT(ParseEncryptedObject(SerializeEncryptedObject(bad)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("encryptedDEKSource")));
  bad = good;
  bad.encrypted_data.clear();
  EXPECT_THAT(ParseEncryptedObject(SerializeEncryptedObject(bad)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("encryptedData")));
  bad = good;
  bad.type = static_cast<DekSourceType>(2);
  EXPECT_THAT(ParseEncryptedObject(SerializeEncryptedObject(bad)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Type")));
  bad = good;
  bad.annotations["kms.kubernetes.io/local-kek"] = "x";
  EXPECT_THAT(ParseEncryptedObject(SerializeEncryptedObject(bad)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fully qualified")));
  bad = good;
  bad.annotations["big.example.com"] = std::string(size_t{32} * 1024, 'a');
  EXPECT_THAT(ParseEncryptedObject(SerializeEncryptedObject(bad)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
  EXPECT_THAT(ParseEncryptedObject(std::string("\x0a\x05"
                                               "ab",
                                               4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("malformed")));
}

TEST_F(StorageFormatTest, ParseSkipsUnknownFieldsAndAcceptsAnyFieldOrder) {
  EncryptedObject obj;
  obj.encrypted_data = "data";
  obj.key_id = "k1";
  obj.encrypted_dek_source = "src";
  std::string bytes = SerializeEncryptedObject(obj);
  // Field 9 (varint) first, then the rest reversed by re-encoding 3 before 1.
  std::string reordered = std::string("\x48\x07", 2) + std::string("\x1a\x03src", 5) +
                          std::string("\x12\x02k1", 4) +
                          std::string(
                              "\x0a\x04"
                              "data",
                              6);
  auto parsed = ParseEncryptedObject(reordered);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(SerializeEncryptedObject(*parsed), bytes);
}

TEST_F(StorageFormatTest, FqdnCheckFollowsApimachinery) {
  EXPECT_TRUE(IsFullyQualifiedDomainName("local-kek.kms.kubernetes.io"));
  EXPECT_TRUE(IsFullyQualifiedDomainName("version.encryption.remote.io."));
  EXPECT_FALSE(IsFullyQualifiedDomainName("kek"));
  EXPECT_FALSE(IsFullyQualifiedDomainName("LocalKEK.example.com"));
  EXPECT_FALSE(IsFullyQualifiedDomainName("kms.kubernetes.io/local-kek"));
  EXPECT_FALSE(IsFullyQualifiedDomainName("a_b.example.com"));
  EXPECT_FALSE(IsFullyQualifiedDomainName("-a.example.com"));
}

TEST_F(StorageFormatTest, KmsV1BodyRoundTrips) {
  std::string body = SerializeKmsV1Body("encdek", "nonce-ct-tag");
  EXPECT_EQ(body.substr(0, 2), std::string("\x00\x06", 2));
  auto parsed = ParseKmsV1Body(body);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->encrypted_dek, "encdek");
  EXPECT_EQ(parsed->encrypted_data, "nonce-ct-tag");
  EXPECT_THAT(ParseKmsV1Body(std::string("\x00\x09"
                                         "abc",
                                         5)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin::reencrypt
