#include "plugin/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "base/error_text.h"
#include "base/status.h"
#include "fmt/format.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_posix.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

// True if something accepts connections on the socket file `path`.
bool SomeoneListens(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  absl::Cleanup closer = [fd] { close(fd); };
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

absl::Status PrepareSocketPath(const ListenAddress& address) {
  if (address.path.empty()) return absl::OkStatus();
  std::string dir = address.path.substr(0, address.path.rfind('/'));
  if (dir.empty()) dir = "/";
  struct stat dir_st;
  if (stat(dir.c_str(), &dir_st) != 0 || !S_ISDIR(dir_st.st_mode)) {
    return absl::FailedPreconditionError(fmt::format(
        "cannot listen on {}: directory {} does not exist", address.display, dir));
  }
  if (address.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(fmt::format("socket path {} is longer than {} bytes",
                                                  address.path, sizeof(sockaddr_un{}.sun_path) - 1));
  }
  struct stat st;
  if (lstat(address.path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::UnavailableError(fmt::format("cannot stat {}: {}", address.path, ErrnoText(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("{} exists and is not a socket; refusing to replace it", address.path));
  }
  if (SomeoneListens(address.path)) {
    return absl::FailedPreconditionError(
        fmt::format("another process is serving on {}; stop it first", address.path));
  }
  spdlog::info("removing stale socket {}", address.path);
  if (unlink(address.path.c_str()) != 0 && errno != ENOENT) {
    return absl::UnavailableError(fmt::format("cannot remove stale socket {}: {}", address.path,
                                              ErrnoText(errno)));
  }
  return absl::OkStatus();
}

// Serves one completion queue until it is shut down and drained.
void ServeQueue(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Proceed(ok);
}

absl::Status ChmodSocket(const ListenAddress& address) {
  if (!address.path.empty() && chmod(address.path.c_str(), 0600) != 0) {
    return absl::UnavailableError(
        fmt::format("cannot chmod 0600 {}: {}", address.path, ErrnoText(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

int DefaultServingThreads() { return 1; }

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const ListenAddress& kms_address, KmsV2GrpcService* kms, const ListenAddress* admin_address,
    AdminGrpcService* admin, BlockingPool* pool, std::function<bool()> healthy,
    const ServerOptions& options) {
  const bool with_admin = admin != nullptr && admin_address != nullptr;
  std::unique_ptr<GrpcServer> s(new GrpcServer());
  s->healthy_ = std::move(healthy);
  s->pool_ = pool;
  GrpcServer* self = s.get();
  std::vector<std::string> names = {"v2.KeyManagementService"};
  if (with_admin) names.push_back("kmsplugin.admin.v1.Admin");
  s->health_ = std::make_unique<HealthService>(names, [self] { return self->Serving(); });

  KMSP_RETURN_IF_ERROR(PrepareSocketPath(kms_address));
  if (with_admin) KMSP_RETURN_IF_ERROR(PrepareSocketPath(*admin_address));
  // An abstract socket has no permissions: we own it and admit only allowed uids (SO_PEERCRED).
  const bool kms_checked = !kms_address.abstract_name.empty();
  if (kms_checked) {
    auto listener = PeerCheckedListener::Listen(kms_address, options.allowed_uids);
    if (!listener.ok()) return listener.status();
    s->kms_listener_ = std::move(*listener);
  }
  // The admin socket is always ours too: its file mode (0600) admits the owner and root, and the
  // peer check narrows that to the allowed uids and our own.
  if (with_admin) {
    std::vector<uid_t> admin_uids = options.allowed_uids;
    admin_uids.push_back(geteuid());
    auto listener = PeerCheckedListener::Listen(*admin_address, std::move(admin_uids));
    if (!listener.ok()) return listener.status();
    s->admin_listener_ = std::move(*listener);
  }
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // A leftover process must never take requests on our socket.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int kms_port = 0;
  if (kms_checked) {
    kms_port = -1;  // Served through fds handed over by kms_listener_.
  } else {
    builder.AddListeningPort(kms_address.grpc_uri, grpc::InsecureServerCredentials(), &kms_port);
  }
  if (with_admin) builder.RegisterService(admin->service());
  builder.RegisterService(kms->service());
  builder.RegisterService(s->health_->service());
  s->cq_ = builder.AddCompletionQueue();
  mode_t old_mask = umask(0177);  // The socket files are created inside BuildAndStart: 0600.
  s->server_ = builder.BuildAndStart();
  umask(old_mask);
  if (s->server_ == nullptr || kms_port == 0) {
    s->cq_->Shutdown();
    return absl::UnavailableError(fmt::format(
        "cannot listen on {}: the socket could not be created (is the directory writable?)",
        kms_address.display));
  }
  s->RememberSocket(kms_address);
  if (with_admin) s->RememberSocket(*admin_address);
  KMSP_RETURN_IF_ERROR(ChmodSocket(kms_address));
  if (with_admin) KMSP_RETURN_IF_ERROR(ChmodSocket(*admin_address));

  kms->Start(s->cq_.get(), options.slots_per_method);
  if (with_admin) admin->Start(s->cq_.get(), 1, &s->admin_connections_);
  s->health_->Start(s->cq_.get(), 2);
  const int threads =
      options.serving_threads > 0 ? options.serving_threads : DefaultServingThreads();
  for (int i = 0; i < threads; ++i) s->serving_.emplace_back(ServeQueue, s->cq_.get());
  // Each admitted connection is recorded as admin or not before gRPC may take a call on it.
  auto hand_over = [server = s->server_.get(), connections = &s->admin_connections_](bool admin) {
    return [server, connections, admin](int fd, const PeerCred& cred) {
      connections->Record(fd, admin, cred);
      grpc::AddInsecureChannelFromFd(server, fd);
    };
  };
  if (s->kms_listener_ != nullptr) s->kms_listener_->Start(hand_over(/*admin=*/false));
  if (s->admin_listener_ != nullptr) s->admin_listener_->Start(hand_over(/*admin=*/true));
  return s;
}

void GrpcServer::RememberSocket(const ListenAddress& address) {
  if (address.path.empty()) return;
  struct stat st;
  if (lstat(address.path.c_str(), &st) != 0) return;
  socket_files_.push_back(SocketFile{address.path, st.st_dev, st.st_ino});
}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

bool GrpcServer::Serving() const { return !not_serving_.load() && healthy_(); }

void GrpcServer::SetNotServing() { not_serving_.store(true); }

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  SetNotServing();
  // No new connections from here on.
  if (kms_listener_ != nullptr) kms_listener_->Stop();
  if (admin_listener_ != nullptr) admin_listener_->Stop();
  // gRPC unlinks its listening socket paths when it shuts down, whatever file is there by then:
  // a successor's socket at our path (another inode) gets a second name first and is put back.
  std::vector<std::pair<std::string, std::string>> successors;  // {path, second name}
  for (const SocketFile& f : socket_files_) {
    struct stat st;
    if (server_ == nullptr || lstat(f.path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) ||
        (st.st_dev == f.dev && st.st_ino == f.ino)) {
      continue;
    }
    std::string keep = fmt::format("{}.successor-{}", f.path, getpid());
    unlink(keep.c_str());
    if (link(f.path.c_str(), keep.c_str()) == 0) successors.emplace_back(f.path, keep);
  }
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    // Calls still waiting on the backend answer from the pool: let them finish (each is bounded
    // by its own deadline) before the queue closes under them.
    if (pool_ != nullptr) pool_->WaitIdle();
  }
  if (cq_ != nullptr) {
    cq_->Shutdown();
    for (std::thread& t : serving_) t.join();
    // A failed Start() leaves no thread: drain here.
    void* tag = nullptr;
    bool ok = false;
    while (serving_.empty() && cq_->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Proceed(false);
  }
  for (const auto& [path, keep] : successors) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 && errno == ENOENT && rename(keep.c_str(), path.c_str()) == 0) {
      continue;
    }
    unlink(keep.c_str());
  }
  for (const SocketFile& f : socket_files_) {
    struct stat st;
    // Another process may have replaced the file since (a successor on the same path): keep it.
    if (lstat(f.path.c_str(), &st) == 0 && st.st_dev == f.dev && st.st_ino == f.ino) {
      unlink(f.path.c_str());
    }
  }
}

}  // namespace kmsplugin
