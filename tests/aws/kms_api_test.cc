// KmsApi: AWS error parsing and classification, retries with backoff inside the deadline, the
// one-time credential refresh on ExpiredTokenException, and the cap on concurrent calls. The HTTP
// side is a FakeHttpClient; signing is checked against the python server in aws_kms_test.
#include "kms/aws/kms_api.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/aws/aws_test_util.h"

namespace kmsplugin::aws {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class FixedProvider final : public CredentialsProvider {
 public:
  std::string_view Name() const override { return "fixed"; }
  absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) override {
    ++fetches;
    if (!fail.ok()) return fail;
    AwsCredentials c;
    c.access_key_id = "AKIDEXAMPLE";
    c.secret_access_key = SecretBytes::CopyFrom("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    c.session_token = SecretBytes::CopyFrom("session-token-" + std::to_string(fetches));
    return c;
  }
  void Invalidate() override { ++invalidations; }
  std::atomic<int> fetches{0};
  std::atomic<int> invalidations{0};
  absl::Status fail;  // Set by a test before calls start.
};

HttpResponse KmsError(int status, std::string_view type, std::string_view message = "m") {
  return MakeResponse(status, fmt::format(R"({{"__type":"{}","message":"{}"}})", type, message),
                      {{"x-amzn-requestid", "req-1"}});
}

class ClassifyKmsErrorTest : public ::testing::Test {};

TEST_F(ClassifyKmsErrorTest, NamespacePrefixAndSuffixAreStripped) {
  EXPECT_EQ(SanitizeErrorCode("com.amazonaws.kms#NotFoundException"), "NotFoundException");
  EXPECT_EQ(SanitizeErrorCode("ThrottlingException:http://internal.amazon.com/"),
            "ThrottlingException");
  EXPECT_EQ(SanitizeErrorCode("com.amazon.coral.service#ExpiredTokenException:x#y"),
            "ExpiredTokenException");
}

TEST_F(ClassifyKmsErrorTest, CodesMapToStatusAndRetryability) {
  struct Case {
    int http;
    const char* type;
    absl::StatusCode code;
    bool retry;
  } cases[] = {
      {400, "ThrottlingException", absl::StatusCode::kUnavailable, true},
      {500, "com.amazonaws.kms#KMSInternalException", absl::StatusCode::kUnavailable, true},
      {503, "DependencyTimeoutException", absl::StatusCode::kUnavailable, true},
      {500, "KeyUnavailableException", absl::StatusCode::kUnavailable, true},
      {400, "AccessDeniedException", absl::StatusCode::kPermissionDenied, false},
      {409, "DisabledException", absl::StatusCode::kFailedPrecondition, false},
      {409, "KMSInvalidStateException", absl::StatusCode::kFailedPrecondition, false},
      {400, "NotFoundException", absl::StatusCode::kFailedPrecondition, false},
      {400, "InvalidCiphertextException", absl::StatusCode::kInvalidArgument, false},
      {400, "IncorrectKeyException", absl::StatusCode::kInvalidArgument, false},
      {400, "com.amazon.coral.service#UnrecognizedClientException",
       absl::StatusCode::kUnauthenticated, false},
      {400, "InvalidSignatureException", absl::StatusCode::kUnauthenticated, false},
      {400, "ValidationException", absl::StatusCode::kInternal, false},
      // RotateKeyOnDemand while a rotation runs, or on a key that cannot rotate on demand.
      {400, "ConflictException", absl::StatusCode::kAborted, false},
      {400, "UnsupportedOperationException", absl::StatusCode::kFailedPrecondition, false},
      {400, "SomethingNew", absl::StatusCode::kUnknown, false},
  };
  for (const Case& c : cases) {
    AwsError e = ClassifyKmsError("Encrypt", c.http, "",
                                  fmt::format(R"({{"__type":"{}","message":"hi"}})", c.type), "r");
    EXPECT_EQ(e.status.code(), c.code) << c.type;
    EXPECT_EQ(e.retryable, c.retry) << c.type;
    EXPECT_THAT(std::string(e.status.message()), HasSubstr("Encrypt")) << c.type;
  }
}

TEST_F(ClassifyKmsErrorTest, HeaderCodeWinsAndBareServerErrorsAreRetried) {
  AwsError e = ClassifyKmsError("Decrypt", 400, "DisabledException", R"({"__type":"Other"})", "");
  EXPECT_EQ(e.code, "DisabledException");
  AwsError bare = ClassifyKmsError("Decrypt", 502, "", "<html>bad gateway</html>", "");
  EXPECT_EQ(bare.code, "502");
  EXPECT_TRUE(bare.retryable);
  EXPECT_EQ(bare.status.code(), absl::StatusCode::kUnavailable);
}

TEST_F(ClassifyKmsErrorTest, ClockSkewIsAnOutageNotARevocation) {
  AwsError e = ClassifyKmsError(
      "Encrypt", 400, "",
      R"({"__type":"InvalidSignatureException","message":"Signature expired: 20180920T174101Z is now earlier than 20180920T174504Z"})",
      "");
  EXPECT_EQ(e.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsKeyRevokedError(e.status));
}

TEST_F(ClassifyKmsErrorTest, RemoteCodeMessageAndRequestIdReachTheStatusOnlyPrintableAndBounded) {
  const std::string hostile = "A\n\x1b[2J\"\\\xff" + std::string(5000, 'z');
  const std::string in_json = "A\n\x1b[2J\"\\\xc3\xbf" + std::string(5000, 'z');  // Valid UTF-8.
  AwsError e = ClassifyKmsError("Decrypt", 400, hostile,
                                nlohmann::json({{"message", in_json}}).dump(), hostile);
  for (const std::string& text : {std::string(e.status.message()), e.code, e.message}) {
    for (char c : text) {
      EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << static_cast<int>(c);
    }
  }
  EXPECT_LE(e.code.size(), kMaxErrorCodeLength + 16);
  EXPECT_LE(e.message.size(), kMaxErrorMessageLength + 16);
  EXPECT_LT(e.status.message().size(), 1024u);
  // A real code is untouched, so classification still works.
  EXPECT_EQ(ClassifyKmsError("Decrypt", 400, "", R"({"__type":"AccessDeniedException"})", "").code,
            "AccessDeniedException");
}

class KmsApiTest : public ::testing::Test {
 protected:
  std::unique_ptr<KmsApi> MakeApi(FakeHttpClient* http, int max_attempts = 3,
                                  size_t max_concurrent = 4) {
    KmsApiOptions options;
    options.endpoint = "https://kms.us-east-1.amazonaws.com";
    options.region = "us-east-1";
    options.retry.max_attempts = max_attempts;
    options.retry.base_delay = absl::Milliseconds(1);
    options.retry.max_delay = absl::Milliseconds(2);
    options.max_concurrent_calls = max_concurrent;
    absl::StatusOr<std::unique_ptr<KmsApi>> api =
        KmsApi::Create(std::move(options), http, &creds_, RealClock::Get());
    EXPECT_THAT(api, IsOk());
    return std::move(*api);
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(10), "uid-1"); }
  const SecretBytes body_ = SecretBytes::CopyFrom(R"({"KeyId":"alias/k"})");
  FixedProvider creds_;
};

