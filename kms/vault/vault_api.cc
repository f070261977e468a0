#include "kms/vault/vault_api.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/remote_call.h"
#include "kms/secret_json.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::vault {
namespace {

constexpr std::string_view kTooOld = "disallowed by policy (too old)";

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

// The answer's "request_id" (Vault's audit log names the request by it), Printable(); "" when
// the body is not a JSON object with a string request_id. The body may hold plaintext or a token:
// the parsed copy is wiped.
std::string RequestIdOf(const SecretBytes& body) {
  if (body.Reveal().find("\"request_id\"") == std::string_view::npos) return "";
  nlohmann::json doc = nlohmann::json::parse(body.Reveal(), nullptr, /*allow_exceptions=*/false);
  std::string id;
  if (doc.is_object()) {
    auto it = doc.find("request_id");
    if (it != doc.end() && it->is_string()) id = Printable(it->get_ref<const std::string&>(), 64);
  }
  WipeJson(doc);
  return id;
}

}  // namespace

VaultError ClassifyVaultError(std::string_view operation, int http_status, std::string_view body) {
  VaultError e;
  e.http_status = http_status;
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string joined;
  if (doc.is_object()) {
    auto it = doc.find("errors");
    if (it != doc.end() && it->is_array()) {
      for (const auto& err : *it) {
        if (!err.is_string()) continue;
        if (!joined.empty()) joined += "; ";
        joined += err.get_ref<const std::string&>();
        if (joined.size() > 2 * kMaxVaultErrorLength) break;
      }
    }
  }
  // Remote text: through Printable() before it is kept.
  e.message = Printable(joined, kMaxVaultErrorLength);
  const std::string msg = fmt::format("Vault {}: HTTP {}{}", operation, http_status,
                                      e.message.empty() ? "" : ": " + e.message);
  switch (http_status) {
    case 307:
    case 308:
      e.retryable = e.not_acted = true;
      e.status = absl::UnavailableError(
          msg +
          " (a standby node redirected to the active node; redirects are not followed: "
          "point --vault-addr at the active node or its load balancer)");
      break;
    case 412:
    case 429:
    case 503:
      e.retryable = e.not_acted = true;
      e.status = absl::UnavailableError(msg);
      break;
    case 500:
    case 502:
    case 504:
      e.retryable = true;
      e.status = absl::UnavailableError(msg);
      break;
    case 501:
      e.status = absl::UnavailableError(msg + " (Vault is not initialised)");
      break;
    case 400:
      if (joined.find(kTooOld) != std::string::npos) {
        e.status = absl::FailedPreconditionError(
            msg + " (the ciphertext's key version is below the key's min_decryption_version)");
      } else {
        e.status = absl::InvalidArgumentError(msg);
      }
      break;
    case 401:
      e.status = absl::UnauthenticatedError(msg);
      break;
    case 403:
      e.status = absl::PermissionDeniedError(msg);
      break;
    case 404:
      e.status = absl::NotFoundError(msg);
      break;
    case 405:
      e.status = absl::InternalError(msg);
      break;
    default:
      e.retryable = http_status >= 500;
      e.status = e.retryable ? absl::UnavailableError(msg) : absl::UnknownError(msg);
  }
  return e;
}

