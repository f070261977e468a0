// The one conversion each way between grpc::Status and absl::Status (the codes are the same
// numbers). In kmsp_transport, so that tools and tests convert without linking the server.
#ifndef KMSP_PLUGIN_GRPC_STATUS_H_
#define KMSP_PLUGIN_GRPC_STATUS_H_

#include <string_view>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace kmsplugin {

// Maps an absl::Status to a grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The inverse: the same code and the peer's message as is. That message is remote bytes: before
// it reaches a log line or an error message, pass it through AnnotatePeerError() (or Printable()).
absl::Status FromGrpcStatus(const grpc::Status& status);

// `status` (a peer's error) with "<context>: " before its message, which is passed through
// Printable() (at most 512 characters); the code is kept. `context` names the peer and the call,
// e.g. "KMS plugin unix:///run/kms.sock Encrypt". OK stays OK.
absl::Status AnnotatePeerError(const absl::Status& status, std::string_view context);

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_GRPC_STATUS_H_
