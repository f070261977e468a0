#include "tools/reencrypt/progress.h"

#include <algorithm>
#include <cmath>

#include "fmt/format.h"

namespace kmsplugin::reencrypt {
namespace {

double Rate(const ProgressCounters& c, absl::Duration elapsed) {
  double secs = absl::ToDoubleSeconds(elapsed);
  return secs > 0 ? static_cast<double>(c.scanned) / secs : 0.0;
}

std::string FormatEta(const ProgressCounters& c, double rate) {
  if (c.total <= 0 || rate <= 0 || c.scanned >= c.total) return "--";
  int64_t secs = static_cast<int64_t>(std::ceil(static_cast<double>(c.total - c.scanned) / rate));
  if (secs >= 3600) return fmt::format("{}h{:02}m", secs / 3600, (secs / 60) % 60);
  if (secs >= 60) return fmt::format("{}m{:02}s", secs / 60, secs % 60);
  return fmt::format("{}s", secs);
}

}  // namespace

ProgressReporter::ProgressReporter(std::FILE* out, bool terminal, absl::Duration interval,
                                   const Clock* clock)
    : out_(out),
      terminal_(terminal),
      interval_(interval),
      clock_(clock),
      start_(clock->Now()),
      last_print_(absl::InfinitePast()) {}

std::string ProgressReporter::FormatLine(const ProgressCounters& c, absl::Duration elapsed) {
  double rate = Rate(c, elapsed);
  std::string done =
      c.total > 0 ? fmt::format("{}/{}", c.scanned, c.total) : fmt::format("{}", c.scanned);
  return fmt::format(
      "reencrypt progress: scanned={} rewritten={} already_current={} failed={} rate={:.1f}/s "
      "eta={}",
      done, c.rewritten, c.already_current, c.failed, rate, FormatEta(c, rate));
}

std::string ProgressReporter::FormatBar(const ProgressCounters& c, absl::Duration elapsed,
                                        int width) {
  double rate = Rate(c, elapsed);
  double frac = c.total > 0 ? std::min(1.0, static_cast<double>(c.scanned) / c.total) : 0.0;
  int filled = static_cast<int>(frac * width);
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  return fmt::format("[{}] {:3.0f}% {}/{} {:.0f} obj/s ETA {} (rewritten {}, failed {})", bar,
                     frac * 100, c.scanned, c.total, rate, FormatEta(c, rate), c.rewritten,
                     c.failed);
}

void ProgressReporter::Print(const ProgressCounters& c, bool final) {
  absl::Duration elapsed = clock_->Now() - start_;
  if (terminal_) {
    std::fprintf(out_, "\r%s%s", FormatBar(c, elapsed, 30).c_str(), final ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", FormatLine(c, elapsed).c_str());
  }
  std::fflush(out_);
}

void ProgressReporter::Update(const ProgressCounters& c) {
  absl::MutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  if (interval_ > absl::ZeroDuration() && now - last_print_ < interval_) return;
  last_print_ = now;
  Print(c, /*final=*/false);
}

void ProgressReporter::Finish(const ProgressCounters& c) {
  absl::MutexLock lock(&mu_);
  Print(c, /*final=*/true);
}

}  // namespace kmsplugin::reencrypt
