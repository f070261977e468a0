// The AWS credential chain: each provider with an injected environment, temp files and a fake
// HTTP client; the chain's order and stickiness; the refreshing cache driven by a FakeClock.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/aws/credentials_provider.h"
#include "kms/aws/remote_credentials_provider.h"
#include "tests/aws/fake_http_client.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"

namespace kmsplugin::aws {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeHttpClient;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::MakeResponse;
using ::kmsplugin::testing::RecordedRequest;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kmsp-aws-creds-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const CallContext kCtx = CallContext{absl::InfiniteFuture(), "test"};

// A provider that hands out numbered credentials with a fixed lifetime and counts its calls.
class CountingProvider final : public CredentialsProvider {
 public:
  CountingProvider(const Clock* clock, absl::Duration lifetime)
      : clock_(clock), lifetime_(lifetime) {}
  std::string_view Name() const override { return "counting"; }
  absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) override {
    ++calls;
    if (!fail.ok()) return fail;
    AwsCredentials c;
    c.access_key_id = "AKID" + std::to_string(calls);
    c.secret_access_key = SecretBytes::CopyFrom("secret");
    c.expiration = clock_->Now() + lifetime_;
    return c;
  }
  int calls = 0;
  absl::Status fail;

 private:
  const Clock* clock_;
  absl::Duration lifetime_;
};

class StaticProvider final : public CredentialsProvider {
 public:
  StaticProvider(std::string name, absl::Status status) : name_(std::move(name)), status_(status) {}
  std::string_view Name() const override { return name_; }
  absl::StatusOr<AwsCredentials> Fetch(const CallContext& ctx) override {
    ++calls;
    if (!status_.ok()) return status_;
    AwsCredentials c;
    c.access_key_id = name_;
    c.secret_access_key = SecretBytes::CopyFrom("s");
    return c;
  }
  int calls = 0;

 private:
  std::string name_;
  absl::Status status_;
};

// ---------------------------------------------------------------------------------------------

class EnvCredentialsProviderTest : public ::testing::Test {};

TEST_F(EnvCredentialsProviderTest, ReadsKeysTokenAndExpiration) {
  EnvCredentialsProvider p(MapEnv({{"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                   {"AWS_SECRET_ACCESS_KEY", "envsecret"},
                                   {"AWS_SESSION_TOKEN", "envtoken"},
                                   {"AWS_CREDENTIAL_EXPIRATION", "2030-01-02T03:04:05Z"}}));
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKIDENV");
  EXPECT_EQ(c->secret_access_key.Reveal(), "envsecret");
  EXPECT_EQ(c->session_token.Reveal(), "envtoken");
  EXPECT_EQ(c->expiration, absl::FromUnixSeconds(1893553445));
}

TEST_F(EnvCredentialsProviderTest, LegacySecurityTokenVariableIsAccepted) {
  EnvCredentialsProvider p(MapEnv({{"AWS_ACCESS_KEY_ID", "A"},
                                   {"AWS_SECRET_ACCESS_KEY", "S"},
                                   {"AWS_SECURITY_TOKEN", "legacy"}}));
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->session_token.Reveal(), "legacy");
}

