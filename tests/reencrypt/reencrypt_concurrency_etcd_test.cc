// The reencrypt tool against a real etcd-server under interference: writers updating keys while
// the run rewrites them (no update is lost), and a SIGKILL in mid-run (every key stays readable
// and a rerun finishes).
#include <signal.h>

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/reencrypt_etcd_fixture.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/reencryptor.h"
#include "tools/reencrypt/resources.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::testing {
namespace {

// --- Concurrent writers: no update is lost. ---

// Wraps the real client; before the first compare-and-swap of every third key it lets a
// "writer" (the apiserver) update that key, so the tool's compare must fail and be redone.
class RacingEtcdClient final : public EtcdClient {
 public:
  RacingEtcdClient(EtcdClient* real, std::function<void(const std::string&)> race)
      : real_(real), race_(std::move(race)) {}
  absl::StatusOr<reencrypt::EtcdRangePage> Range(std::string_view key, std::string_view end,
                                                 const reencrypt::EtcdRangeOptions& o) override {
    return real_->Range(key, end, o);
  }
  absl::StatusOr<int64_t> Put(std::string_view key, std::string_view value,
                              int64_t lease) override {
    return real_->Put(key, value, lease);
  }
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override { return real_->GrantLease(ttl); }
  absl::StatusOr<reencrypt::EtcdCasResult> CompareAndSwap(std::string_view key, int64_t rev,
                                                          std::string_view value,
                                                          int64_t lease) override {
    std::string k(key);
    bool race = false;
    {
      absl::MutexLock lock(&mu_);
      race = (std::hash<std::string>()(k) % 3 == 0) && raced_.insert(k).second;
    }
    if (race) race_(k);
    return real_->CompareAndSwap(key, rev, value, lease);
  }
  absl::StatusOr<int64_t> DeleteRange(std::string_view key, std::string_view end) override {
    return real_->DeleteRange(key, end);
  }
  size_t raced() {
    absl::MutexLock lock(&mu_);
    return raced_.size();
  }

 private:
  EtcdClient* real_;
  std::function<void(const std::string&)> race_;
  absl::Mutex mu_;
  std::set<std::string> raced_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ReencryptEtcdTest, ConcurrentWritesDuringTheRunAreNeverLost) {
  constexpr int kObjects = 240;
  absl::Mutex mu;
  std::map<std::string, std::string>
      latest;  // key -> last plaintext written by anyone but the tool
  for (int i = 0; i < kObjects; ++i) {
    std::string key = fmt::format("/registry/secrets/ns/s-{:03}", i);
    std::string pt = MakePlaintext(key, 300);
    Put(key, *EncodeAesCbc("cbc1", kCbcKey, pt));
    latest[key] = pt;
  }
  ITEST_ASSIGN_OR_FAIL(auto writer_client, etcd_->NewClient());
  // A writer Put: aescbc (the apiserver's old write provider) with a new generation of plaintext.
  std::atomic<int> generation{0};
  auto write = [&](const std::string& key) {
    std::string pt = MakePlaintext(key + "#" + std::to_string(++generation), 300);
    absl::MutexLock lock(&mu);  // record and write under one lock: "latest" is the last write
    ASSERT_TRUE(writer_client->Put(key, *EncodeAesCbc("cbc1", kCbcKey, pt)).ok());
    latest[key] = pt;
  };

  auto config = reencrypt::ParseEncryptionConfig(ConfigYaml(kms_->endpoint()));
  ASSERT_TRUE(config.ok()) << config.status();
  ITEST_ASSIGN_OR_FAIL(auto set, reencrypt::TransformerSet::Create(*config));
  RacingEtcdClient racing(client_.get(), write);
  reencrypt::ReencryptOptions options;
  options.concurrency = 4;
  options.page_size = 50;
  reencrypt::Reencryptor tool(&racing, set.get(), options, nullptr, RealClock::Get());

  // A free-running writer as well, until the tool is done.
  std::atomic<bool> done{false};
  std::atomic<int> free_writes{0};
  std::thread writer([&] {
    for (int i = 0; !done.load(); i = (i + 7) % kObjects) {
      write(fmt::format("/registry/secrets/ns/s-{:03}", i));
      ++free_writes;
    }
  });
  auto summary = tool.Run({*reencrypt::ParseResourceTarget("secrets", "/registry")});
  done = true;
  writer.join();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->failed, 0);
  EXPECT_GT(racing.raced(), 0u);
  EXPECT_GE(summary->conflicts, static_cast<int64_t>(racing.raced()))
      << "every injected race must fail the compare and be redone";
  EXPECT_EQ(summary->scanned, kObjects);

