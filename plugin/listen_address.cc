#include "plugin/listen_address.h"

#include "fmt/format.h"

namespace kmsplugin {

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view address) {
  ListenAddress out;
  out.display = std::string(address);
  std::string_view rest = address;
  constexpr std::string_view kScheme = "unix://";
  if (rest.substr(0, kScheme.size()) == kScheme) {
    rest.remove_prefix(kScheme.size());
  } else if (rest.find("://") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        fmt::format("listen address {} must use the unix:// scheme", address));
  }
  if (rest.substr(0, 2) == "/@") rest.remove_prefix(1);
  if (!rest.empty() && rest[0] == '@') {
    out.abstract_name = std::string(rest.substr(1));
    if (out.abstract_name.empty()) return absl::InvalidArgumentError("abstract socket name is empty");
    out.grpc_uri = "unix-abstract:" + out.abstract_name;
    return out;
  }
  if (rest.empty() || rest[0] != '/') {
    return absl::InvalidArgumentError(fmt::format(
        "listen address {} must be unix:///ABSOLUTE/PATH, /ABSOLUTE/PATH or unix:///@name", address));
  }
  out.path = std::string(rest);
  out.grpc_uri = "unix:" + out.path;
  return out;
}

std::string DefaultAdminAddress(const ListenAddress& listen) {
  if (!listen.abstract_name.empty()) return "";
  return "unix://" + listen.path + ".admin";
}

absl::Status ValidateAdminAddress(const ListenAddress& admin) {
  if (admin.path.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "admin socket {} is abstract; it must be a socket file (unix:///ABS/PATH), whose mode 0600 "
        "restricts who may rotate keys",
        admin.display));
  }
  return absl::OkStatus();
}

}  // namespace kmsplugin
