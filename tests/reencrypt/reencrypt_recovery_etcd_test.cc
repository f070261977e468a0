// Disaster recovery (issue 12) end to end, with a real etcd-server and the real kms-plugin binary:
// `serve --kms local --recovery-public-key` wraps every data key under an offline RSA key; a
// simulated apiserver (corpus.h EncodeKmsV2WithPlugin, over the real plugin's Encrypt) stores
// secrets through it; then the plugin is stopped and its keyring deleted (the KEK is gone for
// good), and `kms-plugin reencrypt --recovery-private-key` rewrites every secret under a new
// aescbc provider with the old kms provider's endpoint dead.
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "crypto/aes_cbc.h"
#include "crypto/encoding.h"
#include "crypto/rsa_oaep.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/reencrypt_etcd_fixture.h"
#include "tools/reencrypt/kms_client.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;

inline const std::string kNewCbcKey(32, 'n');
constexpr char kOldProvider[] = "old-kms";
constexpr char kNewPrefix[] = "k8s:enc:aescbc:v1:new:";

struct RecoveryKeyFiles {
  std::string private_path;
  std::string public_path;
  std::string fingerprint;  // "sha256:<hex>"
};

class RecoveryEtcdTest : public ReencryptEtcdTest {
 protected:
  // The tool's own output joins the leak check too: no seed, plaintext, KEK or private key.
  void TearDown() override {
    for (int i = 0; i < runs_; ++i) {
      log_paths_.push_back(dir_->File(fmt::format("tool-{}.out", i)));
      log_paths_.push_back(dir_->File(fmt::format("tool-{}.err", i)));
    }
    ReencryptEtcdTest::TearDown();
  }

  // A fresh RSA-3072 key pair in <dir>/<name>.{key,pub} (mode 0600).
  RecoveryKeyFiles MakeRecoveryKey(const std::string& name) {
    RecoveryKeyFiles f;
    auto pair = GenerateRsaKeyPair(3072);
    EXPECT_TRUE(pair.ok()) << pair.status();
    if (!pair.ok()) return f;
    auto pub = RsaPublicKey::FromPem(pair->public_pem);
    EXPECT_TRUE(pub.ok()) << pub.status();
    if (pub.ok()) f.fingerprint = pub->FingerprintText();
    f.private_path = dir_->File(name + ".key");
    f.public_path = dir_->File(name + ".pub");
    EXPECT_TRUE(WriteFile(f.private_path, pair->private_pem.Reveal()).ok());
    // Two lines of the PEM body: enough to find any echo of the private key in a log.
    std::string_view pem = pair->private_pem.Reveal();
    size_t body = pem.find('\n') + 1;
    RecordSecret(std::string(pem.substr(body, 128)));
    EXPECT_TRUE(WriteFile(f.public_path, pair->public_pem).ok());
    return f;
  }

  // Starts `serve --kms local` on <dir>/old.sock, with a recovery public key unless empty.
  void StartOldPlugin(const std::string& public_key_path) {
    PluginOptions po = Options("old");
    if (!public_key_path.empty()) {
      po.args.insert(po.args.end(), {"--recovery-public-key", public_key_path});
    }
    old_endpoint_ = po.listen;
    ITEST_ASSIGN_OR_FAIL(plugin_, Start(po));
    ITEST_ASSIGN_OR_FAIL(plugin_client_,
                         reencrypt::CreateGrpcKmsV2Client(old_endpoint_, absl::Seconds(10)));
  }

  // The KEK is gone for good: the plugin stops and its keyring file is deleted.
  void LoseTheKek() {
    ASSERT_TRUE(plugin_->Terminate().ok());
    plugin_.reset();
    plugin_client_.reset();
    auto materials = KeyringMaterials(keyring_path_);  // still checked for in every log
    ASSERT_TRUE(materials.ok()) << materials.status();
    for (const std::string& m : *materials) RecordSecret(m);
    ASSERT_EQ(unlink(keyring_path_.c_str()), 0);
  }

  // As the apiserver writes with the plugin: one seed (type 1) or AES key (type 0) per `per_key`
  // objects, each wrapped by the real plugin's Encrypt. Keys <prefix>-<i>, from `first`.
  void StoreSecrets(const std::string& prefix, int first, int count, int type, int per_key = 10) {
    PluginWrap wrap;
    std::string secret;
    for (int i = first; i < first + count; ++i) {
      if ((i - first) % per_key == 0) {
        secret = NewSeed();
        ITEST_ASSIGN_OR_FAIL(auto r, plugin_client_->Encrypt(SecretBytes::CopyFrom(secret),
                                                             fmt::format("uid-{}", i)));
        wrap = PluginWrap{r.ciphertext, r.key_id, r.annotations};
      }
      std::string key = fmt::format("/registry/secrets/ns/{}-{:03}", prefix, i);
      plaintexts_[key] = MakePlaintext(key, 300);
      RecordSecret(plaintexts_[key]);
      ITEST_ASSIGN_OR_FAIL(std::string value, EncodeKmsV2WithPlugin(kOldProvider, wrap, type,
                                                                    secret, key, plaintexts_[key]));
      Put(key, value);
    }
  }

