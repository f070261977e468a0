// AdminGrpcService: kmsplugin.admin.v1.Admin (proto/admin/admin.proto) over EnvelopeService,
// async API. Served only on the admin socket (mode 0600, peer uid checked), never on the
// apiserver's socket: every admin method answers UNIMPLEMENTED, doing nothing, to a call whose
// connection GrpcServer did not record as admitted on the admin socket (AdminConnections).
// Every admin call may reach the KMS backend, so each one runs on the BlockingPool. With an
// AuditLog, every admin call served writes one "admin" line (action, the caller's SO_PEERCRED
// uid and pid, result, key_id before and after, latency).
#ifndef KMSP_PLUGIN_ADMIN_SERVICE_H_
#define KMSP_PLUGIN_ADMIN_SERVICE_H_

#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "plugin/async_call.h"
#include "plugin/audit_log.h"
#include "plugin/blocking_pool.h"
#include "plugin/envelope_service.h"
#include "plugin/metrics.h"
#include "plugin/peer_listener.h"
#include "proto/admin/admin.grpc.pb.h"

namespace kmsplugin {

class AdminGrpcService {
 public:
  // All must outlive the service; `call_timeout` bounds backend calls made for admin requests.
  // `audit` (one line per admin call) may be null. Each call, served or refused, is counted in
  // `metrics` (kms_plugin_admin_calls_total) unless it is null.
  AdminGrpcService(EnvelopeService* envelope, BlockingPool* pool, absl::Duration call_timeout,
                   AuditLog* audit = nullptr, PluginMetrics* metrics = nullptr);
  ~AdminGrpcService();

  grpc::Service* service() { return &service_; }

  // Posts `slots` outstanding requests per method on `cq` (after the server started). Only calls
  // on connections that `connections` says came through the admin socket are served; it must
  // outlive the service's calls.
  void Start(grpc::ServerCompletionQueue* cq, int slots, const AdminConnections* connections);

 private:
  using Admin = kmsplugin::admin::v1::Admin;
  using ReportResponse = kmsplugin::admin::v1::ReportResponse;
  struct Methods;

  // On the admin socket: logs `what` (unless null), runs `action` on the pool, answers with its
  // status and a fresh report, and writes the audit line for `name`. Elsewhere: UNIMPLEMENTED.
  template <typename Call, typename Action>
  void RunAndReport(Call* call, AdminMethod method, const char* name, const char* what,
                    Action action);
  template <typename Call>
  void Finish(Call* call, AdminMethod method, const grpc::Status& status);

  EnvelopeService* const envelope_;
  BlockingPool* const pool_;
  const absl::Duration call_timeout_;
  AuditLog* const audit_;
  PluginMetrics* const metrics_;
  const AdminConnections* connections_ = nullptr;
  Admin::AsyncService service_;
  std::vector<std::unique_ptr<Methods>> methods_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_ADMIN_SERVICE_H_
