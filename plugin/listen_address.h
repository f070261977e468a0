// Listen addresses (what kube-apiserver's `endpoint` accepts, kmsv2-contract.md §1.3):
//   unix:///abs/path.sock   a socket file
//   /abs/path.sock          the same, without the scheme
//   unix:///@name or @name  the Linux abstract socket "\0name"
// Parsing only: no gRPC server or client here, so that tools can use it cheaply.
#ifndef KMSP_PLUGIN_LISTEN_ADDRESS_H_
#define KMSP_PLUGIN_LISTEN_ADDRESS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kmsplugin {

struct ListenAddress {
  std::string grpc_uri;  // What grpc::ServerBuilder takes: "unix:/p" or "unix-abstract:name".
  std::string path;      // The socket file ("" for abstract sockets).
  std::string abstract_name;
  std::string display;   // For logs: the address as given.
};

// INVALID_ARGUMENT for a relative path, another scheme or an empty name.
absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view address);

// The admin socket's default address for a given --listen: "unix://<path>.admin". Empty for an
// abstract --listen: the admin API must be on a socket file, whose mode 0600 is its access control
// (an abstract socket has no permissions), so it then needs an explicit --admin-socket.
std::string DefaultAdminAddress(const ListenAddress& listen);

// INVALID_ARGUMENT unless `admin` is a socket file (not an abstract socket).
absl::Status ValidateAdminAddress(const ListenAddress& admin);

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_LISTEN_ADDRESS_H_
