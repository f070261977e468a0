// The reencrypt tool against a real etcd-server with the real plugin (`kms-plugin serve --kms
// local`) as the write provider: every value it writes passes the §3.2 checks and opens by the
// §3.9 recipe with the seed the plugin decrypts.
#include <map>
#include <string>
#include <vector>

#include "crypto/aes_gcm.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/reencrypt/corpus.h"
#include "tests/reencrypt/reencrypt_etcd_fixture.h"
#include "tools/reencrypt/kms_client.h"
#include "tools/reencrypt/storage_format.h"

namespace kmsplugin::testing {
namespace {

// --- The real plugin (`kms-plugin serve --kms local`) as the write provider. ---

TEST_F(ReencryptEtcdTest, RealPluginServeIsTheWriteProvider) {
  PluginOptions po;
  po.listen = "unix://" + dir_->File("real.sock");
  po.args = LocalKmsArgs(keyring_path_);
  po.log_path = dir_->File("plugin.log");
  po.working_dir = dir_->path();
  ITEST_ASSIGN_OR_FAIL(auto plugin, PluginProcess::Start(po));
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

  ITEST_ASSIGN_OR_FAIL(auto client, reencrypt::CreateGrpcKmsV2Client(po.listen, absl::Seconds(5)));
  ITEST_ASSIGN_OR_FAIL(auto status, client->Status());
  std::map<std::string, SecretBytes> seeds;
  for (const auto& [key, kv] : Snapshot("/registry/secrets/")) {
    std::string_view name, rest;
    ASSERT_TRUE(reencrypt::SplitKmsValue(kv.value, reencrypt::kKmsV2Prefix, &name, &rest)) << key;
    EXPECT_EQ(name, "real-plugin");
    ITEST_ASSIGN_OR_FAIL(auto obj, reencrypt::ParseEncryptedObject(rest));  // §3.2 checks
    EXPECT_EQ(obj.key_id, status.key_id);
    EXPECT_EQ(obj.type, reencrypt::DekSourceType::kHkdfSha256XNonceAesGcmSeed);
    EXPECT_EQ(reencrypt::SerializeEncryptedObject(obj), rest) << "not in Go's field order";
    // §3.9 by hand: plugin Decrypt -> seed, HMAC-SHA256(seed, info || 1) -> DEK, AES-GCM open.
    if (seeds.count(obj.encrypted_dek_source) == 0) {
      ITEST_ASSIGN_OR_FAIL(SecretBytes seed, client->Decrypt(obj.encrypted_dek_source, obj.key_id,
                                                             obj.annotations, "test-uid"));
      seeds.emplace(obj.encrypted_dek_source, std::move(seed));
    }
    const SecretBytes& seed = seeds.at(obj.encrypted_dek_source);
    ASSERT_EQ(seed.size(), 32u);
    ITEST_ASSIGN_OR_FAIL(SecretBytes dek,
                         HmacSha256(seed, obj.encrypted_data.substr(0, 32) + "\x01"));
    ITEST_ASSIGN_OR_FAIL(auto gcm, AesGcm::Create(std::move(dek)));
    ITEST_ASSIGN_OR_FAIL(SecretBytes pt, gcm->OpenDetached(obj.encrypted_data.substr(32, 12),
                                                           obj.encrypted_data.substr(44), key));
    EXPECT_EQ(pt.Reveal(), plaintexts[key]) << key;
  }
  EXPECT_EQ(seeds.size(), 1u) << "one seed per run";
  EXPECT_TRUE(plugin->Terminate().ok());
}

}  // namespace
}  // namespace kmsplugin::testing
