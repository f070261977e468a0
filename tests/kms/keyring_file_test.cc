// kms/local/keyring_file.h: the format-1 keyring as the plugin writes it, against the read
// limit; and the options LocalKms gained with it (a cap on versions, allowed symlinks).
#include "kms/local/keyring_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/local/local_kms.h"
#include "kms/secret_file.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::IsOkAndHolds;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;

KeyringFile RingOf(size_t n, uint32_t first_version) {
  KeyringFile k;
  k.keyring_id = "0123456789abcdef0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    k.entries.push_back(KeyringEntry{static_cast<uint32_t>(first_version + i),
                                     "2026-11-23T12:00:00Z", *RandomSecret(32)});
  }
  k.primary = k.entries.back().version;
  return k;
}

TEST(KeyringFileTest, AKeyringOfTheMostVersionsWithTheWidestNumbersFitsTheReadLimit) {
  // Ten-digit versions: the widest entries the plugin can write.
  KeyringFile k = RingOf(kMaxKeyringVersions, 4294967295u - kMaxKeyringVersions + 1);
  std::string text = SerializeKeyring(k);
  EXPECT_LE(text.size(), kMaxKeyringFileSize);
  EXPECT_GT(text.size(), kMaxKeyringFileSize / 2);  // The limit is sized to the format.
  auto parsed = ParseKeyring(text, "test");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->entries.size(), kMaxKeyringVersions);
  WipeString(text);
}

TEST(KeyringFileTest, ParsingWhatWasSerialisedGivesTheSameKeyringAndBytes) {
  KeyringFile k = RingOf(3, 7);
  std::string text = SerializeKeyring(k);
  auto parsed = ParseKeyring(text, "test");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->keyring_id, k.keyring_id);
  EXPECT_EQ(parsed->primary, 9u);
  ASSERT_EQ(parsed->entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(parsed->entries[i].version, k.entries[i].version);
    EXPECT_TRUE(parsed->entries[i].material.ConstantTimeEquals(k.entries[i].material));
  }
  EXPECT_EQ(SerializeKeyring(*parsed), text);
}

class KeyringOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/keyring_options_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/keyring.json";
  }
  void TearDown() override {
    std::error_code ec;  // Best effort, as `rm -rf`: a leftover temp dir fails no test.
    std::filesystem::remove_all(dir_, ec);
  }
  static std::string Slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(10)); }

  FakeClock clock_;
  std::string dir_;
  std::string path_;
};

TEST_F(KeyringOptionsTest, ARotationPastTheMostVersionsIsRefusedAndLeavesTheFileUntouched) {
  LocalKmsOptions o;
  o.keyring_path = path_;
  o.max_versions = 3;
  auto kms = LocalKms::Create(o, &clock_);
  ASSERT_THAT(kms, IsOk());
  ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  const std::string before = Slurp(path_);
  EXPECT_THAT((*kms)->RotateKek(Ctx()),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("holds 3 versions")));
  EXPECT_EQ(Slurp(path_), before);
  EXPECT_EQ((*kms)->Probe(Ctx())->kek_id, (*kms)->KekIdFor(3));
}

TEST_F(KeyringOptionsTest, FromThreeQuartersOfTheMostVersionsEveryRotationWarns) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  LocalKmsOptions o;
  o.keyring_path = path_;
  o.max_versions = 8;
  auto kms = LocalKms::Create(o, &clock_);
  ASSERT_THAT(kms, IsOk());
  auto warnings = [&] {
    int n = 0;
    for (const std::string& line : sink->last_formatted()) {
      n += line.find("can no longer rotate") != std::string::npos;
    }
    return n;
  };
  for (int v = 2; v <= 5; ++v) ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(warnings(), 0);  // 5 of 8.
  ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(warnings(), 1);  // 6 of 8.
  ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(warnings(), 2);  // 7 of 8.
  spdlog::set_default_logger(previous);
}

TEST_F(KeyringOptionsTest, AnAllowedSymlinkIsReadAndRotationReplacesTheFileItPointsTo) {
  const std::string real = dir_ + "/real.json";
  {
    LocalKmsOptions o;
    o.keyring_path = real;
    ASSERT_THAT(LocalKms::Create(o, &clock_), IsOk());
  }
  ASSERT_EQ(symlink(real.c_str(), path_.c_str()), 0);
  LocalKmsOptions o;
  o.keyring_path = path_;
  o.allow_symlinks = true;
  auto kms = LocalKms::Create(o, &clock_);
  ASSERT_THAT(kms, IsOk());
  ASSERT_THAT((*kms)->RotateKek(Ctx()), IsOk());
  struct stat st;
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_THAT(Slurp(real), HasSubstr("\"version\": 2"));
  EXPECT_EQ((*kms)->Probe(Ctx())->kek_id, (*kms)->KekIdFor(2));
}

TEST_F(KeyringOptionsTest, TheProcessWideSettingAllowsSymlinksWhereACallDoesNotSay) {
  const std::string real = dir_ + "/real";
  std::ofstream(real) << "s3cret";
  ASSERT_EQ(chmod(real.c_str(), 0600), 0);
  ASSERT_EQ(symlink(real.c_str(), path_.c_str()), 0);
  EXPECT_THAT(ReadSecretFile(path_), StatusIs(absl::StatusCode::kFailedPrecondition));
  SetSecretFileSymlinksAllowed(true);
  EXPECT_THAT(ReadSecretFile(path_), IsOkAndHolds("s3cret"));
  SecretFileOptions strict;
  strict.allow_symlinks = false;
  EXPECT_THAT(ReadSecretFile(path_, strict), StatusIs(absl::StatusCode::kFailedPrecondition));
  SetSecretFileSymlinksAllowed(false);
  SecretFileOptions small;
  small.max_size = 3;
  EXPECT_THAT(ReadSecretFile(real, small), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin
