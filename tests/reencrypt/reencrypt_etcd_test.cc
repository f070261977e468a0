// The reencrypt tool end to end, against a real etcd-server (3.4) that each test starts on
// loopback: the known-answer apiserver record, a mixed corpus of every provider format,
// --scan / --dry-run, concurrent writers, SIGKILL in mid-run, mutual TLS, undecryptable values,
// and the real `kms-plugin serve` as the write provider. KMS v2 values the tool writes are
// checked with the independent decoder of corpus.h (every §3.2 check, then the §3.9 recipe).
#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "crypto/aes_gcm.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/matchers.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/etcd_process.h"
#include "tests/reencrypt/fake_kms_server.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/kms_client.h"
#include "tools/reencrypt/reencryptor.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

#define REENC_ASSIGN_OR_FAIL(lhs, expr) \
  REENC_ASSIGN_OR_FAIL_IMPL_(REENC_CONCAT_(reenc_statusor_, __LINE__), lhs, expr)
#define REENC_CONCAT_INNER_(a, b) a##b
#define REENC_CONCAT_(a, b) REENC_CONCAT_INNER_(a, b)
#define REENC_ASSIGN_OR_FAIL_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_TRUE(tmp.ok()) << tmp.status();           \
  lhs = std::move(tmp).value()

namespace kmsplugin::testing {
namespace {

using reencrypt::EtcdClient;
using reencrypt::EtcdKeyValue;
using ::testing::HasSubstr;

const std::string kCbcKey(32, 'c');
const std::string kCbcOldKey(32, 'o');
const std::string kGcmKey(32, 'g');
const std::string kBoxKey(32, 'b');
const std::string kSeedOld(32, 's');
const std::string kDekOld(32, 'd');

struct ToolResult {
  ExitInfo exit;
  std::string out;
  std::string err;
  nlohmann::json summary;  // the last stdout line
};

class ReencryptEtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("kmsp-reenc");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    EtcdOptions eo;
    eo.data_dir = dir_->File("etcd-data");
    eo.log_path = dir_->File("etcd.log");
    StartEtcd(eo);
    REENC_ASSIGN_OR_FAIL(kms_, FakeKmsV2Server::Start(dir_->File("kms.sock"), "1"));
    REENC_ASSIGN_OR_FAIL(kms_v1_, FakeKmsV1Server::Start(dir_->File("kmsv1.sock")));
  }

  void StartEtcd(const EtcdOptions& eo) {
    REENC_ASSIGN_OR_FAIL(etcd_, EtcdProcess::Start(eo));
    REENC_ASSIGN_OR_FAIL(client_, etcd_->NewClient());
  }

