// `kms-plugin serve --kms local` never loads libcurl (issue 8): the binary has no link dependency
// on it (kms/http_client.h loads it on demand for --kms aws), so neither libcurl nor its TLS stack
// (GnuTLS) is mapped in a serving process, before or after it has answered KMS calls. And where
// libcurl cannot be loaded, `--kms aws` stops with a message naming libcurl4 instead of crashing.
#include <dlfcn.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The lines of /proc/<pid>/maps.
std::vector<std::string> Maps(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The lines that contain `needle`.
std::vector<std::string> Matching(const std::vector<std::string>& lines, const std::string& needle) {
  std::vector<std::string> out;
  for (const std::string& line : lines) {
    if (line.find(needle) != std::string::npos) out.push_back(line);
  }
  return out;
}

class PluginLibcurlTest : public PluginTestBase {};

TEST_F(PluginLibcurlTest, ALocalBackendPluginHasNeitherLibcurlNorGnutlsMapped) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  const std::vector<std::string> at_start = Maps(plugin->process().pid());
  ASSERT_THAT(Matching(at_start, "kms-plugin"), Not(IsEmpty()));  // The maps of the right process.
  EXPECT_THAT(Matching(at_start, "libcurl"), IsEmpty());
  EXPECT_THAT(Matching(at_start, "libgnutls"), IsEmpty());
  {
    ApiserverKmsClient client(plugin->grpc_target());
    const std::string plaintext = NewSeed();
    ITEST_ASSIGN_OR_FAIL(std::string back, client.RoundTrip(plaintext));
    EXPECT_EQ(back, plaintext);
  }
  const std::vector<std::string> after_calls = Maps(plugin->process().pid());
  ASSERT_THAT(Matching(after_calls, "kms-plugin"), Not(IsEmpty()));
  EXPECT_THAT(Matching(after_calls, "libcurl"), IsEmpty());
  EXPECT_THAT(Matching(after_calls, "libgnutls"), IsEmpty());
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->Terminate());
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString();
}

// Hides libcurl from the plugin with a bind mount of /dev/null over the library file, in a user and
// mount namespace of its own (`unshare -rm`); skipped where unprivileged namespaces are not allowed.
TEST_F(PluginLibcurlTest, AnAwsPluginThatCannotLoadLibcurlStopsWithAMessageNamingLibcurl4) {
  ProcessOptions probe;
  probe.binary = "/usr/bin/unshare";
  probe.args = {"-rm", "true"};
  auto probed = Subprocess::Run(probe, absl::Seconds(20));
  if (!probed.ok() || !probed->exited || probed->code != 0) {
    GTEST_SKIP() << "unprivileged user and mount namespaces are not available";
  }
  // Where this system keeps libcurl.so.4: load it here and read our own maps.
  ASSERT_NE(dlopen("libcurl.so.4", RTLD_LAZY | RTLD_LOCAL), nullptr) << dlerror();
  const std::vector<std::string> mapped = Matching(Maps(getpid()), "libcurl.so.4");
  ASSERT_THAT(mapped, Not(IsEmpty()));
  const std::string library = mapped.front().substr(mapped.front().find('/'));

  ProcessOptions o;
  o.binary = "/usr/bin/unshare";
  o.args = {"-rm", "sh", "-c", "mount --bind /dev/null \"$0\" && exec \"$@\"", library,
            PluginBinary(), "serve", "--listen", "unix://" + dir_->File("kms.sock"),
            "--kms", "aws", "--aws-key-id", "alias/k8s", "--aws-region",
            "us-east-1", "--aws-endpoint", "https://127.0.0.1:1"};
  o.env = {"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=not-a-secret-for-this-test",
           "AWS_EC2_METADATA_DISABLED=true"};
  o.stdout_path = o.stderr_path = dir_->File("plugin.log");
  log_paths_.push_back(o.stdout_path);
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, Subprocess::Run(o, absl::Seconds(30)));
  const std::string log = ReadFile(o.stdout_path).value_or("");
  EXPECT_TRUE(exit.exited && exit.code != 0) << exit.ToString() << "\n" << log;
  EXPECT_THAT(log, HasSubstr("FAILED_PRECONDITION: cannot load libcurl.so.4 ("));
  EXPECT_THAT(log, HasSubstr("install libcurl4 to use --kms aws"));
}

}  // namespace
}  // namespace kmsplugin::testing
