// RemoteBackendOptions: what every remote KMS backend (AWS KMS, Vault Transit, Google Cloud KMS,
// Azure Key Vault) takes besides its own fields. Each backend's options struct derives from it,
// so the fields read the same everywhere (options.retry, options.http, …).
#ifndef KMSP_KMS_REMOTE_BACKEND_OPTIONS_H_
#define KMSP_KMS_REMOTE_BACKEND_OPTIONS_H_

#include <cstddef>
#include <memory>

#include "absl/time/time.h"
#include "kms/http_client.h"
#include "kms/remote_attempt.h"
#include "kms/retry.h"

namespace kmsplugin {

struct RemoteBackendOptions {
  RetryPolicy retry;
  size_t max_concurrent_calls = 16;  // Requests in flight to the service at once.
  absl::Duration connect_timeout = absl::Seconds(3);
  absl::Duration default_call_timeout = absl::Seconds(10);  // For calls without a deadline.
  std::unique_ptr<HttpClient> http;  // Overrides the curl client (tests); owned.
  // Told about every request attempt (kms/remote_attempt.h), token exchanges and logins
  // included; may be null; must outlive the backend. Each backend says what a report's key is.
  RemoteAttemptObserver* observer = nullptr;
};

}  // namespace kmsplugin

#endif  // KMSP_KMS_REMOTE_BACKEND_OPTIONS_H_
