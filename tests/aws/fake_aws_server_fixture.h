// FakeAwsServerTest: the fixture of the tests that share one python fake AWS server per test
// suite (tests/aws/fake_aws_server.py, through FakeAwsServer), started before the suite's first
// test, reset to its initial state before each test and stopped after the suite.
#ifndef KMSP_TESTS_AWS_FAKE_AWS_SERVER_FIXTURE_H_
#define KMSP_TESTS_AWS_FAKE_AWS_SERVER_FIXTURE_H_

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aws/fake_aws_server.h"
#include "tests/matchers.h"

namespace kmsplugin::testing {

class FakeAwsServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = FakeAwsServer::Start();
    ASSERT_THAT(server, IsOk());
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_THAT(server_->Admin("/admin/reset"), IsOk());
  }

  inline static FakeAwsServer* server_ = nullptr;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_AWS_FAKE_AWS_SERVER_FIXTURE_H_
