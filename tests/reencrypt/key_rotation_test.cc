// KMS v2 key_id rotation in mid-run (issue 9, item 6): the run follows the plugin's Status
// key_id, page by page and on every value under an unknown key_id, so it never rewrites a value
// the apiserver already wrote under a newer key_id, and never writes under a superseded one.
#include <map>
#include <set>

#include "absl/synchronization/mutex.h"
#include "fmt/format.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/fake_kms_server.h"
#include "tests/reencrypt/in_memory_etcd.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/reencryptor.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::Not;

constexpr char kRotationEtcdKey[] = "/registry/secrets/default/db";
const std::string kSeed(32, 's');

// The plugin side: base64 "wrapping", a key_id that can rotate, counted calls.
struct PluginState {
  absl::Mutex mu;
  std::string key_id ABSL_GUARDED_BY(mu) = "2";
  std::string encrypt_key_id ABSL_GUARDED_BY(mu);  // if set: Encrypt answers with this key_id
  int status_calls ABSL_GUARDED_BY(mu) = 0;

  void Rotate(std::string id) {
    absl::MutexLock lock(&mu);
    key_id = std::move(id);
  }
  int StatusCalls() {
    absl::MutexLock lock(&mu);
    return status_calls;
  }
};

class RotatingClient final : public KmsV2Client {
 public:
  explicit RotatingClient(std::shared_ptr<PluginState> s) : s_(std::move(s)) {}
  absl::StatusOr<KmsV2Status> Status() override {
    absl::MutexLock lock(&s_->mu);
    ++s_->status_calls;
    return KmsV2Status{"v2", "ok", s_->key_id};
  }
  absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes& pt, std::string_view) override {
    absl::MutexLock lock(&s_->mu);
    return KmsV2EncryptResult{Base64Encode(pt.Reveal()),
                              s_->encrypt_key_id.empty() ? s_->key_id : s_->encrypt_key_id,
                              {{testing::kFakeAnnotationKey, testing::kFakeAnnotationValue}}};
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ct, std::string_view,
                                      const std::map<std::string, std::string>&,
                                      std::string_view) override {
    return Base64DecodeSecret(ct);
  }

 private:
  std::shared_ptr<PluginState> s_;
};

std::string KeyIdOf(std::string_view value) {
  std::string_view name, rest;
  if (!SplitKmsValue(value, kKmsV2Prefix, &name, &rest)) return "<not kms v2>";
  auto obj = ParseEncryptedObject(rest);
  return obj.ok() ? obj->key_id : "<malformed>";
}

std::string V2Value(const std::string& key_id, const std::string& etcd_key,
                    const std::string& pt) {
  return *testing::EncodeKmsV2Type1("kms-provider", key_id, kSeed, etcd_key, pt);
}

class KeyRotationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transformer_ = NewKmsV2Transformer("kms-provider", std::make_unique<RotatingClient>(plugin_));
  }
  bool IsCurrent(const std::string& value) {
    ValueOrigin o;
    EXPECT_TRUE(transformer_->Claims(value, &o));
    return transformer_->IsCurrent(o);
  }

  std::shared_ptr<PluginState> plugin_ = std::make_shared<PluginState>();
  std::unique_ptr<ValueTransformer> transformer_;
};

TEST_F(KeyRotationTest, ValueUnderTheKeyIdAFreshStatusReportsIsCurrentAndWritesFollowIt) {
  ASSERT_THAT(transformer_->PrepareForWrite(), IsOk());
  plugin_->Rotate("3");  // the apiserver sees "3" and writes under it; our last Status said "2"
  EXPECT_TRUE(IsCurrent(V2Value("3", kRotationEtcdKey, "x")));
  EXPECT_EQ(transformer_->current_key_id(), "3");
  auto written = transformer_->Encrypt(kRotationEtcdKey, SecretBytes::CopyFrom("y"));
  ASSERT_THAT(written, IsOk());
  EXPECT_EQ(KeyIdOf(*written), "3") << "written under the superseded key_id";
  EXPECT_FALSE(IsCurrent(V2Value("2", kRotationEtcdKey, "x")));
}

