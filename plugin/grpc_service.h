// KmsV2GrpcService: the thin adapter between gRPC (v2.KeyManagementService) and
// EnvelopeService. It unpacks requests, calls the service, converts Status with ToGrpcStatus()
// (the only place that does), records metrics and logs uid, method, sizes, code and latency —
// never plaintext, ciphertext bytes or protobuf DebugString().
#ifndef KMSP_PLUGIN_GRPC_SERVICE_H_
#define KMSP_PLUGIN_GRPC_SERVICE_H_

#include "grpcpp/grpcpp.h"
#include "plugin/envelope_service.h"
#include "plugin/metrics.h"
#include "proto/kmsv2/api.grpc.pb.h"

namespace kmsplugin {

// Maps an absl::Status to a grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

class KmsV2GrpcService final : public v2::KeyManagementService::Service {
 public:
  // Both must outlive the service.
  KmsV2GrpcService(EnvelopeService* envelope, PluginMetrics* metrics)
      : envelope_(envelope), metrics_(metrics) {}

  // Blocks until no call is in flight or `deadline` passes; returns true when idle. Used for the
  // SIGTERM drain: gRPC's own Shutdown(deadline) also waits out idle client connections (the
  // apiserver keeps one open), so the server waits for our calls, then shuts down at once.
  bool WaitIdle(absl::Time deadline);

 private:
  template <typename F>
  grpc::Status Handle(const char* method, const std::string& uid, F&& body);

  grpc::Status Status(grpc::ServerContext* context, const v2::StatusRequest* request,
                      v2::StatusResponse* response) override;
  grpc::Status Encrypt(grpc::ServerContext* context, const v2::EncryptRequest* request,
                       v2::EncryptResponse* response) override;
  grpc::Status Decrypt(grpc::ServerContext* context, const v2::DecryptRequest* request,
                       v2::DecryptResponse* response) override;

  EnvelopeService* const envelope_;
  PluginMetrics* const metrics_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_GRPC_SERVICE_H_
