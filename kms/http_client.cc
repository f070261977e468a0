#include "kms/http_client.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <string.h>  // explicit_bzero

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "base/status.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

// libcurl's functions, resolved from the shared library at run time (http_client.h: on-demand
// loading). The types are <curl/curl.h>'s own prototypes; curl_easy_setopt and curl_easy_getinfo
// stay variadic, as in the library, and are called through these pointers with the argument types
// libcurl documents for each option (long, char*, curl_off_t, callback and data pointers).
struct CurlApi {
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&::curl_easy_reset) easy_reset = nullptr;
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;
  decltype(&::curl_easy_perform) easy_perform = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;
};

constexpr char kCurlSoname[] = "libcurl.so.4";

absl::Status CannotLoad(const char* soname) {
  const char* why = dlerror();
  return absl::FailedPreconditionError(
      fmt::format("cannot load {} ({}): install libcurl4 to use --kms aws", soname,
                  why != nullptr ? why : "unknown dlerror"));
}

// dlopen + dlsym of every function in CurlApi. The library stays loaded for the life of the
// process once every symbol resolved (libcurl and its TLS stack cannot be unloaded safely);
// on a failure it is closed again.
absl::StatusOr<const CurlApi*> OpenCurl(const char* soname) {
  dlerror();  // Clears a stale error.
  void* lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return CannotLoad(soname);
  auto api = std::make_unique<CurlApi>();
  bool ok = true;
  auto resolve = [&](const char* name, auto& fn) {
    if (!ok) return;
    void* sym = dlsym(lib, name);
    if (sym == nullptr) {
      ok = false;
      return;
    }
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(sym);
  };
  resolve("curl_global_init", api->global_init);
  resolve("curl_easy_init", api->easy_init);
  resolve("curl_easy_cleanup", api->easy_cleanup);
  resolve("curl_easy_reset", api->easy_reset);
  resolve("curl_easy_setopt", api->easy_setopt);
  resolve("curl_easy_perform", api->easy_perform);
  resolve("curl_easy_getinfo", api->easy_getinfo);
  resolve("curl_easy_strerror", api->easy_strerror);
  resolve("curl_slist_append", api->slist_append);
  resolve("curl_slist_free_all", api->slist_free_all);
  if (!ok) {
    absl::Status status = CannotLoad(soname);
    dlclose(lib);
    return status;
  }
  return api.release();  // Lives as long as the process, like the library.
}

// libcurl.so.4, opened and globally initialised once per process, by the first Create().
const absl::StatusOr<const CurlApi*>& Curl() {
  static const auto* const loaded = [] {
    absl::StatusOr<const CurlApi*> api = OpenCurl(kCurlSoname);
    if (api.ok() && (*api)->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      api = absl::InternalError("curl_global_init failed");
    }
    return new absl::StatusOr<const CurlApi*>(std::move(api));
  }();
  return *loaded;
}

// Response body sink. Grows by copying into a larger buffer and wiping the old one, so no stale
// copy of a secret-bearing body is left in freed memory.
struct BodySink {
  std::string buf;
  size_t max_bytes = 0;
  bool overflow = false;
};

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* sink = static_cast<BodySink*>(userdata);
  const size_t n = size * nmemb;
  if (sink->buf.size() + n > sink->max_bytes) {
    sink->overflow = true;
    return 0;  // Makes curl fail with CURLE_WRITE_ERROR.
  }
  if (sink->buf.size() + n > sink->buf.capacity()) {
    std::string bigger;
    bigger.reserve(std::max(sink->buf.capacity() * 2, sink->buf.size() + n));
    bigger.assign(sink->buf);
    WipeString(sink->buf);
    sink->buf.swap(bigger);
  }
  sink->buf.append(ptr, n);
  return n;
}

