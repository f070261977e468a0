// Issue 9, items 7 and 12 for reencrypt: stored and remote bytes reach logs and reports only
// through Printable(), and the files that hold secrets (the EncryptionConfiguration, the etcd
// client key) are read with the one secret-file reader (kms/secret_file.h).
#include <fstream>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/fake_kms_server.h"
#include "tests/reencrypt/in_memory_etcd.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/etcd_client.h"
#include "tools/reencrypt/reencryptor.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;

// Printable ASCII and line ends only.
bool AllPrintable(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\n') || c > 0x7e) return false;
  }
  return true;
}

class StatusOnlyKmsV2Client final : public KmsV2Client {
 public:
  absl::StatusOr<KmsV2Status> Status() override { return KmsV2Status{"v2", "ok", "2"}; }
  absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes&, std::string_view) override {
    return absl::UnimplementedError("scan only");
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view, std::string_view,
                                      const std::map<std::string, std::string>&,
                                      std::string_view) override {
    return absl::UnimplementedError("scan only");
  }
};

TEST(HardeningTest, ReportsAndInventoryCarryNoRawStoredBytes) {
  testing::InMemoryEtcd etcd;
  const std::string evil_key = "/registry/secrets/ns/\x1b[2Jevil\x07";
  const std::string evil_key_id = "\x1b]0;owned\x07";
  // An undecryptable value under a hostile etcd key, and a KMS v2 value with a hostile key_id.
  ASSERT_THAT(etcd.Put(evil_key, *testing::EncodeAesGcm("gcm1", std::string(32, 'w'), evil_key,
                                                       "x"),
                       0),
              IsOk());
  ASSERT_THAT(etcd.Put("/registry/secrets/ns/kms",
                       *testing::EncodeKmsV2Type1("kms-provider", evil_key_id, std::string(32, 's'),
                                                  "/registry/secrets/ns/kms", "y"),
                       0),
              IsOk());
  auto config = ParseEncryptionConfig(
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
      "  - resources: [secrets]\n    providers:\n"
      "      - kms: {apiVersion: v2, name: kms-provider, endpoint: unix:///unused.sock}\n"
      "      - aesgcm: {keys: [{name: gcm1, secret: " +
      Base64Encode(std::string(32, 'g')) + "}]}\n");
  ASSERT_THAT(config, IsOk());
  KmsClientFactory factory;
  factory.v2 = [](std::string_view, absl::Duration) -> absl::StatusOr<std::unique_ptr<KmsV2Client>> {
    return std::make_unique<StatusOnlyKmsV2Client>();
  };
  auto set = TransformerSet::Create(*config, factory);
  ASSERT_THAT(set, IsOk());
  testing::FakeClock clock;
  const std::vector<ResourceTarget> targets = {
      ResourceTarget{GroupResource::Parse("secrets"), "/registry/secrets/"}};

  ReencryptOptions scan;
  scan.scan_only = true;
  auto scanned = Reencryptor(&etcd, set->get(), scan, nullptr, &clock).Run(targets);
  ASSERT_THAT(scanned, IsOk());
  EXPECT_TRUE(AllPrintable(scanned->InventoryTable() + scanned->ToJson()))
      << scanned->InventoryTable();

  // The failure report, from a dry run with aesgcm first (its key is not the values' key).
  ReencryptOptions dry;
  dry.dry_run = true;
  auto gcm_only = ParseEncryptionConfig(
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
      "  - resources: [secrets]\n    providers:\n"
      "      - aesgcm: {keys: [{name: gcm1, secret: " +
      Base64Encode(std::string(32, 'g')) + "}]}\n");
  ASSERT_THAT(gcm_only, IsOk());
  auto gcm_set = TransformerSet::Create(*gcm_only);
  ASSERT_THAT(gcm_set, IsOk());
  auto failed = Reencryptor(&etcd, gcm_set->get(), dry, nullptr, &clock).Run(targets);
  ASSERT_THAT(failed, IsOk());
  ASSERT_GE(failed->failures.size(), 1u);
  for (const FailedKey& f : failed->failures) {
    EXPECT_TRUE(AllPrintable(f.key + f.prefix + f.error)) << f.key;
  }
  EXPECT_TRUE(AllPrintable(failed->ToJson()));
}

