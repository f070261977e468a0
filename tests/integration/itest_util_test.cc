// Unit tests of the integration-test helpers themselves: the leak scanner and echo finder must
// find a secret in every encoding they claim, Subprocess must report exits, signals, deadlines,
// environment and working directory, and listen addresses map to the right gRPC targets.
#include "tests/integration/itest_util.h"

#include <signal.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/plugin_process.h"
#include "tests/matchers.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class ItestUtilTest : public ::testing::Test {
 protected:
  // 32 fixed bytes that cover every base64 character class, including '+' and '/'.
  const std::string secret_ = std::string(
      "\xfb\xff\xbf\x00\x01\x02\x10\x20\x30\xf8\x3e\x3f\x7f\x80\x81\xaa"
      "\x55\xde\xad\xbe\xef\xca\xfe\xba\xbe\x12\x34\x56\x78\x9a\xbc\xde",
      32);
};

TEST_F(ItestUtilTest, LeakScannerFindsTheSecretInEveryEncodingAndAlignment) {
  LeakScanner scanner;
  scanner.Add(secret_, "seed");
  std::vector<std::string> texts = {
      "raw: " + secret_ + " end",
      "hex=" + HexLower(secret_) + "\n",
      "HEX=" + HexUpper(secret_) + "\n",
      "b64=" + Base64Std(secret_) + "\n",
      "b64url=" + Base64Url(secret_) + "\n",
  };
  // Embedded in a larger base64 blob at each byte alignment (e.g. a logged serialized proto).
  for (size_t shift = 0; shift < 3; ++shift) {
    std::string blob = std::string(shift + 5, 'p') + secret_ + "trailing bytes";
    texts.push_back("proto=" + Base64Std(blob));
    texts.push_back("proto=" + Base64Url(blob));
  }
  for (const std::string& text : texts) {
    EXPECT_THAT(scanner.Scan(text), SizeIs(::testing::Ge(1u))) << text;
  }
  EXPECT_THAT(scanner.Scan("nothing to see here " + HexLower(secret_.substr(0, 8))), IsEmpty());
  EXPECT_THAT(scanner.Scan(""), IsEmpty());
}

TEST_F(ItestUtilTest, LeakScannerNamesTheSecretAndEncoding) {
  LeakScanner scanner;
  scanner.Add(std::string(32, 'a'), "first");
  scanner.Add(secret_, "second");
  std::vector<std::string> findings = scanner.Scan("xx" + HexUpper(secret_));
  ASSERT_THAT(findings, SizeIs(1u));
  EXPECT_THAT(findings[0], HasSubstr("second"));
  EXPECT_THAT(findings[0], HasSubstr("upper-case hex"));
  EXPECT_THAT(findings[0], HasSubstr("offset 2"));
}

TEST_F(ItestUtilTest, FindEchoSpotsWholeInputsAndTheirEnds) {
  const std::string input = secret_ + secret_.substr(0, 20);
  EXPECT_EQ(FindEcho("error: bad ciphertext of 52 bytes", input), "");
  EXPECT_NE(FindEcho("error: " + HexLower(input), input), "");
  EXPECT_NE(FindEcho("error: starts " + HexLower(input.substr(0, 12)), input), "");
  EXPECT_NE(FindEcho("error: ends " + Base64Std(input.substr(input.size() - 12)), input), "");
  EXPECT_EQ(FindEcho("anything", "short"), "");  // Under 8 bytes: not checked.
}

TEST_F(ItestUtilTest, ListenValuesMapToGrpcTargets) {
  EXPECT_EQ(ListenToGrpcTarget("unix:///run/kms.sock"), "unix:///run/kms.sock");
  EXPECT_EQ(ListenToGrpcTarget("/run/kms.sock"), "unix:///run/kms.sock");
  EXPECT_EQ(ListenToGrpcTarget("unix:///@kms-name"), "unix-abstract:kms-name");
}

TEST_F(ItestUtilTest, SubprocessReportsExitCodeOutputEnvironmentAndDirectory) {
  auto dir = TempDir::Create();
  ASSERT_THAT(dir, IsOk());
  ProcessOptions p;
  p.binary = "/bin/sh";
  p.args = {"-c", "echo \"$ITEST_VAR\"; pwd; echo err >&2; exit 3"};
  p.env = {"ITEST_VAR=hello"};
  p.working_dir = dir->path();
  p.stdout_path = dir->File("out");
  p.stderr_path = dir->File("err");
  auto exit = Subprocess::Run(p, absl::Seconds(20));
  ASSERT_THAT(exit, IsOk());
  EXPECT_TRUE(exit->exited);
  EXPECT_EQ(exit->code, 3);
  EXPECT_THAT(ReadFile(dir->File("out")), IsOkAndHolds("hello\n" + dir->path() + "\n"));
  EXPECT_THAT(ReadFile(dir->File("err")), IsOkAndHolds(std::string("err\n")));
}

TEST_F(ItestUtilTest, SubprocessWaitTimesOutThenKillReportsTheSignal) {
  ProcessOptions p;
  p.binary = "/bin/sh";
  p.args = {"-c", "exec sleep 60"};  // Runs until signalled.
  auto proc = Subprocess::Start(p);
  ASSERT_THAT(proc, IsOk());
  EXPECT_TRUE((*proc)->Running());
  EXPECT_THAT((*proc)->Wait(absl::Milliseconds(50)), StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_THAT((*proc)->Signal(SIGTERM), IsOk());
  auto exit = (*proc)->Wait(absl::Seconds(20));
  ASSERT_THAT(exit, IsOk());
  EXPECT_FALSE(exit->exited);
  EXPECT_EQ(exit->signal, SIGTERM);
  EXPECT_FALSE((*proc)->Running());
}

TEST_F(ItestUtilTest, SubprocessStartFailsForAMissingBinary) {
  ProcessOptions p;
  p.binary = "/nonexistent/kms-plugin";
  EXPECT_THAT(Subprocess::Start(p), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ItestUtilTest, DestructorKillsAndReapsARunningChild) {
  pid_t pid;
  {
    ProcessOptions p;
    p.binary = "/bin/sh";
    p.args = {"-c", "exec sleep 60"};
    auto proc = Subprocess::Start(p);
    ASSERT_THAT(proc, IsOk());
    pid = (*proc)->pid();
  }
  // Reaped: the pid is no longer our child.
  EXPECT_EQ(kill(pid, 0), -1);
}

}  // namespace
}  // namespace kmsplugin::testing
