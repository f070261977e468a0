// The retry and concurrency pieces every remote KMS client shares (AWS KMS, Vault Transit): a
// retry policy with full-jitter exponential backoff (remote-kms-apis.md §1.5, §4.4), and a bounded
// number of calls in flight.
#ifndef KMSP_KMS_RETRY_H_
#define KMSP_KMS_RETRY_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace kmsplugin {

struct RetryPolicy {
  int max_attempts = 3;  // First try included.
  absl::Duration base_delay = absl::Milliseconds(100);
  absl::Duration max_delay = absl::Seconds(2);
};

// Full jitter: uniform in [0, min(max_delay, base_delay * 2^(attempt-1))). `attempt` counts from 1
// (the delay after the first failed try).
absl::Duration BackoffDelay(const RetryPolicy& policy, int attempt);

// The tail of a retry loop after failed try number `attempt` (from 1) whose error, `last`, may
// heal on a retry: sleeps a BackoffDelay and returns OK when the caller should try again;
// otherwise returns the error to give up with: GaveUp(last, attempt) after the last attempt, or
// UNAVAILABLE "<last message> (no time left for a retry before the deadline)" when the delay
// would reach `deadline`.
absl::Status WaitBeforeRetry(const RetryPolicy& policy, int attempt, absl::Time deadline,
                             const absl::Status& last);

// WaitBeforeRetry without the sleep: the delay to sleep before the next try, or the error to give
// up with (the same as WaitBeforeRetry's). Lets a caller report whether it will retry (an
// attempt report, kms/remote_attempt.h) before it sleeps.
absl::StatusOr<absl::Duration> RetryDelay(const RetryPolicy& policy, int attempt,
                                          absl::Time deadline, const absl::Status& last);

// UNAVAILABLE "<last message> (gave up after <attempts> attempts)".
absl::Status GaveUp(const absl::Status& last, int attempts);

// At most `max` calls in flight (0 counts as 1). Thread-safe.
class CallSlots {
 public:
  // `what` names the calls in the deadline message ("AWS KMS", "Vault").
  CallSlots(size_t max, std::string what) : max_(max == 0 ? 1 : max), what_(std::move(what)) {}

  // Waits for a free slot until `deadline`; DEADLINE_EXCEEDED if none frees up in time.
  absl::Status Acquire(absl::Time deadline);
  void Release();
  size_t max() const { return max_; }

  // Holds one slot for a scope: `ok()` tells whether it was acquired.
  class Holder {
   public:
    Holder(CallSlots* slots, absl::Time deadline)
        : slots_(slots), status_(slots->Acquire(deadline)) {}
    ~Holder() {
      if (status_.ok()) slots_->Release();
    }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    const absl::Status& status() const { return status_; }

   private:
    CallSlots* slots_;
    absl::Status status_;
  };

 private:
  const size_t max_;
  const std::string what_;
  absl::Mutex mu_;
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kmsplugin

#endif  // KMSP_KMS_RETRY_H_
