// `kms-plugin rotate`: rotates the data key (and with --kek the KEK) of every listed plugin, waits
// until all report the same new key_id, runs a canary through each, prints one JSON line on
// stdout, and tells the operator the next step (tools/rotate/rotator.h).
//
// Exit codes: 0 converged and every canary passed; 1 the rotation failed or did not converge in
// time; 2 bad flags.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cmd/commands.h"
#include "cmd/flags.h"
#include "tools/rotate/plugin_client.h"
#include "tools/rotate/rotator.h"

namespace kmsplugin {
namespace {

struct RotateFlags {
  std::vector<std::string> sockets;
  std::vector<std::string> admin_sockets;
  bool kek = false;
  bool quiet = false;
  absl::Duration timeout = absl::Seconds(30);
  absl::Duration call_timeout = absl::Seconds(10);
};

int RunRotate(const RotateFlags& flags) {
  if (!flags.admin_sockets.empty() && flags.admin_sockets.size() != flags.sockets.size()) {
    std::cerr << "kms-plugin rotate: give one --admin-socket per --socket, in the same order (or "
                 "none: each defaults to the --socket path + .admin)\n";
    return 2;
  }
  std::vector<rotate::RotatorPlugin> plugins;
  std::set<std::string> seen;
  for (size_t i = 0; i < flags.sockets.size(); ++i) {
    auto address = rotate::ResolvePluginAddress(
        flags.sockets[i], flags.admin_sockets.empty() ? "" : flags.admin_sockets[i]);
    if (!address.ok()) {
      std::cerr << "kms-plugin rotate: " << address.status().message() << "\n";
      return 2;
    }
    if (!seen.insert(address->admin_socket).second) {
      std::cerr << "kms-plugin rotate: plugin " << flags.sockets[i] << " is listed twice\n";
      return 2;
    }
    auto client = rotate::DialPlugin(*address);
    if (!client.ok()) {
      std::cerr << "kms-plugin rotate: " << client.status().message() << "\n";
      return 2;
    }
    plugins.push_back(rotate::RotatorPlugin{*std::move(address), *std::move(client)});
  }

  rotate::RotateOptions options;
  options.rotate_kek = flags.kek;
  options.timeout = flags.timeout;
  options.call_timeout = flags.call_timeout;
  rotate::ProgressPrinter printer(stderr, isatty(STDERR_FILENO) == 1);
  rotate::Rotator::ProgressCallback progress;
  if (!flags.quiet) progress = [&printer](const rotate::Progress& p) { printer(p); };
  rotate::Rotator rotator(std::move(plugins), options, RealClock::Get(), progress);
  rotate::RotateResult result = rotator.Run();
  printer.Finish();

  std::cout << result.ToJson() << std::endl;
  if (!flags.quiet) std::cerr << rotate::NextStepAdvice(result) << std::flush;
  return result.status.ok() ? 0 : 1;
}

}  // namespace

void AddRotateCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<RotateFlags>();
  CLI::App* cmd = app.add_subcommand(
      "rotate",
      "Rotate the data key (--kek: and the KEK) of every plugin sharing a backend, wait until all "
      "report the same new key_id, run a canary through each; print one JSON line");
  cmd->add_option("--socket", flags->sockets,
                  "KMS v2 socket of a plugin (repeat for each control-plane node): "
                  "unix:///ABS/PATH, /ABS/PATH or unix:///@name")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--admin-socket", flags->admin_sockets,
                  "Admin socket of each plugin, in --socket order (default: the --socket path + "
                  ".admin, as serve derives it)")
      ->allow_extra_args(false);
  cmd->add_flag("--kek", flags->kek,
                "Also rotate the KEK at the backend (a new key version), through the first plugin");
  AddDurationFlag(cmd, "--timeout", &flags->timeout, absl::Seconds(1),
                  "How long to wait until every plugin reports the new key_id");
  AddDurationFlag(cmd, "--call-timeout", &flags->call_timeout, absl::Milliseconds(100),
                  "Deadline of each call to a plugin");
  cmd->add_flag("--quiet", flags->quiet, "Print only the final JSON line (no progress, no advice)");
  cmd->callback([flags, exit_code] { *exit_code = RunRotate(*flags); });
}

}  // namespace kmsplugin
