// `kms-plugin status`: one KMS v2 Status call, printed as one JSON line.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "base/error_text.h"
#include "cmd/commands.h"
#include "cmd/flags.h"
#include "nlohmann/json.hpp"
#include "plugin/kms_v2_client.h"
#include "plugin/listen_address.h"

namespace kmsplugin {
namespace {

struct StatusFlags {
  std::string socket = "unix:///var/run/kmsplugin/kms.sock";
  absl::Duration timeout = absl::Seconds(3);
};

// For a socket file: a one-line reason if `path` is not something we can dial (missing, not a
// socket), instead of gRPC's "Connection refused" after its connect attempt.
std::string SocketFileProblem(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return "no such socket: " + path;
    return "cannot stat " + path + ": " + ErrnoText(errno);
  }
  if (!S_ISSOCK(st.st_mode)) return path + " is not a socket";
  return "";
}

int RunStatus(const StatusFlags& flags) {
  if (auto address = ParseListenAddress(flags.socket); address.ok() && !address->path.empty()) {
    if (std::string problem = SocketFileProblem(address->path); !problem.empty()) {
      std::cerr << "kms-plugin status: " << problem << "\n";
      return 2;
    }
  }
  // No WaitForReady: a probe reports at once that nothing listens.
  auto client = KmsV2Client::Dial(flags.socket, {flags.timeout, /*wait_for_ready=*/false});
  if (!client.ok()) {
    std::cerr << "kms-plugin status: " << client.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<v2::StatusResponse> response = (*client)->Status();
  if (!response.ok()) {
    std::cerr << "kms-plugin status: Status call on " << flags.socket
              << " failed: " << response.status().message() << " (code "
              << static_cast<int>(response.status().code()) << ")\n";
    return 1;
  }
  nlohmann::ordered_json out;
  out["version"] = response->version();
  out["healthz"] = response->healthz();
  out["key_id"] = response->key_id();
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  return response->healthz() == "ok" ? 0 : 1;
}

}  // namespace

void AddStatusCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<StatusFlags>();
  CLI::App* cmd = app.add_subcommand(
      "status", "Call Status on a plugin socket; print {version,healthz,key_id}; exit 0 iff ok");
  cmd->add_option("--socket", flags->socket, "Plugin socket: unix:///ABS/PATH, /ABS/PATH or unix:///@name")
      ->capture_default_str();
  AddDurationFlag(cmd, "--timeout", &flags->timeout, absl::Milliseconds(100),
                  "Deadline of the call");
  cmd->callback([flags, exit_code] { *exit_code = RunStatus(*flags); });
}

}  // namespace kmsplugin
