// progress: the plain line and the terminal bar, driven by a FakeClock.
#include "tools/reencrypt/progress.h"

#include <algorithm>
#include <cstdio>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"

namespace kmsplugin::reencrypt {
namespace {

using ::testing::HasSubstr;

class ProgressTest : public ::testing::Test {};

TEST_F(ProgressTest, PlainLineHasCountsRateAndEta) {
  ProgressCounters c{/*total=*/1000, /*scanned=*/250, /*rewritten=*/200, /*already_current=*/50,
                     /*failed=*/0};
  std::string line = ProgressReporter::FormatLine(c, absl::Seconds(5));
  EXPECT_THAT(line, HasSubstr("scanned=250/1000"));
  EXPECT_THAT(line, HasSubstr("rewritten=200"));
  EXPECT_THAT(line, HasSubstr("rate=50.0/s"));
  EXPECT_THAT(line, HasSubstr("eta=15s"));
}

TEST_F(ProgressTest, BarFillsWithTheFractionDone) {
  ProgressCounters c{/*total=*/100, /*scanned=*/50, 0, 0, 0};
  std::string bar = ProgressReporter::FormatBar(c, absl::Seconds(10), 10);
  EXPECT_THAT(bar, HasSubstr("[#####.....]"));
  EXPECT_THAT(bar, HasSubstr(" 50%"));
  EXPECT_THAT(bar, HasSubstr("ETA 10s"));
}

TEST_F(ProgressTest, PlainOutputIsRateLimitedByTheInterval) {
  testing::FakeClock clock;
  char* buf = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&buf, &size);
  ASSERT_NE(out, nullptr);
  {
    ProgressReporter r(out, /*terminal=*/false, absl::Seconds(5), &clock);
    ProgressCounters c{10, 1, 0, 0, 0};
    r.Update(c);  // first update prints
    clock.Advance(absl::Seconds(1));
    r.Update(c);  // too soon
    clock.Advance(absl::Seconds(5));
    r.Update(c);  // prints
    r.Finish(c);  // always prints
  }
  std::fclose(out);
  std::string text(buf, size);
  free(buf);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;
}

}  // namespace
}  // namespace kmsplugin::reencrypt
