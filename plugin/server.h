// Unix-socket gRPC server for the KMS v2 service and the admin service.
//
// Listen addresses (what kube-apiserver's `endpoint` accepts, kmsv2-contract.md §1.3):
//   unix:///abs/path.sock   a socket file
//   /abs/path.sock          the same, without the scheme
//   unix:///@name or @name  the Linux abstract socket "\0name"
//
// A socket file is created with mode 0600. An existing file is replaced only if it is a socket
// that nobody answers on (stale); if a process answers, Start() fails with FAILED_PRECONDITION.
// The synchronous server's threads are capped with a grpc::ResourceQuota. The standard
// grpc.health.v1 service is on. Shutdown() drains calls in flight until the grace deadline.
#ifndef KMSP_PLUGIN_SERVER_H_
#define KMSP_PLUGIN_SERVER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

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

struct ServerOptions {
  int max_threads = 16;
  int max_receive_message_bytes = 4 * 1024 * 1024;
};

class GrpcServer {
 public:
  // Services are borrowed and must outlive the server.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const ListenAddress& address, const std::vector<grpc::Service*>& services,
      const ServerOptions& options);
  ~GrpcServer();

  // Reports NOT_SERVING on the grpc.health.v1 service (the start of a drain).
  void SetNotServing();

  // Marks NOT_SERVING, stops accepting, waits for calls in flight up to `grace`, cancels the
  // rest, then removes the socket file. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  GrpcServer(ListenAddress address, std::unique_ptr<grpc::Server> server)
      : address_(std::move(address)), server_(std::move(server)) {}
  ListenAddress address_;
  std::unique_ptr<grpc::Server> server_;
  bool shut_down_ = false;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_SERVER_H_
