// The completion-queue plumbing of the gRPC server: one object per call, driven by the serving
// thread that pulls its tag off the completion queue.
//
// A UnaryCall is a slot waiting for one call of one method. When a call arrives, the slot posts
// its successor (so the method always has `slots` requests outstanding) and hands itself to the
// method's handler on the same thread. The handler answers with Finish(), at once (the normal,
// in-memory path) or later from another thread (a call that needed the KMS backend). When the
// answer is on the wire, the slot deletes itself.
#ifndef KMSP_PLUGIN_ASYNC_CALL_H_
#define KMSP_PLUGIN_ASYNC_CALL_H_

#include <functional>
#include <utility>

#include "grpcpp/grpcpp.h"

namespace kmsplugin {

// What a serving thread pulls off the completion queue.
class CompletionTag {
 public:
  virtual ~CompletionTag() = default;
  virtual void Proceed(bool ok) = 0;
};

template <class Request, class Response>
class UnaryCall final : public CompletionTag {
 public:
  using Writer = grpc::ServerAsyncResponseWriter<Response>;
  // Posts a request for the next call of the method (AsyncService::RequestXxx, bound).
  using RequestFn = std::function<void(grpc::ServerContext*, Request*, Writer*,
                                       grpc::ServerCompletionQueue*, void*)>;
  // Answers the call: must call Finish() exactly once, now or later, from any thread.
  using Handler = std::function<void(UnaryCall*)>;

  struct Method {
    RequestFn request;
    Handler handle;
    grpc::ServerCompletionQueue* cq;
  };

  // Posts one outstanding request for `method`, which must outlive every call.
  static void Post(const Method* method) {
    auto* call = new UnaryCall(method);
    method->request(&call->context_, &call->request_, &call->writer_, method->cq, call);
  }

  void Proceed(bool ok) override {
    if (finishing_ || !ok) {  // Answer sent (or cancelled), or the server is shutting down.
      delete this;
      return;
    }
    Post(method_);
    method_->handle(this);
  }

  grpc::ServerContext& context() { return context_; }
  const Request& request() const { return request_; }
  Response* response() { return &response_; }

  void Finish(const grpc::Status& status) {
    finishing_ = true;
    if (status.ok()) {
      writer_.Finish(response_, status, this);
    } else {
      writer_.FinishWithError(status, this);
    }
  }

 private:
  explicit UnaryCall(const Method* method) : method_(method), writer_(&context_) {}

  const Method* const method_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  Writer writer_;
  bool finishing_ = false;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_ASYNC_CALL_H_
