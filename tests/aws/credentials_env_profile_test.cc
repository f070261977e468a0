// The AWS credential chain, the static sources: the environment provider and the shared
// credentials / config files (profiles), each with an injected environment and temp files.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/aws/credentials_provider.h"
#include "tests/aws/aws_test_util.h"

namespace kmsplugin::aws {
namespace {

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

}  // namespace
}  // namespace kmsplugin::aws