  // Values the fake plugin's scheme wraps (no recovery annotation), under the same provider.
  void StoreUnwrappedSecrets(int count) {
    for (int i = 0; i < count; ++i) {
      std::string key = fmt::format("/registry/secrets/ns/nowrap-{:03}", i);
      plaintexts_[key] = MakePlaintext(key, 300);
      Put(key, *EncodeKmsV2Type1(kOldProvider, "fake-1", kSeedOld, key, plaintexts_[key]));
    }
  }

  void StoreConfigMaps(int count) {
    for (int i = 0; i < count; ++i) {
      Put(fmt::format("/registry/configmaps/ns/cm-{}", i), MakePlaintext("cm", 100));
    }
  }

  // secrets: the new aescbc key first, the old kms provider (its endpoint dead) second.
  std::string RecoveryConfig() {
    return WriteConfig(fmt::format(R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc: {{keys: [{{name: new, secret: {}}}]}}
      - kms: {{apiVersion: v2, name: {}, endpoint: "{}", timeout: 2s}}
      - identity: {{}}
  - resources: [configmaps]
    providers:
      - identity: {{}}
)",
                                   Base64Encode(kNewCbcKey), kOldProvider, old_endpoint_));
  }

  std::vector<std::string> Args(const std::vector<std::string>& keys, bool scan = false) {
    std::vector<std::string> args = BaseArgs(RecoveryConfig());
    for (const std::string& k : keys) args.insert(args.end(), {"--recovery-private-key", k});
    if (scan) args.push_back("--scan");
    return args;
  }

  // The plaintext of a value the tool wrote, by the aescbc format alone; error if not one.
  static absl::StatusOr<std::string> OpenNew(const std::string& value) {
    if (value.rfind(kNewPrefix, 0) != 0) return absl::NotFoundError("not under the new provider");
    auto cbc = AesCbc::Create(SecretBytes::CopyFrom(kNewCbcKey));
    if (!cbc.ok()) return cbc.status();
    auto pt = (*cbc)->Decrypt(std::string_view(value).substr(sizeof(kNewPrefix) - 1));
    if (!pt.ok()) return pt.status();
    return std::string(pt->Reveal());
  }

  // Counts secrets now under the new provider (checking their plaintext).
  int CountRecovered() {
    int n = 0;
    for (const auto& [key, kv] : Snapshot("/registry/secrets/")) {
      auto pt = OpenNew(kv.value);
      if (!pt.ok()) continue;
      ++n;
      EXPECT_EQ(*pt, plaintexts_[key]) << key;
    }
    return n;
  }

  static std::map<std::string, int64_t> Revisions(const std::map<std::string, EtcdKeyValue>& s) {
    std::map<std::string, int64_t> out;
    for (const auto& [k, kv] : s) out[k] = kv.mod_revision;
    return out;
  }

  std::unique_ptr<PluginProcess> plugin_;
  std::unique_ptr<reencrypt::KmsV2Client> plugin_client_;
  std::string old_endpoint_;
  std::map<std::string, std::string> plaintexts_;
};

// --- The whole procedure: KEK deleted, every secret restored from the recovery key. ---

TEST_F(RecoveryEtcdTest, RecoveryKeyRestoresType0AndType1SecretsAfterTheKekIsDeleted) {
  RecoveryKeyFiles key = MakeRecoveryKey("recovery");
  StartOldPlugin(key.public_path);
  StoreSecrets("t1", 0, 40, /*type=*/1);
  StoreSecrets("t0", 0, 20, /*type=*/0, /*per_key=*/5);
  StoreConfigMaps(10);
  LoseTheKek();
  const auto configmaps = Revisions(Snapshot("/registry/configmaps/"));

  ToolResult scan = RunTool(Args({}, /*scan=*/true));
  ASSERT_EQ(scan.exit.code, 0) << scan.err;
  EXPECT_EQ(scan.summary["recovery"]["kms_v2_objects"], 60);
  EXPECT_EQ(scan.summary["recovery"]["with_recovery_wrap"], 60);
  EXPECT_EQ(scan.summary["recovery"]["without_recovery_wrap"], 0);
  EXPECT_EQ(scan.summary["recovery"]["by_fingerprint"][key.fingerprint], 60);
  EXPECT_THAT(scan.out, HasSubstr(key.fingerprint)) << "the table's RECOVERY column";

  ToolResult r = RunTool(Args({key.private_path}));
  ASSERT_EQ(r.exit.code, 0) << r.err << r.out;
  EXPECT_EQ(Count(r.summary, "rewritten"), 60);
  EXPECT_EQ(Count(r.summary, "failed"), 0);
  EXPECT_EQ(Count(r.summary, "already_current"), 10) << "the configmaps";
  EXPECT_EQ(Count(r.summary, "recovery_opens"), 8) << "4 seeds and 4 type-0 DEKs, once each";
  EXPECT_EQ(CountRecovered(), 60);
  EXPECT_EQ(Revisions(Snapshot("/registry/configmaps/")), configmaps);
  EXPECT_THAT(r.err, HasSubstr("opened with the recovery key only")) << "dead endpoint noticed";

  // The last step of the procedure: nothing is left under the old provider.
  ToolResult after = RunTool(Args({}, /*scan=*/true));
  ASSERT_EQ(after.exit.code, 0) << after.err;
  EXPECT_EQ(after.summary["recovery"]["kms_v2_objects"], 0);
  EXPECT_EQ(Inventory(after.summary, "secrets"),
            (std::map<std::string, int64_t>{{"aescbc|new|-|true", 60}}));
}

