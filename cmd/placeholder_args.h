// The deploy/ templates hold placeholders (values containing REPLACE_ME) where an operator must
// put a real value (a key ARN, a Vault address, a keyring_id). A copied template that was not
// filled in must fail loudly, for every command and every flag, before anything starts.
#ifndef KMSP_CMD_PLACEHOLDER_ARGS_H_
#define KMSP_CMD_PLACEHOLDER_ARGS_H_

#include <optional>
#include <string>
#include <vector>

namespace kmsplugin {

inline constexpr char kPlaceholderMarker[] = "REPLACE_ME";
// The templates set this environment variable to the path they are installed at, so that the
// refusal names the file to edit.
inline constexpr char kManifestEnv[] = "KMS_PLUGIN_MANIFEST";

// The error message for the first argument holding kPlaceholderMarker, or nullopt when there is
// none. It names the flag ("--aws-key-id" for "--aws-key-id=REPLACE_ME" and for
// "--aws-key-id REPLACE_ME") and the file to edit: `manifest` when not empty, else the paths
// the templates are installed at.
std::optional<std::string> PlaceholderError(const std::vector<std::string>& args,
                                            const std::string& manifest);

}  // namespace kmsplugin

#endif  // KMSP_CMD_PLACEHOLDER_ARGS_H_
