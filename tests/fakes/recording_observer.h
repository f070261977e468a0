// RecordingObserver: a RemoteAttemptObserver that keeps a copy of every attempt report (the
// string_views of RemoteAttempt copied into strings), for the backends' attempt-report tests.
#ifndef KMSP_TESTS_FAKES_RECORDING_OBSERVER_H_
#define KMSP_TESTS_FAKES_RECORDING_OBSERVER_H_

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "kms/remote_attempt.h"

namespace kmsplugin::testing {

struct RecordedAttempt {
  std::string backend, operation, key, key_id, encryption_context, error_class, request_id, uid;
  absl::StatusCode code = absl::StatusCode::kOk;
  int http_status = 0;
  int attempt = 0;
  bool will_retry = false;
  absl::Duration latency;
};

class RecordingObserver final : public RemoteAttemptObserver {
 public:
  void OnAttempt(const RemoteAttempt& a) override {
    RecordedAttempt r{std::string(a.backend),
                      std::string(a.operation),
                      std::string(a.key),
                      std::string(a.key_id),
                      std::string(a.encryption_context),
                      std::string(a.error_class),
                      std::string(a.request_id),
                      std::string(a.uid)};
    r.code = a.code;
    r.http_status = a.http_status;
    r.attempt = a.attempt;
    r.will_retry = a.will_retry;
    r.latency = a.latency;
    absl::MutexLock lock(&mu_);
    attempts_.push_back(std::move(r));
  }
  std::vector<RecordedAttempt> attempts() const {
    absl::MutexLock lock(&mu_);
    return attempts_;
  }
  void Clear() {
    absl::MutexLock lock(&mu_);
    attempts_.clear();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<RecordedAttempt> attempts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_FAKES_RECORDING_OBSERVER_H_
