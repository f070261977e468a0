#include "kms/remote_attempt.h"

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

}  // namespace kmsplugin
