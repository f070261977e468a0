#include "plugin/blocking_pool.h"

#include <utility>

namespace kmsplugin {

BlockingPool::BlockingPool(int max_threads) : max_threads_(max_threads < 1 ? 1 : max_threads) {}

BlockingPool::~BlockingPool() {
  std::vector<std::thread> workers;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
}

void BlockingPool::Submit(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
  // Every queued task beyond the idle workers gets a new worker, up to the cap.
  if (static_cast<int>(queue_.size()) > idle_ && static_cast<int>(workers_.size()) < max_threads_) {
    workers_.emplace_back(&BlockingPool::Work, this);
  }
}

void BlockingPool::WaitIdle() {
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && running_ == 0;
  };
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&idle));
}

int BlockingPool::threads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(workers_.size());
}

void BlockingPool::Work() {
  auto has_work_or_stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  };
  absl::MutexLock lock(&mu_);
  for (;;) {
    ++idle_;
    mu_.Await(absl::Condition(&has_work_or_stopping));
    --idle_;
    if (queue_.empty()) return;  // Stopping, and every queued task has run.
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    mu_.Unlock();
    task();
    task = nullptr;  // Destroy the captures outside the lock.
    mu_.Lock();
    --running_;
  }
}

}  // namespace kmsplugin
