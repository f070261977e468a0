// PlaceholderError: refuses a deploy/ template value still holding REPLACE_ME (see the header).
#include "cmd/placeholder_args.h"

#include "base/printable.h"
#include "fmt/format.h"

namespace kmsplugin {

std::optional<std::string> PlaceholderError(const std::vector<std::string>& args,
                                            const std::string& manifest) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.find(kPlaceholderMarker) == std::string::npos) continue;
    std::string flag;
    if (arg.rfind("--", 0) == 0) {
      flag = arg.substr(0, arg.find('='));
    } else if (i > 0 && args[i - 1].rfind('-', 0) == 0 &&
               args[i - 1].find('=') == std::string::npos) {
      flag = args[i - 1];
    } else {
      flag = fmt::format("argument {}", i + 1);
    }
    const std::string where =
        manifest.empty()
            ? "the file this command line comes from (the static pod "
              "/etc/kubernetes/manifests/kms-plugin.yaml or the systemd unit "
              "/etc/systemd/system/kms-plugin.service)"
            : Printable(manifest, 512);
    return fmt::format(
        "{} still holds the placeholder REPLACE_ME of a deploy/ template ({}): edit {} and put "
        "the real value there",
        Printable(flag), Printable(arg), where);
  }
  return std::nullopt;
}

}  // namespace kmsplugin
