// AuditLog (plugin/audit_log.h): one JSON line per KMS request attempt and per admin call, the
// file's mode, Reopen() after logrotate renamed the file, and no secret in a line.
#include "plugin/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_clock.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kmsp-audit-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/audit.log";
    clock_.Set(absl::FromUnixMillis(1764674498123));  // 2025-12-02T11:21:38.123Z
  }
  void TearDown() override {
    for (const char* name : {"/audit.log", "/audit.log.1"}) unlink((dir_ + name).c_str());
    rmdir(dir_.c_str());
  }

  static std::vector<std::string> Lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
  }

  static RemoteAttempt Attempt(int n) {
    RemoteAttempt a;
    a.backend = "aws";
    a.operation = "Decrypt";
    a.key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    a.key_id = "aws:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    a.encryption_context = "kms-plugin=kubernetes-kms-v2,team=a";
    a.code = n == 1 ? absl::StatusCode::kUnavailable : absl::StatusCode::kOk;
    a.error_class = n == 1 ? "throttled" : "ok";
    a.http_status = n == 1 ? 400 : 200;
    a.latency = absl::Microseconds(12345);
    a.attempt = n;
    a.will_retry = n == 1;
    a.request_id = n == 1 ? "req-1" : "req-2";
    a.uid = "apiserver-uid-7";
    return a;
  }

  std::string dir_;
  std::string path_;
  FakeClock clock_;
};

TEST_F(AuditLogTest, WritesOneParseableLinePerAttemptWithEveryField) {
  auto log = AuditLog::Open(path_, &clock_);
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->OnAttempt(Attempt(1));
  (*log)->OnAttempt(Attempt(2));
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ((*log)->lines_written(), 2u);
  const nlohmann::json first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first.size(), 15u);
  EXPECT_EQ(first["time"], "2025-12-02T11:21:38.123Z");
  EXPECT_EQ(first["type"], "kms_request");
  EXPECT_EQ(first["backend"], "aws");
  EXPECT_EQ(first["operation"], "Decrypt");
  EXPECT_EQ(first["key"],
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab");
  EXPECT_EQ(first["key_id"],
            "aws:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab");
  EXPECT_EQ(first["encryption_context"], "kms-plugin=kubernetes-kms-v2,team=a");
  EXPECT_EQ(first["result"], "UNAVAILABLE");
  EXPECT_EQ(first["error_class"], "throttled");
  EXPECT_EQ(first["http_status"], 400);
  EXPECT_DOUBLE_EQ(first["latency_ms"].get<double>(), 12.345);
  EXPECT_EQ(first["attempt"], 1);
  EXPECT_EQ(first["will_retry"], true);
  EXPECT_EQ(first["request_id"], "req-1");
  EXPECT_EQ(first["uid"], "apiserver-uid-7");
  const nlohmann::json second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["result"], "OK");
  EXPECT_EQ(second["attempt"], 2);
  EXPECT_EQ(second["will_retry"], false);
  EXPECT_EQ(second["request_id"], "req-2");
}

TEST_F(AuditLogTest, WritesAnAdminLine) {
  auto log = AuditLog::Open(path_, &clock_);
  ASSERT_TRUE(log.ok()) << log.status();
  AdminRecord r;
  r.action = "rotate_kek";
  r.peer_uid = 0;
  r.peer_pid = 4242;
  r.code = absl::StatusCode::kOk;
  r.key_id_before = "local:aa:v1";
  r.key_id_after = "local:aa:v2";
  r.latency = absl::Milliseconds(3);
  (*log)->RecordAdmin(r);
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j.size(), 9u);
  EXPECT_EQ(j["time"], "2025-12-02T11:21:38.123Z");
  EXPECT_EQ(j["type"], "admin");
  EXPECT_EQ(j["action"], "rotate_kek");
  EXPECT_EQ(j["peer_uid"], 0);
  EXPECT_EQ(j["peer_pid"], 4242);
  EXPECT_EQ(j["result"], "OK");
  EXPECT_EQ(j["key_id_before"], "local:aa:v1");
  EXPECT_EQ(j["key_id_after"], "local:aa:v2");
  EXPECT_DOUBLE_EQ(j["latency_ms"].get<double>(), 3.0);
}

TEST_F(AuditLogTest, CreatesTheFileWithMode0600EvenUnderAPermissiveUmask) {
  const mode_t old = umask(0);
  auto log = AuditLog::Open(path_, &clock_);
  umask(old);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(ModeOf(path_), 0600u);
}