size_t WriteHeader(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* headers = static_cast<std::vector<HttpHeader>*>(userdata);
  const size_t n = size * nmemb;
  std::string_view line(ptr, n);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // A new response (after a 100 Continue or a proxy CONNECT).
    return n;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    headers->push_back(
        HttpHeader{absl::AsciiStrToLower(absl::StripAsciiWhitespace(ToAbsl(line.substr(0, colon)))),
                   std::string(absl::StripAsciiWhitespace(ToAbsl(line.substr(colon + 1))))});
  }
  return n;
}

// Wipes and frees a header list (it may hold tokens).
struct SlistDeleter {
  const CurlApi* api = nullptr;
  void operator()(curl_slist* list) const {
    for (curl_slist* p = list; p != nullptr; p = p->next) {
      if (p->data != nullptr) explicit_bzero(p->data, ::strlen(p->data));
    }
    api->slist_free_all(list);
  }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

}  // namespace

HttpRequest::~HttpRequest() {
  for (HttpHeader& h : headers) WipeString(h.value);
}

std::optional<std::string_view> HttpResponse::Header(std::string_view name) const {
  for (const HttpHeader& h : headers) {
    if (h.name == name) return std::string_view(h.value);
  }
  return std::nullopt;
}

class CurlHttpClient::Impl {
 public:
  Impl(const CurlApi& api, HttpClientOptions options) : api_(api), options_(std::move(options)) {}
  ~Impl() {
    for (CURL* h : idle_) api_.easy_cleanup(h);
  }

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request);

 private:
  CURL* Acquire() {
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return api_.easy_init();
  }
  void Release(CURL* h) {
    api_.easy_reset(h);  // Keeps the handle's live connections for reuse.
    absl::MutexLock lock(&mu_);
    if (idle_.size() < options_.max_idle_handles) {
      idle_.push_back(h);
      return;
    }
    api_.easy_cleanup(h);
  }

  const CurlApi& api_;
  const HttpClientOptions options_;
  absl::Mutex mu_;
  std::vector<CURL*> idle_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<HttpResponse> CurlHttpClient::Impl::Send(const HttpRequest& request) {
  const absl::Time start = absl::Now();
  absl::Duration budget = options_.default_timeout;
  if (request.deadline != absl::InfiniteFuture()) budget = request.deadline - start;
  if (budget <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError(
        fmt::format("HTTP {} {}: deadline passed before sending", request.method, request.url));
  }
  const long total_ms = std::max<long>(1, absl::ToInt64Milliseconds(budget));
  const long connect_ms = std::max<long>(
      1, std::min<long>(total_ms, absl::ToInt64Milliseconds(options_.connect_timeout)));

  CURL* h = Acquire();
  if (h == nullptr) return absl::InternalError("curl_easy_init failed");
  struct Releaser {
    Impl* impl;
    CURL* h;
    ~Releaser() { impl->Release(h); }
  } releaser{this, h};

  char errbuf[CURL_ERROR_SIZE] = {0};
  BodySink sink;
  sink.max_bytes = options_.max_response_bytes;
  HttpResponse response;

  api_.easy_setopt(h, CURLOPT_URL, request.url.c_str());
  api_.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  api_.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  api_.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  api_.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  api_.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) api_.easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
  // OpenSSL reads both the file and the hashed directory: the extra CA on top of the system roots.
  if (!options_.ca_file.empty() && !options_.system_ca_dir.empty()) {
    api_.easy_setopt(h, CURLOPT_CAPATH, options_.system_ca_dir.c_str());
  }
  if (!options_.client_cert_file.empty()) {
    api_.easy_setopt(h, CURLOPT_SSLCERT, options_.client_cert_file.c_str());
    api_.easy_setopt(h, CURLOPT_SSLKEY, options_.client_key_file.c_str());
  }
  api_.easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
  api_.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  api_.easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  api_.easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody);
  api_.easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  api_.easy_setopt(h, CURLOPT_HEADERFUNCTION, &WriteHeader);
  api_.easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);

  if (request.method == "GET") {
    api_.easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "POST" || request.method == "PUT") {
    api_.easy_setopt(h, CURLOPT_POST, 1L);
    api_.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    api_.easy_setopt(h, CURLOPT_POSTFIELDS,
                     request.body.empty() ? "" : request.body.Reveal().data());
    if (request.method == "PUT") api_.easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
  } else {
    return absl::InvalidArgumentError(fmt::format("unsupported HTTP method {}", request.method));
  }

  SlistPtr slist(nullptr, SlistDeleter{&api_});
  auto append = [this, &slist](const std::string& line) {
    curl_slist* next = api_.slist_append(slist.get(), line.c_str());
    if (next != nullptr) {
      static_cast<void>(slist.release());  // The old head is part of the list `next` heads.
      slist.reset(next);
    }
  };
  append("Expect:");  // No 100-continue round trip for these small bodies.
  bool has_content_type = false;
  for (const HttpHeader& hd : request.headers) {
    if (hd.name.find_first_of("\r\n:") != std::string::npos ||
        hd.value.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          fmt::format("HTTP header {} has a CR, LF or colon in it", hd.name));
    }
    if (absl::EqualsIgnoreCase(hd.name, "content-type")) has_content_type = true;
    std::string line = hd.value.empty() ? hd.name + ";" : hd.name + ": " + hd.value;
    append(line);
    WipeString(line);
  }
  if (!has_content_type && request.method != "GET") append("Content-Type:");
  api_.easy_setopt(h, CURLOPT_HTTPHEADER, slist.get());

  const CURLcode rc = api_.easy_perform(h);
  api_.easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  if (rc != CURLE_OK) {
    WipeString(sink.buf);
    const std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : api_.easy_strerror(rc);
    std::string msg = fmt::format("HTTP {} {}: {}", request.method, request.url, detail);
    if (rc == CURLE_OPERATION_TIMEDOUT && request.deadline != absl::InfiniteFuture() &&
        absl::Now() >= request.deadline - absl::Milliseconds(5)) {
      return absl::DeadlineExceededError(msg);
    }
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
      return absl::InvalidArgumentError(msg);
    }
    if (sink.overflow) {
      return absl::UnavailableError(fmt::format("HTTP {} {}: response larger than {} bytes",
                                                request.method, request.url, sink.max_bytes));
    }
    return absl::UnavailableError(msg);
  }
  long status = 0;
  api_.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  response.body = SecretBytes::TakeFrom(sink.buf);
  return response;
}

