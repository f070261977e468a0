// Issue 13: a deploy/ template copied without filling in its placeholders fails loudly. Every
// command refuses any flag value holding REPLACE_ME, naming the flag and the file to edit, before
// it starts anything (through the built kms-plugin).
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/plugin_process.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;

struct PluginRun {
  ExitInfo exit;
  std::string log;
};

PluginRun RunPlugin(const TempDir& dir, const std::vector<std::string>& args,
              const std::vector<std::string>& env = {}) {
  ProcessOptions p;
  p.binary = PluginBinary();
  p.args = args;
  p.env = env;
  p.stdout_path = p.stderr_path = dir.File("out.log");
  (void)WriteFile(p.stdout_path, "");
  PluginRun run;
  auto exit = Subprocess::Run(p, absl::Seconds(30));
  EXPECT_TRUE(exit.ok()) << exit.status();
  if (exit.ok()) run.exit = *exit;
  run.log = ReadFile(p.stdout_path).value_or("");
  return run;
}

TEST(PlaceholderFlagTest, EveryCommandRefusesAPlaceholderNamingTheFlagAndTheFile) {
  auto dir = TempDir::Create("kmsp-placeholder");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string sock = "unix://" + dir->File("kms.sock");
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  };
  const std::vector<Case> cases = {
      {{"serve", "--listen", sock, "--kms=aws", "--aws-key-id=REPLACE_ME_KEY_ARN",
        "--aws-region=eu-west-1"},
       "--aws-key-id"},
      {{"serve", "--listen", sock, "--kms", "vault", "--vault-addr", "https://REPLACE_ME:8200"},
       "--vault-addr"},
      {{"serve", "--listen", sock, "--kms=local", "--local-keyring-id=REPLACE_ME_KEYRING_ID"},
       "--local-keyring-id"},
      {{"status", "--socket", "unix:///REPLACE_ME/kms.sock"}, "--socket"},
      {{"rotate", "--kek", "--socket=unix:///run/REPLACE_ME.sock"}, "--socket"},
  };
  for (const Case& c : cases) {
    PluginRun run = RunPlugin(*dir, c.args);
    EXPECT_TRUE(run.exit.exited && run.exit.code == 2) << run.exit.ToString() << "\n" << run.log;
    EXPECT_THAT(run.log, HasSubstr(c.flag + " still holds the placeholder REPLACE_ME"));
    EXPECT_THAT(run.log, HasSubstr("/etc/kubernetes/manifests/kms-plugin.yaml"));
    EXPECT_THAT(run.log, HasSubstr("/etc/systemd/system/kms-plugin.service"));
    // Refused before serving: no socket, no keyring, no start-up line.
    EXPECT_THAT(run.log, ::testing::Not(HasSubstr("serving KMS v2")));
    EXPECT_FALSE(ReadFile(dir->File("kms.sock")).ok());
  }
}

TEST(PlaceholderFlagTest, TheManifestEnvironmentVariableNamesTheExactFileToEdit) {
  auto dir = TempDir::Create("kmsp-placeholder");
  ASSERT_TRUE(dir.ok()) << dir.status();
  PluginRun run = RunPlugin(*dir,
                      {"serve", "--listen", "unix://" + dir->File("kms.sock"), "--kms=aws",
                       "--aws-key-id=alias/k8s", "--aws-region", "REPLACE_ME_REGION"},
                      {"KMS_PLUGIN_MANIFEST=/etc/systemd/system/kms-plugin.service"});
  EXPECT_TRUE(run.exit.exited && run.exit.code == 2) << run.exit.ToString() << "\n" << run.log;
  EXPECT_THAT(run.log, HasSubstr("--aws-region still holds the placeholder REPLACE_ME"));
  EXPECT_THAT(run.log, HasSubstr("edit /etc/systemd/system/kms-plugin.service and put the real "
                                 "value there"));
}

TEST(PlaceholderFlagTest, ValuesWithoutThePlaceholderAreParsedAsBefore) {
  auto dir = TempDir::Create("kmsp-placeholder");
  ASSERT_TRUE(dir.ok()) << dir.status();
  PluginRun run = RunPlugin(*dir, {"serve", "--help"});
  EXPECT_TRUE(run.exit.exited && run.exit.code == 0) << run.exit.ToString() << "\n" << run.log;
  EXPECT_THAT(run.log, HasSubstr("--local-keyring-create"));
  EXPECT_THAT(run.log, HasSubstr("--local-keyring-id"));
}

}  // namespace
}  // namespace kmsplugin::testing
