#include "plugin/grpc_status.h"

#include <string>

#include "base/printable.h"
#include "base/status.h"

namespace kmsplugin {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(ToStd(status.message())));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      ToAbsl(status.error_message()));
}

absl::Status AnnotatePeerError(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(
      status.code(), ToAbsl(std::string(context) + ": " + Printable(ToStd(status.message()), 512)));
}

}  // namespace kmsplugin
