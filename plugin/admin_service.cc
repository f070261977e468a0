#include "plugin/admin_service.h"

#include <algorithm>
#include <chrono>

#include "grpcpp/security/auth_context.h"
#include "plugin/grpc_status.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

using admin::v1::RefreshRequest;
using admin::v1::ReportRequest;
using admin::v1::ReportResponse;
using admin::v1::RotateDataKeyRequest;
using admin::v1::RotateKekRequest;
using RefreshCall = UnaryCall<RefreshRequest, ReportResponse>;
using RotateDataKeyCall = UnaryCall<RotateDataKeyRequest, ReportResponse>;
using RotateKekCall = UnaryCall<RotateKekRequest, ReportResponse>;
using ReportCall = UnaryCall<ReportRequest, ReportResponse>;

// The context of an admin call: the plugin's own bound (--kms-timeout), and never past the
// client's deadline, which it should outlive by a margin: a caller that gave up (`kms-plugin
// rotate` told "not rotated") must not see the backend call finish afterwards (issue 9, item 16).
// The margin leaves the reply time to arrive: a quarter of what is left, at most 500 ms.
CallContext AdminContext(const grpc::ServerContext& context, absl::Duration call_timeout) {
  CallContext ctx = CallContext::WithTimeout(call_timeout, "admin");
  auto deadline = context.deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    absl::Time client = absl::FromChrono(deadline);
    absl::Duration margin = std::min((client - absl::Now()) / 4, absl::Milliseconds(500));
    ctx.deadline = std::min(ctx.deadline, client - std::max(margin, absl::ZeroDuration()));
  }
  return ctx;
}

void FillReport(const EnvelopeReport& r, ReportResponse* response) {
  response->set_version(r.status.version);
  response->set_healthz(r.status.healthz);
  response->set_key_id(r.status.key_id);
  response->set_backend(r.backend);
  response->set_data_key_created(r.data_key_created);
  response->set_data_key_uses(r.data_key_uses);
  for (const auto& id : r.kek_ids_seen) response->add_kek_ids_seen(id);
  response->set_cache_size(r.cache_size);
  response->set_cache_hits(r.cache_hits);
  response->set_cache_misses(r.cache_misses);
  response->set_last_probe(r.last_probe);
  response->set_last_probe_result(r.last_probe_result);
  response->set_kek_description(r.kek_description);
}

}  // namespace

struct AdminGrpcService::Methods {
  RefreshCall::Method refresh;
  RotateDataKeyCall::Method rotate_data_key;
  RotateKekCall::Method rotate_kek;
  ReportCall::Method report;
};

AdminGrpcService::AdminGrpcService(EnvelopeService* envelope, BlockingPool* pool,
                                   absl::Duration call_timeout, AuditLog* audit,
                                   PluginMetrics* metrics)
    : envelope_(envelope),
      pool_(pool),
      call_timeout_(call_timeout),
      audit_(audit),
      metrics_(metrics) {}

AdminGrpcService::~AdminGrpcService() = default;

template <typename Call>
void AdminGrpcService::Finish(Call* call, AdminMethod method, const grpc::Status& status) {
  if (metrics_ != nullptr) metrics_->ObserveAdminCall(method, status.error_code());
  call->Finish(status);
}

template <typename Call, typename Action>
void AdminGrpcService::RunAndReport(Call* call, AdminMethod method, const char* name,
                                    const char* what, Action action) {
  const std::optional<PeerCred> peer =
      connections_ == nullptr ? std::nullopt : connections_->AdminPeer(call->context().peer());
  if (!peer.has_value()) {
    Finish(call, method,
           grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "the admin API is served only on the admin socket"));
    return;
  }
  if (what != nullptr) spdlog::info("admin: {} (uid {}, pid {})", what, peer->uid, peer->pid);
  pool_->Submit([this, call, method, name, cred = *peer, action] {
    const absl::Time start = absl::Now();
    const std::string before = audit_ != nullptr ? envelope_->Status().key_id : "";
    absl::Status status = action(AdminContext(call->context(), call_timeout_));
    const EnvelopeReport report = envelope_->Report();
    if (audit_ != nullptr) {
      AdminRecord record;
      record.action = name;
      record.peer_uid = cred.uid;
      record.peer_pid = cred.pid;
      record.code = status.code();
      record.key_id_before = before;
      record.key_id_after = report.status.key_id;
      record.latency = absl::Now() - start;
      audit_->RecordAdmin(record);
    }
    FillReport(report, call->response());
    Finish(call, method, ToGrpcStatus(status));
  });
}

void AdminGrpcService::Start(grpc::ServerCompletionQueue* cq, int slots,
                             const AdminConnections* connections) {
  connections_ = connections;
  auto m = std::make_unique<Methods>();
  m->refresh = {[this](grpc::ServerContext* c, RefreshRequest* r, RefreshCall::Writer* w,
                       grpc::ServerCompletionQueue* q,
                       void* tag) { service_.RequestRefresh(c, r, w, q, q, tag); },
                [this](RefreshCall* call) {
                  RunAndReport(call, AdminMethod::kRefresh, "refresh", "refresh requested",
                               [this](const CallContext& ctx) {
                                 return envelope_->Refresh(ctx, /*force=*/true);
                               });
                },
                cq};
  m->rotate_data_key = {
      [this](grpc::ServerContext* c, RotateDataKeyRequest* r, RotateDataKeyCall::Writer* w,
             grpc::ServerCompletionQueue* q,
             void* tag) { service_.RequestRotateDataKey(c, r, w, q, q, tag); },
      [this](RotateDataKeyCall* call) {
        RunAndReport(call, AdminMethod::kRotateDataKey, "rotate_data_key",
                     "data key rotation requested",
                     [this](const CallContext& ctx) { return envelope_->RotateDataKey(ctx); });
      },
      cq};
  m->rotate_kek = {[this](grpc::ServerContext* c, RotateKekRequest* r, RotateKekCall::Writer* w,
                          grpc::ServerCompletionQueue* q,
                          void* tag) { service_.RequestRotateKek(c, r, w, q, q, tag); },
                   [this](RotateKekCall* call) {
                     RunAndReport(
                         call, AdminMethod::kRotateKek, "rotate_kek", "KEK rotation requested",
                         [this](const CallContext& ctx) { return envelope_->RotateKek(ctx); });
                   },
                   cq};
  m->report = {[this](grpc::ServerContext* c, ReportRequest* r, ReportCall::Writer* w,
                      grpc::ServerCompletionQueue* q,
                      void* tag) { service_.RequestReport(c, r, w, q, q, tag); },
               [this](ReportCall* call) {
                 RunAndReport(call, AdminMethod::kReport, "report", nullptr,
                              [](const CallContext&) { return absl::OkStatus(); });
               },
               cq};
  for (int i = 0; i < slots; ++i) {
    RefreshCall::Post(&m->refresh);
    RotateDataKeyCall::Post(&m->rotate_data_key);
    RotateKekCall::Post(&m->rotate_kek);
    ReportCall::Post(&m->report);
  }
  methods_.push_back(std::move(m));
}

}  // namespace kmsplugin
