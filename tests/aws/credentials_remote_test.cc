// The AWS credential chain, the remote sources: STS web identity (IRSA), the container
// credentials endpoint and IMDSv2, each with an injected environment, temp files, a fake HTTP
// client and a FakeClock.
#include <atomic>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/aws/credentials_provider.h"
#include "kms/aws/remote_credentials_provider.h"
#include "tests/aws/aws_test_util.h"

namespace kmsplugin::aws {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class WebIdentityCredentialsProviderTest : public ::testing::Test {
 protected:
  static constexpr char kStsAnswer[] =
      "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
      "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIASTS</AccessKeyId>"
      "<SecretAccessKey>sts&amp;secret</SecretAccessKey><SessionToken>ststoken</SessionToken>"
      "<Expiration>2023-11-14T23:13:20Z</Expiration></Credentials>"
      "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
  TempDir dir_;
  FakeClock clock_;
};

TEST_F(WebIdentityCredentialsProviderTest, CallsRegionalStsUnsignedWithTheTokenFileContent) {
  const std::string token = dir_.Write("token", "jwt.from.kubelet\n");
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, kStsAnswer); });
  WebIdentityCredentialsProvider p(MapEnv({{"AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/kms"},
                                           {"AWS_WEB_IDENTITY_TOKEN_FILE", token},
                                           {"AWS_ROLE_SESSION_NAME", "node-1"}}),
                                   &http, &clock_, DefaultChainOptions{"eu-west-1", false});
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "ASIASTS");
  EXPECT_EQ(c->secret_access_key.Reveal(), "sts&secret");
  EXPECT_EQ(c->session_token.Reveal(), "ststoken");
  EXPECT_EQ(c->expiration, absl::FromUnixSeconds(1700003600));
  ASSERT_EQ(http.requests().size(), 1u);
  const RecordedRequest r = http.requests()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://sts.eu-west-1.amazonaws.com/");
  EXPECT_EQ(r.Header("authorization"), "");
  EXPECT_THAT(r.Header("content-type"), HasSubstr("application/x-www-form-urlencoded"));
  EXPECT_EQ(r.body,
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
            "&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fkms&RoleSessionName=node-1"
            "&WebIdentityToken=jwt.from.kubelet");
}

TEST_F(WebIdentityCredentialsProviderTest, RereadsTheTokenFileOnEveryFetch) {
  const std::string token = dir_.Write("token", "first");
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, kStsAnswer); });
  WebIdentityCredentialsProvider p(
      MapEnv({{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"}, {"AWS_WEB_IDENTITY_TOKEN_FILE", token}}),
      &http, &clock_, DefaultChainOptions{"us-east-1", false});
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  dir_.Write("token", "second");
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  EXPECT_THAT(http.requests()[0].body, HasSubstr("WebIdentityToken=first"));
  EXPECT_THAT(http.requests()[1].body, HasSubstr("WebIdentityToken=second"));
  EXPECT_THAT(http.requests()[1].body, HasSubstr("RoleSessionName=kms-plugin-1700000000"));
}

TEST_F(WebIdentityCredentialsProviderTest, ProfileRoleArnAndTokenFileConfigureIt) {
  const std::string token = dir_.Write("token", "jwt");
  const std::string config = dir_.Write(
      "config",
      "[default]\nrole_arn = arn:aws:iam::1:role/p\nweb_identity_token_file = " + token + "\n");
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, kStsAnswer); });
  WebIdentityCredentialsProvider p(MapEnv({{"AWS_CONFIG_FILE", config}}), &http, &clock_,
                                   DefaultChainOptions{"us-east-1", true});
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  EXPECT_EQ(http.requests()[0].url, "https://sts-fips.us-east-1.amazonaws.com/");
  EXPECT_THAT(http.requests()[0].body, HasSubstr("RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fp"));
}

