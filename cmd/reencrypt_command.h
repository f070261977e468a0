// `kms-plugin reencrypt`: offline etcd re-encryption and key inventory (tools/reencrypt).
#ifndef KMSP_CMD_REENCRYPT_COMMAND_H_
#define KMSP_CMD_REENCRYPT_COMMAND_H_

#include "CLI/CLI.hpp"

namespace kmsplugin {

// Registers the "reencrypt" subcommand on `app`. When it runs, *exit_code becomes 0 when every
// object is current (or was rewritten / would be, with --dry-run), 1 when some objects could not
// be processed (they are reported and left untouched), 2 when the run could not start or stopped
// early (bad flags or config, KMS plugin or etcd unreachable).
void AddReencryptCommand(CLI::App& app, int* exit_code);

}  // namespace kmsplugin

#endif  // KMSP_CMD_REENCRYPT_COMMAND_H_
