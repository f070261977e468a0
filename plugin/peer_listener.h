// PeerCheckedListener: a unix listening socket this process owns (abstract or a file of mode
// 0600), whose connections are admitted only if the peer's uid (SO_PEERCRED) is in an allowed
// list (issue 9, item 4: an abstract socket has no permissions, and the static pod runs with
// hostNetwork, so every process on the host could otherwise connect).
//
// One thread blocks in accept4() (it never polls anything else, so it costs nothing per call).
// For each connection it reads SO_PEERCRED: an allowed peer's fd (non-blocking, close-on-exec) is
// handed to `admit` (which takes ownership, e.g. grpc::AddInsecureChannelFromFd); a refused one
// is closed at once and logged with its uid and pid (at most one line per second; the lines
// count the refusals they stand for).
#ifndef KMSP_PLUGIN_PEER_LISTENER_H_
#define KMSP_PLUGIN_PEER_LISTENER_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "plugin/listen_address.h"

namespace kmsplugin {

// Parses "0,1000" into uids. INVALID_ARGUMENT for an empty list or a non-number.
absl::StatusOr<std::vector<uid_t>> ParseAllowedUids(std::string_view text);

// Which of the connections handed over to gRPC came through the admin socket. gRPC names a
// connection added by fd "fd:N" (grpc::ServerContext::peer()). Every such fd comes from a
// PeerCheckedListener, whose admit callback records it here before the hand-over; the kernel
// gives number N to a new connection only after the old one closed, so the entry for N always
// describes the live connection. Connections gRPC accepted itself are named "unix:…": never admin.
// Each admin connection keeps the peer's credentials from SO_PEERCRED (taken at accept time), so
// the audit log can name who made an admin call.
struct PeerCred {
  uid_t uid = static_cast<uid_t>(-1);
  pid_t pid = 0;
};

class AdminConnections {
 public:
  void Record(int fd, bool admin, PeerCred cred = {}) ABSL_LOCKS_EXCLUDED(mu_);
  bool IsAdmin(std::string_view peer) const ABSL_LOCKS_EXCLUDED(mu_);
  // The credentials of the admin connection gRPC names `peer`; nullopt when it is not one.
  std::optional<PeerCred> AdminPeer(std::string_view peer) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, PeerCred> admin_fds_ ABSL_GUARDED_BY(mu_);
};

class PeerCheckedListener {
 public:
  // Binds and listens (a socket file is created with mode 0600; the caller has made sure the
  // path is free). Does not accept yet.
  static absl::StatusOr<std::unique_ptr<PeerCheckedListener>> Listen(
      const ListenAddress& address, std::vector<uid_t> allowed_uids);
  ~PeerCheckedListener();  // Stop().
  PeerCheckedListener(const PeerCheckedListener&) = delete;
  PeerCheckedListener& operator=(const PeerCheckedListener&) = delete;

  // Starts the accept thread. `admit` runs on it and owns the fd it is given; `cred` is the
  // peer's SO_PEERCRED.
  void Start(std::function<void(int fd, const PeerCred& cred)> admit);
  // Stops accepting (pending connections are closed) and joins the thread. Idempotent. Does not
  // remove a socket file (GrpcServer does, if it is still ours).
  void Stop();

  int admitted() const { return admitted_.load(); }
  int refused() const { return refused_.load(); }

 private:
  PeerCheckedListener(int fd, std::string display, std::vector<uid_t> allowed)
      : fd_(fd), display_(std::move(display)), allowed_(std::move(allowed)) {}
  void Run();
  void LogRefusal(pid_t pid, uid_t uid);

  int fd_;
  std::string display_;
  std::vector<uid_t> allowed_;
  std::function<void(int, const PeerCred&)> admit_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> admitted_{0};
  std::atomic<int> refused_{0};
  absl::Time last_log_ = absl::InfinitePast();
  int unlogged_ = 0;  // Refusals since the last log line (accept thread only).
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_PEER_LISTENER_H_