  // secrets: kms v2 first, then every legacy provider; configmaps: aescbc.
  std::string ConfigYaml(const std::string& kms_endpoint) {
    return fmt::format(R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {{apiVersion: v2, name: kms-provider, endpoint: "{}", timeout: 5s}}
      - kms: {{name: legacy-v1, endpoint: "{}"}}
      - aescbc: {{keys: [{{name: cbc1, secret: {}}}, {{name: cbc0, secret: {}}}]}}
      - aesgcm: {{keys: [{{name: gcm1, secret: {}}}]}}
      - secretbox: {{keys: [{{name: box1, secret: {}}}]}}
      - identity: {{}}
  - resources: [configmaps]
    providers:
      - aescbc: {{keys: [{{name: cbc1, secret: {}}}]}}
      - identity: {{}}
)",
                       kms_endpoint, kms_v1_->endpoint(), Base64Encode(kCbcKey),
                       Base64Encode(kCbcOldKey), Base64Encode(kGcmKey), Base64Encode(kBoxKey),
                       Base64Encode(kCbcKey));
  }

  std::string WriteConfig(const std::string& yaml) {
    std::string path = dir_->File("encryption-config.yaml");
    EXPECT_TRUE(WriteFile(path, yaml).ok());
    return path;
  }

  std::vector<std::string> BaseArgs(const std::string& config_path) {
    return {"reencrypt",       "--encryption-config", config_path, "--etcd-endpoints",
            etcd_->endpoint(), "--progress-interval", "0s"};
  }

  ToolResult RunTool(std::vector<std::string> args) {
    ToolResult r;
    ProcessOptions p;
    p.binary = KMSP_REENCRYPT_TOOL;
    p.args = std::move(args);
    const std::string out = dir_->File(fmt::format("tool-{}.out", runs_));
    const std::string err = dir_->File(fmt::format("tool-{}.err", runs_++));
    p.stdout_path = out;
    p.stderr_path = err;
    auto exit = Subprocess::Run(p, absl::Seconds(120));
    EXPECT_TRUE(exit.ok()) << exit.status();
    if (exit.ok()) r.exit = *exit;
    r.out = ReadFile(out).value_or("");
    r.err = ReadFile(err).value_or("");
    std::string last;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) last = line;
    }
    r.summary = nlohmann::json::parse(last, nullptr, /*allow_exceptions=*/false);
    return r;
  }

  void Put(const std::string& key, const std::string& value) {
    ASSERT_TRUE(client_->Put(key, value).ok());
  }

  // Every key under `prefix` (default: all of etcd).
  std::map<std::string, EtcdKeyValue> Snapshot(const std::string& prefix = "/") {
    std::map<std::string, EtcdKeyValue> out;
    auto page = client_->Range(prefix, reencrypt::PrefixRangeEnd(prefix), {});
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (auto& kv : page->kvs) out[kv.key] = kv;
    }
    return out;
  }

  int64_t StoreRevision() {
    auto page = client_->Range("/", reencrypt::PrefixRangeEnd("/"), {0, false, true});
    return page.ok() ? page->revision : -1;
  }

  static int64_t Count(const nlohmann::json& s, const char* field) {
    return s.is_object() && s.contains(field) ? s[field].get<int64_t>() : -1;
  }

  // {"provider|key_id|type|current" -> count} from a scan summary, for one resource.
  static std::map<std::string, int64_t> Inventory(const nlohmann::json& s,
                                                  const std::string& resource) {
    std::map<std::string, int64_t> out;
    if (!s.is_object() || !s.contains("inventory")) return out;
    for (const auto& row : s["inventory"]) {
      if (row["resource"] != resource) continue;
      std::string type = row.contains("type") ? std::to_string(row["type"].get<int>()) : "-";
      out[fmt::format("{}|{}|{}|{}", row["provider"].get<std::string>(),
                      row["key_id"].get<std::string>(), type, row["current"].get<bool>())] +=
          row["count"].get<int64_t>();
    }
    return out;
  }

  std::optional<TempDir> dir_;
  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<FakeKmsV2Server> kms_;
  std::unique_ptr<FakeKmsV1Server> kms_v1_;
  int runs_ = 0;
};

// --- The shared apiserver record (kube-apiserver v1.28.0, type 1, key_id "1"). ---

TEST_F(ReencryptEtcdTest, KnownAnswerRecordIsScannedAndMigratedToTheNewKeyId) {
  std::ifstream in(std::string(KMSP_SHARED_TESTDATA) + "/apiserver/kmsv2-hkdf-seed-v1.28.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto v = nlohmann::json::parse(ss.str(), nullptr, false);
  ASSERT_FALSE(v.is_discarded());
  const std::string key = v["etcd_key"];
  const std::string value = *HexDecode(v["value_hex"].get<std::string>());
  const std::string plaintext = *HexDecode(v["plaintext_hex"].get<std::string>());
  Put(key, value);
  const std::string prefix = key.substr(0, key.find("/registry") + 9);  // "/<uuid>/registry"
  std::string config = WriteConfig(fmt::format(R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {{apiVersion: v2, name: kms-provider, endpoint: "{}"}}
)",
                                               kms_->endpoint()));
  std::vector<std::string> args = BaseArgs(config);
  args.insert(args.end(), {"--etcd-prefix", prefix});

  std::vector<std::string> scan = args;
  scan.push_back("--scan");
  ToolResult s = RunTool(scan);
  ASSERT_EQ(s.exit.code, 0) << s.err;
  EXPECT_EQ(Inventory(s.summary, "secrets"),
            (std::map<std::string, int64_t>{{"kms-v2:kms-provider|1|1|true", 1}}))
      << s.out;
  EXPECT_THAT(s.out, HasSubstr("kms-v2:kms-provider"));  // the human table

  // Same key_id: already current, nothing written, no plugin Decrypt needed.
  ToolResult same = RunTool(args);
  ASSERT_EQ(same.exit.code, 0) << same.err;
  EXPECT_EQ(Count(same.summary, "already_current"), 1);
  EXPECT_EQ(Count(same.summary, "rewritten"), 0);

  kms_->Rotate("2");
  ToolResult r = RunTool(args);
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "scanned"), 1);
  EXPECT_EQ(Count(r.summary, "rewritten"), 1);
  // One Decrypt of the old seed, one of the run's new seed (the wrap check before any write).
  EXPECT_EQ(Count(r.summary, "kms_decrypt_calls"), 2);
  auto after = Snapshot(key);
  ASSERT_EQ(after.size(), 1u);
  REENC_ASSIGN_OR_FAIL(DecodedKmsV2 d, DecodeKmsV2(after[key].value, key));
  EXPECT_EQ(d.provider, "kms-provider");
  EXPECT_EQ(d.key_id, "2");
  EXPECT_EQ(d.type, 1);
  EXPECT_EQ(d.plaintext, plaintext) << "the apiserver's record must decrypt exactly";
}

