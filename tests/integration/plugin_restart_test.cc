// Durability of `kms-plugin serve` across a crash (issue 2, acceptance item 3): 500 seeds are
// encrypted, the plugin is killed with SIGKILL (leaving its socket file behind) and restarted on
// the same keyring and socket; all 500 decrypt, through the apiserver's original connection, and
// the key_id is unchanged.
#include <signal.h>

#include <thread>

#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

class PluginRestartTest : public PluginTestBase {};

TEST_F(PluginRestartTest, FiveHundredSeedsDecryptAfterSigkillAndRestart) {
  constexpr size_t kSeeds = 500;
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  // One long-lived client, as the apiserver keeps its connection across plugin restarts.
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status_before, client.Status());

  std::vector<std::string> seeds(kSeeds);
  std::vector<v2::EncryptResponse> encrypted(kSeeds);
  for (size_t i = 0; i < kSeeds; ++i) {
    seeds[i] = NewSeed();
    ITEST_ASSIGN_OR_FAIL(encrypted[i], client.Encrypt(seeds[i]));
    ASSERT_THAT(ValidateEncryptResponse(encrypted[i], status_before.key_id()), IsOk());
  }

  ITEST_ASSIGN_OR_FAIL(ExitInfo killed, plugin->Kill());
  ASSERT_FALSE(killed.exited);
  ASSERT_EQ(killed.signal, SIGKILL);
  ASSERT_TRUE(IsSocket(dir_->File("kms.sock"))) << "SIGKILL should leave the socket file behind";
  plugin.reset();

  ITEST_ASSIGN_OR_FAIL(auto restarted, Start(Options()));
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status_after, client.Status());
  EXPECT_EQ(status_after.key_id(), status_before.key_id())
      << "the same KEK version must keep its key_id across restarts";
  EXPECT_THAT(ValidateStatusResponse(status_after, "v2"), IsOk());

  size_t failures = 0;
  for (size_t i = 0; i < kSeeds; ++i) {
    auto dec = client.Decrypt(ApiserverKmsClient::DecryptRequestFor(encrypted[i]));
    if (!dec.ok() || dec->plaintext() != seeds[i]) {
      if (++failures <= 5) {
        ADD_FAILURE() << "seed " << i << ": "
                      << (dec.ok() ? std::string("wrong plaintext") : dec.status().ToString());
      }
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << kSeeds << " seeds after the restart";

  // New writes work too, under the same key_id.
  std::string seed = NewSeed();
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse fresh, client.Encrypt(seed));
  EXPECT_THAT(ValidateEncryptResponse(fresh, status_after.key_id()), IsOk());
}

}  // namespace
}  // namespace kmsplugin::testing
