// Logging set-up. spdlog's default logger is the only global in the project; main() configures
// it once with InitLogging(). Log lines carry key_id, request uid, sizes, latency and status
// codes; never keys, plaintext, tokens, request bodies or protobuf DebugString() output.
#ifndef KMSP_BASE_LOGGING_H_
#define KMSP_BASE_LOGGING_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace kmsplugin {

enum class LogFormat { kText, kJson };

// Configures the default spdlog logger to write to stderr at `level` ("trace", "debug", "info",
// "warn", "error", "off") in `format`. Returns INVALID_ARGUMENT for an unknown level.
absl::Status InitLogging(std::string_view level, LogFormat format);

}  // namespace kmsplugin

#endif  // KMSP_BASE_LOGGING_H_