// Documented in audit_log.h: an existing file others may read is fixed (chmod 0600), and its
// earlier lines are kept (appended to).
TEST_F(AuditLogTest, AnExisting0644FileIsMade0600AndAppendedTo) {
  {
    std::ofstream out(path_);
    out << "{\"earlier\":true}\n";
  }
  ASSERT_EQ(chmod(path_.c_str(), 0644), 0);
  auto log = AuditLog::Open(path_, &clock_);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(ModeOf(path_), 0600u);
  (*log)->OnAttempt(Attempt(2));
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "{\"earlier\":true}");
}

TEST_F(AuditLogTest, RefusesASymlinkARelativePathAndADirectory) {
  ASSERT_EQ(symlink("/dev/null", path_.c_str()), 0);
  EXPECT_EQ(AuditLog::Open(path_, &clock_).status().code(), absl::StatusCode::kFailedPrecondition);
  unlink(path_.c_str());
  EXPECT_EQ(AuditLog::Open("audit.log", &clock_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(AuditLog::Open(dir_, &clock_).ok());
}

TEST_F(AuditLogTest, ReopenAfterARenameWritesToANewFileAndTheOldOneKeepsItsLines) {
  auto log = AuditLog::Open(path_, &clock_);
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->OnAttempt(Attempt(1));
  const std::string rotated = dir_ + "/audit.log.1";
  ASSERT_EQ(rename(path_.c_str(), rotated.c_str()), 0);
  (*log)->OnAttempt(Attempt(2));  // Still the renamed file, until Reopen().
  ASSERT_TRUE((*log)->Reopen().ok());
  (*log)->OnAttempt(Attempt(1));
  (*log)->OnAttempt(Attempt(2));
  EXPECT_EQ(Lines(rotated).size(), 2u);
  EXPECT_EQ(Lines(path_).size(), 2u);
  EXPECT_EQ(ModeOf(path_), 0600u);
  EXPECT_EQ((*log)->write_failures(), 0u);
}

// What reaches a line is only what the attempt report carries; a string with quotes, newlines and
// invalid UTF-8 stays on its one line, sanitised.
TEST_F(AuditLogTest, HostileTextStaysOnOneSanitisedLine) {
  auto log = AuditLog::Open(path_, &clock_);
  ASSERT_TRUE(log.ok()) << log.status();
  RemoteAttempt a = Attempt(1);
  const std::string hostile = "id\"\n{\"type\":\"admin\"}\xff\xfe";
  a.request_id = hostile;
  a.uid = hostile;
  (*log)->OnAttempt(a);
  const std::vector<std::string> lines = Lines(path_);
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["type"], "kms_request");
  EXPECT_EQ(j["request_id"].get<std::string>().find('"'), std::string::npos);
}

TEST_F(AuditLogTest, StderrTargetWritesToFd2AndReopenIsANoOp) {
  auto log = AuditLog::Open("stderr", &clock_);
  ASSERT_TRUE(log.ok()) << log.status();
  ::testing::internal::CaptureStderr();
  (*log)->OnAttempt(Attempt(2));
  EXPECT_TRUE((*log)->Reopen().ok());
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(nlohmann::json::parse(err)["request_id"], "req-2");
}

// A write that fails (here: the log's fd turned into /dev/full, ENOSPC) is counted and never
// reaches the caller; the next good write after it goes through.
TEST_F(AuditLogTest, AFailedWriteIsCountedAndNeverReachesTheCaller) {
  auto log = AuditLog::Open(path_, &clock_);
  ASSERT_TRUE(log.ok()) << log.status();
  int log_fd = -1;
  for (int fd = 3; fd < 1024 && log_fd < 0; ++fd) {
    char link[4096];
    const ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof(link));
    if (n > 0 && std::string(link, n) == path_) log_fd = fd;
  }
  ASSERT_GE(log_fd, 0);
  const int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  ASSERT_EQ(dup2(full, log_fd), log_fd);
  close(full);
  (*log)->OnAttempt(Attempt(1));
  (*log)->OnAttempt(Attempt(2));
  EXPECT_EQ((*log)->write_failures(), 2u);
  EXPECT_EQ((*log)->lines_written(), 0u);
  ASSERT_TRUE((*log)->Reopen().ok());  // What SIGUSR1 does: back to the file.
  (*log)->OnAttempt(Attempt(2));
  EXPECT_EQ((*log)->lines_written(), 1u);
  EXPECT_EQ(Lines(path_).size(), 1u);
}

}  // namespace
}  // namespace kmsplugin