// --- A mixed corpus of every provider format. ---

class MixedCorpusTest : public ReencryptEtcdTest {
 protected:
  void SetUp() override {
    ReencryptEtcdTest::SetUp();
    if (HasFatalFailure()) return;
    kms_->Rotate("2");  // key_id "1" data is now stale
    const char* kinds[] = {"identity", "cbc1",   "cbc0",  "gcm",    "box",
                           "kms2t0",   "kms2t1", "kmsv1", "current"};
    int n = 0;
    for (const char* kind : kinds) {
      for (int i = 0; i < 25; ++i, ++n) {
        std::string key = fmt::format("/registry/secrets/ns-{}/{}-{}", n % 3, kind, i);
        std::string pt = MakePlaintext(key, 100 + (n * 37) % 900);
        std::string k(kind);
        absl::StatusOr<std::string> value;
        if (k == "identity") value = pt;
        if (k == "cbc1") value = EncodeAesCbc("cbc1", kCbcKey, pt);
        if (k == "cbc0") value = EncodeAesCbc("cbc0", kCbcOldKey, pt);
        if (k == "gcm") value = EncodeAesGcm("gcm1", kGcmKey, key, pt);
        if (k == "box") value = EncodeSecretbox("box1", kBoxKey, pt);
        if (k == "kms2t0") value = EncodeKmsV2Type0("kms-provider", "1", kDekOld, key, pt);
        if (k == "kms2t1") value = EncodeKmsV2Type1("kms-provider", "1", kSeedOld, key, pt);
        if (k == "kmsv1") value = EncodeKmsV1("legacy-v1", kDekOld, key, pt);
        if (k == "current") value = EncodeKmsV2Type1("kms-provider", "2", kSeedOld, key, pt);
        ASSERT_TRUE(value.ok()) << value.status();
        Put(key, *value);
        plaintexts_[key] = pt;
      }
    }
    // Not targeted: configmaps (covered by the config, but not in --resources) and pods.
    for (int i = 0; i < 30; ++i) {
      std::string key = fmt::format("/registry/configmaps/ns/cm-{}", i);
      Put(key, *EncodeAesCbc("cbc0-not-configured", kCbcOldKey, MakePlaintext(key, 200)));
      key = fmt::format("/registry/pods/ns/pod-{}", i);
      Put(key, MakePlaintext(key, 200));
    }
    config_ = WriteConfig(ConfigYaml(kms_->endpoint()));
  }

