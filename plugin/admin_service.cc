#include "plugin/admin_service.h"

#include "plugin/grpc_service.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {

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

grpc::Status AdminGrpcService::Refresh(grpc::ServerContext*,
                                       const kmsplugin::admin::v1::RefreshRequest*,
                                       ReportResponse* response) {
  spdlog::info("admin: refresh requested");
  return Finish(envelope_->Refresh(CallContext::WithTimeout(call_timeout_, "admin"), /*force=*/true),
                response);
}

grpc::Status AdminGrpcService::RotateDataKey(grpc::ServerContext*,
                                             const kmsplugin::admin::v1::RotateDataKeyRequest*,
                                             ReportResponse* response) {
  spdlog::info("admin: data key rotation requested");
  return Finish(envelope_->RotateDataKey(CallContext::WithTimeout(call_timeout_, "admin")),
                response);
}

grpc::Status AdminGrpcService::RotateKek(grpc::ServerContext*,
                                         const kmsplugin::admin::v1::RotateKekRequest*,
                                         ReportResponse* response) {
  spdlog::info("admin: KEK rotation requested");
  return Finish(envelope_->RotateKek(CallContext::WithTimeout(call_timeout_, "admin")), response);
}

grpc::Status AdminGrpcService::Report(grpc::ServerContext*,
                                      const kmsplugin::admin::v1::ReportRequest*,
                                      ReportResponse* response) {
  return Finish(absl::OkStatus(), response);
}

}  // namespace kmsplugin
