#include "kms/aws/kms_api.h"

#include <algorithm>

#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/aws/sigv4.h"
#include "kms/remote_call.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::aws {
namespace {

bool OneOf(std::string_view code, std::initializer_list<std::string_view> codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

bool IsThrottlingCode(std::string_view code) {
  return OneOf(
      code, {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
             "TooManyRequestsException", "ProvisionedThroughputExceededException",
             "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
             "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
             "EC2ThrottledException"});
}

// Operations that change state at AWS each time they land. They are resent only after an answer
// that proves AWS did not act (throttling), never after a 5xx or a dropped connection, where the
// first request may already have been carried out.
bool IsIdempotent(std::string_view operation) { return operation != "RotateKeyOnDemand"; }

}  // namespace

std::string SanitizeErrorCode(std::string_view raw) {
  std::string_view code = raw;
  if (const size_t colon = code.find(':'); colon != std::string_view::npos) {
    code = code.substr(0, colon);
  }
  if (const size_t hash = code.rfind('#'); hash != std::string_view::npos) {
    code = code.substr(hash + 1);
  }
  while (!code.empty() && code.back() == ' ') code.remove_suffix(1);
  return std::string(code);
}

AwsError ClassifyKmsError(std::string_view operation, int http_status,
                          std::string_view error_type_header, std::string_view body,
                          std::string_view request_id) {
  AwsError e;
  e.http_status = http_status;
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string raw_code(error_type_header);
  if (raw_code.empty() && doc.is_object()) {
    auto it = doc.find("__type");
    if (it != doc.end() && it->is_string()) raw_code = it->get<std::string>();
  }
  // Everything taken from the answer is remote text: it goes through Printable() before it is
  // kept, so no message or log line built from it carries raw remote bytes.
  e.code = raw_code.empty() ? std::to_string(http_status)
                            : Printable(SanitizeErrorCode(raw_code), kMaxErrorCodeLength);
  if (doc.is_object()) {
    for (const char* key : {"message", "Message"}) {
      auto it = doc.find(key);
      if (it != doc.end() && it->is_string()) {
        e.message = Printable(it->get_ref<const std::string&>(), kMaxErrorMessageLength);
        break;
      }
    }
  }
  const std::string msg = fmt::format(
      "AWS KMS {}: {} (HTTP {}){}{}", operation, e.code, http_status,
      e.message.empty() ? "" : ": " + e.message,
      request_id.empty() ? "" : fmt::format(" [request id {}]", Printable(request_id, 64)));
  const std::string_view c = e.code;
  if (IsThrottlingCode(c) ||
      OneOf(c, {"KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException",
                "RequestTimeout", "RequestTimeoutException", "InternalFailure",
                "ServiceUnavailable"})) {
    e.retryable = true;
    e.status = absl::UnavailableError(msg);
  } else if (OneOf(c, {"AccessDeniedException", "AccessDenied"})) {
    e.status = absl::PermissionDeniedError(msg);
  } else if ((c == "InvalidSignatureException" || c == "SignatureDoesNotMatch") &&
             (e.message.find("Signature expired") != std::string::npos ||
              e.message.find("Signature not yet current") != std::string::npos)) {
    e.status = absl::UnavailableError(msg + " (is the local clock more than 5 minutes off?)");
  } else if (OneOf(c, {"UnrecognizedClientException", "InvalidSignatureException",
                       "IncompleteSignature", "IncompleteSignatureException",
                       "MissingAuthenticationToken", "MissingAuthenticationTokenException",
                       "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredTokenException",
                       "ExpiredToken"})) {
    e.status = absl::UnauthenticatedError(msg);
  } else if (OneOf(c, {"DisabledException", "KMSInvalidStateException", "NotFoundException",
                       "InvalidKeyUsageException", "InvalidArnException"})) {
    e.status = absl::FailedPreconditionError(msg);
  } else if (OneOf(c, {"InvalidCiphertextException", "IncorrectKeyException"})) {
    e.status = absl::InvalidArgumentError(msg);
  } else if (OneOf(c, {"ValidationException", "SerializationException"})) {
    e.status = absl::InternalError(msg);
  } else if (c == "ConflictException") {
    e.status = absl::AbortedError(msg);  // e.g. an on-demand rotation is already running.
  } else if (c == "UnsupportedOperationException") {
    e.status = absl::FailedPreconditionError(msg);
  } else if (http_status >= 500 || http_status == 429 || http_status == 408) {
    e.retryable = true;
    e.status = absl::UnavailableError(msg);
  } else {
    e.status = absl::UnknownError(msg);
  }
  return e;
}

absl::StatusOr<std::unique_ptr<KmsApi>> KmsApi::Create(KmsApiOptions options, HttpClient* http,
                                                       CredentialsProvider* credentials,
                                                       const Clock* clock) {
  const std::string& url = options.endpoint;
  const size_t sep = url.find("://");
  if (sep == std::string::npos || (url.substr(0, sep) != "https" && url.substr(0, sep) != "http")) {
    return absl::InvalidArgumentError(
        fmt::format("AWS KMS endpoint {} is not an https:// URL", Printable(url)));
  }
  if (url.substr(0, sep) == "http" && !options.allow_insecure_http) {
    // Wrapped keys, plaintext data keys and session tokens would cross the network in clear.
    return absl::InvalidArgumentError(fmt::format(
        "AWS KMS endpoint {} is plain http://; use https:// (http is accepted only with "
        "--aws-insecure-http-for-tests)",
        Printable(url)));
  }
  const std::string rest = url.substr(sep + 3);
  const size_t slash = rest.find('/');
  std::string host = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (host.empty() || host.find_first_of("@?#") != std::string::npos ||
      path.find_first_of("?#") != std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("AWS KMS endpoint {} is not host[:port][/path]", Printable(url)));
  }
  // The default port is not part of Host (what curl sends, and what AWS signs).
  const std::string scheme = url.substr(0, sep);
  for (std::string_view def : {":443", ":80"}) {
    if (host.size() > def.size() && host.compare(host.size() - def.size(), def.size(), def) == 0 &&
        ((def == ":443" && scheme == "https") || (def == ":80" && scheme == "http"))) {
      host.resize(host.size() - def.size());
    }
  }
  if (options.max_concurrent_calls == 0) options.max_concurrent_calls = 1;
  if (options.retry.max_attempts < 1) options.retry.max_attempts = 1;
  return std::unique_ptr<KmsApi>(
      new KmsApi(std::move(options), std::move(host), std::move(path), http, credentials, clock));
}

