// AdminGrpcService: kmsplugin.admin.v1.Admin (proto/admin/admin.proto) over EnvelopeService,
// async API. Served only on the admin socket (mode 0600), never on the apiserver's socket: the
// server opens the admin socket with gRPC's local (UDS) credentials, and every admin method
// answers UNIMPLEMENTED, doing nothing, to a call that did not come through such a socket.
// Every admin call may reach the KMS backend, so each one runs on the BlockingPool.
#ifndef KMSP_PLUGIN_ADMIN_SERVICE_H_
#define KMSP_PLUGIN_ADMIN_SERVICE_H_

#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "plugin/async_call.h"
#include "plugin/blocking_pool.h"
#include "plugin/envelope_service.h"
#include "proto/admin/admin.grpc.pb.h"

namespace kmsplugin {

// True when the call came through a socket opened with gRPC's local (UDS) credentials: its auth
// context says transport_security_type "local" (the KMS socket's says "insecure").
bool IsAdminSocketCall(const grpc::ServerContext& context);

class AdminGrpcService {
 public:
  // All must outlive the service; `call_timeout` bounds backend calls made for admin requests.
  AdminGrpcService(EnvelopeService* envelope, BlockingPool* pool, absl::Duration call_timeout);
  ~AdminGrpcService();

  grpc::Service* service() { return &service_; }

  // Posts `slots` outstanding requests per method on `cq` (after the server started).
  void Start(grpc::ServerCompletionQueue* cq, int slots);

 private:
  using Admin = kmsplugin::admin::v1::Admin;
  using ReportResponse = kmsplugin::admin::v1::ReportResponse;
  struct Methods;

  // On the admin socket: logs `what`, runs `action` on the pool and answers with its status and
  // a fresh report. Elsewhere: UNIMPLEMENTED.
  template <typename Call, typename Action>
  void RunAndReport(Call* call, const char* what, Action action);

  EnvelopeService* const envelope_;
  BlockingPool* const pool_;
  const absl::Duration call_timeout_;
  Admin::AsyncService service_;
  std::vector<std::unique_ptr<Methods>> methods_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_ADMIN_SERVICE_H_
