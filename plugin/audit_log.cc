#include "plugin/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/error_text.h"
#include "base/printable.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

constexpr std::string_view kStderr = "stderr";
// Key names, ARNs and kek_ids are under this; anything longer is cut (Printable()).
constexpr size_t kMaxFieldLength = 1100;

// Opens `path` for appending, mode 0600 (see the header for what is refused or fixed).
absl::StatusOr<int> OpenAppend(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP) {
      return absl::FailedPreconditionError(
          fmt::format("audit log {} is a symlink; give the file's own path", path));
    }
    return absl::UnavailableError(
        fmt::format("cannot open audit log {}: {}", path, ErrnoText(err)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(fmt::format("audit log {} is not a regular file", path));
  }
  if ((st.st_mode & 077) != 0) {
    // An audit trail names keys and callers: only the plugin's user may read it.
    if (fchmod(fd, 0600) != 0) {
      const int err = errno;
      close(fd);
      return absl::FailedPreconditionError(fmt::format(
          "audit log {} has mode {:04o} (readable by others) and cannot be made 0600: {}", path,
          st.st_mode & 07777, ErrnoText(err)));
    }
    spdlog::warn("audit log {} had mode {:04o}; changed it to 0600", path, st.st_mode & 07777);
  }
  return fd;
}

std::string Rfc3339Millis(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

// Milliseconds with microsecond precision (a short, stable number in the JSON).
double Millis(absl::Duration d) {
  return std::round(absl::ToDoubleMilliseconds(d) * 1000.0) / 1000.0;
}

std::string Field(std::string_view s) { return Printable(s, kMaxFieldLength); }

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(std::string target, const Clock* clock) {
  if (target.empty()) return absl::InvalidArgumentError("--audit-log needs a path or stderr");
  int fd = STDERR_FILENO;
  if (target != kStderr) {
    if (target[0] != '/') {
      // SIGUSR1 reopens it later, whatever the working directory is then.
      return absl::InvalidArgumentError(
          fmt::format("--audit-log {} must be an absolute path (or stderr)", target));
    }
    absl::StatusOr<int> opened = OpenAppend(target);
    if (!opened.ok()) return opened.status();
    fd = *opened;
  }
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(target), fd, clock));
}

AuditLog::~AuditLog() {
  absl::MutexLock lock(&mu_);
  if (fd_ != STDERR_FILENO) close(fd_);
}

absl::Status AuditLog::Reopen() {
  if (target_ == kStderr) return absl::OkStatus();
  absl::StatusOr<int> opened = OpenAppend(target_);
  if (!opened.ok()) {
    spdlog::error("audit log: reopen failed, still writing to the old file: {}",
                  opened.status().ToString());
    return opened.status();
  }
  int old = -1;
  {
    absl::MutexLock lock(&mu_);
    old = fd_;
    fd_ = *opened;
  }
  close(old);
  spdlog::info("audit log {} reopened", target_);
  return absl::OkStatus();
}

void AuditLog::OnAttempt(const RemoteAttempt& a) {
  nlohmann::ordered_json j;
  j["time"] = Rfc3339Millis(clock_->Now());
  j["type"] = "kms_request";
  j["backend"] = Field(a.backend);
  j["operation"] = Field(a.operation);
  j["key"] = Field(a.key);
  j["key_id"] = Field(a.key_id);
  j["encryption_context"] = Field(a.encryption_context);
  j["result"] = absl::StatusCodeToString(a.code);
  j["error_class"] = Field(a.error_class);
  j["http_status"] = a.http_status;
  j["latency_ms"] = Millis(a.latency);
  j["attempt"] = a.attempt;
  j["will_retry"] = a.will_retry;
  j["request_id"] = Field(a.request_id);
  j["uid"] = Field(a.uid);
  WriteLine(Dump(j));
}

void AuditLog::RecordAdmin(const AdminRecord& r) {
  nlohmann::ordered_json j;
  j["time"] = Rfc3339Millis(clock_->Now());
  j["type"] = "admin";
  j["action"] = Field(r.action);
  j["peer_uid"] = r.peer_uid;
  j["peer_pid"] = r.peer_pid;
  j["result"] = absl::StatusCodeToString(r.code);
  j["key_id_before"] = Field(r.key_id_before);
  j["key_id_after"] = Field(r.key_id_after);
  j["latency_ms"] = Millis(r.latency);
  WriteLine(Dump(j));
}

void AuditLog::WriteLine(std::string line) {
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  size_t done = 0;
  int err = 0;
  while (done < line.size()) {
    const ssize_t n = write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0) {
    lines_.fetch_add(1);
    if (failing_) spdlog::info("audit log {}: writing again", target_);
    failing_ = false;
    return;
  }
  failures_.fetch_add(1);
  if (!failing_) {
    spdlog::error("audit log {}: write failed ({}); lines are being lost, KMS calls go on", target_,
                  ErrnoText(err));
  }
  failing_ = true;
}

}  // namespace kmsplugin
