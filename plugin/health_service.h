// HealthService: the standard grpc.health.v1 service (Check and Watch), served on the plugin's
// own completion queues.
//
// Check answers SERVING while `serving()` returns true and NOT_SERVING otherwise, for the
// overall server ("") and for each name in `service_names`; any other name gets NOT_FOUND, as
// the protocol says. Watch sends the status at once, then every change (checked once a second),
// until the client leaves or the server stops; for an unknown name it sends SERVICE_UNKNOWN.
//
// One instance per grpc::Server (a service registers with one server).
#ifndef KMSP_PLUGIN_HEALTH_SERVICE_H_
#define KMSP_PLUGIN_HEALTH_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "plugin/async_call.h"
#include "proto/grpc_health/v1/health.grpc.pb.h"

namespace kmsplugin {

class HealthService {
 public:
  using ServingFn = std::function<bool()>;

  HealthService(std::vector<std::string> service_names, ServingFn serving);
  ~HealthService();

  grpc::Service* service() { return &service_; }

  // Posts `slots` requests per method on `cq` (after the server started). Once.
  void Start(grpc::ServerCompletionQueue* cq, int slots);

  // The status of `name` now: SERVING, NOT_SERVING, or SERVICE_UNKNOWN for an unknown name.
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(const std::string& name) const;

 private:
  class WatchCall;
  using CheckCall =
      UnaryCall<grpc::health::v1::HealthCheckRequest, grpc::health::v1::HealthCheckResponse>;

  void HandleCheck(CheckCall* call);
  void PostWatch();

  const std::vector<std::string> service_names_;
  const ServingFn serving_;
  grpc::health::v1::Health::AsyncService service_;
  grpc::ServerCompletionQueue* cq_ = nullptr;
  std::unique_ptr<CheckCall::Method> check_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_HEALTH_SERVICE_H_
