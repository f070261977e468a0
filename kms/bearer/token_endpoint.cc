#include "kms/bearer/token_endpoint.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/remote_call.h"
#include "kms/secret_json.h"
#include "nlohmann/json.hpp"

namespace kmsplugin {
namespace {

constexpr size_t kMaxErrorText = 200;
// What a provider's token lasts when its answer does not say (OAuth and Entra default to 1 h).
constexpr absl::Duration kDefaultLifetime = absl::Hours(1);

bool Unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

void AppendEncoded(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : value) {
    if (Unreserved(c)) {
      out.push_back(c);
    } else {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
}

// A number of seconds given as a JSON number or a decimal string; nullopt otherwise, and for a
// number no int64 holds (1e300, NaN, 2^64-1: a float-to-integer cast of those is undefined).
std::optional<int64_t> Seconds(const nlohmann::json& v) {
  constexpr double kLimit = 9.2e18;  // Below 2^63, so the cast below is defined.
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(d > -kLimit && d < kLimit)) return std::nullopt;  // NaN fails both comparisons.
    return static_cast<int64_t>(d);
  }
  int64_t n = 0;
  if (v.is_string() && absl::SimpleAtoi(v.get_ref<const std::string&>(), &n)) return n;
  return std::nullopt;
}

// The OAuth error of a non-2xx answer: `error` (a string, or Google's {"error":{"status"}}) and
// `error_description` / message, Printable() and bounded.
struct OAuthError {
  std::string error;
  std::string description;
};

OAuthError OAuthErrorOf(std::string_view body) {
  OAuthError e;
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return e;
  auto err = doc.find("error");
  if (err != doc.end() && err->is_string()) {
    e.error = Printable(err->get_ref<const std::string&>(), 64);
  } else if (err != doc.end() && err->is_object()) {  // Google's JSON error (IAM Credentials).
    auto status = err->find("status");
    auto message = err->find("message");
    if (status != err->end() && status->is_string()) {
      e.error = Printable(status->get_ref<const std::string&>(), 64);
    }
    if (message != err->end() && message->is_string()) {
      e.description = Printable(message->get_ref<const std::string&>(), kMaxErrorText);
    }
  }
  auto desc = doc.find("error_description");
  if (desc != doc.end() && desc->is_string()) {
    e.description = Printable(desc->get_ref<const std::string&>(), kMaxErrorText);
  }
  WipeJson(doc);
  return e;
}

struct Classified {
  absl::Status status;
  bool retryable = false;
};

Classified Classify(std::string_view what, int http_status, std::string_view body) {
  const OAuthError e = OAuthErrorOf(body);
  std::string msg = fmt::format("{}: HTTP {}", what, http_status);
  if (!e.error.empty()) msg += ": " + e.error;
  if (!e.description.empty()) msg += ": " + e.description;
  const bool transient_error = e.error == "temporarily_unavailable" || e.error == "server_error" ||
                               e.error == "internal_failure" || e.error == "UNAVAILABLE" ||
                               e.error == "INTERNAL";
  if (http_status == 408 || http_status == 429 || http_status >= 500 || transient_error) {
    return {absl::UnavailableError(msg), true};
  }
  const bool refused = e.error == "invalid_grant" || e.error == "invalid_client" ||
                       e.error == "unauthorized_client" || e.error == "access_denied" ||
                       e.error == "PERMISSION_DENIED" || e.error == "UNAUTHENTICATED";
  if (http_status == 401 || http_status == 403 || refused) {
    return {absl::UnauthenticatedError(msg), false};
  }
  if (http_status == 404) {
    return {absl::UnavailableError(msg + " (no such token endpoint or identity here)"), false};
  }
  return {absl::InvalidArgumentError(msg), false};
}

}  // namespace

std::string UrlEncode(std::string_view value) {
  std::string out;
  out.reserve(value.size() * 3);
  AppendEncoded(out, value);
  return out;
}

