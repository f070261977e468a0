// The AWS credential chain as a whole: the chain's order and stickiness, and the refreshing
// cache driven by a FakeClock.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/aws/credentials_provider.h"
#include "kms/aws/remote_credentials_provider.h"
#include "tests/aws/aws_test_util.h"

namespace kmsplugin::aws {
namespace {

using ::testing::HasSubstr;

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
