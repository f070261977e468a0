// RouteGrpcLogsToSpdlog(): gRPC core writes its own log records ("E1202 12:00:00.000 ...
// chttp2_transport.cc:...") straight to stderr, which would put non-JSON lines into a
// `--log-format json` stream and bypass --log-level. This hands every gRPC record to the default
// spdlog logger instead, at the matching level (gRPC DEBUG -> debug, INFO -> info, ERROR ->
// error), as "grpc: <message> (<file>:<line>)". The message is remote-influenced text (peer
// addresses, protocol errors): it goes through Printable(), bounded.
#ifndef KMSP_PLUGIN_GRPC_LOG_BRIDGE_H_
#define KMSP_PLUGIN_GRPC_LOG_BRIDGE_H_

namespace kmsplugin {

// Installs the bridge (process-wide; call after InitLogging, before any gRPC object exists).
void RouteGrpcLogsToSpdlog();

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_GRPC_LOG_BRIDGE_H_