TEST(HardeningTest, AnnotationKeyInAMalformedRecordIsPrintedSanitised) {
  EncryptedObject obj;
  obj.encrypted_data = "d";
  obj.key_id = "k";
  obj.encrypted_dek_source = "s";
  obj.annotations["\x1b[31m.example.com"] = "v";
  auto parsed = ParseEncryptedObject(SerializeEncryptedObject(obj));
  ASSERT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(AllPrintable(std::string(parsed.status().message()))) << parsed.status();
}

// An etcd (or proxy) that answers a listing with a key outside the requested range.
class StrayKeyEtcd final : public EtcdClient {
 public:
  explicit StrayKeyEtcd(testing::InMemoryEtcd* real) : real_(real) {}
  absl::StatusOr<EtcdRangePage> Range(std::string_view key, std::string_view end,
                                      const EtcdRangeOptions& o) override {
    auto page = real_->Range(key, end, o);
    if (page.ok() && o.limit > 0 && !page->kvs.empty()) {
      auto stray = real_->Range("/registry/configmaps/ns/cm", "", {});
      if (stray.ok() && !stray->kvs.empty()) page->kvs.push_back(stray->kvs[0]);
    }
    return page;
  }
  absl::StatusOr<int64_t> Put(std::string_view k, std::string_view v, int64_t l) override {
    return real_->Put(k, v, l);
  }
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override { return real_->GrantLease(ttl); }
  absl::StatusOr<EtcdCasResult> CompareAndSwap(std::string_view k, int64_t r, std::string_view v,
                                               int64_t l) override {
    return real_->CompareAndSwap(k, r, v, l);
  }
  absl::StatusOr<int64_t> DeleteRange(std::string_view k, std::string_view e) override {
    return real_->DeleteRange(k, e);
  }

 private:
  testing::InMemoryEtcd* real_;
};

TEST(HardeningTest, ListingAnswerWithAKeyOutsideTheRangeStopsTheRunBeforeAnyWrite) {
  testing::InMemoryEtcd etcd;
  ASSERT_THAT(etcd.Put("/registry/configmaps/ns/cm", "plain configmap", 0), IsOk());
  ASSERT_THAT(etcd.Put("/registry/secrets/ns/s", testing::MakePlaintext("s", 50), 0), IsOk());
  auto config = ParseEncryptionConfig(
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
      "  - resources: [secrets]\n    providers:\n"
      "      - aesgcm: {keys: [{name: gcm1, secret: " +
      Base64Encode(std::string(32, 'g')) + "}]}\n      - identity: {}\n");
  ASSERT_THAT(config, IsOk());
  auto set = TransformerSet::Create(*config);
  ASSERT_THAT(set, IsOk());
  StrayKeyEtcd stray(&etcd);
  testing::FakeClock clock;
  ReencryptOptions options;
  options.concurrency = 1;
  auto summary = Reencryptor(&stray, set->get(), options, nullptr, &clock)
                     .Run({ResourceTarget{GroupResource::Parse("secrets"), "/registry/secrets/"}});
  EXPECT_THAT(summary, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(etcd.cas_writes(), 0);
  EXPECT_EQ(etcd.Get("/registry/configmaps/ns/cm"), "plain configmap");
}

std::string WriteTemp(const std::string& name, const std::string& content) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(HardeningTest, EncryptionConfigIsReadWithTheSecretFileReader) {
  // The secret-file reader's bound: a file over 1 MiB is refused before any parse.
  std::string big = "apiVersion: apiserver.config.k8s.io/v1\n# " + std::string(1 << 20, 'x');
  EXPECT_THAT(LoadEncryptionConfigFile(WriteTemp("big-enc.yaml", big)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than the 1048576 allowed")));
  EXPECT_THAT(LoadEncryptionConfigFile(::testing::TempDir() + "/missing.yaml"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(HardeningTest, EtcdClientKeyIsReadWithTheSecretFileReader) {
  EtcdClientOptions o;
  o.endpoints = {"https://127.0.0.1:1"};
  o.cert_file = WriteTemp("client.crt", "-----BEGIN CERTIFICATE-----\n");
  o.key_file = WriteTemp("client-big.key", std::string((1 << 20) + 1, 'k'));
  EXPECT_THAT(CreateGrpcEtcdClient(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than the 1048576 allowed")));
  o.key_file = ::testing::TempDir() + "/missing.key";
  EXPECT_THAT(CreateGrpcEtcdClient(o), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace kmsplugin::reencrypt
