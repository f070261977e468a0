// No secret in the plugin's output (issue 2, acceptance item 4): with --log-level debug, drive
// round trips, tampered and malformed requests, a SIGKILL restart, a rotation-free reload and a
// clean SIGTERM, capture stdout+stderr, and search them for every seed / plaintext sent and
// every KEK version of the keyring (keys[].material), as raw bytes, lower/upper hex, standard and
// URL-safe base64 (at every byte alignment).
#include <signal.h>

#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::IsEmpty;

class PluginLeakTest : public PluginTestBase {};

TEST_F(PluginLeakTest, DebugLogsHoldNoSeedPlaintextOrKeyMaterial) {
  ITEST_ASSIGN_OR_FAIL(int port, PickUnusedLoopbackPort());
  PluginOptions o = Options();
  o.args.push_back("--health-addr");
  o.args.push_back("127.0.0.1:" + std::to_string(port));
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());

  // Round trips of seeds and of recognisable plaintexts of several sizes.
  std::vector<v2::EncryptResponse> encrypted;
  for (int i = 0; i < 200; ++i) {
    std::string seed = NewSeed();
    ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(seed));
    ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                         client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
    ASSERT_EQ(dec.plaintext(), seed);
    encrypted.push_back(enc);
  }
  for (size_t size : {8, 16, 100, 500, 900}) {
    std::string plaintext = HexLower(RandomSeedBytes()) + "-PLAINTEXT-";
    while (plaintext.size() < size) plaintext += HexLower(RandomSeedBytes());
    plaintext.resize(size);
    RecordSecret(plaintext);
    (void)client.RoundTrip(plaintext);
  }
  // Failing requests: tampered ciphertexts and annotations, wrong key_ids, garbage.
  for (size_t i = 0; i < 20; ++i) {
    v2::DecryptRequest req = ApiserverKmsClient::DecryptRequestFor(encrypted[i]);
    std::string ct = req.ciphertext();
    ct[ct.size() - 1 - i] = static_cast<char>(ct[ct.size() - 1 - i] ^ 0x55);
    req.set_ciphertext(ct);
    EXPECT_THAT(client.Decrypt(req), ::testing::Not(IsOk()));
    req = ApiserverKmsClient::DecryptRequestFor(encrypted[i]);
    for (auto& [k, v] : *req.mutable_annotations()) v[i % v.size()] ^= 0x01;
    EXPECT_THAT(client.Decrypt(req), ::testing::Not(IsOk()));
    req = ApiserverKmsClient::DecryptRequestFor(encrypted[i]);
    req.set_key_id(req.key_id() + "0");
    EXPECT_THAT(client.Decrypt(req), ::testing::Not(IsOk()));
  }
  (void)client.Encrypt("");
  std::string big = NewSeed();
  while (big.size() < 4096) big += RandomSeedBytes();
  RecordSecret(big);
  (void)client.Encrypt(big);
  v2::DecryptRequest garbage;
  garbage.set_ciphertext(NewSeed());  // Random bytes (recorded) as a ciphertext.
  garbage.set_key_id(encrypted[0].key_id());
  EXPECT_THAT(client.Decrypt(garbage), ::testing::Not(IsOk()));
  // Health and metrics while debugging.
  ASSERT_THAT(HttpGetWhenUp(port, "/healthz", absl::Seconds(10)), IsOk());
  ASSERT_THAT(HttpGet(port, "/metrics"), IsOk());

  // Crash and restart (the key is loaded again), decrypt old data, then a clean stop.
  ASSERT_THAT(plugin->Kill(), IsOk());
  ITEST_ASSIGN_OR_FAIL(auto restarted, Start(o));
  for (size_t i = 0; i < 50; ++i) {
    ASSERT_THAT(client.Decrypt(ApiserverKmsClient::DecryptRequestFor(encrypted[i])), IsOk());
  }
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, restarted->Terminate(SIGTERM));
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString();

  // The scan itself.
  ITEST_ASSIGN_OR_FAIL(std::vector<std::string> materials, KeyringMaterials(keyring_path_));
  ASSERT_FALSE(materials.empty()) << "no key material found in the keyring file";
  ITEST_ASSIGN_OR_FAIL(std::vector<std::string> material_texts,
                       KeyringMaterialTexts(keyring_path_));
  LeakScanner scanner = SecretsScanner();
  ASSERT_GE(scanner.size(), 200u + materials.size());
  ITEST_ASSIGN_OR_FAIL(std::string log, ReadFile(o.log_path));
  ASSERT_FALSE(log.empty()) << "debug logging produced no output";
  EXPECT_THAT(scanner.Scan(log), IsEmpty());
  // The material exactly as the file spells it (also covered by the base64 patterns above).
  for (const std::string& text : material_texts) {
    EXPECT_EQ(log.find(text), std::string::npos) << "keyring material text found in the log";
  }
}

}  // namespace
}  // namespace kmsplugin::testing
