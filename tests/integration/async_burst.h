// AsyncBurst: many unary calls on one channel at once, as kube-apiserver multiplexes them over
// its one HTTP/2 connection. Run() starts every call, then collects every answer.
#ifndef KMSP_TESTS_INTEGRATION_ASYNC_BURST_H_
#define KMSP_TESTS_INTEGRATION_ASYNC_BURST_H_

#include <chrono>
#include <memory>
#include <vector>

#include "grpcpp/grpcpp.h"

namespace kmsplugin::testing {

template <typename Request, typename Response>
class AsyncBurst {
 public:
  struct Call {
    grpc::ClientContext context;
    Response response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
  };

  // `start(context, request, cq)` starts one call (e.g. stub->AsyncEncrypt). Returns false if the
  // completion queue failed (never expected).
  template <typename StartFn>
  bool Run(const std::vector<Request>& requests, StartFn start,
           std::chrono::seconds deadline = std::chrono::seconds(20)) {
    grpc::CompletionQueue cq;
    for (const Request& r : requests) {
      auto call = std::make_unique<Call>();
      call->context.set_deadline(std::chrono::system_clock::now() + deadline);
      call->reader = start(&call->context, r, &cq);
      call->reader->Finish(&call->response, &call->status, call.get());
      calls_.push_back(std::move(call));
    }
    for (size_t i = 0; i < requests.size(); ++i) {
      void* tag = nullptr;
      bool ok = false;
      if (!cq.Next(&tag, &ok) || !ok) return false;
    }
    return true;
  }

  const std::vector<std::unique_ptr<Call>>& calls() const { return calls_; }

 private:
  std::vector<std::unique_ptr<Call>> calls_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_INTEGRATION_ASYNC_BURST_H_
