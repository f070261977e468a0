// The AwsKms test fixture shared by aws_kms_test and aws_kms_guard_test: on FakeAwsServerTest
// (one python fake AWS server per test suite, reset before each test), with one key behind
// alias/k8s and static credentials in an injected environment.
#ifndef KMSP_TESTS_AWS_AWS_KMS_FIXTURE_H_
#define KMSP_TESTS_AWS_AWS_KMS_FIXTURE_H_

#include <map>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/aws/aws_kms.h"
#include "tests/aws/aws_test_util.h"
#include "tests/aws/fake_aws_server.h"
#include "tests/aws/fake_aws_server_fixture.h"
#include "tests/matchers.h"

namespace kmsplugin::aws {

using ::kmsplugin::testing::FakeAwsServer;
using ::kmsplugin::testing::FakeAwsServerTest;

inline CallContext Ctx(absl::Duration timeout = absl::Seconds(10)) {
  return CallContext::WithTimeout(timeout, "test-uid");
}

inline SecretBytes DataKey(char fill = 'k') { return SecretBytes::CopyFrom(std::string(32, fill)); }

class AwsKmsTest : public FakeAwsServerTest {
 protected:
  void SetUp() override {
    FakeAwsServerTest::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<nlohmann::json> key = server_->Admin("/admin/keys", {{"alias", "k8s"}});
    ASSERT_THAT(key, IsOk());
    key_ = *key;
    env_ = FakeAwsServer::StaticCredentialsEnv();
  }

  AwsKmsOptions Options(std::string key_id = "alias/k8s") {
    AwsKmsOptions o;
    o.key_id = std::move(key_id);
    o.region = "us-east-1";
    o.endpoint = server_->kms_endpoint();
    o.ca_file = server_->ca_file();
    o.env = MapEnv(env_);
    o.retry.base_delay = absl::Milliseconds(5);
    o.retry.max_delay = absl::Milliseconds(20);
    return o;
  }

  std::unique_ptr<AwsKms> Make(AwsKmsOptions o) {
    absl::StatusOr<std::unique_ptr<AwsKms>> kms = AwsKms::Create(std::move(o), RealClock::Get());
    EXPECT_THAT(kms, IsOk());
    return kms.ok() ? std::move(*kms) : nullptr;
  }
  std::unique_ptr<AwsKms> Make() { return Make(Options()); }

  void Fault(const std::string& kind, int count, const std::string& op = "*", int delay_ms = 0) {
    ASSERT_THAT(server_->Admin("/admin/faults", {{"service", "kms"},
                                                 {"op", op},
                                                 {"kind", kind},
                                                 {"count", count},
                                                 {"delay_ms", delay_ms}}),
                IsOk());
  }

  std::string Arn() const { return key_["arn"].get<std::string>(); }
  std::string Material() const { return key_["material_id"].get<std::string>(); }

  nlohmann::json key_;
  std::map<std::string, std::string> env_;
};

}  // namespace kmsplugin::aws

#endif  // KMSP_TESTS_AWS_AWS_KMS_FIXTURE_H_
