// Sockets, limits, signals and messages of `kms-plugin serve` / `status` (issue 9, items 4, 11,
// 17, 18, 19), through the built binary.
#include <signal.h>
#include <unistd.h>

#include "absl/strings/str_split.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PluginSocketsTest : public PluginTestBase {
 protected:
  std::string AbstractName() {
    return "kmsp-e2e-" + std::to_string(getpid()) + "-" + HexLower(RandomSeedBytes().substr(0, 6));
  }

  // Runs `kms-plugin args...`; returns {exit, stderr}.
  std::pair<ExitInfo, std::string> RunPlugin(std::vector<std::string> args) {
    ProcessOptions p;
    p.binary = PluginBinary();
    p.args = std::move(args);
    p.stdout_path = dir_->File("run.out");
    p.stderr_path = dir_->File("run.err");
    (void)WriteFile(p.stderr_path, "");
    auto exit = Subprocess::Run(p, absl::Seconds(20));
    EXPECT_THAT(exit, IsOk());
    return {exit.ok() ? *exit : ExitInfo{}, ReadFile(p.stderr_path).value_or("")};
  }

  static std::vector<std::string> NonEmptyLines(const std::string& text) {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (!line.empty()) out.emplace_back(line);
    }
    return out;
  }
};

// Item 4: the abstract socket has no permissions; root is refused when it is not listed.
TEST_F(PluginSocketsTest, AbstractListenRefusesAUidNotInAllowedUids) {
  const std::string name = AbstractName();
  PluginOptions o = Options("abstract");
  o.listen = "unix:///@" + name;
  o.args.insert(o.args.end(), {"--allowed-uids", "12345"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(o));
  ASSERT_TRUE(PollUntil([&] { return plugin->Log().find("serving KMS v2") != std::string::npos; },
                        absl::Seconds(20)))
      << plugin->Log();
  ApiserverKmsClient client("unix-abstract:" + name, absl::Seconds(1));
  int answered = 0;
  for (int i = 0; i < 3; ++i) answered += client.Status().ok() ? 1 : 0;
  EXPECT_EQ(answered, 0);
  EXPECT_TRUE(plugin->Running());
  EXPECT_THAT(plugin->Log(), HasSubstr("from uid 0"));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->Terminate());
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString();
}

// Item 4: with the default --allowed-uids (0), every KMS v2 call works on an abstract socket and
// passes the apiserver's checks, on one connection and on fresh ones.
TEST_F(PluginSocketsTest, AbstractListenAnswersEveryKmsV2CallForAnAllowedUid) {
  const std::string name = AbstractName();
  PluginOptions o = Options("abstract");
  o.listen = "unix:///@" + name;
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  int ok = 0;
  for (int connection = 0; connection < 5; ++connection) {
    ApiserverKmsClient client("unix-abstract:" + name);
    ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
    ASSERT_THAT(ValidateStatusResponse(status, "v2"), IsOk());
    for (int i = 0; i < 20; ++i) {
      std::string seed = NewSeed();
      ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(seed));
      ASSERT_THAT(ValidateEncryptResponse(enc, status.key_id()), IsOk());
      ITEST_ASSIGN_OR_FAIL(v2::DecryptResponse dec,
                           client.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc)));
      ASSERT_EQ(dec.plaintext(), seed);
      ++ok;
    }
  }
  EXPECT_EQ(ok, 100);
}

// Item 11: the receive limit is 128 KiB; a bigger request is refused by gRPC and the process
// keeps serving.
TEST_F(PluginSocketsTest, A200KiBRequestIsResourceExhaustedAndServingGoesOn) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  v2::DecryptRequest big;
  big.set_ciphertext(std::string(size_t{200} * 1024, 'c'));
  big.set_key_id("k");
  EXPECT_THAT(client.Decrypt(big), StatusIs(absl::StatusCode::kResourceExhausted));
  std::string seed = NewSeed();
  EXPECT_THAT(client.RoundTrip(seed), IsOkAndHolds(seed));
  EXPECT_TRUE(plugin->Running());
}

// Item 11: a 64 KiB ciphertext fits under the limit and is refused by the plugin's own check.
TEST_F(PluginSocketsTest, A64KiBCiphertextIsInvalidArgumentFromThePlugin) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(NewSeed()));
  v2::DecryptRequest request = ApiserverKmsClient::DecryptRequestFor(enc);
  request.set_ciphertext(std::string(size_t{64} * 1024, 'c'));
  EXPECT_THAT(client.Decrypt(request),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ciphertext")));
}

