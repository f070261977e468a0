// kms/secret_file.h: the one reader of files that hold secrets (keyrings, AWS credential files).
// Issue 9: the owner is checked and symlinks are refused unless allowed; issue 13: anything that
// is not a regular file (a FIFO, a device) is refused without blocking.
#include "kms/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::IsOkAndHolds;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/secret_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/secret";
  }
  void TearDown() override {
    std::error_code ec;  // Best effort, as `rm -rf`: a leftover temp dir fails no test.
    std::filesystem::remove_all(dir_, ec);
  }

  void Write(const std::string& path, const std::string& text, mode_t mode = 0600) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ASSERT_EQ(fchmod(fd, mode), 0);
    close(fd);
  }

  std::string dir_;
  std::string path_;
};

TEST_F(SecretFileTest, ReadsARegularFileOfTheProcessOwner) {
  Write(path_, "s3cret");
  EXPECT_THAT(ReadSecretFile(path_, /*owner_only=*/true), IsOkAndHolds("s3cret"));
}

TEST_F(SecretFileTest, RefusesASymlinkByDefault) {
  Write(path_, "s3cret");
  std::string link = dir_ + "/link";
  ASSERT_EQ(symlink(path_.c_str(), link.c_str()), 0);
  EXPECT_THAT(ReadSecretFile(link), StatusIs(absl::StatusCode::kFailedPrecondition,
                                             HasSubstr("--allow-secret-symlinks")));
}

TEST_F(SecretFileTest, RefusesAFileOwnedByAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the file away";
  Write(path_, "s3cret");
  ASSERT_EQ(chown(path_.c_str(), 65534, 65534), 0);
  EXPECT_THAT(ReadSecretFile(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("owned by uid 65534")));
}

TEST_F(SecretFileTest, RefusesAFifoWithoutBlocking) {
  ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
  // A writer holding the FIFO open, so that even a reader that opens it blocking gets past
  // open() and the test fails instead of hanging on an unfixed reader.
  int writer = open(path_.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(write(writer, "{}", 2), 2);
  EXPECT_THAT(ReadSecretFile(path_, /*owner_only=*/true),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
  close(writer);
}

TEST_F(SecretFileTest, RefusesADevice) {
  EXPECT_THAT(ReadSecretFile("/dev/null"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a regular file")));
}

TEST_F(SecretFileTest, RefusesADirectory) {
  EXPECT_THAT(ReadSecretFile(dir_), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(SecretFileTest, AMissingFileIsNotFound) {
  EXPECT_THAT(ReadSecretFile(dir_ + "/absent"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(SecretFileTest, RefusesAFileReadableByOthersWhenOwnerOnly) {
  Write(path_, "s3cret", 0644);
  EXPECT_THAT(ReadSecretFile(path_, /*owner_only=*/true),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chmod 600")));
  EXPECT_THAT(ReadSecretFile(path_), IsOkAndHolds("s3cret"));
}

}  // namespace
}  // namespace kmsplugin