SecretBytes FormEncode(const std::vector<std::pair<std::string_view, std::string_view>>& fields) {
  size_t size = 0;
  for (const auto& [k, v] : fields) size += 2 + 3 * (k.size() + v.size());
  std::string out;
  out.reserve(size);  // One buffer: no reallocation leaves a copy of a secret behind.
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out.push_back('&');
    AppendEncoded(out, k);
    out.push_back('=');
    AppendEncoded(out, v);
  }
  return SecretBytes::TakeFrom(out);
}

absl::StatusOr<AccessToken> ParseTokenAnswer(std::string_view body, absl::Time now) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return absl::InvalidArgumentError("the token answer is not a JSON object");
  AccessToken t;
  for (const char* name : {"access_token", "accessToken"}) {
    auto it = doc.find(name);
    if (it != doc.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      t.token = SecretBytes::CopyFrom(it->get_ref<const std::string&>());
      break;
    }
  }
  absl::Status expiry = absl::OkStatus();
  t.expiration = now + kDefaultLifetime;
  if (auto it = doc.find("expires_in"); it != doc.end()) {
    std::optional<int64_t> s = Seconds(*it);
    if (s.has_value() && *s > 0) {
      t.expiration = now + absl::Seconds(*s);
    } else {
      expiry = absl::InvalidArgumentError("the token answer's expires_in is not a positive number");
    }
  } else if (auto on = doc.find("expires_on"); on != doc.end()) {
    std::optional<int64_t> s = Seconds(*on);
    if (s.has_value() && *s > 0) {
      t.expiration = absl::FromUnixSeconds(*s);
    } else {
      expiry = absl::InvalidArgumentError("the token answer's expires_on is not a unix time");
    }
  } else if (auto at = doc.find("expireTime"); at != doc.end()) {
    std::string err;
    if (!at->is_string() || !absl::ParseTime(absl::RFC3339_full, at->get_ref<const std::string&>(),
                                             &t.expiration, &err)) {
      expiry = absl::InvalidArgumentError("the token answer's expireTime is not an RFC 3339 time");
    }
  }
  WipeJson(doc);
  if (t.token.empty()) return absl::InvalidArgumentError("the token answer holds no access token");
  KMSP_RETURN_IF_ERROR(expiry);
  return t;
}

absl::StatusOr<AccessToken> RequestToken(HttpClient* http, const Clock* clock,
                                         const TokenRequest& request, const CallContext& ctx,
                                         const TokenEndpointOptions& options) {
  const absl::Time deadline = ctx.deadline == absl::InfiniteFuture()
                                  ? absl::Now() + options.default_call_timeout
                                  : ctx.deadline;
  RemoteCallSpec spec{options.backend, request.what,    request.what,
                      options.retry,   deadline,        AttemptSubject{request.url},
                      ctx.uid,         options.observer};
  absl::StatusOr<AccessToken> token = absl::UnknownError("no answer");
  auto attempt = [&]() -> absl::StatusOr<AttemptResult> {
    HttpRequest req;
    req.method = request.method;
    req.url = request.url;
    req.headers = request.headers;
    if (request.method != "GET") {
      if (!request.content_type.empty()) {
        req.headers.push_back({"Content-Type", request.content_type});
      }
      req.body = request.body.Clone();
    }
    req.headers.push_back({"Accept", "application/json"});
    req.deadline = deadline;
    SentRequest sent = SendRequest(http, req, request.what, /*idempotent=*/true);
    if (!sent.response.has_value()) return std::move(sent.result);
    AttemptResult r = std::move(sent.result);
    HttpResponse* resp = &*sent.response;
    if (resp->status >= 200 && resp->status < 300) {
      token = ParseTokenAnswer(resp->body.Reveal(), clock->Now());
      if (token.ok()) {
        r.body = SecretBytes();
      } else {
        r.body = Annotate(token.status(), request.what);
      }
      return r;
    }
    Classified c = Classify(request.what, resp->status, resp->body.Reveal());
    r.body = c.status;
    r.retryable = c.retryable;
    r.throttled = resp->status == 429;
    return r;
  };
  KMSP_RETURN_IF_ERROR(RunRemoteCall(spec, attempt).status());
  token->source = request.source;
  token->identity = request.identity;
  return token;
}

}  // namespace kmsplugin
