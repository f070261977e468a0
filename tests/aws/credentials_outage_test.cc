// A credential source that is missing, unreadable or empty is an outage (UNAVAILABLE), never a
// revocation: through the web identity provider, the chain, the refreshing cache and KmsApi.
// Only AWS's own refusal of the identity or role may be UNAUTHENTICATED / PERMISSION_DENIED.
// Also: the STS endpoint must be https unless allowed for tests, and remote STS text reaches
// messages only through Printable().
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/aws/credentials_provider.h"
#include "kms/aws/kms_api.h"
#include "kms/aws/remote_credentials_provider.h"
#include "tests/aws/aws_test_util.h"

namespace kmsplugin::aws {
namespace {

using ::testing::HasSubstr;

constexpr char kRole[] = "arn:aws:iam::111122223333:role/kms-plugin";
// Credentials that expire one hour after FakeClock's start (1700000000).
constexpr char kStsAnswer[] =
    "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
    "<AccessKeyId>ASIASTS</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>"
    "<SessionToken>token</SessionToken><Expiration>2023-11-14T23:13:20Z</Expiration>"
    "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";

class CredentialOutageTest : public ::testing::Test {
 protected:
  CredentialOutageTest() : token_file_(dir_.Write("token", "jwt")) {}

  EnvLookup Env(std::map<std::string, std::string> extra = {}) {
    std::map<std::string, std::string> vars = {{"AWS_ROLE_ARN", kRole},
                                               {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file_},
                                               {"AWS_EC2_METADATA_DISABLED", "true"},
                                               {"HOME", dir_.path()}};
    for (auto& [k, v] : extra) vars[k] = v;
    return MapEnv(std::move(vars));
  }

  TempDir dir_;
  std::string token_file_;
  FakeClock clock_;
  FakeHttpClient sts_{[](const RecordedRequest&) { return MakeResponse(200, kStsAnswer); }};
};

TEST_F(CredentialOutageTest, AMissingOrEmptyTokenFileIsUnavailableWithoutAnStsCall) {
  WebIdentityCredentialsProvider p(Env(), &sts_, &clock_, {"us-east-1", false});
  std::ofstream(token_file_, std::ios::trunc) << "\n";
  absl::Status empty = p.Fetch(kCtx).status();
  EXPECT_THAT(empty, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("is empty")));
  EXPECT_FALSE(IsKeyRevokedError(empty));
  std::filesystem::remove(token_file_);
  absl::Status missing = p.Fetch(kCtx).status();
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot be read")));
  EXPECT_FALSE(IsKeyRevokedError(missing));
  EXPECT_EQ(sts_.requests().size(), 0u);
}

TEST_F(CredentialOutageTest, ATokenFileGoneAtRefreshTimeIsAnOutageOnceTheCachedCredentialsEnd) {
  auto chain = MakeDefaultCredentialsChain(Env(), &sts_, &clock_, {"us-east-1", false});
  ASSERT_THAT(chain->Fetch(kCtx), IsOk());
  std::filesystem::remove(token_file_);
  clock_.Advance(absl::Minutes(50));  // Inside the advisory window: the refresh fails quietly.
  absl::StatusOr<AwsCredentials> cached = chain->Fetch(kCtx);
  ASSERT_THAT(cached, IsOk());
  EXPECT_EQ(cached->access_key_id, "ASIASTS");
  clock_.Advance(absl::Minutes(10) - absl::Seconds(5));  // Past the mandatory window.
  absl::Status refresh = chain->Fetch(kCtx).status();
  EXPECT_THAT(refresh, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("token file")));
  EXPECT_FALSE(IsKeyRevokedError(refresh));
  EXPECT_EQ(sts_.requests().size(), 1u);

  // The same through KmsApi, with the refresh KMS asks for after ExpiredTokenException.
  FakeHttpClient kms([](const RecordedRequest&) {
    return MakeResponse(400, R"({"__type":"ExpiredTokenException","message":"expired"})");
  });
  KmsApiOptions options;
  options.endpoint = "https://kms.us-east-1.amazonaws.com";
  options.region = "us-east-1";
  auto api = KmsApi::Create(options, &kms, chain.get(), &clock_);
  ASSERT_THAT(api, IsOk());
  absl::Status call = (*api)->Call("DescribeKey", SecretBytes::CopyFrom("{}"), kCtx).status();
  EXPECT_THAT(call, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("credentials")));
  EXPECT_FALSE(IsKeyRevokedError(call));
  EXPECT_EQ(kms.requests().size(), 0u);
}

TEST_F(CredentialOutageTest, StsRefusingTheTokenOrRoleStaysARefusal) {
  FakeHttpClient refusing([](const RecordedRequest&) {
    return MakeResponse(403, "<ErrorResponse><Error><Code>AccessDenied</Code></Error>"
                             "</ErrorResponse>");
  });
  WebIdentityCredentialsProvider p(Env(), &refusing, &clock_, {"us-east-1", false});
  EXPECT_TRUE(IsKeyRevokedError(p.Fetch(kCtx).status()));
}

TEST_F(CredentialOutageTest, APlainHttpStsEndpointIsRefusedUnlessAllowedForTests) {
  auto env = Env({{"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/"}});
  WebIdentityCredentialsProvider refused(env, &sts_, &clock_, {"us-east-1", false});
  EXPECT_THAT(refused.Fetch(kCtx),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not https")));
  EXPECT_EQ(sts_.requests().size(), 0u);
  WebIdentityCredentialsProvider allowed(env, &sts_, &clock_, {"us-east-1", false, true});
  EXPECT_THAT(allowed.Fetch(kCtx), IsOk());
  EXPECT_EQ(sts_.requests().size(), 1u);
}

TEST_F(CredentialOutageTest, RemoteStsTextReachesMessagesOnlyPrintableAndBounded) {
  const std::string hostile = "Bad\n\x1b[31mCode\xff" + std::string(4000, 'x');
  FakeHttpClient sts([&](const RecordedRequest&) {
    return MakeResponse(400, "<ErrorResponse><Error><Code>" + hostile +
                                 "</Code></Error></ErrorResponse>");
  });
  WebIdentityCredentialsProvider p(Env(), &sts, &clock_, {"us-east-1", false});
  absl::Status s = p.Fetch(kCtx).status();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(PrintableAscii(std::string(s.message()))) << s.message();
  EXPECT_LT(s.message().size(), 1024u);
  FakeHttpClient bad_time([](const RecordedRequest&) {
    return MakeResponse(200, "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s"
                             "</SecretAccessKey><SessionToken>t</SessionToken><Expiration>\x1b"
                             "\n</Expiration></Credentials>");
  });
  WebIdentityCredentialsProvider q(Env(), &bad_time, &clock_, {"us-east-1", false});
  absl::Status t = q.Fetch(kCtx).status();
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(PrintableAscii(std::string(t.message()))) << t.message();
}

}  // namespace
}  // namespace kmsplugin::aws
