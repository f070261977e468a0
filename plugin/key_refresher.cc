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
    mu_.AwaitWithTimeout(absl::Condition(&stop_), wait);
    if (stop_) return;
  }
}

}  // namespace kmsplugin