  std::vector<std::string> Args(std::vector<std::string> extra) {
    std::vector<std::string> a = BaseArgs(config_);
    a.insert(a.end(), {"--resources", "secrets", "--concurrency", "3", "--page-size", "40"});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  std::map<std::string, std::string> plaintexts_;
  std::string config_;
};

TEST_F(MixedCorpusTest, ScanCountsEveryProviderAndKeyId) {
  ToolResult s = RunTool(Args({"--scan"}));
  ASSERT_EQ(s.exit.code, 0) << s.err;
  EXPECT_EQ(Count(s.summary, "scanned"), 225);
  EXPECT_EQ(Inventory(s.summary, "secrets"), (std::map<std::string, int64_t>{
                                                 {"identity||-|false", 25},
                                                 {"aescbc|cbc1|-|false", 25},
                                                 {"aescbc|cbc0|-|false", 25},
                                                 {"aesgcm|gcm1|-|false", 25},
                                                 {"secretbox|box1|-|false", 25},
                                                 {"kms-v2:kms-provider|1|0|false", 25},
                                                 {"kms-v2:kms-provider|1|1|false", 25},
                                                 {"kms-v1:legacy-v1||-|false", 25},
                                                 {"kms-v2:kms-provider|2|1|true", 25},
                                             }))
      << s.out;
  EXPECT_EQ(kms_->encrypt_calls(), 0) << "a scan wraps no seed";
}

TEST_F(MixedCorpusTest, DryRunChangesNoRevision) {
  auto before = Snapshot();
  int64_t revision = StoreRevision();
  ToolResult r = RunTool(Args({"--dry-run"}));
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "would_rewrite"), 200);
  EXPECT_EQ(Count(r.summary, "already_current"), 25);
  EXPECT_EQ(Count(r.summary, "rewritten"), 0);
  EXPECT_EQ(StoreRevision(), revision);
  auto after = Snapshot();
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [key, kv] : before) {
    EXPECT_EQ(after[key].mod_revision, kv.mod_revision) << key;
    EXPECT_EQ(after[key].value, kv.value) << key;
  }
}

TEST_F(MixedCorpusTest, RunLeavesEveryTargetedObjectCurrentAndEverythingElseUntouched) {
  auto before = Snapshot();
  const int64_t encrypts_before = kms_->encrypt_calls();
  ToolResult r = RunTool(Args({}));
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "scanned"), 225);
  EXPECT_EQ(Count(r.summary, "rewritten"), 200);
  EXPECT_EQ(Count(r.summary, "already_current"), 25);
  EXPECT_EQ(Count(r.summary, "failed"), 0);
  EXPECT_EQ(kms_->encrypt_calls() - encrypts_before, 1) << "one seed per run";
  // One plugin Decrypt per distinct old DEK source (type 0 DEK, type 1 seed), not per object,
  // plus one of the run's own new seed (the wrap check before any write).
  EXPECT_EQ(Count(r.summary, "kms_decrypt_calls"), 4);

  auto after = Snapshot();
  EXPECT_EQ(after.size(), before.size()) << "object count changed";
  std::set<std::string> dek_sources;
  for (const auto& [key, kv] : after) {
    if (key.rfind("/registry/secrets/", 0) == 0) {
      auto d = DecodeKmsV2(kv.value, key);
      ASSERT_TRUE(d.ok()) << key << ": " << d.status();
      EXPECT_EQ(d->provider, "kms-provider");
      EXPECT_EQ(d->key_id, "2") << key;
      EXPECT_EQ(d->type, 1) << key;
      EXPECT_EQ(d->annotation, kFakeAnnotationValue);
      EXPECT_EQ(d->plaintext, plaintexts_[key]) << key;
      if (key.find("/current-") == std::string::npos) {
        std::string_view name, rest;
        ASSERT_TRUE(reencrypt::SplitKmsValue(kv.value, reencrypt::kKmsV2Prefix, &name, &rest));
        dek_sources.insert(reencrypt::ParseEncryptedObject(rest)->encrypted_dek_source);
        EXPECT_GT(kv.mod_revision, before[key].mod_revision);
      } else {
        EXPECT_EQ(kv.mod_revision, before[key].mod_revision) << "current object was rewritten";
      }
    } else {
      EXPECT_EQ(kv.value, before[key].value) << key;
      EXPECT_EQ(kv.mod_revision, before[key].mod_revision) << key;
    }
  }
  EXPECT_EQ(dek_sources.size(), 1u) << "every rewritten object must share the run's one seed";

  ToolResult scan = RunTool(Args({"--scan"}));
  ASSERT_EQ(scan.exit.code, 0) << scan.err;
  EXPECT_EQ(Inventory(scan.summary, "secrets"),
            (std::map<std::string, int64_t>{{"kms-v2:kms-provider|2|1|true", 225}}));

  ToolResult again = RunTool(Args({}));
  ASSERT_EQ(again.exit.code, 0) << again.err;
  EXPECT_EQ(Count(again.summary, "rewritten"), 0);
  EXPECT_EQ(Count(again.summary, "already_current"), 225);
}

