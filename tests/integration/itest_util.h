// Small helpers for the integration tests: textual encodings of secret bytes and a scanner that
// finds them in logs or error messages, a minimal loopback HTTP/1.0 GET, a free loopback port,
// and raw unix-socket I/O for feeding garbage to a server.
#ifndef KMSP_TESTS_INTEGRATION_ITEST_UTIL_H_
#define KMSP_TESTS_INTEGRATION_ITEST_UTIL_H_

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kmsplugin::testing {

std::string HexLower(std::string_view bytes);
std::string HexUpper(std::string_view bytes);
std::string Base64Std(std::string_view bytes);  // RFC 4648 §4, padded.
std::string Base64Url(std::string_view bytes);  // RFC 4648 §5, padded.

// The strings that reveal `secret` if found in text: the raw bytes, lower/upper hex, and for
// standard and URL-safe base64 the part of the encoding that does not depend on the bytes
// around it, at each of the three byte alignments (so a secret embedded in a larger base64
// blob, e.g. a serialized request, is found too). Every pattern is at least 8 characters when
// `secret` is at least 8 bytes.
std::vector<std::string> RevealingPatterns(std::string_view secret);

// Finds many secrets in large texts quickly (hash lookup of a fixed-length window, then a full
// compare). Not thread-safe.
class LeakScanner {
 public:
  // REQUIRES: secret.size() >= 8. `label` names it in findings ("seed #12").
  void Add(std::string_view secret, std::string label);
  size_t size() const { return labels_.size(); }
  // One line per finding: "<label> as <encoding> at offset N". Empty when nothing leaked.
  std::vector<std::string> Scan(std::string_view text) const;

 private:
  struct Pattern {
    std::string text;
    std::string encoding;
    size_t label_index;
  };
  void Rebuild() const;

  std::vector<std::string> labels_;
  std::vector<Pattern> patterns_;
  mutable size_t window_ = 0;
  mutable std::unordered_multimap<std::string, size_t>
      by_prefix_;  // window prefix -> pattern index
  mutable bool dirty_ = true;
};

// Whether `text` (an error message, a log) echoes `input`: any RevealingPatterns() of the whole
// input, or of its first or last 12 bytes (inputs shorter than 8 bytes are not checked). Returns
// a description of the first echo found, or "" when there is none.
std::string FindEcho(std::string_view text, std::string_view input);

// An unused 127.0.0.1 TCP port (bound to port 0, then released).
absl::StatusOr<int> PickUnusedLoopbackPort();

struct HttpResponse {
  int status = 0;
  std::string headers;  // Raw header block (status line excluded).
  std::string body;
};
// GET http://127.0.0.1:<port><path> over HTTP/1.0. UNAVAILABLE if the connection is refused,
// DEADLINE_EXCEEDED on timeout.
absl::StatusOr<HttpResponse> HttpGet(int port, std::string_view path,
                                     absl::Duration timeout = absl::Seconds(3));
// Polls HttpGet until it gets any HTTP response or `timeout` passes.
absl::StatusOr<HttpResponse> HttpGetWhenUp(int port, std::string_view path, absl::Duration timeout);

// A connected AF_UNIX stream socket (path, or "@name" for an abstract socket). Closed on
// destruction.
class UnixConnection {
 public:
  static absl::StatusOr<UnixConnection> Connect(std::string_view path);
  UnixConnection(UnixConnection&& other) noexcept;
  UnixConnection& operator=(UnixConnection&& other) noexcept;
  ~UnixConnection();

  // Writes all of `bytes`; a peer that already closed yields an error (EPIPE/ECONNRESET), which
  // callers feeding garbage may accept.
  absl::Status WriteAll(std::string_view bytes);
  // Reads until the peer closes the connection (EOF or reset) or `timeout` passes. Returns what
  // was read; DEADLINE_EXCEEDED if the connection stayed open.
  absl::StatusOr<std::string> ReadUntilClosed(absl::Duration timeout);

 private:
  explicit UnixConnection(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Creates a unix socket file at `path` with nothing listening on it (bind, then close), the way
// a crashed server leaves one behind.
absl::Status CreateStaleSocketFile(const std::string& path);

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_INTEGRATION_ITEST_UTIL_H_
