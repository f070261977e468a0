// Issue 9 (security review) on the local keyring backend: the temp file of an atomic replace,
// symlinked and foreign keyrings, the read limit against the number of versions, a rotation at
// the largest version (15), and lock waits bounded by the call's deadline (16).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/local/local_kms.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kKeyringId[] = "0123456789abcdef0123456789abcdef";

class LocalKmsHardeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/local_kms_hardening_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/keyring.json";
  }
  void TearDown() override {
    std::error_code ec;  // Best effort, as `rm -rf`: a leftover temp dir fails no test.
    std::filesystem::remove_all(dir_, ec);
  }

  absl::StatusOr<std::unique_ptr<LocalKms>> Open() {
    LocalKmsOptions o;
    o.keyring_path = path_;
    return LocalKms::Create(o, &clock_);
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(10)); }

  static std::string Slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  static void Spit(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
    ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  }

  // A keyring file laid out exactly as the plugin writes it, with the given versions.
  static std::string KeyringText(const std::vector<uint32_t>& versions, uint32_t primary) {
    nlohmann::ordered_json j;
    j["kind"] = "kms-plugin-local-keyring";
    j["format"] = 1;
    j["keyring_id"] = kKeyringId;
    j["primary"] = primary;
    j["keys"] = nlohmann::ordered_json::array();
    const std::string material = Base64Encode(std::string(32, '\x42'));
    for (uint32_t v : versions) {
      nlohmann::ordered_json k;
      k["version"] = v;
      k["created"] = "2026-11-23T12:00:00Z";
      k["material"] = material;
      j["keys"].push_back(std::move(k));
    }
    return j.dump(2) + "\n";
  }

  size_t VersionsInFile() const {
    auto j = nlohmann::json::parse(Slurp(path_), nullptr, false);
    if (j.is_discarded() || !j.contains("keys")) return 0;
    return j["keys"].size();
  }

  FakeClock clock_;
  std::string dir_;
  std::string path_;
};

TEST_F(LocalKmsHardeningTest, RotationNeverWritesThroughAFilePlantedAtAPredictableTempName) {
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  const std::string victim = dir_ + "/victim";
  Spit(victim, "precious");
  for (const std::string& name :
       {path_ + ".tmp." + std::to_string(getpid()), path_ + ".tmp", path_ + ".new"}) {
    ASSERT_EQ(symlink(victim.c_str(), name.c_str()), 0) << name;
  }
  ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(Slurp(victim), "precious");
  struct stat st;
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(VersionsInFile(), 2u);
}

TEST_F(LocalKmsHardeningTest, ASymlinkedKeyringIsRefusedByDefault) {
  const std::string real = dir_ + "/real.json";
  Spit(real, KeyringText({1}, 1));
  ASSERT_EQ(symlink(real.c_str(), path_.c_str()), 0);
  EXPECT_THAT(Open(), StatusIs(absl::StatusCode::kFailedPrecondition,
                               HasSubstr("--allow-secret-symlinks")));
}

TEST_F(LocalKmsHardeningTest, AKeyringOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the file away";
  Spit(path_, KeyringText({1}, 1));
  ASSERT_EQ(chown(path_.c_str(), 65534, 65534), 0);
  EXPECT_THAT(Open(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("owned by")));
}

TEST_F(LocalKmsHardeningTest, AFifoKeyringIsRefused) {
  ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
  int writer = open(path_.c_str(), O_RDWR | O_CLOEXEC);  // So an unfixed open() cannot hang.
  ASSERT_GE(writer, 0);
  EXPECT_THAT(Open(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
  close(writer);
}

TEST_F(LocalKmsHardeningTest, AKeyringOfNineThousandVersionsLoadsAndRotates) {
  std::vector<uint32_t> versions;
  for (uint32_t v = 1; v <= 9000; ++v) versions.push_back(v);
  Spit(path_, KeyringText(versions, 9000));
  ASSERT_GT(Slurp(path_).size(), size_t{1} << 20);  // Past the reader's former 1 MiB limit.
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(VersionsInFile(), 9001u);
  // A fresh process (a restart) reads it too.
  auto again = Open();
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ((*again)->Probe(Ctx())->kek_id, (*again)->KekIdFor(9001));
}

TEST_F(LocalKmsHardeningTest, RotationAtTheLargestVersionIsRefusedAndLeavesTheFileUntouched) {
  Spit(path_, KeyringText({4294967295u}, 4294967295u));
  const std::string before = Slurp(path_);
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  EXPECT_THAT((*kms)->RotateKek(Ctx()),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("4294967295")));
  EXPECT_EQ(Slurp(path_), before);
  auto again = Open();
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ((*again)->Probe(Ctx())->kek_id, (*again)->KekIdFor(4294967295u));
}

TEST_F(LocalKmsHardeningTest, VersionsBeyondThirtyTwoBitsAreMalformedNotTruncated) {
  // 4294967297 would be read as version 1 by a parser that truncates to uint32.
  std::string text = KeyringText({1}, 1);
  std::string wide = text;
  wide.replace(wide.find("\"version\": 1"), 12, "\"version\": 4294967297");
  wide.replace(wide.find("\"primary\": 1"), 12, "\"primary\": 4294967297");
  Spit(path_, wide);
  EXPECT_THAT(Open(), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string wide_primary = text;
  wide_primary.replace(wide_primary.find("\"primary\": 1"), 12, "\"primary\": 4294967297");
  Spit(path_, wide_primary);
  EXPECT_THAT(Open(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LocalKmsHardeningTest, ALockWaitEndsAtTheCallDeadlineAndNothingIsRotatedLater) {
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  // Another process (here: another open file description) holds the keyring lock.
  int lock = open((path_ + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(lock, 0);
  ASSERT_EQ(flock(lock, LOCK_EX), 0);
  absl::Notification returned;
  absl::Status result;
  std::thread rotate([&] {
    result = (*kms)->RotateKek(CallContext::WithTimeout(absl::Milliseconds(100)));
    returned.Notify();
  });
  // A bound for an unfixed backend, which waits for the lock for ever: no timing is asserted.
  const bool returned_while_locked = returned.WaitForNotificationWithTimeout(absl::Seconds(30));
  flock(lock, LOCK_UN);
  close(lock);
  rotate.join();
  EXPECT_TRUE(returned_while_locked);
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("lock")));
  EXPECT_EQ(VersionsInFile(), 1u);
  // The lock is free again: the next rotation goes through.
  ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(VersionsInFile(), 2u);
}

}  // namespace
}  // namespace kmsplugin