std::optional<int64_t> CiphertextVersion(std::string_view ciphertext) {
  constexpr std::string_view kPrefix = "vault:v";
  if (ciphertext.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  const std::string_view rest = ciphertext.substr(kPrefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 10) return std::nullopt;
  const std::string_view digits = rest.substr(0, colon);
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (digits[0] == '0') return std::nullopt;  // No leading zero: one spelling per version.
  int64_t version = 0;
  if (!absl::SimpleAtoi(ToAbsl(digits), &version) || version < 1) return std::nullopt;
  const std::string_view b64 = rest.substr(colon + 1);
  if (b64.empty()) return std::nullopt;
  for (char c : b64) {
    if (!IsBase64Char(c)) return std::nullopt;
  }
  return version;
}

bool ValidVaultPath(std::string_view path) {
  if (path.empty() || path.size() > 512) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view seg = path.substr(start, slash - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char c : seg) {
      const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-' || c == '.';
      if (!ok) return false;
    }
    start = slash + 1;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<VaultApi>> VaultApi::Create(VaultApiOptions options,
                                                           HttpClient* http) {
  std::string& url = options.addr;
  while (!url.empty() && url.back() == '/') url.pop_back();
  const size_t sep = url.find("://");
  const std::string scheme = sep == std::string::npos ? "" : url.substr(0, sep);
  if (scheme != "https" && scheme != "http") {
    return absl::InvalidArgumentError(
        fmt::format("--vault-addr {} is not an https:// URL", Printable(url)));
  }
  if (scheme == "http" && !options.allow_insecure_http) {
    return absl::InvalidArgumentError(fmt::format(
        "--vault-addr {} is plain http://; use https:// (tokens and data keys would cross the "
        "network in clear; http is accepted only with --vault-insecure-http-for-tests)",
        Printable(url)));
  }
  const std::string host = url.substr(sep + 3);
  if (host.empty() || host.find_first_of("/@?# ") != std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("--vault-addr {} is not scheme://host[:port]", Printable(url)));
  }
  std::string& ns = options.namespace_;
  while (!ns.empty() && ns.back() == '/') ns.pop_back();
  while (!ns.empty() && ns.front() == '/') ns.erase(0, 1);
  if (!ns.empty() && !ValidVaultPath(ns)) {
    return absl::InvalidArgumentError(
        fmt::format("--vault-namespace {} is not a Vault namespace path", Printable(ns)));
  }
  if (options.retry.max_attempts < 1) options.retry.max_attempts = 1;
  return std::unique_ptr<VaultApi>(new VaultApi(std::move(options), http));
}

VaultApi::VaultApi(VaultApiOptions options, HttpClient* http)
    : options_(std::move(options)), http_(http), slots_(options_.max_concurrent_calls, "Vault") {}

absl::StatusOr<SecretBytes> VaultApi::Call(std::string_view operation, std::string_view method,
                                           std::string_view path, const SecretBytes& body,
                                           const SecretBytes* token, bool idempotent,
                                           const CallContext& ctx, const AttemptSubject& subject) {
  const absl::Time deadline = ctx.deadline == absl::InfiniteFuture()
                                  ? absl::Now() + options_.default_call_timeout
                                  : ctx.deadline;
  CallSlots::Holder slot(&slots_, deadline);
  KMSP_RETURN_IF_ERROR(slot.status());
  const std::string url = fmt::format("{}/v1/{}", options_.addr, path);
  const std::string what = fmt::format("Vault {}", operation);
  RemoteCallSpec spec{"vault",  operation, what,    options_.retry,
                      deadline, subject,   ctx.uid, options_.observer};
  auto attempt = [&]() -> absl::StatusOr<AttemptResult> {
    HttpRequest req;
    req.method = std::string(method);
    req.url = url;
    req.headers.push_back({"X-Vault-Request", "true"});
    if (!options_.namespace_.empty()) {
      req.headers.push_back({"X-Vault-Namespace", options_.namespace_ + "/"});
    }
    if (token != nullptr) req.headers.push_back({"X-Vault-Token", std::string(token->Reveal())});
    if (method != "GET") {
      req.headers.push_back({"Content-Type", "application/json"});
      req.body = body.Clone();
    }
    req.deadline = deadline;
    SentRequest sent = SendRequest(http_, req, what, idempotent);
    if (!sent.response.has_value()) return std::move(sent.result);
    AttemptResult r = std::move(sent.result);
    HttpResponse* resp = &*sent.response;
    r.request_id = RequestIdOf(resp->body);
    if (resp->status == 200 || resp->status == 204) {
      if (subject.key_id.empty() && subject.key_id_from_answer) {
        r.key_id = subject.key_id_from_answer(resp->body.Reveal());
      }
      r.body = std::move(resp->body);
      return r;
    }
    VaultError err = ClassifyVaultError(operation, resp->status, resp->body.Reveal());
    r.body = err.status;
    r.throttled = resp->status == 429;
    r.retryable = err.retryable && (idempotent || err.not_acted);
    return r;
  };
  return RunRemoteCall(spec, attempt);
}

}  // namespace kmsplugin::vault
