#include "tests/integration/itest_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "base/error_text.h"
#include "crypto/encoding.h"
#include "fmt/format.h"

namespace kmsplugin::testing {
namespace {


int RemainingMs(absl::Time deadline) {
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
}

std::string ToUrlAlphabet(std::string b64) {
  for (char& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return b64;
}

}  // namespace

std::string HexLower(std::string_view bytes) { return HexEncode(bytes); }

std::string HexUpper(std::string_view bytes) {
  std::string hex = HexEncode(bytes);
  for (char& c : hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return hex;
}

std::string Base64Std(std::string_view bytes) { return Base64Encode(bytes); }
std::string Base64Url(std::string_view bytes) { return ToUrlAlphabet(Base64Encode(bytes)); }

std::vector<std::string> RevealingPatterns(std::string_view secret) {
  std::vector<std::string> out;
  out.emplace_back(secret);
  out.push_back(HexLower(secret));
  out.push_back(HexUpper(secret));
  // For a shift of s bytes before the secret, the first ceil(8s/6) output chars mix in the
  // preceding bytes; the last group may mix in following bytes or padding. Keep only the chars
  // that depend on the secret alone.
  for (size_t shift = 0; shift < 3; ++shift) {
    std::string padded = std::string(shift, '\0') + std::string(secret);
    std::string b64 = Base64Encode(padded);
    size_t head = (shift * 8 + 5) / 6;
    size_t total_bits = padded.size() * 8;
    size_t full_chars = total_bits / 6;  // Chars whose 6 bits all come from `padded`.
    if (full_chars <= head) continue;
    std::string middle = b64.substr(head, full_chars - head);
    out.push_back(middle);
    out.push_back(ToUrlAlphabet(middle));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void LeakScanner::Add(std::string_view secret, std::string label) {
  size_t index = labels_.size();
  labels_.push_back(std::move(label));
  std::string raw(secret);
  std::string hex = HexLower(secret);
  for (std::string& p : RevealingPatterns(secret)) {
    std::string encoding = p == raw                                     ? "raw bytes"
                           : p == hex                                   ? "lower-case hex"
                           : p == HexUpper(secret)                      ? "upper-case hex"
                           : p.find_first_of("-_") != std::string::npos ? "base64url"
                                                                        : "base64";
    patterns_.push_back(Pattern{std::move(p), std::move(encoding), index});
  }
  dirty_ = true;
}

void LeakScanner::Rebuild() const {
  window_ = SIZE_MAX;
  for (const Pattern& p : patterns_) window_ = std::min(window_, p.text.size());
  by_prefix_.clear();
  for (size_t i = 0; i < patterns_.size(); ++i) {
    by_prefix_.emplace(patterns_[i].text.substr(0, window_), i);
  }
  dirty_ = false;
}

std::vector<std::string> LeakScanner::Scan(std::string_view text) const {
  std::vector<std::string> findings;
  if (patterns_.empty()) return findings;
  if (dirty_) Rebuild();
  if (text.size() < window_) return findings;
  std::string key(window_, '\0');
  for (size_t i = 0; i + window_ <= text.size(); ++i) {
    key.assign(text.data() + i, window_);
    auto [lo, hi] = by_prefix_.equal_range(key);
    for (auto it = lo; it != hi; ++it) {
      const Pattern& p = patterns_[it->second];
      if (text.substr(i, p.text.size()) == p.text) {
        findings.push_back(
            fmt::format("{} as {} at offset {}", labels_[p.label_index], p.encoding, i));
      }
    }
  }
  return findings;
}

std::string FindEcho(std::string_view text, std::string_view input) {
  constexpr size_t kWindow = 12;
  std::vector<std::pair<std::string_view, const char*>> needles = {{input, "the input"}};
  if (input.size() > kWindow) {
    needles.push_back({input.substr(0, kWindow), "the input's first 12 bytes"});
    needles.push_back({input.substr(input.size() - kWindow), "the input's last 12 bytes"});
  }
  for (const auto& [needle, what] : needles) {
    if (needle.size() < 8) continue;
    for (const std::string& p : RevealingPatterns(needle)) {
      if (text.find(p) != std::string_view::npos) {
        return fmt::format("{} ({} bytes) appears encoded as '{}'", what, needle.size(),
                           HexLower(p.substr(0, 16)));
      }
    }
  }
  return "";
}

absl::StatusOr<int> PickUnusedLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket: " + ErrnoText(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError("bind: " + ErrnoText(err));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<HttpResponse> HttpGet(int port, std::string_view path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket: " + ErrnoText(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(fmt::format("connect 127.0.0.1:{}: {}", port, ErrnoText(err)));
  }
  std::string request =
      fmt::format("GET {} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", path, port);
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    int err = errno;
    close(fd);
    return absl::UnavailableError("send: " + ErrnoText(err));
  }
  std::string raw;
  char buf[4096];
  while (true) {
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, RemainingMs(deadline));
    if (r == 0) {
      close(fd);
      return absl::DeadlineExceededError(fmt::format("GET {} timed out", path));
    }
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  size_t line_end = raw.find("\r\n");
  size_t head_end = raw.find("\r\n\r\n");
  if (line_end == std::string::npos || head_end == std::string::npos ||
      raw.compare(0, 5, "HTTP/") != 0) {
    return absl::DataLossError(fmt::format("GET {}: malformed HTTP response", path));
  }
  HttpResponse resp;
  size_t sp = raw.find(' ');
  // "HTTP/1.1 200 OK": the three digits after the first space.
  if (sp == std::string::npos || sp + 4 > line_end ||
      !absl::SimpleAtoi(raw.substr(sp + 1, 3), &resp.status)) {
    return absl::DataLossError("malformed status line");
  }
  resp.headers = raw.substr(line_end + 2, head_end - line_end - 2);
  resp.body = raw.substr(head_end + 4);
  return resp;
}

absl::StatusOr<HttpResponse> HttpGetWhenUp(int port, std::string_view path,
                                           absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    auto resp = HttpGet(port, path, std::max(deadline - absl::Now(), absl::Milliseconds(100)));
    if (resp.ok() || absl::Now() >= deadline) return resp;
    absl::SleepFor(absl::Milliseconds(20));  // Poll interval while the listener comes up.
  }
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<UnixConnection> UnixConnection::Connect(std::string_view path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socklen_t len;
  if (!path.empty() && path[0] == '@') {
    if (path.size() > sizeof(addr.sun_path)) return absl::InvalidArgumentError("name too long");
    addr.sun_path[0] = '\0';
    memcpy(addr.sun_path + 1, path.data() + 1, path.size() - 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
    memcpy(addr.sun_path, path.data(), path.size());
    len = sizeof(addr);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket: " + ErrnoText(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(fmt::format("connect {}: {}", path, ErrnoText(err)));
  }
  return UnixConnection(fd);
}

UnixConnection::UnixConnection(UnixConnection&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

UnixConnection& UnixConnection::operator=(UnixConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

UnixConnection::~UnixConnection() {
  if (fd_ >= 0) close(fd_);
}

absl::Status UnixConnection::WriteAll(std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError("send: " + ErrnoText(errno));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> UnixConnection::ReadUntilClosed(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string out;
  char buf[4096];
  while (true) {
    struct pollfd pfd = {fd_, POLLIN, 0};
    int r = poll(&pfd, 1, RemainingMs(deadline));
    if (r == 0) return absl::DeadlineExceededError("connection still open");
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;  // EOF or reset: closed by the peer.
    out.append(buf, static_cast<size_t>(n));
  }
}

absl::Status CreateStaleSocketFile(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return absl::InvalidArgumentError("path too long");
  memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket: " + ErrnoText(errno));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(fmt::format("bind {}: {}", path, ErrnoText(err)));
  }
  close(fd);  // The file stays; nothing listens.
  return absl::OkStatus();
}

}  // namespace kmsplugin::testing