// Item 11: kube-apiserver sends a 36-character UUID; a uid over 256 bytes is refused.
TEST_F(PluginSocketsTest, AUidOver256BytesIsInvalidArgumentOnEncryptAndDecrypt) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  std::string seed = NewSeed();
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(seed));
  v2::EncryptRequest encrypt;
  encrypt.set_plaintext(seed);
  encrypt.set_uid(std::string(257, 'u'));
  EXPECT_THAT(client.CallRaw(kEncryptMethod, encrypt.SerializeAsString()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("uid")));
  v2::DecryptRequest decrypt = ApiserverKmsClient::DecryptRequestFor(enc);
  decrypt.set_uid(std::string(257, 'u'));
  EXPECT_THAT(client.Decrypt(decrypt), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("uid")));
  decrypt.set_uid(std::string(256, 'u'));  // At the bound: accepted.
  auto dec = client.Decrypt(decrypt);
  ASSERT_THAT(dec, IsOk());
  EXPECT_EQ(dec->plaintext(), seed);
}

// Item 17: SIGHUP drains like SIGTERM: exit 0, one log line, both socket files removed.
TEST_F(PluginSocketsTest, SighupDrainsExitsZeroLogsAndRemovesBothSockets) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  const std::string kms = dir_->File("kms.sock");
  ASSERT_TRUE(IsSocket(kms));
  ASSERT_TRUE(IsSocket(kms + ".admin"));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->Terminate(SIGHUP));
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString() << "\n" << plugin->Log();
  EXPECT_THAT(plugin->Log(), HasSubstr("received signal 1"));
  EXPECT_EQ(ModeOf(kms), -1);
  EXPECT_EQ(ModeOf(kms + ".admin"), -1);
}

// Item 18: a plugin that shuts down leaves alone the socket files a successor made on its paths.
TEST_F(PluginSocketsTest, ShutdownKeepsTheSocketsOfASuccessorOnTheSamePaths) {
  ITEST_ASSIGN_OR_FAIL(auto first, Start(Options()));
  const std::string kms = dir_->File("kms.sock");
  ASSERT_EQ(unlink(kms.c_str()), 0);
  ASSERT_EQ(unlink((kms + ".admin").c_str()), 0);
  PluginOptions second_options = Options();
  second_options.log_path = dir_->File("second.log");
  ITEST_ASSIGN_OR_FAIL(auto second, Start(second_options));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, first->Terminate());
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString();
  EXPECT_TRUE(IsSocket(kms));
  EXPECT_TRUE(IsSocket(kms + ".admin"));
  ApiserverKmsClient fresh(second->grpc_target());
  EXPECT_THAT(fresh.Status(), IsOk());
  EXPECT_THAT(UnixConnection::Connect(kms + ".admin"), IsOk());
}

// Item 19a: a missing directory is named in the last line, with no gRPC dump before it.
TEST_F(PluginSocketsTest, AMissingListenDirectoryIsSaidInOneLastLine) {
  const std::string missing = dir_->File("no-such-dir");
  std::vector<std::string> args = {"serve", "--listen", "unix://" + missing + "/kms.sock"};
  for (const std::string& a : LocalKmsArgs(keyring_path_)) args.push_back(a);
  auto [exit, err] = RunPlugin(args);
  EXPECT_TRUE(exit.exited && exit.code != 0) << exit.ToString();
  std::vector<std::string> lines = NonEmptyLines(err);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(), HasSubstr("directory " + missing + " does not exist")) << err;
  for (const std::string& line : lines) EXPECT_LE(line.size(), 300u) << line;
}

// Item 19b: `status` on a regular file or a missing path says so before dialling.
TEST_F(PluginSocketsTest, StatusOnARegularFileSaysItIsNotASocket) {
  const std::string path = dir_->File("plain.txt");
  ASSERT_THAT(WriteFile(path, "x"), IsOk());
  auto [exit, err] = RunPlugin({"status", "--socket", path, "--timeout", "2s"});
  EXPECT_TRUE(exit.exited && exit.code != 0) << exit.ToString();
  EXPECT_THAT(err, HasSubstr(path + " is not a socket"));
  EXPECT_THAT(err, Not(HasSubstr("onnection refused")));
}

TEST_F(PluginSocketsTest, StatusOnAMissingPathSaysNoSuchSocket) {
  const std::string path = dir_->File("missing.sock");
  auto [exit, err] = RunPlugin({"status", "--socket", "unix://" + path, "--timeout", "2s"});
  EXPECT_TRUE(exit.exited && exit.code != 0) << exit.ToString();
  EXPECT_THAT(err, HasSubstr("no such socket: " + path));
}

}  // namespace
}  // namespace kmsplugin::testing
