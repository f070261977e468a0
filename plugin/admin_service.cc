#include "plugin/admin_service.h"

#include <algorithm>
#include <chrono>

#include "plugin/grpc_service.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

// The context of an admin call: the plugin's own bound (--kms-timeout), and never past the
// client's deadline, which it should outlive by a margin: a caller that gave up (`kms-plugin
// rotate` told "not rotated") must not see the backend call finish afterwards (issue 16). The
// margin leaves the reply time to arrive: a quarter of what is left, at most 500 ms.
CallContext AdminContext(const grpc::ServerContext* context, absl::Duration call_timeout) {
  CallContext ctx = CallContext::WithTimeout(call_timeout, "admin");
  auto deadline = context->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    absl::Time client = absl::FromChrono(deadline);
    absl::Duration margin = std::min((client - absl::Now()) / 4, absl::Milliseconds(500));
    ctx.deadline = std::min(ctx.deadline, client - std::max(margin, absl::ZeroDuration()));
  }
  return ctx;
}

}  // namespace

grpc::Status AdminGrpcService::Finish(const absl::Status& status, ReportResponse* response) {
  EnvelopeReport r = envelope_->Report();
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
  return ToGrpcStatus(status);
}

grpc::Status AdminGrpcService::Refresh(grpc::ServerContext* context,
                                       const kmsplugin::admin::v1::RefreshRequest*,
                                       ReportResponse* response) {
  spdlog::info("admin: refresh requested");
  return Finish(envelope_->Refresh(AdminContext(context, call_timeout_), /*force=*/true), response);
}

grpc::Status AdminGrpcService::RotateDataKey(grpc::ServerContext* context,
                                             const kmsplugin::admin::v1::RotateDataKeyRequest*,
                                             ReportResponse* response) {
  spdlog::info("admin: data key rotation requested");
  return Finish(envelope_->RotateDataKey(AdminContext(context, call_timeout_)), response);
}

grpc::Status AdminGrpcService::RotateKek(grpc::ServerContext* context,
                                         const kmsplugin::admin::v1::RotateKekRequest*,
                                         ReportResponse* response) {
  spdlog::info("admin: KEK rotation requested");
  return Finish(envelope_->RotateKek(AdminContext(context, call_timeout_)), response);
}

grpc::Status AdminGrpcService::Report(grpc::ServerContext*,
                                      const kmsplugin::admin::v1::ReportRequest*,
                                      ReportResponse* response) {
  return Finish(absl::OkStatus(), response);
}

}  // namespace kmsplugin
