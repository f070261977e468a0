// Reencryptor against an in-memory EtcdClient: decisions that depend only on the chain and the
// stored bytes (kmsv2-contract.md §4.1 dispatch), without starting etcd-server.
#include "tools/reencrypt/reencryptor.h"

#include <map>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/in_memory_etcd.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {
namespace {

using ::kmsplugin::testing::IsOk;

using testing::InMemoryEtcd;

const std::string kNewKey(32, 'n');
const std::string kOldKey(32, 'o');
constexpr char kReencryptorEtcdKey[] = "/registry/secrets/default/db";

class ReencryptorTest : public ::testing::Test {
 protected:
  // Builds the transformers for `yaml` and runs the tool over /registry/secrets/.
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

  // Two aescbc blocks whose keys share the name "key1": the new key first, the old one second
  // (the documented rotation, with the usual key name). Their value prefixes overlap (§4.1).
  static std::string OverlappingAescbcYaml() {
    return "apiVersion: apiserver.config.k8s.io/v1\n"
           "kind: EncryptionConfiguration\n"
           "resources:\n"
           "  - resources: [secrets]\n"
           "    providers:\n"
           "      - aescbc: {keys: [{name: key1, secret: " +
           Base64Encode(kNewKey) +
           "}]}\n"
           "      - aescbc: {keys: [{name: key1, secret: " +
           Base64Encode(kOldKey) + "}]}\n";
  }

  static std::string NewKeyOnlyYaml() {
    return "apiVersion: apiserver.config.k8s.io/v1\n"
           "kind: EncryptionConfiguration\n"
           "resources:\n"
           "  - resources: [secrets]\n"
           "    providers:\n"
           "      - aescbc: {keys: [{name: key1, secret: " +
           Base64Encode(kNewKey) + "}]}\n";
  }

  InMemoryEtcd etcd_;
  testing::FakeClock clock_;
  std::unique_ptr<EncryptionConfig> config_;
  std::unique_ptr<TransformerSet> set_;
};

TEST_F(ReencryptorTest, ValueOfASecondProviderWithTheSamePrefixIsRewrittenNotSkipped) {
  const std::string pt = testing::MakePlaintext("db", 200);
  auto old_value = testing::EncodeAesCbc("key1", kOldKey, pt);
  ASSERT_THAT(old_value, IsOk());
  ASSERT_THAT(etcd_.Put(kReencryptorEtcdKey, *old_value, 0), IsOk());

  auto summary = Run(OverlappingAescbcYaml(), ReencryptOptions{});
  ASSERT_THAT(summary, IsOk());
  EXPECT_EQ(summary->failed, 0);
  EXPECT_EQ(summary->already_current, 0);
  EXPECT_EQ(summary->rewritten, 1);

  // After the old key is retired, the object must still be readable.
  auto only_new = ParseEncryptionConfig(NewKeyOnlyYaml());
  ASSERT_THAT(only_new, IsOk());
  auto set = TransformerSet::Create(*only_new);
  ASSERT_THAT(set, IsOk());
  const ProviderChain& chain = (*set)->ChainFor(GroupResource::Parse("secrets"));
  auto read = chain.Decrypt(kReencryptorEtcdKey, etcd_.Get(kReencryptorEtcdKey));
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->Reveal(), pt);
}

TEST_F(ReencryptorTest, ScanDoesNotCountASecondProvidersValueAsCurrent) {
  // The README says a key can be retired once --scan shows no row for it: the scan must not
  // report an old-key value as the current one just because the prefixes look the same.
  auto old_value = testing::EncodeAesCbc("key1", kOldKey, testing::MakePlaintext("a", 100));
  auto new_value = testing::EncodeAesCbc("key1", kNewKey, testing::MakePlaintext("b", 100));
  ASSERT_THAT(old_value, IsOk());
  ASSERT_THAT(new_value, IsOk());
  ASSERT_THAT(etcd_.Put("/registry/secrets/ns/a", *old_value, 0), IsOk());
  ASSERT_THAT(etcd_.Put("/registry/secrets/ns/b", *new_value, 0), IsOk());

  ReencryptOptions options;
  options.scan_only = true;
  auto summary = Run(OverlappingAescbcYaml(), options);
  ASSERT_THAT(summary, IsOk());
  std::map<bool, int64_t> by_current;
  for (const InventoryRow& row : summary->inventory) by_current[row.current] += row.count;
  EXPECT_EQ(by_current[true], 1);
  EXPECT_EQ(by_current[false], 1);
  EXPECT_EQ(etcd_.cas_writes(), 0);
}

TEST_F(ReencryptorTest, ValueOfTheFirstProviderWithAnOverlappingPrefixStaysCurrent) {
  const std::string pt = testing::MakePlaintext("db", 200);
  auto value = testing::EncodeAesCbc("key1", kNewKey, pt);
  ASSERT_THAT(value, IsOk());
  ASSERT_THAT(etcd_.Put(kReencryptorEtcdKey, *value, 0), IsOk());

  auto summary = Run(OverlappingAescbcYaml(), ReencryptOptions{});
  ASSERT_THAT(summary, IsOk());
  EXPECT_EQ(summary->already_current, 1);
  EXPECT_EQ(summary->rewritten, 0);
  EXPECT_EQ(etcd_.cas_writes(), 0);
  EXPECT_EQ(etcd_.Get(kReencryptorEtcdKey), *value);
}

}  // namespace
}  // namespace kmsplugin::reencrypt