TEST_F(MixedCorpusTest, RewriteKeepsTheKeysLease) {
  REENC_ASSIGN_OR_FAIL(int64_t lease, client_->GrantLease(absl::Minutes(10)));
  const std::string key = "/registry/secrets/ns-0/leased";
  // aescbc values must look like stored objects (issue 9, item 5): a protobuf-looking plaintext.
  const std::string leased = MakePlaintext(key, 64);
  ASSERT_TRUE(client_->Put(key, *EncodeAesCbc("cbc1", kCbcKey, leased), lease).ok());
  ToolResult r = RunTool(Args({}));
  ASSERT_EQ(r.exit.code, 0) << r.err;
  auto after = Snapshot(key);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[key].lease, lease);
  REENC_ASSIGN_OR_FAIL(DecodedKmsV2 d, DecodeKmsV2(after[key].value, key));
  EXPECT_EQ(d.plaintext, leased);
  for (const auto& [k, kv] : Snapshot("/registry/secrets/")) {
    if (k != key) {
      EXPECT_EQ(kv.lease, 0) << k << " gained a lease";
    }
  }
}

TEST_F(MixedCorpusTest, UndecryptableValuesAreReportedAndLeftUntouched) {
  const std::string retired = "/registry/secrets/ns-0/retired-key";
  const std::string forged = "/registry/secrets/ns-1/wrong-key";
  Put(retired, *EncodeAesCbc("retired", kCbcKey, "x"));
  Put(forged, *EncodeAesGcm("gcm1", kCbcOldKey, forged, "y"));  // known name, wrong key
  auto before = Snapshot("/registry/secrets/");
  ToolResult r = RunTool(Args({}));
  EXPECT_EQ(r.exit.code, 1) << r.err;
  EXPECT_EQ(Count(r.summary, "failed"), 2);
  EXPECT_EQ(Count(r.summary, "rewritten"), 200);
  ASSERT_TRUE(r.summary.contains("failures"));
  std::map<std::string, std::string> failures;
  for (const auto& f : r.summary["failures"]) failures[f["key"]] = f["prefix"];
  EXPECT_EQ(failures, (std::map<std::string, std::string>{{retired, "k8s:enc:aescbc:v1:retired:"},
                                                          {forged, "k8s:enc:aesgcm:v1:gcm1:"}}));
  EXPECT_THAT(r.err, HasSubstr(retired));
  auto after = Snapshot("/registry/secrets/");
  EXPECT_EQ(after[retired].mod_revision, before[retired].mod_revision);
  EXPECT_EQ(after[retired].value, before[retired].value);
  EXPECT_EQ(after[forged].mod_revision, before[forged].mod_revision);
}

