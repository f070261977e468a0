// Subcommands of the kms-plugin binary. Each Add*Command registers its flags on `app` and the
// callback that runs it; the callback stores the process exit code in *exit_code.
#ifndef KMSP_CMD_COMMANDS_H_
#define KMSP_CMD_COMMANDS_H_

#include "CLI/CLI.hpp"

namespace kmsplugin {

void AddServeCommand(CLI::App& app, int* exit_code);
void AddStatusCommand(CLI::App& app, int* exit_code);
// tools/rotate (issue 4).
void AddRotateCommand(CLI::App& app, int* exit_code);
// The offline recovery key pair (issue 12).
void AddRecoveryKeygenCommand(CLI::App& app, int* exit_code);

}  // namespace kmsplugin

#endif  // KMSP_CMD_COMMANDS_H_