  // Every key holds exactly the last plaintext written by the writers, whatever its format.
  auto chain = &set->ChainFor(reencrypt::GroupResource::Parse("secrets"));
  auto after = Snapshot("/registry/secrets/");
  ASSERT_EQ(after.size(), static_cast<size_t>(kObjects));
  int current = 0;
  absl::MutexLock lock(&mu);
  for (const auto& [key, kv] : after) {
    auto pt = chain->Decrypt(key, kv.value);
    ASSERT_TRUE(pt.ok()) << key << ": " << pt.status();
    EXPECT_EQ(pt->Reveal(), latest[key]) << "lost update on " << key;
    if (chain->IsCurrent(chain->Classify(kv.value))) ++current;
  }
  EXPECT_GT(current, 0);
  RecordProperty("free_writes", free_writes.load());
}

// --- SIGKILL in mid-run, then a re-run. ---

TEST_F(ReencryptEtcdTest, SigkillInMidRunLeavesEveryKeyReadableAndARerunFinishes) {
  constexpr int kObjects = 300;
  std::map<std::string, std::string> plaintexts;
  for (int i = 0; i < kObjects; ++i) {
    std::string key = fmt::format("/registry/secrets/ns-{}/s-{:03}", i % 4, i);
    plaintexts[key] = MakePlaintext(key, 500);
    Put(key, *EncodeAesCbc("cbc1", kCbcKey, plaintexts[key]));
  }
  kms_->Rotate("2");
  const std::string config = WriteConfig(ConfigYaml(kms_->endpoint()));
  std::vector<std::string> args = BaseArgs(config);
  // Slow enough (about 3 s in all) that the kill lands long before the end.
  args.insert(args.end(), {"--resources", "secrets", "--rate", "100", "--concurrency", "2",
                           "--page-size", "25"});
  ITEST_ASSIGN_OR_FAIL(auto tool,
                       PipedProcess::Start(KMSP_REENCRYPT_TOOL, args, dir_->File("kill.out")));
  bool progressed = false;
  while (!progressed) {
    ITEST_ASSIGN_OR_FAIL(auto line, tool->ReadLine(absl::Seconds(60)));
    ASSERT_TRUE(line.has_value()) << "the tool ended before reporting progress";
    size_t at = line->find("rewritten=");
    if (at != std::string::npos && std::stoi(line->substr(at + 10)) >= 10) progressed = true;
  }
  ASSERT_TRUE(tool->Kill(SIGKILL).ok());
  ITEST_ASSIGN_OR_FAIL(ExitInfo killed, tool->Wait(absl::Seconds(30)));
  ASSERT_FALSE(killed.exited) << "the tool finished before the kill: " << killed.ToString();
  EXPECT_EQ(killed.signal, SIGKILL);

  auto config_parsed = reencrypt::ParseEncryptionConfig(ConfigYaml(kms_->endpoint()));
  ITEST_ASSIGN_OR_FAIL(auto set, reencrypt::TransformerSet::Create(*config_parsed));
  const auto& chain = set->ChainFor(reencrypt::GroupResource::Parse("secrets"));
  auto mid = Snapshot("/registry/secrets/");
  ASSERT_EQ(mid.size(), static_cast<size_t>(kObjects));
  int already_new = 0;
  for (const auto& [key, kv] : mid) {
    auto d = DecodeKmsV2(kv.value, key);
    if (d.ok()) {
      ++already_new;
      EXPECT_EQ(d->plaintext, plaintexts[key]) << key;
    } else {
      auto pt = chain.Decrypt(key, kv.value);
      ASSERT_TRUE(pt.ok()) << key << " is neither new-and-valid nor old-and-valid: " << pt.status();
      EXPECT_EQ(pt->Reveal(), plaintexts[key]) << key;
    }
  }
  EXPECT_GE(already_new, 10);
  EXPECT_LT(already_new, kObjects) << "the kill did not land mid-run";

  std::vector<std::string> rerun = BaseArgs(config);
  rerun.insert(rerun.end(), {"--resources", "secrets"});
  ToolResult r = RunTool(rerun);
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "rewritten"), kObjects - already_new);
  EXPECT_EQ(Count(r.summary, "already_current"), already_new);
  for (const auto& [key, kv] : Snapshot("/registry/secrets/")) {
    auto d = DecodeKmsV2(kv.value, key);
    ASSERT_TRUE(d.ok()) << key << ": " << d.status();
    EXPECT_EQ(d->key_id, "2");
    EXPECT_EQ(d->plaintext, plaintexts[key]) << key;
  }
}

}  // namespace
}  // namespace kmsplugin::testing
