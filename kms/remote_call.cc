#include "kms/remote_call.h"

#include <utility>

#include "base/status.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

// The longest Retry-After honoured; a server asking for more is treated as down for this call.
constexpr absl::Duration kMaxRetryAfter = absl::Minutes(2);

AttemptResult TransportFailure(const absl::Status& send_error, std::string_view what,
                               bool idempotent) {
  AttemptResult r;
  r.body = Annotate(send_error, what);
  r.retryable = idempotent && send_error.code() == absl::StatusCode::kUnavailable &&
                ToStd(send_error.message()).find("SSL certificate") == std::string_view::npos;
  return r;
}

}  // namespace

SentRequest SendRequest(HttpClient* http, const HttpRequest& request, std::string_view what,
                        bool idempotent) {
  SentRequest sent;
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> resp = http->Send(request);
  const absl::Duration latency = absl::Now() - start;
  if (!resp.ok()) {
    sent.result = TransportFailure(resp.status(), what, idempotent);
  } else {
    sent.result.http_status = resp->status;
    sent.response = *std::move(resp);
  }
  sent.result.latency = latency;
  return sent;
}

absl::StatusOr<SecretBytes> RunRemoteCall(
    const RemoteCallSpec& spec, const std::function<absl::StatusOr<AttemptResult>()>& attempt,
    const std::function<void()>& refresh) {
  absl::Status last = absl::UnavailableError(fmt::format("{}: not attempted", spec.what));
  bool refreshed = false;
  int sent = 0;  // Requests so far (the resend with fresh credentials counts here too).
  for (int tries = 1; tries <= spec.retry.max_attempts; ++tries) {
    if (absl::Now() >= spec.deadline) {
      return absl::DeadlineExceededError(
          fmt::format("{}: deadline passed after {} attempt(s); last error: {}", spec.what,
                      tries - 1, ToStd(last.message())));
    }
    KMSP_ASSIGN_OR_RETURN(AttemptResult r, attempt());
    last = r.body.status();
    const bool resend = !last.ok() && r.refresh_credentials && !refreshed && refresh != nullptr;
    absl::StatusOr<absl::Duration> delay = absl::ZeroDuration();
    if (!last.ok() && !resend) {
      delay = last;
      if (r.retryable) delay = RetryDelay(spec.retry, tries, spec.deadline, last);
      if (delay.ok() && r.retry_after.has_value() && *r.retry_after > *delay) {
        if (*r.retry_after > kMaxRetryAfter || absl::Now() + *r.retry_after >= spec.deadline) {
          delay = absl::UnavailableError(
              fmt::format("{} (Retry-After {} leaves no time for a retry before the deadline)",
                          ToStd(last.message()), absl::FormatDuration(*r.retry_after)));
        } else {
          delay = *r.retry_after;
        }
      }
    }
    RemoteAttempt report{spec.backend, spec.operation, spec.subject.key,
                         r.key_id.empty() ? spec.subject.key_id : r.key_id,
                         spec.subject.encryption_context};
    report.code = last.code();
    report.error_class = ErrorClassOf(last, r.throttled);
    report.http_status = r.http_status;
    report.latency = r.latency;
    report.attempt = ++sent;
    report.will_retry = !last.ok() && delay.ok();
    report.request_id = r.request_id;
    report.uid = spec.uid;
    ReportAttempt(spec.observer, report, last);
    if (last.ok()) return std::move(r.body);
    if (resend) {
      refreshed = true;
      refresh();
      --tries;  // The resend does not count against max_attempts.
      continue;
    }
    if (!delay.ok()) return delay.status();
    absl::SleepFor(*delay);
  }
  return GaveUp(last, spec.retry.max_attempts);
}

}  // namespace kmsplugin
