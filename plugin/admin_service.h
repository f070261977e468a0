// AdminGrpcService: kmsplugin.admin.v1.Admin (proto/admin/admin.proto) over EnvelopeService.
// Served only on the admin socket (mode 0600), never on the apiserver's socket.
#ifndef KMSP_PLUGIN_ADMIN_SERVICE_H_
#define KMSP_PLUGIN_ADMIN_SERVICE_H_

#include "grpcpp/grpcpp.h"
#include "plugin/envelope_service.h"
#include "plugin/key_refresher.h"
#include "proto/admin/admin.grpc.pb.h"

namespace kmsplugin {

class AdminGrpcService final : public kmsplugin::admin::v1::Admin::Service {
 public:
  // Both must outlive the service; `call_timeout` bounds backend calls made for admin requests.
  AdminGrpcService(EnvelopeService* envelope, absl::Duration call_timeout)
      : envelope_(envelope), call_timeout_(call_timeout) {}

 private:
  using ReportResponse = kmsplugin::admin::v1::ReportResponse;
  grpc::Status Refresh(grpc::ServerContext*, const kmsplugin::admin::v1::RefreshRequest*,
                       ReportResponse* response) override;
  grpc::Status RotateDataKey(grpc::ServerContext*,
                             const kmsplugin::admin::v1::RotateDataKeyRequest*,
                             ReportResponse* response) override;
  grpc::Status RotateKek(grpc::ServerContext*, const kmsplugin::admin::v1::RotateKekRequest*,
                         ReportResponse* response) override;
  grpc::Status Report(grpc::ServerContext*, const kmsplugin::admin::v1::ReportRequest*,
                      ReportResponse* response) override;

  grpc::Status Finish(const absl::Status& status, ReportResponse* response);

  EnvelopeService* const envelope_;
  const absl::Duration call_timeout_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_ADMIN_SERVICE_H_