TEST_F(EnvCredentialsProviderTest, IsNotFoundWhenUnsetAndInvalidWhenHalfSet) {
  EXPECT_THAT(EnvCredentialsProvider(MapEnv({})).Fetch(kCtx),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(EnvCredentialsProvider(MapEnv({{"AWS_ACCESS_KEY_ID", "A"}})).Fetch(kCtx),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---------------------------------------------------------------------------------------------

class ProfileCredentialsProviderTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(ProfileCredentialsProviderTest, ParsesIniSectionsCommentsAndNestedBlocks) {
  IniSections s = ParseAwsIni(
      "# comment\n[default]\nregion = us-east-1 ; inline\n[profile prod]\n"
      "aws_access_key_id=AKIDPROD\ns3 =\n  max_concurrent_requests = 10\n[sso-session x]\n"
      "sso_region = eu-west-1\n",
      /*config_style=*/true);
  EXPECT_EQ(s["default"]["region"], "us-east-1");
  EXPECT_EQ(s["prod"]["aws_access_key_id"], "AKIDPROD");
  EXPECT_EQ(s["prod"].count("max_concurrent_requests"), 0u);
  EXPECT_EQ(s.count("sso-session x"), 0u);
}

TEST_F(ProfileCredentialsProviderTest, ReadsTheSelectedProfileFromTheCredentialsFile) {
  const std::string creds =
      dir_.Write("credentials",
                 "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = defsecret\n\n"
                 "[prod]\naws_access_key_id = AKIDPROD\naws_secret_access_key = prodsecret\n"
                 "aws_session_token = prodtoken\n");
  SharedFilesConfig files = SharedFilesConfig::FromEnv(
      MapEnv({{"AWS_SHARED_CREDENTIALS_FILE", creds}, {"AWS_PROFILE", "prod"}}));
  absl::StatusOr<AwsCredentials> c =
      ProfileCredentialsProvider(files, /*config_file=*/false).Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKIDPROD");
  EXPECT_EQ(c->secret_access_key.Reveal(), "prodsecret");
  EXPECT_EQ(c->session_token.Reveal(), "prodtoken");
  EXPECT_EQ(c->expiration, absl::InfiniteFuture());
}

TEST_F(ProfileCredentialsProviderTest, ReadsStaticKeysFromTheConfigFileProfileSection) {
  const std::string config = dir_.Write(
      "config", "[profile dev]\naws_access_key_id = AKIDCFG\naws_secret_access_key = cfg\n");
  SharedFilesConfig files =
      SharedFilesConfig::FromEnv(MapEnv({{"AWS_CONFIG_FILE", config}, {"AWS_PROFILE", "dev"}}));
  absl::StatusOr<AwsCredentials> c =
      ProfileCredentialsProvider(files, /*config_file=*/true).Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKIDCFG");
}

TEST_F(ProfileCredentialsProviderTest, MissingFileOrProfileIsNotFound) {
  SharedFilesConfig files = SharedFilesConfig::FromEnv(
      MapEnv({{"AWS_SHARED_CREDENTIALS_FILE", dir_.path() + "/absent"}}));
  EXPECT_THAT(ProfileCredentialsProvider(files, false).Fetch(kCtx),
              StatusIs(absl::StatusCode::kNotFound));
  const std::string creds = dir_.Write("c", "[other]\naws_access_key_id=A\n");
  files.credentials_file = creds;
  EXPECT_THAT(ProfileCredentialsProvider(files, false).Fetch(kCtx),
              StatusIs(absl::StatusCode::kNotFound));
}

// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------

class ChainCredentialsProviderTest : public ::testing::Test {};

TEST_F(ChainCredentialsProviderTest, SkipsUnconfiguredProvidersAndSticksToTheFirstThatWorks) {
  std::vector<std::unique_ptr<CredentialsProvider>> providers;
  auto* a = new StaticProvider("a", absl::NotFoundError("unset"));
  auto* b = new StaticProvider("b", absl::OkStatus());
  auto* c = new StaticProvider("c", absl::OkStatus());
  providers.emplace_back(a);
  providers.emplace_back(b);
  providers.emplace_back(c);
  ChainCredentialsProvider chain(std::move(providers));
  absl::StatusOr<AwsCredentials> got = chain.Fetch(kCtx);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->access_key_id, "b");
  ASSERT_THAT(chain.Fetch(kCtx), IsOk());
  EXPECT_EQ(a->calls, 1);
  EXPECT_EQ(b->calls, 2);
  EXPECT_EQ(c->calls, 0);
}

TEST_F(ChainCredentialsProviderTest, AConfiguredButFailingProviderStopsTheChain) {
  std::vector<std::unique_ptr<CredentialsProvider>> providers;
  auto* later = new StaticProvider("imds", absl::OkStatus());
  providers.emplace_back(new StaticProvider("web-identity", absl::UnauthenticatedError("bad jwt")));
  providers.emplace_back(later);
  ChainCredentialsProvider chain(std::move(providers));
  EXPECT_THAT(chain.Fetch(kCtx),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("web-identity")));
  EXPECT_EQ(later->calls, 0);
}

TEST_F(ChainCredentialsProviderTest, NothingConfiguredIsAnOutageNamingEveryProvider) {
  std::vector<std::unique_ptr<CredentialsProvider>> providers;
  providers.emplace_back(new StaticProvider("environment", absl::NotFoundError("unset")));
  providers.emplace_back(new StaticProvider("imds", absl::NotFoundError("disabled")));
  ChainCredentialsProvider chain(std::move(providers));
  EXPECT_THAT(chain.Fetch(kCtx),
              StatusIs(absl::StatusCode::kUnavailable,
                       ::testing::AllOf(HasSubstr("environment"), HasSubstr("imds"))));
}

TEST_F(ChainCredentialsProviderTest, DefaultChainPrefersEnvironmentThenWebIdentityThenFiles) {
  TempDir dir;
  FakeClock clock;
  const std::string creds =
      dir.Write("credentials", "[default]\naws_access_key_id=AKIDFILE\naws_secret_access_key=f\n");
  FakeHttpClient http([](const RecordedRequest&) { return MakeResponse(500, ""); });
  std::map<std::string, std::string> env = {{"HOME", dir.path()},
                                            {"AWS_SHARED_CREDENTIALS_FILE", creds},
                                            {"AWS_EC2_METADATA_DISABLED", "true"},
                                            {"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                            {"AWS_SECRET_ACCESS_KEY", "e"}};
  auto fetch = [&](const std::map<std::string, std::string>& vars) {
    return MakeDefaultCredentialsChain(MapEnv(vars), &http, &clock, {"us-east-1", false})
        ->Fetch(kCtx);
  };
  absl::StatusOr<AwsCredentials> c = fetch(env);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKIDENV");
  // AWS_PROFILE set explicitly: environment keys are skipped (botocore), the file wins.
  env["AWS_PROFILE"] = "default";
  c = fetch(env);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKIDFILE");
  // Web identity comes before the shared files (its STS here answers 500: UNAVAILABLE).
  env["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/r";
  env["AWS_WEB_IDENTITY_TOKEN_FILE"] = dir.Write("token", "jwt");
  EXPECT_THAT(fetch(env), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("web-identity")));
}

// ---------------------------------------------------------------------------------------------

class RefreshingCredentialsProviderTest : public ::testing::Test {
 protected:
  FakeClock clock_;
};

TEST_F(RefreshingCredentialsProviderTest, ServesFromCacheUntilTheAdvisoryWindow) {
  auto* inner = new CountingProvider(&clock_, absl::Hours(1));
  RefreshingCredentialsProvider p(std::unique_ptr<CredentialsProvider>(inner), &clock_);
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  clock_.Advance(absl::Minutes(44));
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKID1");
  EXPECT_EQ(inner->calls, 1);
  clock_.Advance(absl::Minutes(2));  // 14 minutes left: refresh.
  c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKID2");
  EXPECT_EQ(inner->calls, 2);
}

TEST_F(RefreshingCredentialsProviderTest, FailedRefreshKeepsOldCredentialsUntilTheMandatoryWindow) {
  auto* inner = new CountingProvider(&clock_, absl::Hours(1));
  RefreshingCredentialsProvider p(std::unique_ptr<CredentialsProvider>(inner), &clock_);
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  inner->fail = absl::UnavailableError("STS down");
  clock_.Advance(absl::Minutes(50));
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKID1");
  clock_.Advance(absl::Minutes(10) - absl::Seconds(5));  // 5 s left: must not be served.
  EXPECT_THAT(p.Fetch(kCtx), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(RefreshingCredentialsProviderTest, CredentialsWithoutExpiryAreFetchedOnce) {
  auto* inner = new CountingProvider(&clock_, absl::InfiniteDuration());
  RefreshingCredentialsProvider p(std::unique_ptr<CredentialsProvider>(inner), &clock_);
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  clock_.Advance(absl::Hours(24 * 365));
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  EXPECT_EQ(inner->calls, 1);
}

TEST_F(RefreshingCredentialsProviderTest, InvalidateForcesARefresh) {
  auto* inner = new CountingProvider(&clock_, absl::Hours(1));
  RefreshingCredentialsProvider p(std::unique_ptr<CredentialsProvider>(inner), &clock_);
  ASSERT_THAT(p.Fetch(kCtx), IsOk());
  p.Invalidate();
  absl::StatusOr<AwsCredentials> c = p.Fetch(kCtx);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->access_key_id, "AKID2");
}

TEST_F(RefreshingCredentialsProviderTest, ParsesAwsTimesWithAndWithoutFractions) {
  EXPECT_THAT(ParseAwsTime("2023-11-14T22:13:20Z"),
              kmsplugin::testing::IsOkAndHolds(absl::FromUnixSeconds(1700000000)));
  EXPECT_THAT(ParseAwsTime("2023-11-14T22:13:20.500Z"),
              kmsplugin::testing::IsOkAndHolds(absl::FromUnixMillis(1700000000500)));
  EXPECT_THAT(ParseAwsTime("yesterday"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin::aws
