// HttpClient: the project's one HTTP(S) client interface, and CurlHttpClient, its libcurl
// implementation (the only file that includes curl).
//
// libcurl is loaded on demand, not linked: the binary has no NEEDED entry for it, and the first
// CurlHttpClient::Create() in the process dlopen()s "libcurl.so.4" (RTLD_NOW | RTLD_LOCAL, once,
// thread-safe), resolves the few functions it calls with dlsym() and runs curl_global_init().
// Why: libcurl drags in about 33 libraries (GnuTLS, whose constructor runs at load, p11-kit,
// Kerberos, LDAP, nettle, libssh2, nghttp2, rtmp, ...), several MB of RSS that `--kms local`
// never uses. When libcurl is missing (or lacks a function), Create() returns FAILED_PRECONDITION
// "cannot load libcurl.so.4 (<dlerror>): install libcurl4 to use --kms aws" and nothing crashes;
// the outcome is kept, so later calls give the same answer. Once loaded, libcurl stays for the
// life of the process. <curl/curl.h> (libcurl4-openssl-dev) is still needed to build.
//
// What it guarantees:
// - Every request finishes by its deadline: the total curl timeout is the time left until
//   `request.deadline` (or `default_timeout` when the deadline is infinite), and the connect
//   timeout is the smaller of that and `connect_timeout`.
// - TLS peer and host verification are always on; `ca_file` replaces the system CA bundle (a test
//   server's own CA), or adds to it with `system_ca_dir`. Plain http:// is allowed (instance
//   metadata and container credentials are plain HTTP on link-local or loopback addresses).
// - Proxies come from the usual environment variables (http_proxy, https_proxy, no_proxy), which
//   libcurl honours by default.
// - Connections are reused: easy handles are pooled and kept between requests.
// - Request and response bodies and headers are never logged, and CURLOPT_VERBOSE is never set.
//   Bodies may hold secrets (plaintext keys, credentials): the request body is held in a
//   SecretBytes and the response body comes back in a SecretBytes; header values are wiped when the
//   request is destroyed.
//
// Thread-safe: concurrent Send() calls use distinct easy handles.
//
// Failure codes of Send(): DEADLINE_EXCEEDED when the deadline passed before or during the
// request; UNAVAILABLE for connection, DNS, TLS and transfer failures (the remote end is
// unreachable or misbehaving); INVALID_ARGUMENT for a malformed URL or method. Any HTTP status,
// including 4xx and 5xx, is a successful Send() with HttpResponse::status set.
#ifndef KMSP_KMS_HTTP_CLIENT_H_
#define KMSP_KMS_HTTP_CLIENT_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

struct HttpHeader {
  std::string name;
  std::string value;
};

// One request. Header values are wiped on destruction (they may carry tokens).
struct HttpRequest {
  HttpRequest() = default;
  ~HttpRequest();
  HttpRequest(HttpRequest&&) = default;
  HttpRequest& operator=(HttpRequest&&) = default;

  std::string method = "GET";  // GET, POST or PUT.
  std::string url;             // http://host[:port]/path?query or https://…
  std::vector<HttpHeader> headers;
  SecretBytes body;  // Sent as-is with Content-Length (never chunked).
  absl::Time deadline = absl::InfiniteFuture();
};

struct HttpResponse {
  int status = 0;
  std::vector<HttpHeader> headers;  // Names lower-cased, values trimmed, in arrival order.
  SecretBytes body;

  // The first header named `name` (lower-case), if any.
  std::optional<std::string_view> Header(std::string_view name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual absl::StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;
};

// The system's hashed CA directory on Debian (ca-certificates).
inline constexpr const char* kSystemCaDir = "/etc/ssl/certs";

struct HttpClientOptions {
  std::string ca_file;  // PEM bundle for https; empty = the system bundle.
  // With `ca_file`: a hashed CA directory (c_rehash layout) trusted as well, so that `ca_file` adds
  // to the system roots instead of replacing them (the GCP and Azure --…-ca-file flags: one
  // bundle for a private endpoint while the public token endpoints keep working). Empty: `ca_file`
  // alone.
  std::string system_ca_dir;
  // PEM client certificate and its private key for mutual TLS (CURLOPT_SSLCERT / SSLKEY); both or
  // neither.
  std::string client_cert_file;
  std::string client_key_file;
  absl::Duration connect_timeout = absl::Seconds(3);
  absl::Duration default_timeout = absl::Seconds(30);  // When a request has no deadline.
  size_t max_idle_handles = 8;  // Easy handles (and their connections) kept for reuse.
  size_t max_response_bytes = 1 << 20;
};

class CurlHttpClient final : public HttpClient {
 public:
  // FAILED_PRECONDITION if libcurl.so.4 cannot be loaded (see above); INVALID_ARGUMENT if
  // `ca_file` is set but not readable; INTERNAL if libcurl cannot start.
  static absl::StatusOr<std::unique_ptr<CurlHttpClient>> Create(HttpClientOptions options);
  ~CurlHttpClient() override;

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;

 private:
  class Impl;
  explicit CurlHttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace http_client_internal {

// Tests only: opens `soname` and resolves the functions CurlHttpClient uses, as Create() does
// with libcurl.so.4, and returns the status Create() would give for that library. A library that
// resolves stays loaded.
absl::Status OpenCurlLibraryForTest(const char* soname);

}  // namespace http_client_internal

}  // namespace kmsplugin

#endif  // KMSP_KMS_HTTP_CLIENT_H_
