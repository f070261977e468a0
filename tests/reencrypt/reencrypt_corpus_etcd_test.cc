// The reencrypt tool against a real etcd-server: the known-answer apiserver record, and a mixed
// corpus of every provider format through --scan, --dry-run and a run (leases kept, undecryptable
// values reported and left untouched, every covered resource processed without --resources).
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/reencrypt_etcd_fixture.h"
#include "tools/reencrypt/storage_format.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;

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
  ITEST_ASSIGN_OR_FAIL(DecodedKmsV2 d, DecodeKmsV2(after[key].value, key));
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
  ITEST_ASSIGN_OR_FAIL(int64_t lease, client_->GrantLease(absl::Minutes(10)));
  const std::string key = "/registry/secrets/ns-0/leased";
  // aescbc values must look like stored objects (issue 9, item 5): a protobuf-looking plaintext.
  const std::string leased = MakePlaintext(key, 64);
  ASSERT_TRUE(client_->Put(key, *EncodeAesCbc("cbc1", kCbcKey, leased), lease).ok());
  ToolResult r = RunTool(Args({}));
  ASSERT_EQ(r.exit.code, 0) << r.err;
  auto after = Snapshot(key);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[key].lease, lease);
  ITEST_ASSIGN_OR_FAIL(DecodedKmsV2 d, DecodeKmsV2(after[key].value, key));
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

}  // namespace
}  // namespace kmsplugin::testing
