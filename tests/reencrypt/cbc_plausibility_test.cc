// AES-CBC has no integrity (issue 9, item 5): a wrong key opens about one value in 256 with a
// valid padding. These tests build such values on purpose (checked with OpenSSL directly, not
// through crypto/) and show that reencrypt neither writes the garbage over a recoverable value
// nor counts it as current, and that a value two keys both open is reported and left alone.
#include <openssl/evp.h>

#include <map>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/in_memory_etcd.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/reencryptor.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using testing::InMemoryEtcd;

const std::string kNew(32, 'n');
const std::string kOld(32, 'o');
const std::string kA(32, 'A');
const std::string kB(32, 'B');

// IV || C1 || C2 that AES-256-CBC opens with valid PKCS#7 padding under both kA and kB, to two
// different 31-byte plaintexts that both start with CBOR's self-described tag d9 d9 f7. Found
// with about 2^24 trial blocks (C2: D_A and D_B agree on the last byte; C1: on the first three).
constexpr char kAmbiguousBody[] =
    "d00f5600000000000000000000000000"
    "00000000006e6b1500000000000000c1"
    "000000000000000000000000000001dd";

// Raw OpenSSL AES-256-CBC decrypt with padding; true when the padding is valid.
bool PaddingValid(const std::string& key, std::string_view iv_and_ct, std::string* out) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::string buf(iv_and_ct.size() + 16, '\0');
  int len = 0, fin = 0;
  bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), nullptr,
                               reinterpret_cast<const unsigned char*>(key.data()),
                               reinterpret_cast<const unsigned char*>(iv_and_ct.data())) == 1 &&
            EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(buf.data()), &len,
                              reinterpret_cast<const unsigned char*>(iv_and_ct.data()) + 16,
                              static_cast<int>(iv_and_ct.size() - 16)) == 1 &&
            EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(buf.data()) + len, &fin) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (ok && out != nullptr) *out = buf.substr(0, static_cast<size_t>(len) + static_cast<size_t>(fin));
  return ok;
}

// An aescbc value of `plaintext` under `key` (named `name`) that `wrong` also opens with a valid
// padding, to garbage (about 256 tries).
std::string CollidingValue(const std::string& name, const std::string& key,
                           const std::string& wrong, const std::string& plaintext) {
  const std::string prefix = "k8s:enc:aescbc:v1:" + name + ":";
  for (int i = 0; i < 100000; ++i) {
    auto value = testing::EncodeAesCbc(name, key, plaintext);
    EXPECT_THAT(value, IsOk());
    std::string garbage;
    if (PaddingValid(wrong, std::string_view(*value).substr(prefix.size()), &garbage) &&
        garbage != plaintext) {
      return *value;
    }
  }
  ADD_FAILURE() << "no colliding value found";
  return {};
}

std::string AescbcBlock(const std::string& name, const std::string& key) {
  return "      - aescbc: {keys: [{name: " + name + ", secret: " + Base64Encode(key) + "}]}\n";
}

std::string Yaml(const std::string& providers) {
  return "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
         "  - resources: [secrets]\n    providers:\n" +
         providers;
}

class CbcPlausibilityTest : public ::testing::Test {
 protected:
  absl::StatusOr<ReencryptSummary> Run(const std::string& yaml, ReencryptOptions options) {
    auto config = ParseEncryptionConfig(yaml);
    if (!config.ok()) return config.status();
    config_ = std::make_unique<EncryptionConfig>(std::move(*config));
    auto set = TransformerSet::Create(*config_);
    if (!set.ok()) return set.status();
    set_ = std::move(*set);
    Reencryptor r(&etcd_, set_.get(), options, nullptr, &clock_);
    return r.Run({ResourceTarget{GroupResource::Parse("secrets"), "/registry/secrets/"}});
  }
  const ProviderChain& Chain() { return set_->ChainFor(GroupResource::Parse("secrets")); }

