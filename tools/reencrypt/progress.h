// Progress reporting for long reencrypt runs: a one-line bar with rate and ETA redrawn in place
// on a terminal, or plain periodic lines otherwise (logs, pipes, tests).
//
// Thread-safe: Update() may be called from every worker; it prints at most once per interval.
#ifndef KMSP_TOOLS_REENCRYPT_PROGRESS_H_
#define KMSP_TOOLS_REENCRYPT_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"

namespace kmsplugin::reencrypt {

struct ProgressCounters {
  int64_t total = 0;  // objects expected (from count-only reads); 0 if unknown
  int64_t scanned = 0;
  int64_t rewritten = 0;
  int64_t already_current = 0;
  int64_t failed = 0;
};

class ProgressListener {
 public:
  virtual ~ProgressListener() = default;
  // Called often (after every object); implementations rate-limit their own output.
  virtual void Update(const ProgressCounters& c) = 0;
  // Called once at the end of the run.
  virtual void Finish(const ProgressCounters& c) = 0;
};

// Writes to `out` (not owned; must outlive the reporter). `terminal` selects the redrawn bar;
// otherwise one line per `interval` (zero: a line for every update).
class ProgressReporter final : public ProgressListener {
 public:
  ProgressReporter(std::FILE* out, bool terminal, absl::Duration interval, const Clock* clock);

  void Update(const ProgressCounters& c) override;
  void Finish(const ProgressCounters& c) override;

  // The text of one plain line / one bar (exposed for tests).
  static std::string FormatLine(const ProgressCounters& c, absl::Duration elapsed);
  static std::string FormatBar(const ProgressCounters& c, absl::Duration elapsed, int width);

 private:
  void Print(const ProgressCounters& c, bool final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::FILE* const out_;
  const bool terminal_;
  const absl::Duration interval_;
  const Clock* const clock_;
  const absl::Time start_;
  absl::Mutex mu_;
  absl::Time last_print_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_PROGRESS_H_
