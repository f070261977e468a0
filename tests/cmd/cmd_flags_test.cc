// The backend flags of `kms-plugin serve`: --fips selects the AWS KMS FIPS endpoints as
// --aws-fips does (the FIPS provider itself is checked end to end in plugin_operations_test).
#include <algorithm>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace kmsplugin
