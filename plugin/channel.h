// Client side of the unix-socket gRPC transport, as kube-apiserver dials it: insecure
// credentials (plaintext HTTP/2 on a local socket) and :authority "localhost".
#ifndef KMSP_PLUGIN_CHANNEL_H_
#define KMSP_PLUGIN_CHANNEL_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace kmsplugin {

// `address` in any form ParseListenAddress() accepts. INVALID_ARGUMENT for a bad address.
absl::StatusOr<std::shared_ptr<grpc::Channel>> DialUnixSocket(std::string_view address);

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_CHANNEL_H_
