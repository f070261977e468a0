// KMS v2 key_id rotation in mid-run against a real etcd-server and the fake KMS v2 plugin over its
// unix socket (issue 9, item 6): when the plugin rotates while the tool pages through etcd, and
// the apiserver already writes under the new key_id, those values are current (never rewritten
// under the old key_id), and everything the tool writes after noticing uses the new key_id.
#include <map>

#include "crypto/encoding.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/etcd_process.h"
#include "tests/reencrypt/fake_kms_server.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/reencryptor.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::testing {
namespace {

using reencrypt::EtcdClient;

// Calls `on_page` on the given listing page (a Range with a limit), after reading it.
class PageHookEtcd final : public EtcdClient {
 public:
  PageHookEtcd(EtcdClient* real, int page, std::function<void()> on_page)
      : real_(real), page_(page), on_page_(std::move(on_page)) {}
  absl::StatusOr<reencrypt::EtcdRangePage> Range(std::string_view key, std::string_view end,
                                                 const reencrypt::EtcdRangeOptions& o) override {
    auto page = real_->Range(key, end, o);
    if (o.limit > 0 && ++seen_ == page_) on_page_();
    return page;
  }
  absl::StatusOr<int64_t> Put(std::string_view k, std::string_view v, int64_t l) override {
    return real_->Put(k, v, l);
  }
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override {
    return real_->GrantLease(ttl);
  }
  absl::StatusOr<reencrypt::EtcdCasResult> CompareAndSwap(std::string_view k, int64_t r,
                                                          std::string_view v,
                                                          int64_t l) override {
    return real_->CompareAndSwap(k, r, v, l);
  }
  absl::StatusOr<int64_t> DeleteRange(std::string_view k, std::string_view e) override {
    return real_->DeleteRange(k, e);
  }

 private:
  EtcdClient* real_;
  const int page_;
  std::function<void()> on_page_;
  int seen_ = 0;
};

TEST(ReencryptRotationEtcdTest, PluginRotationInMidRunIsFollowedAndNeverDowngradesNewValues) {
  auto dir = TempDir::Create("kmsp-reenc-rot");
  ASSERT_TRUE(dir.ok()) << dir.status();
  EtcdOptions eo;
  eo.data_dir = dir->File("etcd-data");
  eo.log_path = dir->File("etcd.log");
  auto etcd = EtcdProcess::Start(eo);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  auto client = (*etcd)->NewClient();
  ASSERT_TRUE(client.ok()) << client.status();
  auto kms = FakeKmsV2Server::Start(dir->File("kms.sock"), "2");
  ASSERT_TRUE(kms.ok()) << kms.status();

  const std::string cbc_key(32, 'c');
  const std::string seed(32, 's');
  constexpr int kObjects = 240;
  constexpr int kPageSize = 20;
  constexpr int kApiserverWrites = 60;  // the last keys, rewritten by "the apiserver" under "3"
  std::vector<std::string> keys;
  std::map<std::string, std::string> plaintexts;
  for (int i = 0; i < kObjects; ++i) {
    std::string key = fmt::format("/registry/secrets/ns/s-{:03}", i);
    plaintexts[key] = MakePlaintext(key, 300);
    ASSERT_TRUE((*client)->Put(key, *EncodeAesCbc("cbc1", cbc_key, plaintexts[key])).ok());
    keys.push_back(key);
  }
  std::map<std::string, int64_t> apiserver_revision;
  PageHookEtcd hook(client->get(), 3, [&] {
    (*kms)->Rotate("3");
    for (int i = kObjects - kApiserverWrites; i < kObjects; ++i) {
      const std::string& key = keys[i];
      plaintexts[key] = MakePlaintext(key + "#apiserver", 300);
      auto rev = (*client)->Put(key, *EncodeKmsV2Type1("kms-provider", "3", seed, key,
                                                        plaintexts[key]));
      ASSERT_TRUE(rev.ok()) << rev.status();
      apiserver_revision[key] = *rev;
    }
  });

  auto config = reencrypt::ParseEncryptionConfig(fmt::format(
      R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {{apiVersion: v2, name: kms-provider, endpoint: "{}", timeout: 5s}}
      - aescbc: {{keys: [{{name: cbc1, secret: {}}}]}}
)",
      (*kms)->endpoint(), Base64Encode(cbc_key)));
  ASSERT_TRUE(config.ok()) << config.status();
  auto set = reencrypt::TransformerSet::Create(*config);
  ASSERT_TRUE(set.ok()) << set.status();
  reencrypt::ReencryptOptions options;
  options.page_size = kPageSize;
  options.concurrency = 3;
  reencrypt::Reencryptor tool(&hook, set->get(), options, nullptr, RealClock::Get());
  auto summary = tool.Run({*reencrypt::ParseResourceTarget("secrets", "/registry")});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 0);
  EXPECT_EQ(summary->scanned, kObjects);
  EXPECT_EQ(summary->already_current, kApiserverWrites);
  EXPECT_EQ(summary->rewritten, kObjects - kApiserverWrites);

  auto after = (*client)->Range("/registry/secrets/", reencrypt::PrefixRangeEnd("/registry/secrets/"),
                                {});
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->kvs.size(), static_cast<size_t>(kObjects));
  int under_old = 0;
  for (size_t i = 0; i < after->kvs.size(); ++i) {
    const auto& kv = after->kvs[i];
    auto d = DecodeKmsV2(kv.value, kv.key);
    ASSERT_TRUE(d.ok()) << kv.key << ": " << d.status();
    EXPECT_EQ(d->plaintext, plaintexts[kv.key]) << kv.key;
    auto api = apiserver_revision.find(kv.key);
    if (api != apiserver_revision.end()) {
      EXPECT_EQ(kv.mod_revision, api->second) << kv.key << " rewritten, now under " << d->key_id;
    }
    if (d->key_id == "2") {
      ++under_old;
      // Only objects listed before the rotation (pages 1 and 2) may carry the old key_id.
      EXPECT_LT(i, 2u * kPageSize) << kv.key << " written under the superseded key_id";
    } else {
      EXPECT_EQ(d->key_id, "3") << kv.key;
    }
  }
  RecordProperty("written_under_old_key_id_before_the_rotation", under_old);
}

}  // namespace
}  // namespace kmsplugin::testing
