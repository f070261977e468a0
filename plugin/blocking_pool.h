// BlockingPool: the threads that may block on the KMS backend (an unwrap on a cache miss, the
// wrap of a new data key, admin calls), so that the gRPC serving threads never do.
//
// Up to `max_threads` workers, each started the first time a task finds no idle one; they then
// stay until the pool is destroyed. Tasks queue without bound (memory is the only limit: a call
// is never refused for load) and start in submission order.
//
// Thread-safe. The destructor runs every queued task, then joins the workers.
#ifndef KMSP_PLUGIN_BLOCKING_POOL_H_
#define KMSP_PLUGIN_BLOCKING_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace kmsplugin {

class BlockingPool {
 public:
  explicit BlockingPool(int max_threads);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  void Submit(std::function<void()> task);

  // Blocks until every task submitted so far has finished (the queue is empty and no task runs).
  void WaitIdle();

  // Workers started so far.
  int threads() const;

 private:
  void Work();

  const int max_threads_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_BLOCKING_POOL_H_
