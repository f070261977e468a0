#include "plugin/key_refresher.h"

#include <algorithm>

namespace kmsplugin {

KeyRefresher::KeyRefresher(EnvelopeService* service, absl::Duration interval,
                           absl::Duration retry_interval, absl::Duration call_timeout)
    : service_(service),
      interval_(interval),
      retry_interval_(std::min(interval, retry_interval)),
      call_timeout_(call_timeout) {}

KeyRefresher::~KeyRefresher() { Stop(); }

void KeyRefresher::Start() { thread_ = std::thread([this] { Run(); }); }

void KeyRefresher::Nudge() {
  absl::MutexLock lock(&mu_);
  nudged_ = true;
}

void KeyRefresher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void KeyRefresher::Run() {
  while (true) {
    absl::Status st = service_->Refresh(CallContext::WithTimeout(call_timeout_, "key-refresher"));
    absl::Duration wait = st.ok() ? interval_ : retry_interval_;
    absl::MutexLock lock(&mu_);
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || nudged_; };
    mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
    if (stop_) return;
    nudged_ = false;
  }
}

}  // namespace kmsplugin