TEST_F(WebIdentityCredentialsProviderTest, StsErrorsMapToCodes) {
  const std::string token = dir_.Write("token", "jwt");
  auto run = [&](int status, const std::string& code) {
    FakeHttpClient http([&](const RecordedRequest&) {
      return MakeResponse(status, "<ErrorResponse><Error><Type>Sender</Type><Code>" + code +
                                      "</Code><Message>m</Message></Error></ErrorResponse>");
    });
    WebIdentityCredentialsProvider p(MapEnv({{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"},
                                             {"AWS_WEB_IDENTITY_TOKEN_FILE", token},
                                             {"AWS_ENDPOINT_URL_STS", "https://127.0.0.1:1/"}}),
                                     &http, &clock_, DefaultChainOptions{"us-east-1", false});
    absl::Status s = p.Fetch(kCtx).status();
    EXPECT_EQ(http.requests()[0].url, "https://127.0.0.1:1/");
    return s.code();
  };
  EXPECT_EQ(run(400, "InvalidIdentityToken"), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(run(403, "AccessDenied"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(run(400, "IDPCommunicationError"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(run(503, "ServiceUnavailable"), absl::StatusCode::kUnavailable);
}

TEST_F(WebIdentityCredentialsProviderTest,
       NotConfiguredIsNotFoundAndAMissingTokenFileIsAnOutage) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, kStsAnswer); });
  EXPECT_THAT(WebIdentityCredentialsProvider(MapEnv({{"HOME", dir_.path()}}), &http, &clock_,
                                             DefaultChainOptions{"us-east-1", false})
                  .Fetch(kCtx),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(WebIdentityCredentialsProvider(
                  MapEnv({{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"},
                          {"AWS_WEB_IDENTITY_TOKEN_FILE", dir_.path() + "/absent"}}),
                  &http, &clock_, DefaultChainOptions{"us-east-1", false})
                  .Fetch(kCtx),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(http.requests().empty());
}

// ---------------------------------------------------------------------------------------------

class ContainerCredentialsProviderTest : public ::testing::Test {
 protected:
  static constexpr char kAnswer[] =
      R"({"AccessKeyId":"ASIACONT","SecretAccessKey":"contsecret","Token":"conttoken",)"
      R"("Expiration":"2023-11-14T23:13:20Z","AccountId":"111122223333"})";
  TempDir dir_;
};

TEST_F(ContainerCredentialsProviderTest, FullUriWithTokenFileSendsTheTokenVerbatim) {
  const std::string token = dir_.Write("token", "pod-identity-token");
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, kAnswer); });
  ContainerCredentialsProvider p(
      MapEnv({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/v1/credentials"},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "loses-to-the-file"}}),
      &http);
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "ASIACONT");
  EXPECT_EQ(c->session_token.Reveal(), "conttoken");
  EXPECT_EQ(c->expiration, absl::FromUnixSeconds(1700003600));
  EXPECT_EQ(http.requests()[0].url, "http://127.0.0.1:8080/v1/credentials");
  EXPECT_EQ(http.requests()[0].Header("authorization"), "pod-identity-token");
  EXPECT_EQ(http.requests()[0].Header("accept"), "application/json");
}

TEST_F(ContainerCredentialsProviderTest, RelativeUriGoesToTheEcsAddress) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, kAnswer); });
  ContainerCredentialsProvider p(
      MapEnv({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"}}), &http);
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  EXPECT_EQ(http.requests()[0].url, "http://169.254.170.2/v2/credentials/abc");
}

TEST_F(ContainerCredentialsProviderTest, PlainHttpToANonLoopbackHostIsRefused) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, kAnswer); });
  ContainerCredentialsProvider p(
      MapEnv({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://198.51.100.7/creds"}}), &http);
  EXPECT_THAT(p.Fetch(kCtx), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(http.requests().empty());
}

TEST_F(ContainerCredentialsProviderTest, TokenWithNewlineIsRefusedAndErrorsMapToCodes) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(200, kAnswer); });
  EXPECT_THAT(ContainerCredentialsProvider(
                  MapEnv({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"},
                          {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\r\nX-Injected: 1"}}),
                  &http)
                  .Fetch(kCtx),
              StatusIs(absl::StatusCode::kInvalidArgument));
  FakeHttpClient denied([](const RecordedRequest&) { return MakeResponse(401, "{}"); });
  EXPECT_THAT(ContainerCredentialsProvider(
                  MapEnv({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"}}), &denied)
                  .Fetch(kCtx),
              StatusIs(absl::StatusCode::kUnauthenticated));
  FakeHttpClient down([](const RecordedRequest&) -> absl::StatusOr<HttpResponse> {
    return absl::UnavailableError("connection refused");
  });
  EXPECT_THAT(ContainerCredentialsProvider(
                  MapEnv({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"}}), &down)
                  .Fetch(kCtx),
              StatusIs(absl::StatusCode::kUnavailable));
}

// ---------------------------------------------------------------------------------------------

class ImdsCredentialsProviderTest : public ::testing::Test {
 protected:
  static absl::StatusOr<HttpResponse> Imds(const RecordedRequest& r) {
    if (r.method == "PUT" && r.url == "http://127.0.0.1:9/latest/api/token") {
      if (r.Header("x-aws-ec2-metadata-token-ttl-seconds") != "21600") {
        return MakeResponse(400, "");
      }
      return MakeResponse(200, "imds-session-token");
    }
    if (r.Header("x-aws-ec2-metadata-token") != "imds-session-token") return MakeResponse(401, "");
    if (r.url == "http://127.0.0.1:9/latest/meta-data/iam/security-credentials/") {
      return MakeResponse(200, "node-role\n");
    }
    if (r.url == "http://127.0.0.1:9/latest/meta-data/iam/security-credentials/node-role") {
      return MakeResponse(200, R"({"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS",)"
                               R"("SecretAccessKey":"imdssecret","Token":"imdstoken",)"
                               R"("Expiration":"2023-11-15T00:00:00Z"})");
    }
    return MakeResponse(404, "");
  }
  FakeClock clock_;  // 2023-11-14T22:13:20Z.
};

TEST_F(ImdsCredentialsProviderTest, GetsATokenThenTheRoleThenItsCredentials) {
  FakeHttpClient http(&Imds);
  ImdsCredentialsProvider p(MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/"}}),
                            &http, &clock_);
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "ASIAIMDS");
  EXPECT_EQ(c->session_token.Reveal(), "imdstoken");
  EXPECT_EQ(c->source, "imds:node-role");
  std::vector<RecordedRequest> reqs = http.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[1].method, "GET");
  EXPECT_EQ(reqs[2].method, "GET");
}

TEST_F(ImdsCredentialsProviderTest, ReusesTheSessionTokenUntilShortlyBeforeItsTtl) {
  FakeHttpClient http(&Imds);
  ImdsCredentialsProvider p(MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9"}}),
                            &http, &clock_);
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  EXPECT_EQ(http.requests().size(), 5u);  // One PUT, then two GETs per fetch.
  clock_.Advance(absl::Hours(6));
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  EXPECT_EQ(http.requests()[5].method, "PUT");
}

// A cached IMDSv2 session token that IMDS no longer accepts (401: IMDS restarted, token revoked)
// is not a refusal of the instance role: a new token is fetched and the request sent again.
TEST_F(ImdsCredentialsProviderTest, ARejectedSessionTokenIsReplacedAndTheRequestRetried) {
  std::atomic<bool> restarted{false};
  FakeHttpClient http([&](const RecordedRequest& r) -> absl::StatusOr<HttpResponse> {
    const std::string valid = restarted ? "imds-session-token-2" : "imds-session-token";
    if (r.method == "PUT") return MakeResponse(200, valid);
    if (r.Header("x-aws-ec2-metadata-token") != valid) return MakeResponse(401, "");
    RecordedRequest as_first = r;
    for (HttpHeader& h : as_first.headers) {
      if (h.name == "X-aws-ec2-metadata-token") h.value = "imds-session-token";
    }
    return Imds(as_first);
  });
  ImdsCredentialsProvider p(MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9"}}),
                            &http, &clock_);
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  restarted = true;
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "ASIAIMDS");
  std::vector<RecordedRequest> reqs = http.requests();
  // PUT, GET, GET; then GET (401), PUT, GET, GET.
  ASSERT_EQ(reqs.size(), 7u);
  EXPECT_EQ(reqs[4].method, "PUT");
}

TEST_F(ImdsCredentialsProviderTest, CredentialsAlreadyNearExpiryGetALocalExtension) {
  FakeHttpClient http(&Imds);
  clock_.Set(absl::FromUnixSeconds(1700006000));  // 23:53:20, 6m40s before they expire.
  ImdsCredentialsProvider p(MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9"}}),
                            &http, &clock_);
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->expiration, clock_.Now() + absl::Minutes(20));
}

TEST_F(ImdsCredentialsProviderTest, DisabledIsNotFoundWithoutAnyRequest) {
  FakeHttpClient http(&Imds);
  ImdsCredentialsProvider p(MapEnv({{"AWS_EC2_METADATA_DISABLED", "true"}}), &http, &clock_);
  EXPECT_THAT(p.Fetch(kCtx), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(http.requests().empty());
}

// botocore compares AWS_EC2_METADATA_DISABLED and AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE
// case-insensitively ("True" disables IMDS, "ipv6" selects the IPv6 endpoint).
TEST_F(ImdsCredentialsProviderTest, DisabledAndEndpointModeAreCaseInsensitive) {
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(404, ""); });
  ImdsCredentialsProvider disabled(MapEnv({{"AWS_EC2_METADATA_DISABLED", "True"}}), &http, &clock_);
  EXPECT_THAT(disabled.Fetch(kCtx), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(http.requests().empty());
  ImdsCredentialsProvider ipv6(MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv6"}}), &http,
                               &clock_);
  EXPECT_THAT(ipv6.Fetch(kCtx), Not(IsOk()));
  ASSERT_EQ(http.requests().size(), 1u);
  EXPECT_EQ(http.requests()[0].url, "http://[fd00:ec2::254]/latest/api/token");
}

}  // namespace
}  // namespace kmsplugin::aws
