#include "kms/remote_attempt.h"

#include "base/printable.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {

std::string_view ErrorClassOf(const absl::Status& status, bool throttled) {
  if (status.ok()) return "ok";
  if (throttled || status.code() == absl::StatusCode::kResourceExhausted) return "throttled";
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
      return "unavailable";
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    case absl::StatusCode::kUnauthenticated:
      return "credentials";
    case absl::StatusCode::kPermissionDenied:
      return "denied";
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
      return "key_state";
    case absl::StatusCode::kInvalidArgument:
      return "invalid";
    case absl::StatusCode::kInternal:
      return "internal";
    default:
      return "other";
  }
}

void ReportAttempt(RemoteAttemptObserver* observer, const RemoteAttempt& attempt,
                   const absl::Status& status) {
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug(
        "{} {} uid={} attempt {} {} in {}{}{}{}", attempt.backend, attempt.operation,
        Printable(attempt.uid), attempt.attempt, status.ok() ? "ok" : "failed",
        absl::FormatDuration(attempt.latency),
        attempt.request_id.empty() ? "" : " (request id " + Printable(attempt.request_id, 64) + ")",
        status.ok() ? "" : ": ", status.ok() ? "" : status.ToString());
  }
  if (observer != nullptr) observer->OnAttempt(attempt);
}

}  // namespace kmsplugin
