// The backend flags of `kms-plugin serve`: --fips selects the AWS KMS FIPS endpoints as
// --aws-fips does (the FIPS provider itself is checked end to end in plugin_operations_test);
// --kms gcp builds its backend.
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "cmd/backend_flags.h"
#include "gtest/gtest.h"

namespace kmsplugin {
namespace {

absl::StatusOr<aws::AwsKmsOptions> Parse(std::vector<std::string> args) {
  CLI::App app;
  BackendFlags flags;
  AddBackendFlags(&app, &flags);
  std::vector<std::string> base = {"--kms",     "aws",          "--aws-key-id",
                                   "alias/k8s", "--aws-region", "us-east-1"};
  base.insert(base.end(), args.begin(), args.end());
  std::reverse(base.begin(), base.end());  // CLI11 takes argv reversed.
  app.parse(base);
  return AwsKmsOptionsFrom(flags);
}

TEST(BackendFlagsTest, FipsSelectsTheAwsFipsEndpoints) {
  auto options = Parse({"--fips"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->fips);
  EXPECT_EQ(aws::DefaultKmsEndpoint(options->region, options->fips),
            "https://kms-fips.us-east-1.amazonaws.com");
}

TEST(BackendFlagsTest, AwsFipsAloneAlsoSelectsThem) {
  auto options = Parse({"--aws-fips"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->fips);
}

TEST(BackendFlagsTest, WithoutEitherFlagTheEndpointsAreTheStandardOnes) {
  auto options = Parse({});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_FALSE(options->fips);
  EXPECT_EQ(aws::DefaultKmsEndpoint(options->region, options->fips),
            "https://kms.us-east-1.amazonaws.com");
}

TEST(BackendFlagsTest, BadEncryptionContextIsRefused) {
  EXPECT_FALSE(Parse({"--aws-encryption-context", "novalue"}).ok());
}

// --kms gcp builds the Google Cloud KMS backend from its flags, with no remote call (the
// endpoint is a closed port), and refuses a missing --gcp-key.
TEST(BackendFlagsTest, GcpFlagsBuildTheCloudKmsBackend) {
  // The flags alone decide here: a GOOGLE_APPLICATION_CREDENTIALS in the environment that runs
  // the tests would make CreateBackend read that file. It is unset for this test and restored
  // after it (no other thread runs meanwhile, hence the NOLINTs for setenv/unsetenv).
  const char* env = std::getenv("GOOGLE_APPLICATION_CREDENTIALS");
  const std::optional<std::string> saved =
      env == nullptr ? std::nullopt : std::optional<std::string>(env);
  ::unsetenv("GOOGLE_APPLICATION_CREDENTIALS");  // NOLINT(concurrency-mt-unsafe)
  const absl::Cleanup restore = [&saved] {
    if (saved.has_value()) {
      // NOLINTNEXTLINE(concurrency-mt-unsafe)
      ::setenv("GOOGLE_APPLICATION_CREDENTIALS", saved->c_str(), 1);
    }
  };
  for (const bool with_key : {true, false}) {
    CLI::App app;
    BackendFlags flags;
    AddBackendFlags(&app, &flags);
    std::vector<std::string> args = {"--kms", "gcp", "--gcp-endpoint", "https://127.0.0.1:1"};
    if (with_key) {
      args.insert(args.end(), {"--gcp-key", "projects/p/locations/l/keyRings/r/cryptoKeys/k"});
    }
    std::reverse(args.begin(), args.end());
    app.parse(args);
    EXPECT_EQ(flags.gcp_endpoint, "https://127.0.0.1:1");
    RealClock clock;
    auto kms = CreateBackend(flags, &clock);
    if (with_key) {
      ASSERT_TRUE(kms.ok()) << kms.status();
      EXPECT_EQ((*kms)->Name(), "gcp");
    } else {
      EXPECT_EQ(kms.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace kmsplugin