TEST_F(KmsApiTest, SendsASignedJson11PostToTheEndpoint) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, "{}"); });
  auto api = MakeApi(&http);
  ASSERT_THAT(api->Call("DescribeKey", body_, Ctx()), IsOk());
  const RecordedRequest r = http.requests().at(0);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://kms.us-east-1.amazonaws.com");
  EXPECT_EQ(r.Header("host"), "kms.us-east-1.amazonaws.com");
  EXPECT_EQ(r.Header("content-type"), "application/x-amz-json-1.1");
  EXPECT_EQ(r.Header("x-amz-target"), "TrentService.DescribeKey");
  EXPECT_EQ(r.Header("x-amz-security-token"), "session-token-1");
  EXPECT_THAT(r.Header("authorization"),
              HasSubstr("/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;"
                        "x-amz-security-token;x-amz-target, Signature="));
  EXPECT_EQ(r.body, body_.Reveal());
}

TEST_F(KmsApiTest, AMissingCredentialSourceIsAnOutageNotARevocation) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, "{}"); });
  auto api = MakeApi(&http);
  for (const absl::Status& failure :
       {absl::NotFoundError("no provider found credentials"),
        absl::InvalidArgumentError("profile has only one of the two keys"),
        absl::InternalError("broken")}) {
    creds_.fail = failure;
    auto r = api->Call("DescribeKey", body_, Ctx());
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("credentials")));
    EXPECT_FALSE(IsKeyRevokedError(r.status()));
  }
  // AWS refusing the web identity or role stays a refusal.
  creds_.fail = absl::PermissionDeniedError("AccessDenied from STS");
  EXPECT_THAT(api->Call("DescribeKey", body_, Ctx()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_TRUE(http.requests().empty());
}

TEST_F(KmsApiTest, ThrottlingIsRetriedAndThenSucceeds) {
  std::atomic<int> n{0};
  FakeHttpClient http([&](const RecordedRequest&) {
    return ++n < 3 ? KmsError(400, "ThrottlingException") : MakeResponse(200, R"({"ok":1})");
  });
  auto api = MakeApi(&http);
  absl::StatusOr<SecretBytes> out = api->Call("Encrypt", body_, Ctx());
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->Reveal(), R"({"ok":1})");
  EXPECT_EQ(http.requests().size(), 3u);
  // Every attempt is signed afresh.
  EXPECT_NE(http.requests()[0].Header("authorization"), "");
}