TEST_F(MixedCorpusTest, WithoutResourcesEveryCoveredResourceInEtcdIsProcessed) {
  // configmaps are covered (aescbc cbc1) but hold values of a key the config lacks: reported.
  std::vector<std::string> args = BaseArgs(config_);
  args.push_back("--scan");
  ToolResult s = RunTool(args);
  ASSERT_EQ(s.exit.code, 0) << s.err;
  EXPECT_EQ(Count(s.summary, "scanned"), 225 + 30) << "pods have no rule and are skipped";
  EXPECT_EQ(Inventory(s.summary, "configmaps"),
            (std::map<std::string, int64_t>{{"aescbc|cbc0-not-configured|-|false", 30}}));
}

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
  REENC_ASSIGN_OR_FAIL(auto writer_client, etcd_->NewClient());
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
  REENC_ASSIGN_OR_FAIL(auto set, reencrypt::TransformerSet::Create(*config));
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
  REENC_ASSIGN_OR_FAIL(auto tool,
                       PipedProcess::Start(KMSP_REENCRYPT_TOOL, args, dir_->File("kill.out")));
  bool progressed = false;
  while (!progressed) {
    REENC_ASSIGN_OR_FAIL(auto line, tool->ReadLine(absl::Seconds(60)));
    ASSERT_TRUE(line.has_value()) << "the tool ended before reporting progress";
    size_t at = line->find("rewritten=");
    if (at != std::string::npos && std::stoi(line->substr(at + 10)) >= 10) progressed = true;
  }
  ASSERT_TRUE(tool->Kill(SIGKILL).ok());
  REENC_ASSIGN_OR_FAIL(ExitInfo killed, tool->Wait(absl::Seconds(30)));
  ASSERT_FALSE(killed.exited) << "the tool finished before the kill: " << killed.ToString();
  EXPECT_EQ(killed.signal, SIGKILL);

  auto config_parsed = reencrypt::ParseEncryptionConfig(ConfigYaml(kms_->endpoint()));
  REENC_ASSIGN_OR_FAIL(auto set, reencrypt::TransformerSet::Create(*config_parsed));
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

// --- Mutual TLS to etcd, as kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile. ---

TEST_F(ReencryptEtcdTest, MutualTlsEtcdIsReachedWithTheClientCertificate) {
  REENC_ASSIGN_OR_FAIL(TestPki pki, MakeTestPki(dir_->path()));
  EtcdOptions eo;
  eo.data_dir = dir_->File("etcd-tls-data");
  eo.log_path = dir_->File("etcd-tls.log");
  eo.tls = &pki;
  eo.client_cert_auth = true;
  StartEtcd(eo);
  ASSERT_EQ(etcd_->endpoint().rfind("https://", 0), 0u);
  for (int i = 0; i < 20; ++i) {
    std::string key = fmt::format("/registry/secrets/ns/s-{}", i);
    Put(key, MakePlaintext(key, 100));
  }
  const std::string config = WriteConfig(ConfigYaml(kms_->endpoint()));
  std::vector<std::string> args = BaseArgs(config);
  args.insert(args.end(), {"--resources", "secrets", "--etcd-timeout", "10s"});

  std::vector<std::string> no_cert = args;
  no_cert.insert(no_cert.end(), {"--etcd-cacert", pki.ca_cert});
  ToolResult refused = RunTool(no_cert);
  EXPECT_EQ(refused.exit.code, 2) << "etcd requires a client certificate: " << refused.err;

  std::vector<std::string> mtls = args;
  mtls.insert(mtls.end(), {"--etcd-cacert", pki.ca_cert, "--etcd-cert", pki.client_cert,
                           "--etcd-key", pki.client_key});
  ToolResult r = RunTool(mtls);
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "rewritten"), 20);
  for (const auto& [key, kv] : Snapshot("/registry/secrets/")) {
    EXPECT_TRUE(DecodeKmsV2(kv.value, key).ok()) << key;
  }
}

TEST_F(ReencryptEtcdTest, ServerTlsEtcdIsReachedWithTheCaAlone) {
  REENC_ASSIGN_OR_FAIL(TestPki pki, MakeTestPki(dir_->path()));
  EtcdOptions eo;
  eo.data_dir = dir_->File("etcd-tls-data");
  eo.log_path = dir_->File("etcd-tls.log");
  eo.tls = &pki;
  StartEtcd(eo);
  Put("/registry/secrets/ns/s", "plain");
  const std::string config = WriteConfig(ConfigYaml(kms_->endpoint()));
  std::vector<std::string> args = BaseArgs(config);
  args.insert(args.end(), {"--resources", "secrets", "--etcd-timeout", "10s"});

  ToolResult untrusted = RunTool(args);  // https:// without our CA: the handshake fails
  EXPECT_EQ(untrusted.exit.code, 2) << untrusted.err;

  args.insert(args.end(), {"--etcd-cacert", pki.ca_cert});
  ToolResult r = RunTool(args);
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "rewritten"), 1);
}

// --- The real plugin (`kms-plugin serve --kms local`) as the write provider. ---

