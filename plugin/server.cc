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
#include "base/status.h"
#include "fmt/format.h"
#include "grpcpp/generic/async_generic_service.h"
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
    return absl::UnavailableError(fmt::format("cannot stat {}: {}", address.path, std::strerror(errno)));
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
                                              std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Answers UNIMPLEMENTED to a method the server does not register. gRPC does this by itself only
// on frequently polled queues, which the admin server's reading thread deliberately is not.
class UnknownMethodCall final : public CompletionTag {
 public:
  static void Post(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* cq) {
    auto* call = new UnknownMethodCall(service, cq);
    service->RequestCall(&call->context_, &call->stream_, cq, cq, call);
  }
  void Proceed(bool ok) override {
    if (!ok || finishing_) {
      delete this;
      return;
    }
    Post(service_, cq_);
    finishing_ = true;
    stream_.Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method"), this);
  }

 private:
  UnknownMethodCall(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), stream_(&context_) {}
  grpc::AsyncGenericService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::GenericServerContext context_;
  grpc::GenericServerAsyncReaderWriter stream_;
  bool finishing_ = false;
};

// Serves one completion queue until it is shut down and drained.
void ServeQueue(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Proceed(ok);
}

void DrainQueue(grpc::ServerCompletionQueue* cq) {
  cq->Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Proceed(false);
}

// Builds and starts one server on `address`, mode 0600 from birth.
absl::StatusOr<std::unique_ptr<grpc::Server>> BuildOn(grpc::ServerBuilder& builder,
                                                      const ListenAddress& address) {
  int selected_port = 0;
  builder.AddListeningPort(address.grpc_uri, grpc::InsecureServerCredentials(), &selected_port);
  mode_t old_mask = umask(0177);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  umask(old_mask);
  if (server == nullptr || selected_port == 0) {
    return absl::UnavailableError(fmt::format(
        "cannot listen on {}: the socket could not be created (is the directory writable?)",
        address.display));
  }
  if (!address.path.empty() && chmod(address.path.c_str(), 0600) != 0) {
    int err = errno;
    server->Shutdown();
    return absl::UnavailableError(
        fmt::format("cannot chmod 0600 {}: {}", address.path, std::strerror(err)));
  }
  return server;
}

void ApplyCommonOptions(grpc::ServerBuilder& builder, const ServerOptions& options) {
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // A leftover process must never take requests on our socket.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

}  // namespace

int DefaultServingThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(n == 0 ? 2u : n, 1u, 4u));
}

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const ListenAddress& kms_address, KmsV2GrpcService* kms, const ListenAddress* admin_address,
    AdminGrpcService* admin, BlockingPool* pool, std::function<bool()> healthy,
    const ServerOptions& options) {
  // The admin server relies on the serving threads polling every socket (see server.h).
  const char* strategy = std::getenv("GRPC_POLL_STRATEGY");
  if (strategy != nullptr && std::string(strategy) != "epoll1") {
    spdlog::warn("GRPC_POLL_STRATEGY={} ignored: kms-plugin needs epoll1", strategy);
  }
  setenv("GRPC_POLL_STRATEGY", "epoll1", 1);

  std::unique_ptr<GrpcServer> s(new GrpcServer());
  s->healthy_ = std::move(healthy);
  s->pool_ = pool;
  GrpcServer* self = s.get();
  auto serving = [self] { return self->Serving(); };
  const int threads =
      options.serving_threads > 0 ? options.serving_threads : DefaultServingThreads();

  KMSP_RETURN_IF_ERROR(PrepareSocketPath(kms_address));
  s->kms_health_ = std::make_unique<HealthService>(
      std::vector<std::string>{"v2.KeyManagementService"}, serving);
  grpc::ServerBuilder kms_builder;
  ApplyCommonOptions(kms_builder, options);
  kms_builder.RegisterService(kms->service());
  kms_builder.RegisterService(s->kms_health_->service());
  s->kms_cq_ = kms_builder.AddCompletionQueue();
  KMSP_ASSIGN_OR_RETURN(s->kms_server_, BuildOn(kms_builder, kms_address));
  s->RememberSocket(kms_address);
  kms->Start(s->kms_cq_.get(), options.slots_per_method);
  s->kms_health_->Start(s->kms_cq_.get(), 2);
  for (int i = 0; i < threads; ++i) s->serving_.emplace_back(ServeQueue, s->kms_cq_.get());

  if (admin != nullptr && admin_address != nullptr) {
    KMSP_RETURN_IF_ERROR(PrepareSocketPath(*admin_address));
    s->admin_health_ = std::make_unique<HealthService>(
        std::vector<std::string>{"kmsplugin.admin.v1.Admin"}, serving);
    grpc::ServerBuilder admin_builder;
    ApplyCommonOptions(admin_builder, options);
    admin_builder.RegisterService(admin->service());
    admin_builder.RegisterService(s->admin_health_->service());
    admin_builder.RegisterAsyncGenericService(&s->admin_unknown_);
    s->admin_unused_cq_ = admin_builder.AddCompletionQueue(/*is_frequently_polled=*/true);
    s->admin_cq_ = admin_builder.AddCompletionQueue(/*is_frequently_polled=*/false);
    KMSP_ASSIGN_OR_RETURN(s->admin_server_, BuildOn(admin_builder, *admin_address));
    s->RememberSocket(*admin_address);
    admin->Start(s->admin_cq_.get(), 2);
    s->admin_health_->Start(s->admin_cq_.get(), 1);
    UnknownMethodCall::Post(&s->admin_unknown_, s->admin_cq_.get());
    s->admin_thread_ = std::thread(ServeQueue, s->admin_cq_.get());
  }
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
  const auto deadline = absl::ToChronoTime(absl::Now() + grace);
  // Admin first: its calls make progress only while the serving threads poll.
  if (admin_server_ != nullptr) admin_server_->Shutdown(deadline);
  if (kms_server_ != nullptr) kms_server_->Shutdown(deadline);
  // Calls still waiting on the backend answer from the pool: let them finish (each is bounded by
  // its own deadline) before the queues close under them.
  if (pool_ != nullptr) pool_->WaitIdle();
  if (admin_cq_ != nullptr) {
    admin_cq_->Shutdown();
    if (admin_thread_.joinable()) admin_thread_.join();
    DrainQueue(admin_unused_cq_.get());
  }
  if (kms_cq_ != nullptr) {
    kms_cq_->Shutdown();
    for (std::thread& t : serving_) t.join();
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
