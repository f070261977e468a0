// Client side of the unix-socket gRPC transport, as kube-apiserver dials it: insecure
// credentials (plaintext HTTP/2 on a local socket) and :authority "localhost".
#ifndef KMSP_PLUGIN_CHANNEL_H_
#define KMSP_PLUGIN_CHANNEL_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace kmsplugin {

// `address` in any form ParseListenAddress() accepts. INVALID_ARGUMENT for a bad address.
absl::StatusOr<std::shared_ptr<grpc::Channel>> DialUnixSocket(std::string_view address);

// A call's deadline `timeout` from now, and whether it waits for the channel to be ready (as the
// apiserver's calls do) or fails at once when nothing listens.
inline void PrepareCallContext(grpc::ClientContext& ctx, absl::Duration timeout,
                               bool wait_for_ready) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  ctx.set_wait_for_ready(wait_for_ready);
}

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_CHANNEL_H_
