// AuditLog: `serve --audit-log PATH|stderr`, one JSON object per line for a SIEM (issue 13).
//
// A "kms_request" line for every attempt a backend makes at its KMS (kms/remote_attempt.h:
// retries each get their own line, so that a line matches one CloudTrail or Vault audit event by
// its request id), and an "admin" line for every admin API call (rotate, refresh, report), with
// the caller's uid and pid from SO_PEERCRED. Fields (every one always present):
//
//   kms_request: time, type, backend, operation, key, key_id, encryption_context, result,
//                error_class, http_status, latency_ms, attempt, will_retry, request_id, uid
//   admin:       time, type, action, peer_uid, peer_pid, result, key_id_before, key_id_after,
//                latency_ms
//
//   time        RFC 3339 UTC with milliseconds ("2026-12-02T11:21:38.123Z")
//   result      the canonical status code name ("OK", "UNAVAILABLE", "PERMISSION_DENIED", …)
//   latency_ms  a number, microsecond precision; http_status 0 when there was no HTTP answer;
//   key_id…     "" when not known; uid: the apiserver's request uid ("" for background calls).
//
// It never holds a secret: only the public fields of RemoteAttempt and of AdminRecord (no key
// material, plaintext, token, PIN, body or error message). Strings are JSON-escaped; invalid
// UTF-8 is replaced (U+FFFD).
//
// The file: opened O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NOFOLLOW with mode 0600 (a symlink is
// refused). An existing file that group or others may read or write is FIXED: chmod 0600 and a
// warning; one that cannot be fixed (another owner) or is not a regular file is refused. Each
// line goes out in one write(2) under a mutex (O_APPEND: whole lines, also beside another writer).
// Reopen() (SIGUSR1, after logrotate renamed the file) opens PATH anew the same way; the old
// file keeps the lines written before. "stderr" writes to fd 2 (Reopen() does nothing).
//
// A failed write never fails a KMS call: it is counted (write_failures()) and logged once per
// run of failures. Thread-safe.
#ifndef KMSP_PLUGIN_AUDIT_LOG_H_
#define KMSP_PLUGIN_AUDIT_LOG_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "kms/remote_attempt.h"

namespace kmsplugin {

// One admin API call, as the audit log records it.
struct AdminRecord {
  std::string_view action;  // "refresh", "rotate_data_key", "rotate_kek", "report".
  int64_t peer_uid = -1;    // SO_PEERCRED of the admin connection; -1 when unknown.
  int64_t peer_pid = -1;
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string_view key_id_before;  // The plugin's key_id before and after the action.
  std::string_view key_id_after;
  absl::Duration latency;
};

class AuditLog final : public RemoteAttemptObserver {
 public:
  // `target` "stderr" or a file path (see the file comment). FAILED_PRECONDITION for a file that
  // is not regular, a symlink, or readable by others and not ours to fix; UNAVAILABLE when it
  // cannot be opened. `clock` gives the lines' time and must outlive the log.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(std::string target,
                                                        const Clock* clock = RealClock::Get());
  ~AuditLog() override;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void OnAttempt(const RemoteAttempt& attempt) override;
  void RecordAdmin(const AdminRecord& record);

  // Opens the path anew (logrotate moved the file away); on failure the old file stays in use.
  absl::Status Reopen();

  const std::string& target() const { return target_; }
  uint64_t lines_written() const { return lines_.load(); }
  uint64_t write_failures() const { return failures_.load(); }

 private:
  AuditLog(std::string target, int fd, const Clock* clock)
      : target_(std::move(target)), clock_(clock), fd_(fd) {}
  void WriteLine(std::string line);

  const std::string target_;
  const Clock* const clock_;
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);
  bool failing_ ABSL_GUARDED_BY(mu_) = false;  // The last write failed (logged once).
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> failures_{0};
};

// Several observers behind one pointer (the audit log, retry metrics). Add() them all before the
// backend is built; OnAttempt() then only reads.
class AttemptFanOut final : public RemoteAttemptObserver {
 public:
  void Add(RemoteAttemptObserver* observer) {
    if (observer != nullptr) observers_.push_back(observer);
  }
  bool empty() const { return observers_.empty(); }
  void OnAttempt(const RemoteAttempt& attempt) override {
    for (RemoteAttemptObserver* o : observers_) o->OnAttempt(attempt);
  }

 private:
  std::vector<RemoteAttemptObserver*> observers_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_AUDIT_LOG_H_
