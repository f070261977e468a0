// The bearer-token layer shared by the GCP and Azure backends (kms/bearer): token endpoints
// (RequestToken, ParseTokenAnswer, FormEncode), the refreshing token cache on the credential
// machinery shared with AWS, and BearerRestApi (token header, one refresh on 401, retries,
// Retry-After, attempt reports). Every remote answer comes from a FakeHttpClient.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/bearer/rest_api.h"
#include "kms/bearer/token_endpoint.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/recording_observer.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeHttpClient;
using ::kmsplugin::testing::MakeResponse;
using ::kmsplugin::testing::RecordedRequest;
using ::kmsplugin::testing::RecordingObserver;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Time kEpoch = absl::FromUnixSeconds(1'800'000'000);

TokenEndpointOptions FastTokenOptions(RemoteAttemptObserver* observer = nullptr) {
  TokenEndpointOptions o;
  o.backend = "gcp";
  o.retry.max_attempts = 3;
  o.retry.base_delay = absl::Milliseconds(1);
  o.retry.max_delay = absl::Milliseconds(2);
  o.observer = observer;
  return o;
}

TokenRequest OAuthRequest() {
  TokenRequest r;
  r.what = "Google OAuth token";
  r.url = "https://oauth.test/token";
  r.body = FormEncode({{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                       {"assertion", "SECRET-ASSERTION"}});
  r.content_type = "application/x-www-form-urlencoded";
  r.source = "service-account-file";
  r.identity = "sa@p.iam.gserviceaccount.com";
  return r;
}

TEST(TokenEndpointTest, FormEncodingKeepsUnreservedCharactersAndEscapesTheRest) {
  SecretBytes form = FormEncode({{"scope", "https://a.b/c d"}, {"x", "a-b_c.d~e+f&g=h"}});
  EXPECT_EQ(form.Reveal(), "scope=https%3A%2F%2Fa.b%2Fc%20d&x=a-b_c.d~e%2Bf%26g%3Dh");
  EXPECT_EQ(UrlEncode("urn:ietf"), "urn%3Aietf");
}

TEST(TokenEndpointTest, ReadsTheExpiryInEveryFormTheProvidersUse) {
  auto oauth = ParseTokenAnswer(R"({"access_token":"t1","expires_in":3599})", kEpoch);
  ASSERT_TRUE(oauth.ok()) << oauth.status();
  EXPECT_EQ(oauth->token.Reveal(), "t1");
  EXPECT_EQ(oauth->expiration, kEpoch + absl::Seconds(3599));
  auto sts = ParseTokenAnswer(R"({"access_token":"t2","expires_in":"120"})", kEpoch);
  ASSERT_TRUE(sts.ok()) << sts.status();
  EXPECT_EQ(sts->expiration, kEpoch + absl::Seconds(120));
  auto imds = ParseTokenAnswer(
      R"({"access_token":"t3","expires_on":"1800000500","resource":"https://vault.azure.net"})",
      kEpoch);
  ASSERT_TRUE(imds.ok()) << imds.status();
  EXPECT_EQ(imds->expiration, absl::FromUnixSeconds(1'800'000'500));
  auto iam =
      ParseTokenAnswer(R"({"accessToken":"t4","expireTime":"2027-01-15T08:00:00Z"})", kEpoch);
  ASSERT_TRUE(iam.ok()) << iam.status();
  EXPECT_EQ(iam->token.Reveal(), "t4");
  EXPECT_EQ(absl::FormatTime(absl::RFC3339_sec, iam->expiration, absl::UTCTimeZone()),
            "2027-01-15T08:00:00+00:00");
  auto none = ParseTokenAnswer(R"({"access_token":"t5"})", kEpoch);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->expiration, kEpoch + absl::Hours(1));
}

TEST(TokenEndpointTest, AnAnswerWithoutATokenOrWithABadExpiryIsRefused) {
  EXPECT_EQ(ParseTokenAnswer(R"({"token_type":"Bearer"})", kEpoch).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTokenAnswer(R"({"access_token":"t","expires_in":"soon"})", kEpoch).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTokenAnswer("not json", kEpoch).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Numbers no int64 holds (found by fuzz/cloud_response_fuzzer: 3.6e101 was cast to int64,
  // undefined behaviour) are a bad expiry, not a token that never expires.
  for (const char* bad : {R"({"access_token":"t","expires_in":3.6e101})",
                          R"({"access_token":"t","expires_in":-1e300})",
                          R"({"access_token":"t","expires_in":18446744073709551615})",
                          R"({"access_token":"t","expires_on":9.3e18})"}) {
    EXPECT_EQ(ParseTokenAnswer(bad, kEpoch).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  auto fractional = ParseTokenAnswer(R"({"access_token":"t","expires_in":59.9})", kEpoch);
  ASSERT_TRUE(fractional.ok()) << fractional.status();
  EXPECT_EQ(fractional->expiration, kEpoch + absl::Seconds(59));
}

TEST(TokenEndpointTest, PostsTheFormAndReturnsTheTokenWithItsSourceAndIdentity) {
  FakeClock clock(kEpoch);
  FakeHttpClient http([](const RecordedRequest&) {
    return MakeResponse(200, R"({"access_token":"ya29.tok","expires_in":3599})");
  });
  auto token = RequestToken(&http, &clock, OAuthRequest(), CallContext{}, FastTokenOptions());
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->token.Reveal(), "ya29.tok");
  EXPECT_EQ(token->source, "service-account-file");
  EXPECT_EQ(token->identity, "sa@p.iam.gserviceaccount.com");
  const std::vector<RecordedRequest> requests = http.requests();
  ASSERT_EQ(requests.size(), 1u);
  const RecordedRequest& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.Header("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(r.body,
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=SECRET-"
            "ASSERTION");
}

TEST(TokenEndpointTest, ARefusedIdentityIsUnauthenticatedAndNotRetried) {
  FakeClock clock(kEpoch);
  FakeHttpClient http([](const RecordedRequest&) {
    return MakeResponse(400, R"({"error":"invalid_grant","error_description":"Invalid JWT"})");
  });
  auto token = RequestToken(&http, &clock, OAuthRequest(), CallContext{}, FastTokenOptions());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("Google OAuth token: HTTP 400: invalid_grant: Invalid JWT"));
  EXPECT_THAT(std::string(token.status().message()), Not(HasSubstr("SECRET-ASSERTION")));
  EXPECT_EQ(http.requests().size(), 1u);
}

TEST(TokenEndpointTest, TransientFailuresAreRetriedAndReportedThenAreAnOutage) {
  FakeClock clock(kEpoch);
  RecordingObserver observer;
  std::atomic<int> calls{0};
  FakeHttpClient http([&](const RecordedRequest&) {
    ++calls;
    if (calls == 1) return MakeResponse(503, "");
    if (calls == 2) return MakeResponse(400, R"({"error":"temporarily_unavailable"})");
    return MakeResponse(200, R"({"access_token":"ok","expires_in":60})");
  });
  auto token =
      RequestToken(&http, &clock, OAuthRequest(), CallContext{}, FastTokenOptions(&observer));
  ASSERT_TRUE(token.ok()) << token.status();
  ASSERT_EQ(observer.attempts().size(), 3u);
  EXPECT_TRUE(observer.attempts()[0].will_retry);
  EXPECT_EQ(observer.attempts()[0].error_class, "unavailable");
  EXPECT_EQ(observer.attempts()[2].error_class, "ok");
  EXPECT_EQ(observer.attempts()[2].operation, "Google OAuth token");

  FakeHttpClient down([](const RecordedRequest&) { return MakeResponse(500, "oops"); });
  auto failed = RequestToken(&down, &clock, OAuthRequest(), CallContext{}, FastTokenOptions());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(down.requests().size(), 3u);
}

TEST(TokenEndpointTest, ANotFoundEndpointIsAnOutageNeverARevocation) {
  FakeClock clock(kEpoch);
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(404, "no such path"); });
  auto token = RequestToken(&http, &clock, OAuthRequest(), CallContext{}, FastTokenOptions());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsKeyRevokedError(token.status()));
}

// A token source that counts fetches and hands out "tok-<n>".
class CountingTokenSource final : public TokenSource {
 public:
  explicit CountingTokenSource(const Clock* clock) : clock_(clock) {}
  std::string_view Name() const override { return "counting"; }
  absl::StatusOr<AccessToken> Fetch(const CallContext&) override {
    if (!fail_.ok()) return fail_;
    const int n = ++fetches_;
    return AccessToken{SecretBytes::CopyFrom("tok-" + std::to_string(n)),
                       clock_->Now() + absl::Hours(1), "counting", ""};
  }
  int fetches() const { return fetches_; }
  void Fail(absl::Status s) { fail_ = std::move(s); }

 private:
  const Clock* clock_;
  std::atomic<int> fetches_{0};
  absl::Status fail_;
};

TEST(RefreshingTokenSourceTest, ServesTheCachedTokenUntilTheAdvisoryWindowThenRefreshes) {
  FakeClock clock(kEpoch);
  auto inner = std::make_unique<CountingTokenSource>(&clock);
  CountingTokenSource* counting = inner.get();
  RefreshingTokenSource tokens(std::move(inner), &clock);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(tokens.Fetch(CallContext{}).ok());
  EXPECT_EQ(counting->fetches(), 1);
  clock.Advance(absl::Minutes(46));  // Inside the 15-minute advisory window of a 1 h token.
  auto t = tokens.Fetch(CallContext{});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token.Reveal(), "tok-2");
  tokens.Invalidate();
  EXPECT_EQ(tokens.Fetch(CallContext{})->token.Reveal(), "tok-3");
}

BearerRestOptions RestOptions(RemoteAttemptObserver* observer = nullptr) {
  BearerRestOptions o;
  o.backend = "azure";
  o.service = "Azure Key Vault";
  o.request_id_headers = {"x-ms-request-id"};
  o.retry.max_attempts = 3;
  o.retry.base_delay = absl::Milliseconds(1);
  o.retry.max_delay = absl::Milliseconds(2);
  o.observer = observer;
  o.classify = [](std::string_view operation, const HttpResponse& r) {
    RestError e;
    e.status =
        absl::UnavailableError(std::string(operation) + ": HTTP " + std::to_string(r.status));
    if (r.status == 401) {
      e.status = absl::UnauthenticatedError("401");
      e.refresh_token = true;
    } else if (r.status == 403) {
      e.status = absl::PermissionDeniedError("403");
    } else {
      e.retryable = r.status == 429 || r.status >= 500;
      e.not_acted = r.status == 429 || r.status == 503;
      e.throttled = r.status == 429;
    }
    return e;
  };
  return o;
}

RestCall WrapCall() {
  RestCall c;
  c.operation = "wrapkey";
  c.url = "https://vault.test/keys/k/v1/wrapkey?api-version=7.4";
  c.body = SecretBytes::CopyFrom(R"({"alg":"RSA-OAEP-256","value":"c2VjcmV0"})");
  return c;
}

TEST(BearerRestApiTest, SendsTheTokenAsABearerHeaderAndReturnsTheBody) {
  FakeClock clock(kEpoch);
  CountingTokenSource tokens(&clock);
  RecordingObserver observer;
  FakeHttpClient http([](const RecordedRequest&) {
    return MakeResponse(200, R"({"kid":"k","value":"d3JhcHBlZA"})", {{"x-ms-request-id", "r-1"}});
  });
  BearerRestApi api(RestOptions(&observer), &http, &tokens);
  auto body = api.Call(WrapCall(), CallContext{}, AttemptSubject{"vault/k", "azure:k/v1", ""});
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(body->Reveal(), R"({"kid":"k","value":"d3JhcHBlZA"})");
  ASSERT_EQ(http.requests().size(), 1u);
  EXPECT_EQ(http.requests()[0].Header("authorization"), "Bearer tok-1");
  EXPECT_EQ(http.requests()[0].Header("content-type"), "application/json");
  ASSERT_EQ(observer.attempts().size(), 1u);
  EXPECT_EQ(observer.attempts()[0].request_id, "r-1");
  EXPECT_EQ(observer.attempts()[0].backend, "azure");
  EXPECT_EQ(observer.attempts()[0].operation, "wrapkey");
  EXPECT_EQ(observer.attempts()[0].key_id, "azure:k/v1");
  EXPECT_EQ(observer.attempts()[0].http_status, 200);
}

TEST(BearerRestApiTest, A401GetsOneFreshTokenAndOneResendThenIsTheError) {
  FakeClock clock(kEpoch);
  CountingTokenSource tokens(&clock);
  RefreshingTokenSource cached(std::make_unique<CountingTokenSource>(&clock), &clock);
  int unauthorized_hooks = 0;
  BearerRestOptions options = RestOptions();
  options.on_unauthorized = [&](const HttpResponse& r) {
    ++unauthorized_hooks;
    EXPECT_EQ(r.Header("www-authenticate").value_or(""), "Bearer resource=\"x\"");
  };
  std::atomic<int> calls{0};
  FakeHttpClient once([&](const RecordedRequest& r) {
    if (++calls == 1) return MakeResponse(401, "", {{"www-authenticate", "Bearer resource=\"x\""}});
    EXPECT_EQ(r.Header("authorization"), "Bearer tok-2");
    return MakeResponse(200, "{}");
  });
  BearerRestApi api(options, &once, &cached);
  ASSERT_TRUE(api.Call(WrapCall(), CallContext{}).ok());
  EXPECT_EQ(once.requests().size(), 2u);
  EXPECT_EQ(unauthorized_hooks, 1);

  FakeHttpClient always([](const RecordedRequest&) { return MakeResponse(401, ""); });
  BearerRestApi refused(RestOptions(), &always, &tokens);
  auto r = refused.Call(WrapCall(), CallContext{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(always.requests().size(), 2u);
}

TEST(BearerRestApiTest, TransientAnswersAreRetriedAndAReturnedForbiddenIsNot) {
  FakeClock clock(kEpoch);
  CountingTokenSource tokens(&clock);
  RecordingObserver observer;
  std::atomic<int> calls{0};
  FakeHttpClient flaky([&](const RecordedRequest&) {
    if (++calls == 1) return MakeResponse(429, "", {{"retry-after", "0"}});
    return MakeResponse(200, "{}");
  });
  BearerRestApi api(RestOptions(&observer), &flaky, &tokens);
  ASSERT_TRUE(api.Call(WrapCall(), CallContext{}).ok());
  ASSERT_EQ(observer.attempts().size(), 2u);
  EXPECT_EQ(observer.attempts()[0].error_class, "throttled");
  EXPECT_TRUE(observer.attempts()[0].will_retry);

  FakeHttpClient forbidden([](const RecordedRequest&) { return MakeResponse(403, ""); });
  BearerRestApi denied(RestOptions(), &forbidden, &tokens);
  EXPECT_EQ(denied.Call(WrapCall(), CallContext{}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(forbidden.requests().size(), 1u);

  FakeHttpClient down([](const RecordedRequest&) { return MakeResponse(500, ""); });
  BearerRestApi outage(RestOptions(), &down, &tokens);
  EXPECT_EQ(outage.Call(WrapCall(), CallContext{}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(down.requests().size(), 3u);
}

TEST(BearerRestApiTest, ARetryAfterPastTheDeadlineGivesUpAtOnce) {
  FakeClock clock(kEpoch);
  CountingTokenSource tokens(&clock);
  FakeHttpClient throttled([](const RecordedRequest&) {
    return MakeResponse(429, "", {{"retry-after", "100"}});
  });
  BearerRestApi api(RestOptions(), &throttled, &tokens);
  auto r = api.Call(WrapCall(), CallContext::WithTimeout(absl::Seconds(5)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("Retry-After 1m40s"));
  EXPECT_EQ(throttled.requests().size(), 1u);
}

TEST(BearerRestApiTest, ANonIdempotentCallIsResentOnlyWhenTheServiceDidNotAct) {
  FakeClock clock(kEpoch);
  CountingTokenSource tokens(&clock);
  FakeHttpClient failing([](const RecordedRequest&) { return MakeResponse(500, ""); });
  BearerRestApi api(RestOptions(), &failing, &tokens);
  RestCall rotate = WrapCall();
  rotate.operation = "rotate";
  rotate.idempotent = false;
  EXPECT_EQ(api.Call(rotate, CallContext{}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(failing.requests().size(), 1u);  // 500: it may have rotated.
  FakeHttpClient busy([](const RecordedRequest&) { return MakeResponse(503, ""); });
  BearerRestApi api2(RestOptions(), &busy, &tokens);
  EXPECT_EQ(api2.Call(rotate, CallContext{}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(busy.requests().size(), 3u);  // 503: it did not act.
}

TEST(BearerRestApiTest, ATokenSourceFailureIsReturnedWithoutARequest) {
  FakeClock clock(kEpoch);
  CountingTokenSource tokens(&clock);
  tokens.Fail(absl::UnavailableError("no access token found (metadata-server: timeout)"));
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, "{}"); });
  BearerRestApi api(RestOptions(), &http, &tokens);
  auto r = api.Call(WrapCall(), CallContext{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("Azure Key Vault wrapkey: access token: no access token found"));
  EXPECT_TRUE(http.requests().empty());
}

TEST(RetryAfterTest, ReadsSecondsMillisecondsAndHttpDates) {
  EXPECT_EQ(RetryAfterOf(MakeResponse(429, "", {{"retry-after", "7"}}), kEpoch), absl::Seconds(7));
  EXPECT_EQ(RetryAfterOf(MakeResponse(429, "", {{"retry-after-ms", "250"}}), kEpoch),
            absl::Milliseconds(250));
  EXPECT_EQ(RetryAfterOf(MakeResponse(429, "", {{"x-ms-retry-after-ms", "40"}}), kEpoch),
            absl::Milliseconds(40));
  const absl::Time now = absl::FromUnixSeconds(1'784'000'000);
  const std::string date =
      absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", now + absl::Seconds(30), absl::UTCTimeZone());
  EXPECT_EQ(RetryAfterOf(MakeResponse(429, "", {{"retry-after", date}}), now), absl::Seconds(30));
  EXPECT_EQ(RetryAfterOf(MakeResponse(429, "", {{"retry-after", "soon"}}), now), std::nullopt);
  EXPECT_EQ(RetryAfterOf(MakeResponse(429, ""), now), std::nullopt);
}

}  // namespace
}  // namespace kmsplugin