TEST_F(KmsApiTest, PersistentServerErrorsGiveUpWithUnavailableAfterMaxAttempts) {
  FakeHttpClient http([](const RecordedRequest&) { return KmsError(500, "KMSInternalException"); });
  auto api = MakeApi(&http, /*max_attempts=*/4);
  EXPECT_THAT(api->Call("Encrypt", body_, Ctx()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("KMSInternalException")));
  EXPECT_EQ(http.requests().size(), 4u);
}

TEST_F(KmsApiTest, ConnectionFailuresAreRetried) {
  std::atomic<int> n{0};
  FakeHttpClient http([&](const RecordedRequest&) -> absl::StatusOr<HttpResponse> {
    if (++n == 1) return absl::UnavailableError("Connection reset by peer");
    return MakeResponse(200, "{}");
  });
  auto api = MakeApi(&http);
  EXPECT_THAT(api->Call("Decrypt", body_, Ctx()), IsOk());
  EXPECT_EQ(n.load(), 2);
}

TEST_F(KmsApiTest, RefusalsAreNotRetried) {
  for (const char* type : {"AccessDeniedException", "DisabledException", "NotFoundException",
                           "InvalidCiphertextException", "KMSInvalidStateException"}) {
    FakeHttpClient http([&](const RecordedRequest&) { return KmsError(400, type); });
    auto api = MakeApi(&http);
    EXPECT_THAT(api->Call("Decrypt", body_, Ctx()), Not(IsOk()));
    EXPECT_EQ(http.requests().size(), 1u) << type;
  }
}

TEST_F(KmsApiTest, ExpiredTokenRefreshesCredentialsOnceAndRetries) {
  FakeHttpClient http([](const RecordedRequest& r) {
    return r.Header("x-amz-security-token") == "session-token-1"
               ? KmsError(400, "com.amazon.coral.service#ExpiredTokenException")
               : MakeResponse(200, "{}");
  });
  auto api = MakeApi(&http, /*max_attempts=*/1);
  EXPECT_THAT(api->Call("Encrypt", body_, Ctx()), IsOk());
  EXPECT_EQ(creds_.invalidations.load(), 1);
  EXPECT_EQ(http.requests().size(), 2u);
}

