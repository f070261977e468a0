#include "plugin/health_server.h"

#include <civetweb.h>

#include <cstring>
#include <mutex>

#include "fmt/format.h"

namespace kmsplugin {
namespace {

int Reply(::mg_connection* conn, int code, std::string_view content_type, std::string_view body) {
  const char* reason = code == 200 ? "OK" : code == 404 ? "Not Found" : "Service Unavailable";
  std::string head = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
      "Connection: close\r\n\r\n",
      code, reason, content_type, body.size());
  mg_write(conn, head.data(), head.size());
  mg_write(conn, body.data(), body.size());
  return code;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(std::string_view address,
                                                                   EnvelopeService* envelope,
                                                                   PluginMetrics* metrics) {
  static std::once_flag init;
  std::call_once(init, [] { mg_init_library(0); });
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        fmt::format("--health-addr {} must be HOST:PORT, e.g. 127.0.0.1:8787", address));
  }
  std::unique_ptr<HealthServer> server(new HealthServer(envelope, metrics));
  std::string ports(address);
  const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "2",
                           "request_timeout_ms", "5000", nullptr};
  mg_callbacks callbacks{};
  server->ctx_ = mg_start(&callbacks, nullptr, options);
  if (server->ctx_ == nullptr) {
    return absl::UnavailableError(fmt::format("cannot listen for health checks on {}", address));
  }
  mg_set_request_handler(server->ctx_, "/", &HealthServer::Handle, server.get());
  return server;
}

int HealthServer::port() const {
  mg_server_port ports[1] = {};
  if (ctx_ == nullptr || mg_get_server_ports(ctx_, 1, ports) < 1) return 0;
  return ports[0].port;
}

HealthServer::~HealthServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int HealthServer::Handle(::mg_connection* conn, void* self_ptr) {
  auto* self = static_cast<HealthServer*>(self_ptr);
  const mg_request_info* info = mg_get_request_info(conn);
  std::string_view uri = info->local_uri != nullptr ? info->local_uri : "";
  if (uri == "/livez") return Reply(conn, 200, "text/plain", "ok\n");
  if (uri == "/healthz" || uri == "/readyz") {
    PluginStatus s = self->envelope_->Status();
    if (s.healthz == "ok") return Reply(conn, 200, "text/plain", "ok\n");
    return Reply(conn, 503, "text/plain", s.healthz + "\n");
  }
  if (uri == "/metrics") {
    self->metrics_->UpdateFrom(self->envelope_->Report());
    return Reply(conn, 200, "text/plain; version=0.0.4", self->metrics_->Serialize());
  }
  return Reply(conn, 404, "text/plain", "not found\n");
}

}  // namespace kmsplugin