  InMemoryEtcd etcd_;
  testing::FakeClock clock_;
  std::unique_ptr<EncryptionConfig> config_;
  std::unique_ptr<TransformerSet> set_;
};

TEST_F(CbcPlausibilityTest, PlausibleStoredObjectsAreProtobufCborOrWholeJson) {
  EXPECT_TRUE(IsPlausibleStoredObject(std::string("k8s\0\n\x02v1", 7)));
  EXPECT_TRUE(IsPlausibleStoredObject("\xd9\xd9\xf7\xa1"));
  EXPECT_TRUE(IsPlausibleStoredObject(R"({"kind":"Widget","apiVersion":"example.com/v1"})"));
  EXPECT_FALSE(IsPlausibleStoredObject("{\x93\x11garbage"));
  EXPECT_FALSE(IsPlausibleStoredObject("k8s"));
  EXPECT_FALSE(IsPlausibleStoredObject(""));
  EXPECT_FALSE(IsPlausibleStoredObject("\x01\x02\x03\x04"));
}

TEST_F(CbcPlausibilityTest, WrongKeyGarbageIsNeverWrittenOverARecoverableValue) {
  // The config's key1 is not the key the values were written with (a wrong or retired secret).
  const int kValues = 12;
  std::map<std::string, std::string> before;
  for (int i = 0; i < kValues; ++i) {
    std::string key = "/registry/secrets/ns/s-" + std::to_string(i);
    std::string value = CollidingValue("key1", kOld, kA, testing::MakePlaintext(key, 200));
    ASSERT_THAT(etcd_.Put(key, value, 0), IsOk());
    before[key] = value;
  }
  auto summary = Run(Yaml(AescbcBlock("key2", kNew) + AescbcBlock("key1", kA)), {});
  ASSERT_THAT(summary, IsOk());
  EXPECT_EQ(summary->failed, kValues);
  EXPECT_EQ(summary->rewritten, 0);
  EXPECT_EQ(etcd_.cas_writes(), 0);
  for (const auto& [key, value] : before) EXPECT_EQ(etcd_.Get(key), value) << key;
}

TEST_F(CbcPlausibilityTest, CorpusUnderManyOverlappingKeysIsRewrittenToItsTruePlaintexts) {
  // Six wrong "key1" secrets in providers ahead of the right one: with the apiserver's
  // first-success rule, each opens ~1/256 of the values to garbage. 300 ordinary values plus 12
  // built to collide with the first wrong key.
  std::string providers = AescbcBlock("key2", kNew);
  std::vector<std::string> wrong;
  for (char c = 'p'; c < 'v'; ++c) {
    wrong.emplace_back(32, c);
    providers += AescbcBlock("key1", wrong.back());
  }
  providers += AescbcBlock("key1", kOld);
  std::map<std::string, std::string> plaintexts;
  for (int i = 0; i < 312; ++i) {
    std::string key = "/registry/secrets/ns-" + std::to_string(i % 5) + "/s-" + std::to_string(i);
    std::string pt = testing::MakePlaintext(key, 64 + (i * 37) % 700);
    std::string value = i < 12 ? CollidingValue("key1", kOld, wrong[0], pt)
                               : *testing::EncodeAesCbc("key1", kOld, pt);
    ASSERT_THAT(etcd_.Put(key, value, 0), IsOk());
    plaintexts[key] = pt;
  }
  ReencryptOptions options;
  options.page_size = 50;
  auto summary = Run(Yaml(providers), options);
  ASSERT_THAT(summary, IsOk());
  EXPECT_EQ(summary->failed, 0);
  EXPECT_EQ(summary->rewritten, 312);

  auto only_new = ParseEncryptionConfig(Yaml(AescbcBlock("key2", kNew)));
  ASSERT_THAT(only_new, IsOk());
  auto set = TransformerSet::Create(*only_new);
  ASSERT_THAT(set, IsOk());
  const ProviderChain& chain = (*set)->ChainFor(GroupResource::Parse("secrets"));
  int exact = 0;
  for (const auto& [key, pt] : plaintexts) {
    auto read = chain.Decrypt(key, etcd_.Get(key));
    ASSERT_THAT(read, IsOk()) << key;
    if (read->Reveal() == pt) ++exact;
  }
  EXPECT_EQ(exact, 312) << "garbage was written over recoverable values";
}

