// FakeHttpClient: an HttpClient whose answers come from a test-supplied handler; it records every
// request (method, url, headers, body) for assertions. Thread-safe.
#ifndef KMSP_TESTS_FAKES_FAKE_HTTP_CLIENT_H_
#define KMSP_TESTS_FAKES_FAKE_HTTP_CLIENT_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "kms/http_client.h"

namespace kmsplugin::testing {

struct RecordedRequest {
  std::string method;
  std::string url;
  std::vector<HttpHeader> headers;
  std::string body;

  std::string Header(std::string_view name) const {
    for (const HttpHeader& h : headers) {
      std::string lower = h.name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == name) return h.value;
    }
    return "";
  }
};

inline HttpResponse MakeResponse(int status, std::string_view body,
                                 std::vector<HttpHeader> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = SecretBytes::CopyFrom(body);
  r.headers = std::move(headers);
  return r;
}

class FakeHttpClient final : public HttpClient {
 public:
  using Handler = std::function<absl::StatusOr<HttpResponse>(const RecordedRequest&)>;
  explicit FakeHttpClient(Handler handler) : handler_(std::move(handler)) {}

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    RecordedRequest rec{request.method, request.url, request.headers,
                        std::string(request.body.Reveal())};
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(rec);
    }
    return handler_(rec);
  }

  std::vector<RecordedRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  Handler handler_;
  mutable absl::Mutex mu_;
  std::vector<RecordedRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_FAKES_FAKE_HTTP_CLIENT_H_
