#include "plugin/peer_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/error_text.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {

absl::StatusOr<std::vector<uid_t>> ParseAllowedUids(std::string_view text) {
  std::vector<uid_t> out;
  for (absl::string_view part : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    uint32_t uid = 0;
    if (!absl::SimpleAtoi(part, &uid) || uid == static_cast<uint32_t>(-1)) {
      return absl::InvalidArgumentError(fmt::format(
          "allowed uids must be comma-separated numbers, e.g. 0,1000; got \"{}\"", std::string(part)));
    }
    out.push_back(static_cast<uid_t>(uid));
  }
  if (out.empty()) return absl::InvalidArgumentError("the allowed uid list is empty");
  return out;
}

void AdminConnections::Record(int fd, bool admin, PeerCred cred) {
  absl::MutexLock lock(&mu_);
  if (admin) {
    admin_fds_[fd] = cred;
  } else {
    admin_fds_.erase(fd);
  }
}

bool AdminConnections::IsAdmin(std::string_view peer) const { return AdminPeer(peer).has_value(); }

std::optional<PeerCred> AdminConnections::AdminPeer(std::string_view peer) const {
  absl::string_view name(peer.data(), peer.size());
  int fd = -1;
  if (!absl::ConsumePrefix(&name, "fd:") || !absl::SimpleAtoi(name, &fd)) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = admin_fds_.find(fd);
  if (it == admin_fds_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::unique_ptr<PeerCheckedListener>> PeerCheckedListener::Listen(
    const ListenAddress& address, std::vector<uid_t> allowed_uids) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socklen_t len = 0;
  if (!address.abstract_name.empty()) {
    if (address.abstract_name.size() + 1 > sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(fmt::format("abstract socket name {} is too long",
                                                    address.display));
    }
    std::memcpy(addr.sun_path + 1, address.abstract_name.data(), address.abstract_name.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + address.abstract_name.size());
  } else {
    if (address.path.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(fmt::format("socket path {} is too long", address.path));
    }
    std::memcpy(addr.sun_path, address.path.data(), address.path.size());
    len = sizeof(addr);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(fmt::format("socket: {}", ErrnoText(errno)));
  mode_t old_mask = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), len);
  int bind_errno = errno;
  umask(old_mask);
  if (rc != 0 || listen(fd, SOMAXCONN) != 0) {
    int err = rc != 0 ? bind_errno : errno;
    close(fd);
    return absl::UnavailableError(
        fmt::format("cannot listen on {}: {}", address.display, ErrnoText(err)));
  }
  return std::unique_ptr<PeerCheckedListener>(
      new PeerCheckedListener(fd, address.display, std::move(allowed_uids)));
}

PeerCheckedListener::~PeerCheckedListener() {
  Stop();
  if (fd_ >= 0) close(fd_);
}

void PeerCheckedListener::Start(std::function<void(int fd, const PeerCred& cred)> admit) {
  admit_ = std::move(admit);
  thread_ = std::thread([this] { Run(); });
}

void PeerCheckedListener::Stop() {
  if (stopping_.exchange(true)) return;
  // On Linux, shutdown() of a listening socket wakes a thread blocked in accept() (EINVAL).
  shutdown(fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
}

void PeerCheckedListener::Run() {
  while (!stopping_.load()) {
    int conn = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load()) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        spdlog::error("accept on {}: {}; retrying in 100ms", display_, ErrnoText(errno));
        absl::SleepFor(absl::Milliseconds(100));
        continue;
      }
      spdlog::error("accept on {}: {}; no longer accepting", display_, ErrnoText(errno));
      return;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    bool ok = getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
              std::find(allowed_.begin(), allowed_.end(), cred.uid) != allowed_.end();
    if (!ok || stopping_.load()) {
      close(conn);
      if (!stopping_.load()) {
        refused_.fetch_add(1);
        LogRefusal(cred.pid, cred.uid);
      }
      continue;
    }
    admitted_.fetch_add(1);
    admit_(conn, PeerCred{cred.uid, cred.pid});
  }
}

void PeerCheckedListener::LogRefusal(pid_t pid, uid_t uid) {
  ++unlogged_;
  absl::Time now = absl::Now();
  if (now - last_log_ < absl::Seconds(1)) return;
  if (unlogged_ == 1) {
    spdlog::warn("refused a connection on {} from uid {} (pid {}): uid not in --allowed-uids",
                 display_, uid, pid);
  } else {
    spdlog::warn(
        "refused {} connections on {} (the last from uid {}, pid {}): uid not in --allowed-uids",
        unlogged_, display_, uid, pid);
  }
  last_log_ = now;
  unlogged_ = 0;
}

}  // namespace kmsplugin