TEST_F(KeyRotationTest, AnOlderKeyIdCostsOneStatusCallPerRunNotOnePerValue) {
  ASSERT_THAT(transformer_->PrepareForWrite(), IsOk());
  const int before = plugin_->StatusCalls();
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(IsCurrent(V2Value("1", kRotationEtcdKey, "x")));
  EXPECT_EQ(plugin_->StatusCalls() - before, 1);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(IsCurrent(V2Value("2", kRotationEtcdKey, "x")));
  EXPECT_EQ(plugin_->StatusCalls() - before, 1);
}

TEST_F(KeyRotationTest, RefreshSwitchesToAFreshSeedUnderTheNewKeyId) {
  ASSERT_THAT(transformer_->PrepareForWrite(), IsOk());
  auto old_value = transformer_->Encrypt(kRotationEtcdKey, SecretBytes::CopyFrom("a"));
  ASSERT_THAT(old_value, IsOk());
  plugin_->Rotate("3");
  ASSERT_THAT(transformer_->Refresh(), IsOk());
  auto new_value = transformer_->Encrypt(kRotationEtcdKey, SecretBytes::CopyFrom("b"));
  ASSERT_THAT(new_value, IsOk());
  EXPECT_EQ(KeyIdOf(*new_value), "3");
  EXPECT_FALSE(IsCurrent(*old_value));
  EXPECT_TRUE(IsCurrent(*new_value));
  auto read_old = transformer_->Decrypt(kRotationEtcdKey, *old_value);  // old seeds still read
  ASSERT_THAT(read_old, IsOk());
  EXPECT_EQ(read_old->Reveal(), "a");
}