TEST_F(CbcPlausibilityTest, ScanDoesNotCountAnOldKeyValueAsCurrentOnALuckyPadding) {
  // New key1 first, old key1 second (overlapping prefixes); the value is the old key's and opens
  // under the new key with a valid padding.
  ASSERT_THAT(etcd_.Put("/registry/secrets/ns/a",
                        CollidingValue("key1", kOld, kNew, testing::MakePlaintext("a", 150)), 0),
              IsOk());
  ReencryptOptions options;
  options.scan_only = true;
  auto summary = Run(Yaml(AescbcBlock("key1", kNew) + AescbcBlock("key1", kOld)), options);
  ASSERT_THAT(summary, IsOk());
  ASSERT_EQ(summary->inventory.size(), 1u);
  EXPECT_FALSE(summary->inventory[0].current);
  EXPECT_EQ(summary->inventory[0].count, 1);
}

TEST_F(CbcPlausibilityTest, ValueThatTwoKeysOpenIsReportedAmbiguousAndLeftUntouched) {
  const std::string key = "/registry/secrets/ns/ambiguous";
  const std::string value = "k8s:enc:aescbc:v1:key1:" + *HexDecode(kAmbiguousBody);
  std::string a, b;
  ASSERT_TRUE(PaddingValid(kA, value.substr(23), &a));
  ASSERT_TRUE(PaddingValid(kB, value.substr(23), &b));
  ASSERT_NE(a, b);
  ASSERT_THAT(etcd_.Put(key, value, 0), IsOk());

  auto summary = Run(Yaml(AescbcBlock("key2", kNew) + AescbcBlock("key1", kA) +
                          AescbcBlock("key1", kB)),
                     {});
  ASSERT_THAT(summary, IsOk());
  EXPECT_EQ(summary->failed, 1);
  EXPECT_EQ(summary->rewritten, 0);
  ASSERT_EQ(summary->failures.size(), 1u);
  EXPECT_THAT(summary->failures[0].error, HasSubstr("ambiguous"));
  EXPECT_EQ(etcd_.cas_writes(), 0);
  EXPECT_EQ(etcd_.Get(key), value);
  auto direct = Chain().Decrypt(key, value);
  EXPECT_TRUE(!direct.ok() && IsAmbiguousValueError(direct.status())) << direct.status();

  // The same value as the first provider's: neither counted current in a scan nor rewritten.
  ReencryptOptions scan;
  scan.scan_only = true;
  auto scanned = Run(Yaml(AescbcBlock("key1", kA) + AescbcBlock("key1", kB)), scan);
  ASSERT_THAT(scanned, IsOk());
  ASSERT_EQ(scanned->inventory.size(), 1u);
  EXPECT_FALSE(scanned->inventory[0].current);
  EXPECT_EQ(scanned->failed, 1);
}

TEST_F(CbcPlausibilityTest, SameKeyListedTwiceIsNotAmbiguous) {
  const std::string pt = testing::MakePlaintext("same", 120);
  ASSERT_THAT(etcd_.Put("/registry/secrets/ns/same", *testing::EncodeAesCbc("key1", kA, pt), 0),
              IsOk());
  auto summary = Run(Yaml(AescbcBlock("key2", kNew) + AescbcBlock("key1", kA) +
                          AescbcBlock("key1", kA)),
                     {});
  ASSERT_THAT(summary, IsOk());
  EXPECT_EQ(summary->failed, 0);
  EXPECT_EQ(summary->rewritten, 1);
}

}  // namespace
}  // namespace kmsplugin::reencrypt