TEST_F(KmsApiTest, ExpiredTokenTwiceIsUnauthenticated) {
  FakeHttpClient http(
      [](const RecordedRequest&) { return KmsError(400, "ExpiredTokenException"); });
  auto api = MakeApi(&http);
  EXPECT_THAT(api->Call("Encrypt", body_, Ctx()), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(http.requests().size(), 2u);
}

// remote-kms-apis.md §2.6: UnrecognizedClientException (temporary credentials revoked or replaced
// under us) forces one credential refresh and one retry, like ExpiredTokenException.
TEST_F(KmsApiTest, UnrecognizedClientRefreshesCredentialsOnceAndRetries) {
  FakeHttpClient http([](const RecordedRequest& r) {
    return r.Header("x-amz-security-token") == "session-token-1"
               ? KmsError(400, "com.amazon.coral.service#UnrecognizedClientException",
                          "The security token included in the request is invalid.")
               : MakeResponse(200, "{}");
  });
  auto api = MakeApi(&http, /*max_attempts=*/1);
  EXPECT_THAT(api->Call("Decrypt", body_, Ctx()), IsOk());
  EXPECT_EQ(creds_.invalidations.load(), 1);
  EXPECT_EQ(http.requests().size(), 2u);
}

TEST_F(KmsApiTest, UnrecognizedClientTwiceIsUnauthenticated) {
  FakeHttpClient http(
      [](const RecordedRequest&) { return KmsError(400, "UnrecognizedClientException"); });
  auto api = MakeApi(&http);
  EXPECT_THAT(api->Call("Encrypt", body_, Ctx()), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(http.requests().size(), 2u);
}

// RotateKeyOnDemand is not idempotent (each call that lands creates key material, at most 25 per
// key): after a failure that may have happened after AWS acted (5xx, dropped connection) it is not
// sent again; a throttled call was refused before AWS acted and is retried.
TEST_F(KmsApiTest, RotateKeyOnDemandIsNotRetriedAfterAServerErrorOrAConnectionFailure) {
  FakeHttpClient server_error(
      [](const RecordedRequest&) { return KmsError(500, "KMSInternalException"); });
  auto api = MakeApi(&server_error);
  EXPECT_THAT(api->Call("RotateKeyOnDemand", body_, Ctx()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("KMSInternalException")));
  EXPECT_EQ(server_error.requests().size(), 1u);

  FakeHttpClient dropped([](const RecordedRequest&) -> absl::StatusOr<HttpResponse> {
    return absl::UnavailableError("Connection reset by peer");
  });
  auto api2 = MakeApi(&dropped);
  EXPECT_THAT(api2->Call("RotateKeyOnDemand", body_, Ctx()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(dropped.requests().size(), 1u);
}

TEST_F(KmsApiTest, ThrottledRotateKeyOnDemandIsRetried) {
  std::atomic<int> n{0};
  FakeHttpClient http([&](const RecordedRequest&) {
    return ++n < 2 ? KmsError(400, "ThrottlingException") : MakeResponse(200, "{}");
  });
  auto api = MakeApi(&http);
  EXPECT_THAT(api->Call("RotateKeyOnDemand", body_, Ctx()), IsOk());
  EXPECT_EQ(http.requests().size(), 2u);
}

TEST_F(KmsApiTest, APassedDeadlineIsDeadlineExceededWithoutARequest) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, "{}"); });
  auto api = MakeApi(&http);
  EXPECT_THAT(api->Call("Encrypt", body_, CallContext{absl::Now() - absl::Seconds(1), "late"}),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(http.requests().empty());
}

TEST_F(KmsApiTest, NoRetryIsStartedThatCannotFinishBeforeTheDeadline) {
  FakeHttpClient http([](const RecordedRequest&) { return KmsError(400, "ThrottlingException"); });
  KmsApiOptions options;
  options.endpoint = "https://kms.us-east-1.amazonaws.com";
  options.region = "us-east-1";
  options.retry.max_attempts = 10;
  options.retry.base_delay = absl::Hours(1);  // Any backoff overshoots the deadline.
  options.retry.max_delay = absl::Hours(1);
  auto api = KmsApi::Create(std::move(options), &http, &creds_, RealClock::Get());
  ASSERT_THAT(api, IsOk());
  EXPECT_THAT((*api)->Call("Encrypt", body_, Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(http.requests().size(), 1u);
}

TEST_F(KmsApiTest, ConcurrentCallsAreCappedAndWaitersGiveUpAtTheirDeadline) {
  absl::Notification entered;
  absl::Notification release;
  FakeHttpClient http([&](const RecordedRequest&) {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    return MakeResponse(200, "{}");
  });
  auto api = MakeApi(&http, 3, /*max_concurrent=*/1);
  std::thread first([&] { EXPECT_THAT(api->Call("Encrypt", body_, Ctx()), IsOk()); });
  entered.WaitForNotification();
  EXPECT_THAT(api->Call("Encrypt", body_, CallContext::WithTimeout(absl::Milliseconds(50), "2")),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("slots")));
  release.Notify();
  first.join();
  EXPECT_EQ(http.requests().size(), 1u);
  EXPECT_THAT(api->Call("Encrypt", body_, Ctx()), IsOk());  // The slot was given back.
}

TEST_F(KmsApiTest, APlainHttpEndpointIsRefusedUnlessAllowedForTests) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, "{}"); });
  KmsApiOptions options;
  options.endpoint = "http://kms.us-east-1.amazonaws.com";
  options.region = "us-east-1";
  EXPECT_THAT(KmsApi::Create(options, &http, &creds_, RealClock::Get()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--aws-insecure-http-for-tests")));
  options.allow_insecure_http = true;
  auto api = KmsApi::Create(options, &http, &creds_, RealClock::Get());
  ASSERT_THAT(api, IsOk());
  EXPECT_THAT((*api)->Call("DescribeKey", body_, Ctx()), IsOk());
  ASSERT_EQ(http.requests().size(), 1u);
  EXPECT_EQ(http.requests()[0].url, "http://kms.us-east-1.amazonaws.com");
}

TEST_F(KmsApiTest, EndpointWithPortKeepsItInHostAndDefaultPortIsDropped) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, "{}"); });
  for (auto [endpoint, host] : {std::pair{"https://127.0.0.1:8443", "127.0.0.1:8443"},
                                std::pair{"https://kms.example:443/", "kms.example"}}) {
    KmsApiOptions options;
    options.endpoint = endpoint;
    options.region = "us-east-1";
    auto api = KmsApi::Create(std::move(options), &http, &creds_, RealClock::Get());
    ASSERT_THAT(api, IsOk());
    ASSERT_THAT((*api)->Call("Encrypt", body_, Ctx()), IsOk());
    EXPECT_EQ(http.requests().back().Header("host"), host);
  }
  KmsApiOptions bad;
  bad.endpoint = "ftp://kms";
  EXPECT_THAT(KmsApi::Create(std::move(bad), &http, &creds_, RealClock::Get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin::aws
