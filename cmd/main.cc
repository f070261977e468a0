// kms-plugin: dispatch only. serve | status | rotate | reencrypt | recovery-keygen.
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "base/logging.h"
#include "base/printable.h"
#include "cmd/commands.h"
#include "cmd/placeholder_args.h"
#include "cmd/reencrypt_command.h"
#include "crypto/init.h"
#include "plugin/grpc_log_bridge.h"

namespace {

int Run(int argc, char** argv) {
  kmsplugin::InitCrypto();
  // Debian's abseil checks every Mutex acquisition for lock-order cycles (a debug aid that costs
  // a graph update per lock); the unit tests keep it, the binary turns it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Logs go to stderr (stdout is for results); `serve --log-level` sets its own level.
  (void)kmsplugin::InitLogging("info");
  // gRPC core's own records go through the same logger (format, level), not straight to stderr.
  kmsplugin::RouteGrpcLogsToSpdlog();

  // A template from deploy/ copied without filling in its placeholders: refuse before any
  // command starts (exit status 2, as for any other bad flag).
  const char* manifest = std::getenv(kmsplugin::kManifestEnv);
  if (auto error = kmsplugin::PlaceholderError(std::vector<std::string>(argv + 1, argv + argc),
                                               manifest == nullptr ? "" : manifest)) {
    std::fprintf(stderr, "kms-plugin: %s\n", error->c_str());
    return 2;
  }

  CLI::App app{"kms-plugin: a Kubernetes KMS v2 plugin with a local key hierarchy, and its tools"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  app.set_version_flag("--version", "kms-plugin " KMSP_VERSION);
  int exit_code = 0;
  kmsplugin::AddServeCommand(app, &exit_code);
  kmsplugin::AddStatusCommand(app, &exit_code);
  kmsplugin::AddRotateCommand(app, &exit_code);
  kmsplugin::AddReencryptCommand(app, &exit_code);
  kmsplugin::AddRecoveryKeygenCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // Key material lives in this process: no core dumps, no ptrace by other users.
  prctl(PR_SET_DUMPABLE, 0);
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);

  // An exception no command caught ends the process with a message and exit status 1, not
  // std::terminate's abort.
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kms-plugin: unexpected error: %s\n",
                 kmsplugin::Printable(e.what()).c_str());
  } catch (...) {
    std::fprintf(stderr, "kms-plugin: unexpected error\n");
  }
  return 1;
}