TEST_F(KeyRotationTest, AFailedSwitchStopsWritesInsteadOfFallingBackToTheOldKeyId) {
  ASSERT_THAT(transformer_->PrepareForWrite(), IsOk());
  {
    absl::MutexLock lock(&plugin_->mu);
    plugin_->key_id = "3";
    plugin_->encrypt_key_id = "2";  // Status and Encrypt disagree mid-rotation
  }
  EXPECT_THAT(transformer_->Refresh(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(transformer_->Encrypt(kRotationEtcdKey, SecretBytes::CopyFrom("x")), Not(IsOk()));
  {
    absl::MutexLock lock(&plugin_->mu);
    plugin_->encrypt_key_id.clear();
  }
  ASSERT_THAT(transformer_->Refresh(), IsOk());
  auto written = transformer_->Encrypt(kRotationEtcdKey, SecretBytes::CopyFrom("x"));
  ASSERT_THAT(written, IsOk());
  EXPECT_EQ(KeyIdOf(*written), "3");
}

// An etcd whose third listing page makes the plugin rotate to "3", after which "the apiserver"
// rewrites the last `apiserver_writes` keys under "3".
class RotateOnPageEtcd final : public EtcdClient {
 public:
  RotateOnPageEtcd(testing::InMemoryEtcd* real, std::function<void()> rotate)
      : real_(real), rotate_(std::move(rotate)) {}
  absl::StatusOr<EtcdRangePage> Range(std::string_view key, std::string_view end,
                                      const EtcdRangeOptions& o) override {
    auto page = real_->Range(key, end, o);
    if (o.limit > 0 && ++pages_ == 3) rotate_();
    return page;
  }
  absl::StatusOr<int64_t> Put(std::string_view k, std::string_view v, int64_t l) override {
    return real_->Put(k, v, l);
  }
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override {
    return real_->GrantLease(ttl);
  }
  absl::StatusOr<EtcdCasResult> CompareAndSwap(std::string_view k, int64_t r, std::string_view v,
                                               int64_t l) override {
    return real_->CompareAndSwap(k, r, v, l);
  }
  absl::StatusOr<int64_t> DeleteRange(std::string_view k, std::string_view e) override {
    return real_->DeleteRange(k, e);
  }

 private:
  testing::InMemoryEtcd* real_;
  std::function<void()> rotate_;
  int pages_ = 0;
};

TEST_F(KeyRotationTest, RotationInMidRunNeitherDowngradesNewValuesNorWritesUnderTheOldKeyId) {
  testing::InMemoryEtcd etcd;
  std::map<std::string, std::string> plaintexts;
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    std::string key = fmt::format("/registry/secrets/ns/s-{:03}", i);
    plaintexts[key] = testing::MakePlaintext(key, 150);
    ASSERT_THAT(etcd.Put(key, *testing::EncodeAesCbc("cbc1", std::string(32, 'c'), plaintexts[key]),
                         0),
                IsOk());
    keys.push_back(key);
  }
  std::map<std::string, int64_t> apiserver_revisions;
  RotateOnPageEtcd rotating(&etcd, [&] {
    plugin_->Rotate("3");
    for (size_t i = keys.size() - 40; i < keys.size(); ++i) {
      plaintexts[keys[i]] = testing::MakePlaintext(keys[i] + "#new", 150);
      ASSERT_THAT(etcd.Put(keys[i], V2Value("3", keys[i], plaintexts[keys[i]]), 0), IsOk());
      apiserver_revisions[keys[i]] = etcd.Range(keys[i], "", {}).value().kvs[0].mod_revision;
    }
  });
  auto config = ParseEncryptionConfig(
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
      "  - resources: [secrets]\n    providers:\n"
      "      - kms: {apiVersion: v2, name: kms-provider, endpoint: unix:///unused.sock}\n"
      "      - aescbc: {keys: [{name: cbc1, secret: " +
      Base64Encode(std::string(32, 'c')) + "}]}\n");
  ASSERT_THAT(config, IsOk());
  KmsClientFactory factory;
  factory.v2 = [this](std::string_view,
                      absl::Duration) -> absl::StatusOr<std::unique_ptr<KmsV2Client>> {
    return std::make_unique<RotatingClient>(plugin_);
  };
  auto set = TransformerSet::Create(*config, factory);
  ASSERT_THAT(set, IsOk());
  ReencryptOptions options;
  options.page_size = 20;
  options.concurrency = 2;
  testing::FakeClock clock;
  Reencryptor tool(&rotating, set->get(), options, nullptr, &clock);
  auto summary = tool.Run({ResourceTarget{GroupResource::Parse("secrets"), "/registry/secrets/"}});
  ASSERT_THAT(summary, IsOk());
  EXPECT_EQ(summary->failed, 0);
  EXPECT_EQ(summary->scanned, 200);
  EXPECT_EQ(summary->already_current, 40) << "values the apiserver wrote under \"3\"";
  EXPECT_EQ(summary->rewritten, 160);

  int under_old = 0;
  const ProviderChain& chain = (*set)->ChainFor(GroupResource::Parse("secrets"));
  for (size_t i = 0; i < keys.size(); ++i) {
    auto kv = etcd.Range(keys[i], "", {});
    ASSERT_THAT(kv, IsOk());
    const std::string& value = kv->kvs[0].value;
    auto pt = chain.Decrypt(keys[i], value);
    ASSERT_THAT(pt, IsOk()) << keys[i];
    EXPECT_EQ(pt->Reveal(), plaintexts[keys[i]]) << keys[i];
    std::string id = KeyIdOf(value);
    if (apiserver_revisions.count(keys[i]) > 0) {
      EXPECT_EQ(kv->kvs[0].mod_revision, apiserver_revisions[keys[i]])
          << keys[i] << " was rewritten (under " << id << ")";
    }
    if (id == "2") {
      ++under_old;
      // Only objects listed before the rotation (pages 1 and 2) may still carry "2".
      EXPECT_LT(i, 40u) << keys[i] << " written under the superseded key_id";
    } else {
      EXPECT_EQ(id, "3") << keys[i];
    }
  }
  RecordProperty("written_under_old_key_id_before_the_rotation", under_old);
}

}  // namespace
}  // namespace kmsplugin::reencrypt
