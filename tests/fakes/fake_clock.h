// FakeClock: a Clock that only moves when a test calls Advance(). Thread-safe.
#ifndef KMSP_TESTS_FAKES_FAKE_CLOCK_H_
#define KMSP_TESTS_FAKES_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "base/clock.h"

namespace kmsplugin::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_FAKES_FAKE_CLOCK_H_
