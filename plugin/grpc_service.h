// KmsV2GrpcService: the thin adapter between gRPC (v2.KeyManagementService, async API) and
// EnvelopeService. It unpacks requests, calls the service, converts Status with ToGrpcStatus()
// (the only place that does), records metrics and logs uid, method, sizes, code and latency —
// never plaintext, ciphertext bytes or protobuf DebugString().
//
// Threading: a call is handled on the serving thread that took it off the completion queue,
// without a handoff, whenever it needs no backend call (Status always; Encrypt under the cached
// data key; Decrypt under a cached data key). A call that needs the backend (an unwrap on a
// cache miss, a new data key) runs on the BlockingPool and answers from there, so a slow KMS
// never stalls the serving threads.
#ifndef KMSP_PLUGIN_GRPC_SERVICE_H_
#define KMSP_PLUGIN_GRPC_SERVICE_H_

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "plugin/async_call.h"
#include "plugin/blocking_pool.h"
#include "plugin/envelope_service.h"
#include "plugin/grpc_status.h"
#include "plugin/metrics.h"
#include "proto/kmsv2/api.grpc.pb.h"

namespace kmsplugin {

// The CallContext of a server call: its deadline (a missing one gets a bounded default, so a
// backend call never hangs) and the request uid.
CallContext ServerCallContext(const grpc::ServerContext& context, std::string uid);

class KmsV2GrpcService {
 public:
  // All must outlive the service.
  KmsV2GrpcService(EnvelopeService* envelope, PluginMetrics* metrics, BlockingPool* pool);
  ~KmsV2GrpcService();

  grpc::Service* service() { return &service_; }

  // Posts `slots` outstanding requests per method on `cq` (after the server started). Call once
  // per completion queue.
  void Start(grpc::ServerCompletionQueue* cq, int slots);

  // Blocks until no call is in flight or `deadline` passes; returns true when idle. Used for the
  // SIGTERM drain: gRPC's own Shutdown(deadline) also waits out idle client connections (the
  // apiserver keeps one open), so the server waits for our calls, then shuts down at once.
  bool WaitIdle(absl::Time deadline);

  int64_t in_flight() const { return in_flight_.load(); }

 private:
  using StatusCall = UnaryCall<v2::StatusRequest, v2::StatusResponse>;
  using EncryptCall = UnaryCall<v2::EncryptRequest, v2::EncryptResponse>;
  using DecryptCall = UnaryCall<v2::DecryptRequest, v2::DecryptResponse>;
  struct Methods;

  void HandleStatus(StatusCall* call);
  void HandleEncrypt(EncryptCall* call);
  void HandleDecrypt(DecryptCall* call);

  // Every call goes Begin() -> Finish...(): counts it in flight, then records and logs it.
  absl::Time Begin();
  template <typename Call>
  void End(Call* call, RpcMethod method, const std::string& uid, absl::Time start,
           const grpc::Status& status);
  void FinishEncrypt(EncryptCall* call, absl::Time start, absl::StatusOr<EncryptResult> result);
  void FinishDecrypt(DecryptCall* call, absl::Time start, absl::StatusOr<SecretBytes> result);

  EnvelopeService* const envelope_;
  PluginMetrics* const metrics_;
  BlockingPool* const pool_;
  v2::KeyManagementService::AsyncService service_;
  std::vector<std::unique_ptr<Methods>> methods_;  // One set per completion queue.
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> draining_{false};
  absl::Mutex drain_mu_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_GRPC_SERVICE_H_