// --- Without the right private key, nothing is written. ---

TEST_F(RecoveryEtcdTest, WithoutTheRightPrivateKeyNothingIsWrittenAndTheRunExits1) {
  RecoveryKeyFiles key = MakeRecoveryKey("recovery");
  RecoveryKeyFiles other = MakeRecoveryKey("other");
  StartOldPlugin(key.public_path);
  StoreSecrets("s", 0, 20, /*type=*/1);
  LoseTheKek();
  const int64_t revision = StoreRevision();

  ToolResult none = RunTool(Args({}));
  EXPECT_EQ(none.exit.code, 1) << none.err;
  EXPECT_EQ(Count(none.summary, "failed"), 20);
  EXPECT_EQ(Count(none.summary, "rewritten"), 0);
  EXPECT_EQ(StoreRevision(), revision);

  ToolResult wrong = RunTool(Args({other.private_path}));
  EXPECT_EQ(wrong.exit.code, 1) << wrong.err;
  EXPECT_EQ(Count(wrong.summary, "failed"), 20);
  EXPECT_EQ(Count(wrong.summary, "rewritten"), 0);
  ASSERT_TRUE(wrong.summary.contains("failures"));
  ASSERT_EQ(wrong.summary["failures"].size(), 20u);
  for (const auto& f : wrong.summary["failures"]) {
    EXPECT_THAT(f["error"].get<std::string>(),
                HasSubstr(fmt::format("recovery key {} not given", key.fingerprint)));
  }
  EXPECT_THAT(wrong.err, HasSubstr(other.fingerprint)) << "the key given is named";
  EXPECT_EQ(StoreRevision(), revision);

  // Not an RSA 3072/4096 private key: a clear error before anything is read (exit 2).
  const std::string garbage = dir_->File("garbage.key");
  ASSERT_TRUE(WriteFile(garbage, "-----BEGIN PRIVATE KEY-----\nnot a key\n").ok());
  ToolResult bad = RunTool(Args({garbage}));
  EXPECT_EQ(bad.exit.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("not an RSA 3072 or 4096 private key"));
  ToolResult pub = RunTool(Args({key.public_path}));
  EXPECT_EQ(pub.exit.code, 2) << "a public key is no private key";
  const std::string small = dir_->File("rsa2048.key");
  ProcessOptions genpkey;
  genpkey.binary = "/usr/bin/openssl";
  genpkey.args = {"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                  "-out",    small};
  ITEST_ASSIGN_OR_FAIL(ExitInfo made, Subprocess::Run(genpkey, absl::Seconds(60)));
  ASSERT_EQ(made.code, 0);
  ToolResult rsa2048 = RunTool(Args({small}));
  EXPECT_EQ(rsa2048.exit.code, 2);
  EXPECT_THAT(rsa2048.err, HasSubstr("2048")) << "the size is named";
  EXPECT_EQ(StoreRevision(), revision);
  EXPECT_EQ(CountRecovered(), 0);
}

// --- Objects with and without a usable recovery wrap; --scan per fingerprint. ---

TEST_F(RecoveryEtcdTest, ObjectsWithoutAUsableWrapAreReportedAndLeftUntouchedTheOthersDone) {
  RecoveryKeyFiles a = MakeRecoveryKey("a");
  RecoveryKeyFiles b = MakeRecoveryKey("b");
  StartOldPlugin(a.public_path);
  StoreSecrets("a", 0, 25, /*type=*/1);
  ASSERT_TRUE(plugin_->Terminate().ok());  // same KEK, recovery key b from now on
  StartOldPlugin(b.public_path);
  StoreSecrets("b", 0, 15, /*type=*/1);
  StoreUnwrappedSecrets(10);
  LoseTheKek();

  ToolResult scan = RunTool(Args({}, /*scan=*/true));
  ASSERT_EQ(scan.exit.code, 0) << scan.err;
  const nlohmann::json& rec = scan.summary["recovery"];
  EXPECT_EQ(rec["kms_v2_objects"], 50);
  EXPECT_EQ(rec["with_recovery_wrap"], 40);
  EXPECT_EQ(rec["without_recovery_wrap"], 10);
  EXPECT_EQ(rec["by_fingerprint"], (nlohmann::json{{a.fingerprint, 25}, {b.fingerprint, 15}}));
  std::map<std::string, int64_t> per_row;  // resource|key_id|recovery
  for (const auto& row : scan.summary["inventory"]) {
    if (!row.contains("recovery")) continue;
    per_row[fmt::format("{}|{}|{}", row["resource"].get<std::string>(),
                        row["key_id"].get<std::string>(), row["recovery"].get<std::string>())] +=
        row["count"].get<int64_t>();
  }
  EXPECT_EQ(per_row["secrets|fake-1|none"], 10);
  EXPECT_EQ(per_row.size(), 3u);

  const auto before = Snapshot("/registry/secrets/");
  ToolResult only_a = RunTool(Args({a.private_path}));
  EXPECT_EQ(only_a.exit.code, 1) << only_a.err;
  EXPECT_EQ(Count(only_a.summary, "rewritten"), 25);
  EXPECT_EQ(Count(only_a.summary, "failed"), 25);
  int no_wrap = 0, not_given = 0;
  for (const auto& f : only_a.summary["failures"]) {
    const std::string error = f["error"].get<std::string>();
    const std::string k = f["key"].get<std::string>();
    if (error.find("no recovery wrap") != std::string::npos) {
      ++no_wrap;
      EXPECT_THAT(k, HasSubstr("/nowrap-"));
    } else if (error.find(fmt::format("recovery key {} not given", b.fingerprint)) !=
               std::string::npos) {
      ++not_given;
      EXPECT_THAT(k, HasSubstr("/b-"));
    }
  }
  EXPECT_EQ(no_wrap, 10);
  EXPECT_EQ(not_given, 15);
  EXPECT_EQ(CountRecovered(), 25);

  // Both keys (the flag repeats): the b-wrapped ones are done; the unwrapped stay untouched.
  ToolResult both = RunTool(Args({a.private_path, b.private_path}));
  EXPECT_EQ(both.exit.code, 1) << both.err;
  EXPECT_EQ(Count(both.summary, "rewritten"), 15);
  EXPECT_EQ(Count(both.summary, "already_current"), 25);
  EXPECT_EQ(Count(both.summary, "failed"), 10);
  EXPECT_EQ(CountRecovered(), 40);
  for (const auto& [k, kv] : Snapshot("/registry/secrets/ns/nowrap-")) {
    EXPECT_EQ(kv.value, before.at(k).value) << k;
    EXPECT_EQ(kv.mod_revision, before.at(k).mod_revision) << k;
  }
}

// --- SIGKILL in mid-run, then a re-run that finishes. ---

TEST_F(RecoveryEtcdTest, SigkillInMidRecoveryThenARerunFinishes) {
  constexpr int kObjects = 200;
  RecoveryKeyFiles key = MakeRecoveryKey("recovery");
  StartOldPlugin(key.public_path);
  StoreSecrets("s", 0, kObjects, /*type=*/1, /*per_key=*/25);
  LoseTheKek();
  const auto original = Snapshot("/registry/secrets/");

  std::vector<std::string> args = Args({key.private_path});
  // Slow enough (about 4 s in all) that the kill lands long before the end.
  args.insert(args.end(), {"--rate", "50", "--concurrency", "2", "--page-size", "25"});
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

  int already_new = 0;
  for (const auto& [k, kv] : Snapshot("/registry/secrets/")) {
    auto pt = OpenNew(kv.value);
    if (pt.ok()) {
      ++already_new;
      EXPECT_EQ(*pt, plaintexts_[k]) << k;
    } else {
      EXPECT_EQ(kv.value, original.at(k).value) << k << " is neither new nor the old value";
    }
  }
  EXPECT_GE(already_new, 10);
  EXPECT_LT(already_new, kObjects) << "the kill did not land mid-run";

  ToolResult r = RunTool(Args({key.private_path}));
  ASSERT_EQ(r.exit.code, 0) << r.err;
  EXPECT_EQ(Count(r.summary, "rewritten"), kObjects - already_new);
  EXPECT_EQ(Count(r.summary, "already_current"), already_new);
  EXPECT_EQ(CountRecovered(), kObjects);
}

}  // namespace
}  // namespace kmsplugin::testing