TEST_F(ReencryptEtcdTest, RealPluginServeIsTheWriteProvider) {
  PluginOptions po;
  po.listen = "unix://" + dir_->File("real.sock");
  po.args = LocalKmsArgs(dir_->File("keyring.json"));
  po.log_path = dir_->File("plugin.log");
  po.working_dir = dir_->path();
  REENC_ASSIGN_OR_FAIL(auto plugin, PluginProcess::Start(po));
  std::map<std::string, std::string> plaintexts;
  for (int i = 0; i < 60; ++i) {
    std::string key = fmt::format("/registry/secrets/ns/real-{}", i);
    plaintexts[key] = MakePlaintext(key, 400);
    Put(key, i % 2 ? *EncodeAesCbc("cbc1", kCbcKey, plaintexts[key])
                   : *EncodeKmsV2Type1("kms-provider", "1", kSeedOld, key, plaintexts[key]));
  }
  // The real plugin writes (provider "real-plugin"); the old KMS v2 data names its provider
  // "kms-provider", so the fake stays configured under that name to read it.
  const std::string config =
      WriteConfig(fmt::format(R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {{apiVersion: v2, name: real-plugin, endpoint: "{}"}}
      - kms: {{apiVersion: v2, name: kms-provider, endpoint: "{}"}}
      - aescbc: {{keys: [{{name: cbc1, secret: {}}}]}}
)",
                              po.listen, kms_->endpoint(), Base64Encode(kCbcKey)));
  std::vector<std::string> args = BaseArgs(config);
  args.insert(args.end(), {"--resources", "secrets"});
  ToolResult r = RunTool(args);
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "rewritten"), 60);

  REENC_ASSIGN_OR_FAIL(auto client, reencrypt::CreateGrpcKmsV2Client(po.listen, absl::Seconds(5)));
  REENC_ASSIGN_OR_FAIL(auto status, client->Status());
  std::map<std::string, SecretBytes> seeds;
  for (const auto& [key, kv] : Snapshot("/registry/secrets/")) {
    std::string_view name, rest;
    ASSERT_TRUE(reencrypt::SplitKmsValue(kv.value, reencrypt::kKmsV2Prefix, &name, &rest)) << key;
    EXPECT_EQ(name, "real-plugin");
    REENC_ASSIGN_OR_FAIL(auto obj, reencrypt::ParseEncryptedObject(rest));  // §3.2 checks
    EXPECT_EQ(obj.key_id, status.key_id);
    EXPECT_EQ(obj.type, reencrypt::DekSourceType::kHkdfSha256XNonceAesGcmSeed);
    EXPECT_EQ(reencrypt::SerializeEncryptedObject(obj), rest) << "not in Go's field order";
    // §3.9 by hand: plugin Decrypt -> seed, HMAC-SHA256(seed, info || 1) -> DEK, AES-GCM open.
    if (seeds.count(obj.encrypted_dek_source) == 0) {
      REENC_ASSIGN_OR_FAIL(SecretBytes seed, client->Decrypt(obj.encrypted_dek_source, obj.key_id,
                                                             obj.annotations, "test-uid"));
      seeds.emplace(obj.encrypted_dek_source, std::move(seed));
    }
    const SecretBytes& seed = seeds.at(obj.encrypted_dek_source);
    ASSERT_EQ(seed.size(), 32u);
    REENC_ASSIGN_OR_FAIL(SecretBytes dek,
                         HmacSha256(seed, obj.encrypted_data.substr(0, 32) + "\x01"));
    REENC_ASSIGN_OR_FAIL(auto gcm, AesGcm::Create(std::move(dek)));
    REENC_ASSIGN_OR_FAIL(SecretBytes pt, gcm->OpenDetached(obj.encrypted_data.substr(32, 12),
                                                           obj.encrypted_data.substr(44), key));
    EXPECT_EQ(pt.Reveal(), plaintexts[key]) << key;
  }
  EXPECT_EQ(seeds.size(), 1u) << "one seed per run";
  EXPECT_TRUE(plugin->Terminate().ok());
}

}  // namespace
}  // namespace kmsplugin::testing
