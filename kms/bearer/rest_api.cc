#include "kms/bearer/rest_api.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

// The longest Retry-After honoured; a server asking for more is treated as down for the call.
constexpr absl::Duration kMaxRetryAfter = absl::Minutes(2);

}  // namespace

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
  absl::Status last = absl::UnavailableError(fmt::format("{}: not attempted", what));
  bool refreshed = false;  // One token refresh per call.
  int attempt = 0;
  for (int tries = 1; tries <= options_.retry.max_attempts; ++tries) {
    ++attempt;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          fmt::format("{}: deadline passed after {} attempt(s); last error: {}", what, attempt - 1,
                      ToStd(last.message())));
    }
    CallContext token_ctx = ctx;
    token_ctx.deadline = deadline;
    absl::StatusOr<AccessToken> token = tokens_->Fetch(token_ctx);
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
    const absl::Time start = absl::Now();
    absl::StatusOr<HttpResponse> resp = http_->Send(req);

    RemoteAttempt report{options_.backend, call.operation, subject.key, subject.key_id,
                         subject.encryption_context};
    report.latency = absl::Now() - start;
    report.attempt = attempt;
    report.uid = ctx.uid;
    std::string request_id;
    std::string learned_key_id;
    bool retryable = false;
    bool refresh = false;
    bool throttled = false;
    std::optional<absl::Duration> retry_after;
    if (!resp.ok()) {
      last = Annotate(resp.status(), what);
      // TLS verification failures will not heal by retrying; connection failures may.
      retryable = call.idempotent && last.code() == absl::StatusCode::kUnavailable &&
                  ToStd(last.message()).find("SSL certificate") == std::string_view::npos;
    } else {
      report.http_status = resp->status;
      for (const std::string& h : options_.request_id_headers) {
        if (auto v = resp->Header(h); v.has_value()) {
          request_id = Printable(*v, 64);
          break;
        }
      }
      if (resp->status >= 200 && resp->status < 300) {
        last = absl::OkStatus();
        if (subject.key_id.empty() && subject.key_id_from_answer) {
          learned_key_id = subject.key_id_from_answer(resp->body.Reveal());
          report.key_id = learned_key_id;
        }
      } else {
        RestError err = options_.classify(call.operation, *resp);
        last = err.status.ok() ? absl::UnknownError(fmt::format("{}: HTTP {}", what, resp->status))
                               : err.status;
        throttled = err.throttled;
        refresh = err.refresh_token && !refreshed;
        retryable = err.retryable && (call.idempotent || err.not_acted);
        if (retryable) retry_after = RetryAfterOf(*resp, absl::Now());
        if (refresh && options_.on_unauthorized) options_.on_unauthorized(*resp);
      }
    }
    absl::StatusOr<absl::Duration> delay = absl::ZeroDuration();
    if (!last.ok() && refresh) {
      // A new token, at once: the refused one is not sent again. Not counted against retries.
      refreshed = true;
      --tries;
    } else if (!last.ok()) {
      delay = last;
      if (retryable) delay = RetryDelay(options_.retry, tries, deadline, last);
      if (delay.ok() && retry_after.has_value() && *retry_after > *delay) {
        if (*retry_after > kMaxRetryAfter || absl::Now() + *retry_after >= deadline) {
          delay = absl::UnavailableError(
              fmt::format("{} (Retry-After {} leaves no time for a retry before the deadline)",
                          ToStd(last.message()), absl::FormatDuration(*retry_after)));
        } else {
          delay = *retry_after;
        }
      }
    }
    report.request_id = request_id;
    report.code = last.code();
    report.error_class = ErrorClassOf(last, throttled || report.http_status == 429);
    report.will_retry = !last.ok() && delay.ok();
    ReportAttempt(options_.observer, report, last);
    if (last.ok()) return std::move(resp->body);
    if (!delay.ok()) return delay.status();
    if (refresh) {
      tokens_->Invalidate();
      continue;
    }
    absl::SleepFor(*delay);
  }
  return GaveUp(last, options_.retry.max_attempts);
}

}  // namespace kmsplugin
