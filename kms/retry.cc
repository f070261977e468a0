#include "kms/retry.h"

#include <algorithm>
#include <random>
#include <string>

#include "fmt/format.h"

namespace kmsplugin {

absl::Duration BackoffDelay(const RetryPolicy& policy, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  absl::Duration ceiling = policy.base_delay;
  for (int i = 1; i < attempt && ceiling < policy.max_delay; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, policy.max_delay);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return ceiling * unit(rng);
}

absl::StatusOr<absl::Duration> RetryDelay(const RetryPolicy& policy, int attempt,
                                          absl::Time deadline, const absl::Status& last) {
  if (attempt >= policy.max_attempts) return GaveUp(last, policy.max_attempts);
  const absl::Duration delay = BackoffDelay(policy, attempt);
  if (absl::Now() + delay >= deadline) {
    return absl::UnavailableError(fmt::format("{} (no time left for a retry before the deadline)",
                                              std::string(last.message())));
  }
  return delay;
}

absl::Status WaitBeforeRetry(const RetryPolicy& policy, int attempt, absl::Time deadline,
                             const absl::Status& last) {
  absl::StatusOr<absl::Duration> delay = RetryDelay(policy, attempt, deadline, last);
  if (!delay.ok()) return delay.status();
  absl::SleepFor(*delay);
  return absl::OkStatus();
}

absl::Status GaveUp(const absl::Status& last, int attempts) {
  return absl::UnavailableError(
      fmt::format("{} (gave up after {} attempts)", std::string(last.message()), attempts));
}

absl::Status CallSlots::Acquire(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto free_slot = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ < max_; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&free_slot), deadline)) {
    return absl::DeadlineExceededError(
        fmt::format("deadline passed while waiting for one of {} {} call slots", max_, what_));
  }
  ++in_flight_;
  return absl::OkStatus();
}

void CallSlots::Release() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

}  // namespace kmsplugin