absl::StatusOr<std::unique_ptr<CurlHttpClient>> CurlHttpClient::Create(HttpClientOptions options) {
  const absl::StatusOr<const CurlApi*>& api = Curl();
  if (!api.ok()) return api.status();
  if (options.client_cert_file.empty() != options.client_key_file.empty()) {
    return absl::InvalidArgumentError(
        "a TLS client certificate needs both a certificate file and a key file");
  }
  for (const auto& [what, path] :
       {std::pair<const char*, const std::string*>{"CA", &options.ca_file},
        {"client certificate", &options.client_cert_file},
        {"client key", &options.client_key_file}}) {
    if (path->empty()) continue;
    std::FILE* f = std::fopen(path->c_str(), "rb");
    if (f == nullptr) {
      return absl::InvalidArgumentError(fmt::format("{} file {} cannot be read", what, *path));
    }
    std::fclose(f);
  }
  if (options.max_response_bytes == 0) options.max_response_bytes = 1 << 20;
  return std::unique_ptr<CurlHttpClient>(
      new CurlHttpClient(std::make_unique<Impl>(**api, std::move(options))));
}

CurlHttpClient::CurlHttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CurlHttpClient::~CurlHttpClient() = default;

absl::StatusOr<HttpResponse> CurlHttpClient::Send(const HttpRequest& request) {
  return impl_->Send(request);
}

namespace http_client_internal {

absl::Status OpenCurlLibraryForTest(const char* soname) { return OpenCurl(soname).status(); }

}  // namespace http_client_internal

}  // namespace kmsplugin
