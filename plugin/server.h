// GrpcServer: the plugin's gRPC serving core, on the async (completion-queue) API.
//
// One grpc::Server with two listening sockets: the KMS v2 socket (v2.KeyManagementService and
// grpc.health.v1) and the admin socket (kmsplugin.admin.v1.Admin as well). The admin socket is
// not a gRPC listening port but a PeerCheckedListener (peer_listener.h): it admits only the uids
// in ServerOptions::allowed_uids and the process's own uid (SO_PEERCRED), records each admitted
// connection in AdminConnections and hands it to the server (grpc::AddInsecureChannelFromFd).
// The admin methods answer UNIMPLEMENTED to any call whose connection is not recorded there, so
// they are not reachable through the KMS socket.
//
// Threads (bench/README.md has the measurements behind this design):
//   - `serving_threads` threads (default 1) pull the server's completion queue and handle each
//     call on the thread that took it: no handoff per call, no per-call thread. Calls in flight
//     are bounded by memory only: a well-formed call is never refused for concurrency. One thread
//     is the default because all of one HTTP/2 connection's work is serialised inside gRPC
//     anyway, and with gRPC's epoll1 engine every extra polling thread takes turns at the one
//     epoll set and costs thread switches per call. Nothing else in the process polls.
//   - Work that may block on the KMS backend runs on a BlockingPool (see grpc_service.h).
//
// An abstract KMS socket has no permissions: it too is a PeerCheckedListener that admits only
// ServerOptions::allowed_uids (its connections are recorded as not admin). A KMS socket file is
// a gRPC listening port.
//
// Socket files are created with mode 0600. An existing file is replaced only if it is a socket
// that nobody answers on (stale); if a process answers, Start() fails with FAILED_PRECONDITION.
// Shutdown removes a socket file only if it is still the one this server created; a successor's
// socket at the same path survives gRPC's own unlink of its listening paths.
#ifndef KMSP_PLUGIN_SERVER_H_
#define KMSP_PLUGIN_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "plugin/admin_service.h"
#include "plugin/grpc_service.h"
#include "plugin/health_service.h"
#include "plugin/listen_address.h"
#include "plugin/peer_listener.h"

namespace kmsplugin {

struct ServerOptions {
  // Threads that poll the sockets and handle calls (0: DefaultServingThreads()).
  int serving_threads = 0;
  // Largest request accepted. A valid DecryptRequest holds a ciphertext (bounded at 64 KiB by
  // the service; the apiserver sends back what Encrypt gave it, under 1 KiB), annotations (at
  // most 32 KiB), a key_id (at most 1 KiB) and a uid (at most 256 bytes): 128 KiB leaves margin.
  int max_receive_message_bytes = 128 * 1024;
  // Uids (SO_PEERCRED) admitted on an abstract KMS socket, which has no permissions, and on the
  // admin socket (there with the process's own uid as well).
  std::vector<uid_t> allowed_uids = {0};
  // Requests kept posted per method and completion queue (a call that finds none waits in
  // gRPC's own queue; each slot costs a ServerContext and two messages of memory).
  int slots_per_method = 4;
};

// The number of serving threads when ServerOptions::serving_threads is 0: 1.
int DefaultServingThreads();

class GrpcServer {
 public:
  // `healthy` tells grpc.health.v1 whether to say SERVING. `admin` may be null (admin API off);
  // then `admin_address` is ignored. `pool` is where the services run their blocking work: the
  // server waits for it before it closes its queues. Every pointer must outlive the server.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const ListenAddress& kms_address, KmsV2GrpcService* kms,
      const ListenAddress* admin_address, AdminGrpcService* admin, BlockingPool* pool,
      std::function<bool()> healthy, const ServerOptions& options);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Reports NOT_SERVING on grpc.health.v1 from now on (the start of a drain).
  void SetNotServing();

  // Marks NOT_SERVING, stops accepting, waits for calls in flight up to `grace`, cancels the
  // rest, joins the threads, then removes the socket files. Idempotent.
  void Shutdown(absl::Duration grace);

  int serving_threads() const { return static_cast<int>(serving_.size()); }

 private:
  // A socket file this server created, identified by device and inode.
  struct SocketFile {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
  };

  GrpcServer() = default;
  bool Serving() const;
  void RememberSocket(const ListenAddress& address);

  std::function<bool()> healthy_;
  BlockingPool* pool_ = nullptr;
  std::atomic<bool> not_serving_{false};
  std::unique_ptr<HealthService> health_;
  AdminConnections admin_connections_;
  std::unique_ptr<PeerCheckedListener> kms_listener_;  // Abstract --listen only.
  std::unique_ptr<PeerCheckedListener> admin_listener_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::vector<std::thread> serving_;
  std::vector<SocketFile> socket_files_;
  bool shut_down_ = false;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_SERVER_H_
