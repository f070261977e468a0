// Logging set-up. spdlog's default logger is the only global in the project; main() configures
// it once with InitLogging(). Log lines carry key_id, request uid, sizes, latency and status
// codes; never keys, plaintext, tokens, request bodies or protobuf DebugString() output.
#ifndef KMSP_BASE_LOGGING_H_
#define KMSP_BASE_LOGGING_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace kmsplugin {

// Configures the default spdlog logger to write one line per record to stderr
// ("<RFC 3339 UTC> <level letter> <message>") at `level` ("trace", "debug", "info", "warn",
// "error", "off"). Returns INVALID_ARGUMENT for an unknown level.
absl::Status InitLogging(std::string_view level);

}  // namespace kmsplugin

#endif  // KMSP_BASE_LOGGING_H_
