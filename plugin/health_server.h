// HealthServer: a small HTTP server (civetweb) on a loopback address for kubelet probes and
// Prometheus:
//   GET /healthz, /readyz  200 "ok" while the plugin can encrypt, else 503 with the reason
//   GET /livez             200 "ok" while the process serves
//   GET /metrics           Prometheus text format
// Thread-safe; the destructor stops the server.
#ifndef KMSP_PLUGIN_HEALTH_SERVER_H_
#define KMSP_PLUGIN_HEALTH_SERVER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "plugin/envelope_service.h"
#include "plugin/metrics.h"

struct mg_context;
struct mg_connection;

namespace kmsplugin {

class HealthServer {
 public:
  // `address` is HOST:PORT (e.g. 127.0.0.1:8787; port 0 picks a free one, see port()). Both pointers must outlive the server.
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(std::string_view address,
                                                             EnvelopeService* envelope,
                                                             PluginMetrics* metrics);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  // The TCP port it listens on (the one the kernel picked for a HOST:0 address); 0 if unknown.
  int port() const;
  HealthServer& operator=(const HealthServer&) = delete;

 private:
  HealthServer(EnvelopeService* envelope, PluginMetrics* metrics)
      : envelope_(envelope), metrics_(metrics) {}
  static int Handle(::mg_connection* conn, void* self);

  EnvelopeService* const envelope_;
  PluginMetrics* const metrics_;
  mg_context* ctx_ = nullptr;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_HEALTH_SERVER_H_
