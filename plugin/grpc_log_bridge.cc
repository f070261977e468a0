#include "plugin/grpc_log_bridge.h"

#include <string_view>

#include "base/printable.h"
#include "grpc/support/log.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

constexpr size_t kMaxGrpcMessage = 1024;

void ToSpdlog(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::err;
  switch (args->severity) {
    case GPR_LOG_SEVERITY_DEBUG:
      level = spdlog::level::debug;
      break;
    case GPR_LOG_SEVERITY_INFO:
      level = spdlog::level::info;
      break;
    case GPR_LOG_SEVERITY_ERROR:
      level = spdlog::level::err;
      break;
  }
  // gRPC passes its full source path; the base name is enough to find the line.
  std::string_view file = args->file != nullptr ? args->file : "?";
  if (const size_t slash = file.rfind('/'); slash != std::string_view::npos) {
    file.remove_prefix(slash + 1);
  }
  spdlog::log(level, "grpc: {} ({}:{})",
              Printable(args->message != nullptr ? args->message : "", kMaxGrpcMessage),
              Printable(file, 128), args->line);
}

}  // namespace

void RouteGrpcLogsToSpdlog() { gpr_set_log_function(ToSpdlog); }

}  // namespace kmsplugin