KmsApi::KmsApi(KmsApiOptions options, std::string host, std::string path, HttpClient* http,
               CredentialsProvider* credentials, const Clock* clock)
    : options_(std::move(options)),
      host_(std::move(host)),
      path_(std::move(path)),
      http_(http),
      credentials_(credentials),
      clock_(clock),
      slots_(options_.max_concurrent_calls, "AWS KMS") {}

absl::StatusOr<SecretBytes> KmsApi::Call(std::string_view operation, const SecretBytes& body,
                                         const CallContext& ctx, const AttemptSubject& subject) {
  const absl::Time deadline = ctx.deadline == absl::InfiniteFuture()
                                  ? absl::Now() + options_.default_call_timeout
                                  : ctx.deadline;
  CallSlots::Holder slot(&slots_, deadline);
  KMSP_RETURN_IF_ERROR(slot.status());

  const std::string target = fmt::format("TrentService.{}", operation);
  const std::string what = fmt::format("AWS KMS {}", operation);
  RemoteCallSpec spec{"aws",    operation, what,    options_.retry,
                      deadline, subject,   ctx.uid, options_.observer};
  auto attempt = [&]() -> absl::StatusOr<AttemptResult> {
    CallContext attempt_ctx{deadline, ctx.uid};
    absl::StatusOr<AwsCredentials> fetched = credentials_->Fetch(attempt_ctx);
    if (!fetched.ok()) {
      // AWS refusing a web identity or role (UNAUTHENTICATED / PERMISSION_DENIED) is a refusal;
      // a missing or unreadable credential source is a local problem, reported as an outage so
      // it never purges the cached keys as a revocation would (NOT_FOUND counts as one).
      absl::StatusCode code = fetched.status().code();
      if (code != absl::StatusCode::kUnauthenticated &&
          code != absl::StatusCode::kPermissionDenied &&
          code != absl::StatusCode::kDeadlineExceeded) {
        code = absl::StatusCode::kUnavailable;
      }
      return absl::Status(code, fmt::format("AWS KMS {}: cannot obtain AWS credentials: {}",
                                            operation, ToStd(fetched.status().message())));
    }
    AwsCredentials creds = *std::move(fetched);

    SigV4Request to_sign;
    to_sign.method = "POST";
    to_sign.path = path_;
    to_sign.headers = {
        {"Host", host_}, {"Content-Type", "application/x-amz-json-1.1"}, {"X-Amz-Target", target}};
    to_sign.payload = body.Reveal();
    SigV4Options sign_options;
    sign_options.region = options_.region;
    sign_options.service = "kms";
    sign_options.time = clock_->Now();
    KMSP_ASSIGN_OR_RETURN(SigV4Result signed_request, SignV4(to_sign, creds, sign_options));

    HttpRequest req;
    req.method = "POST";
    req.url = options_.endpoint;
    req.headers = std::move(to_sign.headers);
    for (HttpHeader& h : signed_request.headers_to_add) req.headers.push_back(std::move(h));
    req.body = body.Clone();
    req.deadline = deadline;

    SentRequest sent = SendRequest(http_, req, what, IsIdempotent(operation));
    if (!sent.response.has_value()) return std::move(sent.result);
    AttemptResult r = std::move(sent.result);
    HttpResponse* resp = &*sent.response;
    r.request_id = Printable(resp->Header("x-amzn-requestid").value_or(""), 64);
    if (resp->status == 200) {
      if (subject.key_id.empty() && subject.key_id_from_answer) {
        r.key_id = subject.key_id_from_answer(resp->body.Reveal());
      }
      r.body = std::move(resp->body);
      return r;
    }
    AwsError err =
        ClassifyKmsError(operation, resp->status, resp->Header("x-amzn-errortype").value_or(""),
                         resp->body.Reveal(), r.request_id);
    r.body = err.status;
    r.throttled = IsThrottlingCode(err.code) || resp->status == 429;
    r.retryable = err.retryable && (IsIdempotent(operation) || IsThrottlingCode(err.code));
    // Temporary credentials ran out or were replaced under us (remote-kms-apis.md §2.6):
    // refresh once and resend at once.
    r.refresh_credentials = err.code == "ExpiredTokenException" || err.code == "ExpiredToken" ||
                            err.code == "UnrecognizedClientException";
    return r;
  };
  return RunRemoteCall(spec, attempt, [this] { credentials_->Invalidate(); });
}

}  // namespace kmsplugin::aws
