// EnvelopeServiceFixture: the fixture the EnvelopeService tests share (envelope_service_test,
// key_tracking_test): a service over a FakeKes and a FakeClock, made afresh for each test with
// default options; a test makes it again with other options through Make().
#ifndef KMSP_TESTS_PLUGIN_ENVELOPE_SERVICE_FIXTURE_H_
#define KMSP_TESTS_PLUGIN_ENVELOPE_SERVICE_FIXTURE_H_

#include <memory>

#include "gtest/gtest.h"
#include "plugin/envelope_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kes.h"

namespace kmsplugin::testing {

class EnvelopeServiceFixture : public ::testing::Test {
 protected:
  void SetUp() override { Make(EnvelopeOptions{}); }

  // Replaces svc_ with a service made with `options` over a new FakeKes (kes_).
  virtual void Make(const EnvelopeOptions& options) {
    auto kes = std::make_unique<FakeKes>();
    kes_ = kes.get();
    auto svc = EnvelopeService::Create(options, std::move(kes), &clock_);
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
  }

  FakeClock clock_;
  FakeKes* kes_ = nullptr;
  std::unique_ptr<EnvelopeService> svc_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_PLUGIN_ENVELOPE_SERVICE_FIXTURE_H_
