#include "kms/retry.h"

#include <algorithm>
#include <random>

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
