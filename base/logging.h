// Logging set-up. spdlog's default logger is the only global in the project; main() configures
// it once with InitLogging(). Log lines carry key_id, request uid, sizes, latency and status
// codes; never keys, plaintext, tokens, request bodies or protobuf DebugString() output.
//
// Two formats (`serve --log-format`), both one record per line on stderr:
//   text  "<RFC 3339 UTC, µs> <level letter> <message>" (the default, unchanged)
//   json  one JSON object per line, with these stable fields, in this order:
//           time    RFC 3339 UTC with microseconds, "2026-12-02T11:21:38.123456Z"
//           level   "trace", "debug", "info", "warn", "error" or "critical"
//           msg     the message; any bytes: escaped as JSON, invalid UTF-8 replaced by U+FFFD
//           uid     the apiserver request uid, only when the record was logged in the scope of
//                   a request that has one (ScopedLogContext)
//           key_id  the key_id that request names or was answered with, only when known in that
//                   scope
//         uid and key_id are sanitised as in text logs (Printable(): printable ASCII; uid cut at
//         64 characters, key_id at 256, a cut value ending in "...(N bytes)").
#ifndef KMSP_BASE_LOGGING_H_
#define KMSP_BASE_LOGGING_H_

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kmsplugin {

enum class LogFormat { kText, kJson };

// "text" or "json"; INVALID_ARGUMENT otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name);

// Configures the default spdlog logger to write one record per line to stderr in `format` at
// `level` ("trace", "debug", "info", "warn", "error", "off"). Returns INVALID_ARGUMENT for an
// unknown level.
absl::Status InitLogging(std::string_view level, LogFormat format = LogFormat::kText);

// The request the calling thread is working for: records logged on this thread while the object
// lives carry its uid and key_id (JSON format; the text format is unchanged). Scopes nest: the
// innermost one wins, and its destructor restores the enclosing one. The values are copied (at
// most 64 and 256 bytes kept, no allocation), so the scope may outlive the request's strings.
// Must be destroyed on the thread that made it (a local variable).
class ScopedLogContext {
 public:
  ScopedLogContext(std::string_view uid, std::string_view key_id);
  ~ScopedLogContext();
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

  static constexpr size_t kMaxUid = 64;
  static constexpr size_t kMaxKeyId = 256;

  // The innermost scope's values, sanitised (Printable()); "" outside any scope or when empty.
  static std::string CurrentUid();
  static std::string CurrentKeyId();

 private:
  struct Value {
    char bytes[kMaxKeyId];
    size_t kept = 0;
    size_t size = 0;  // The original size (> kept when cut).
    void Set(std::string_view v, size_t max);
    std::string Sanitised(size_t max) const;
  };
  Value uid_;
  Value key_id_;
  const ScopedLogContext* previous_;
};

namespace internal {

// One record of the json format, without the newline, with the calling thread's log context.
// `level` is one of the level names above.
std::string JsonLogRecord(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view msg);

// Appends `bytes` as a JSON string literal (quotes included): '"', '\\' and control characters
// escaped, valid UTF-8 kept, each invalid byte sequence replaced by \ufffd.
void AppendJsonString(std::string* out, std::string_view bytes);

}  // namespace internal
}  // namespace kmsplugin

#endif  // KMSP_BASE_LOGGING_H_
