#include "plugin/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "base/status.h"
#include "fmt/format.h"
#include "grpcpp/ext/health_check_service_server_builder_option.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
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

}  // namespace

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

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const ListenAddress& address, const std::vector<grpc::Service*>& services,
    const ServerOptions& options) {
  KMSP_RETURN_IF_ERROR(PrepareSocketPath(address));
  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("kms-plugin");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
  // A leftover process must never take requests on our socket.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int selected_port = 0;
  builder.AddListeningPort(address.grpc_uri, grpc::InsecureServerCredentials(), &selected_port);
  for (grpc::Service* s : services) builder.RegisterService(s);
  // The socket file is created inside BuildAndStart: make it 0600 from birth.
  mode_t old_mask = umask(0177);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  umask(old_mask);
  if (server == nullptr || selected_port == 0) {
    return absl::UnavailableError(fmt::format("cannot listen on {}", address.display));
  }
  if (!address.path.empty() && chmod(address.path.c_str(), 0600) != 0) {
    server->Shutdown();
    return absl::UnavailableError(fmt::format("cannot chmod 0600 {}: {}", address.path,
                                              std::strerror(errno)));
  }
  if (auto* health = server->GetHealthCheckService()) health->SetServingStatus(true);
  return std::unique_ptr<GrpcServer>(new GrpcServer(address, std::move(server)));
}

GrpcServer::~GrpcServer() { Shutdown(absl::ZeroDuration()); }

void GrpcServer::SetNotServing() {
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
}

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  if (!address_.path.empty()) unlink(address_.path.c_str());
}

}  // namespace kmsplugin
