// CurlHttpClient loads libcurl on demand (kms/http_client.h): this test binary does not link
// libcurl, nothing maps it before the first Create(), a client then talks HTTP to an in-process
// loopback server, and a missing or incomplete library is a FAILED_PRECONDITION naming libcurl4.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/http_client.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Optional;

// Lines of /proc/self/maps that name a file containing `needle`.
int MappedLines(const std::string& needle) {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

// Taken before main() runs, so before any test of this binary could have created a client.
const int kLibcurlLinesAtStart = MappedLines("libcurl");
const int kGnutlsLinesAtStart = MappedLines("libgnutls");

// A one-shot HTTP/1.1 server on 127.0.0.1: accepts one connection, reads one request (headers and
// a Content-Length body), answers 200 with "echo:" + body, and records the request head.
class LoopbackServer {
 public:
  LoopbackServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd_, 1) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { ServeOne(); });
  }
  ~LoopbackServer() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }

  int port() const { return port_; }
  // Valid after the response was received (the server thread is done writing by then).
  const std::string& head() const { return head_; }

 private:
  void ServeOne() {
    const int conn = accept(fd_, nullptr, nullptr);
    if (conn < 0) return;
    std::string in;
    size_t body_at = std::string::npos;
    size_t content_length = 0;
    char buf[4096];
    while (body_at == std::string::npos || in.size() < body_at + content_length) {
      const ssize_t n = read(conn, buf, sizeof(buf));
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      if (body_at == std::string::npos && (body_at = in.find("\r\n\r\n")) != std::string::npos) {
        body_at += 4;
        head_ = in.substr(0, body_at);
        const size_t cl = head_.find("Content-Length: ");
        if (cl != std::string::npos) content_length = std::strtoul(head_.c_str() + cl + 16, nullptr, 10);
      }
    }
    const std::string body = "echo:" + (body_at == std::string::npos ? "" : in.substr(body_at));
    const std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Echo: Yes \r\n"
                            "Content-Length: " + std::to_string(body.size()) +
                            "\r\nConnection: close\r\n\r\n" + body;
    for (size_t sent = 0; sent < out.size();) {
      const ssize_t n = write(conn, out.data() + sent, out.size() - sent);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    close(conn);
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string head_;
};

TEST(CurlHttpClientLoading, LibcurlIsMappedOnlyOnceTheFirstClientIsCreated) {
  EXPECT_EQ(kLibcurlLinesAtStart, 0);
  EXPECT_EQ(kGnutlsLinesAtStart, 0);
  ASSERT_THAT(CurlHttpClient::Create({}), IsOk());
  EXPECT_GT(MappedLines("libcurl.so.4"), 0);
  ASSERT_THAT(CurlHttpClient::Create({}), IsOk());  // The second Create() reuses the table.
}

TEST(CurlHttpClientLoading, ALoadedClientPostsToALoopbackServerAndReadsTheAnswer) {
  LoopbackServer server;
  ASSERT_GT(server.port(), 0);
  auto client = CurlHttpClient::Create({});
  ASSERT_THAT(client, IsOk());
  HttpRequest req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/path?q=1";
  req.headers.push_back({"X-Test", "value"});
  req.body = SecretBytes::CopyFrom("hello");
  req.deadline = absl::Now() + absl::Seconds(20);
  absl::StatusOr<HttpResponse> resp = (*client)->Send(req);
  ASSERT_THAT(resp, IsOk());
  EXPECT_EQ(resp->status, 200);
  EXPECT_THAT(resp->Header("x-echo"), Optional(std::string_view("Yes")));
  EXPECT_EQ(resp->body.Reveal(), "echo:hello");
  EXPECT_THAT(server.head(), AllOf(HasSubstr("POST /path?q=1 HTTP/1.1\r\n"),
                                   HasSubstr("X-Test: value\r\n"),
                                   HasSubstr("Content-Length: 5\r\n")));
}

TEST(CurlHttpClientLoading, AMissingLibraryIsAFailedPreconditionThatNamesLibcurl4) {
  EXPECT_THAT(http_client_internal::OpenCurlLibraryForTest("libkmsp-no-such-curl.so.4"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("cannot load libkmsp-no-such-curl.so.4 ("),
                             HasSubstr("): install libcurl4 to use --kms aws"))));
}

TEST(CurlHttpClientLoading, ALibraryWithoutCurlsFunctionsIsAFailedPreconditionNamingTheSymbol) {
  EXPECT_THAT(http_client_internal::OpenCurlLibraryForTest("libc.so.6"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("cannot load libc.so.6 ("), HasSubstr("curl_global_init"),
                             HasSubstr("install libcurl4 to use --kms aws"))));
}

}  // namespace
}  // namespace kmsplugin
