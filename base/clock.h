// Clock: the one source of time for code that has deadlines, ages or expiry, so that tests can
// drive time with a FakeClock (tests/fakes/fake_clock.h) instead of sleeping.
#ifndef KMSP_BASE_CLOCK_H_
#define KMSP_BASE_CLOCK_H_

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace kmsplugin {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // A process-wide instance; never destroyed.
  static const Clock* Get() {
    static const RealClock* clock = new RealClock();
    return clock;
  }
};

// "2026-11-23T12:00:00Z" (UTC, seconds); "" for absl::InfinitePast() (never happened).
inline std::string FormatRfc3339(absl::Time t) {
  if (t == absl::InfinitePast()) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace kmsplugin

#endif  // KMSP_BASE_CLOCK_H_
