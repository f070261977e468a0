#include "kms/bearer/rest_api.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/remote_call.h"

namespace kmsplugin {
std::optional<absl::Duration> RetryAfterOf(const HttpResponse& response, absl::Time now) {
  for (const char* ms_header : {"retry-after-ms", "x-ms-retry-after-ms"}) {
    int64_t ms = 0;
    std::optional<std::string_view> v = response.Header(ms_header);
    if (v.has_value() && absl::SimpleAtoi(ToAbsl(*v), &ms) && ms >= 0)
      return absl::Milliseconds(ms);
  }
  std::optional<std::string_view> v = response.Header("retry-after");
  if (!v.has_value()) return std::nullopt;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(ToAbsl(*v), &seconds) && seconds >= 0) return absl::Seconds(seconds);
  absl::Time at;
  std::string err;
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(*v), &at, &err)) {
    return std::max(at - now, absl::ZeroDuration());
  }
  return std::nullopt;
}

BearerRestApi::BearerRestApi(BearerRestOptions options, HttpClient* http, TokenSource* tokens)
    : options_(std::move(options)),
      http_(http),
      tokens_(tokens),
      slots_(options_.max_concurrent_calls, options_.service) {}

absl::StatusOr<SecretBytes> BearerRestApi::Call(const RestCall& call, const CallContext& ctx,
                                                const AttemptSubject& subject) {
  const absl::Time deadline = ctx.deadline == absl::InfiniteFuture()
                                  ? absl::Now() + options_.default_call_timeout
                                  : ctx.deadline;
  CallSlots::Holder slot(&slots_, deadline);
  KMSP_RETURN_IF_ERROR(slot.status());
  const std::string what = fmt::format("{} {}", options_.service, call.operation);
  RemoteCallSpec spec{options_.backend, call.operation, what,    options_.retry,
                      deadline,         subject,        ctx.uid, options_.observer};
  auto attempt = [&]() -> absl::StatusOr<AttemptResult> {
    absl::StatusOr<AccessToken> token = tokens_->Fetch(CallContext{deadline, ctx.uid});
    if (!token.ok()) return Annotate(token.status(), fmt::format("{}: access token", what));
    HttpRequest req;
    req.method = std::string(call.method);
    req.url = call.url;
    HttpHeader authorization{"Authorization", {}};  // Built in place: no stray token copy.
    authorization.value.reserve(7 + token->token.size());
    authorization.value.append("Bearer ").append(token->token.Reveal());
    req.headers.push_back(std::move(authorization));
    if (call.method != "GET") {
      req.headers.push_back({"Content-Type", "application/json"});
      req.body = call.body.Clone();
    }
    req.headers.push_back({"Accept", "application/json"});
    req.deadline = deadline;
    SentRequest sent = SendRequest(http_, req, what, call.idempotent);
    if (!sent.response.has_value()) return std::move(sent.result);
    AttemptResult r = std::move(sent.result);
    HttpResponse* resp = &*sent.response;
    for (const std::string& h : options_.request_id_headers) {
      if (auto v = resp->Header(h); v.has_value()) {
        r.request_id = Printable(*v, 64);
        break;
      }
    }
    if (resp->status >= 200 && resp->status < 300) {
      if (subject.key_id.empty() && subject.key_id_from_answer) {
        r.key_id = subject.key_id_from_answer(resp->body.Reveal());
      }
      r.body = std::move(resp->body);
      return r;
    }
    RestError err = options_.classify(call.operation, *resp);
    r.body = err.status.ok() ? absl::UnknownError(fmt::format("{}: HTTP {}", what, resp->status))
                             : err.status;
    r.throttled = err.throttled || resp->status == 429;
    r.retryable = err.retryable && (call.idempotent || err.not_acted);
    if (r.retryable) r.retry_after = RetryAfterOf(*resp, absl::Now());
    r.refresh_credentials = err.refresh_token;
    if (err.refresh_token && options_.on_unauthorized) options_.on_unauthorized(*resp);
    return r;
  };
  return RunRemoteCall(spec, attempt, [this] { tokens_->Invalidate(); });
}

}  // namespace kmsplugin
