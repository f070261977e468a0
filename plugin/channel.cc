#include "plugin/channel.h"

#include "base/status.h"
#include "plugin/listen_address.h"

namespace kmsplugin {

absl::StatusOr<std::shared_ptr<grpc::Channel>> DialUnixSocket(std::string_view address) {
  KMSP_ASSIGN_OR_RETURN(ListenAddress parsed, ParseListenAddress(address));
  grpc::ChannelArguments args;
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  return grpc::CreateCustomChannel(parsed.grpc_uri, grpc::InsecureChannelCredentials(), args);
}

}  // namespace kmsplugin
