// KeyRefresher: the background thread that keeps EnvelopeService fresh. It calls Refresh()
// every `interval` (after a failure every min(interval, retry_interval)).
//
// Thread-safe. The destructor stops and joins the thread.
#ifndef KMSP_PLUGIN_KEY_REFRESHER_H_
#define KMSP_PLUGIN_KEY_REFRESHER_H_

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "plugin/envelope_service.h"

namespace kmsplugin {

class KeyRefresher {
 public:
  // `service` must outlive the refresher. `call_timeout` bounds each backend call.
  KeyRefresher(EnvelopeService* service, absl::Duration interval, absl::Duration retry_interval,
               absl::Duration call_timeout);
  ~KeyRefresher();
  KeyRefresher(const KeyRefresher&) = delete;
  KeyRefresher& operator=(const KeyRefresher&) = delete;

  // Starts the thread (the first refresh runs immediately).
  void Start();
  // Stops and joins; idempotent.
  void Stop();

 private:
  void Run();

  EnvelopeService* const service_;
  const absl::Duration interval_;
  const absl::Duration retry_interval_;
  const absl::Duration call_timeout_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_KEY_REFRESHER_H_
