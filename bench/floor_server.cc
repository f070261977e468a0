// floor_server: an EMPTY KMS v2 server, the floor the plugin's serving path is measured against.
//
//   floor_server --listen unix:///ABS/PATH [--api sync|async|callback] [--threads N]
//
// Status answers a constant {version "v2", healthz "ok", key_id "floor"}; Encrypt copies the
// plaintext into the ciphertext and sets key_id "floor"; Decrypt copies the ciphertext back.
// Nothing else is registered: no health service, no reflection, no resource quota, grpc++
// defaults. `--api sync` (the default) is THE floor; `async` (the completion-queue API, N threads
// on one shared ServerCompletionQueue, each call handled inline on the thread that received it)
// and `callback` (CallbackService, unary reactors) exist to compare the gRPC APIs by
// measurement. SIGTERM or SIGINT: shutdown, exit 0. Prints "ready" on stdout once it listens.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/kmsv2/api.grpc.pb.h"

namespace {

constexpr char kKeyId[] = "floor";

void FillStatus(v2::StatusResponse* r) {
  r->set_version("v2");
  r->set_healthz("ok");
  r->set_key_id(kKeyId);
}
void FillEncrypt(const v2::EncryptRequest& q, v2::EncryptResponse* r) {
  r->set_ciphertext(q.plaintext());
  r->set_key_id(kKeyId);
}
void FillDecrypt(const v2::DecryptRequest& q, v2::DecryptResponse* r) {
  r->set_plaintext(q.ciphertext());
}

// ---- sync (the floor) ---------------------------------------------------------------------------
class SyncService final : public v2::KeyManagementService::Service {
  grpc::Status Status(grpc::ServerContext*, const v2::StatusRequest*,
                      v2::StatusResponse* r) override {
    FillStatus(r);
    return grpc::Status::OK;
  }
  grpc::Status Encrypt(grpc::ServerContext*, const v2::EncryptRequest* q,
                       v2::EncryptResponse* r) override {
    FillEncrypt(*q, r);
    return grpc::Status::OK;
  }
  grpc::Status Decrypt(grpc::ServerContext*, const v2::DecryptRequest* q,
                       v2::DecryptResponse* r) override {
    FillDecrypt(*q, r);
    return grpc::Status::OK;
  }
};

// ---- callback -----------------------------------------------------------------------------------
class CallbackService final : public v2::KeyManagementService::CallbackService {
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const v2::StatusRequest*,
                                   v2::StatusResponse* r) override {
    FillStatus(r);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* Encrypt(grpc::CallbackServerContext* ctx, const v2::EncryptRequest* q,
                                    v2::EncryptResponse* r) override {
    FillEncrypt(*q, r);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* Decrypt(grpc::CallbackServerContext* ctx, const v2::DecryptRequest* q,
                                    v2::DecryptResponse* r) override {
    FillDecrypt(*q, r);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// ---- async (completion queue, the classic CallData pattern) ------------------------------------
using Async = v2::KeyManagementService::AsyncService;

class Tag {
 public:
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

// Asks the server for the next call of one method (Async::RequestStatus and so on).
template <class Req, class Resp>
using RequestFn = void (*)(Async*, grpc::ServerContext*, Req*,
                           grpc::ServerAsyncResponseWriter<Resp>*, grpc::ServerCompletionQueue*,
                           void*);

template <class Req, class Resp, RequestFn<Req, Resp> kRequest, void (*kHandle)(const Req&, Resp*)>
class CallData final : public Tag {
 public:
  CallData(Async* service, grpc::ServerCompletionQueue* cq) : service_(service), cq_(cq) {
    kRequest(service_, &ctx_, &req_, &writer_, cq_, this);
  }
  void Proceed(bool ok) override {
    if (finishing_ || !ok) {  // sent, or the server is shutting down
      delete this;
      return;
    }
    new CallData(service_, cq_);  // keep one request outstanding for this slot
    kHandle(req_, &resp_);
    finishing_ = true;
    writer_.Finish(resp_, grpc::Status::OK, this);
  }

 private:
  Async* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext ctx_;
  Req req_;
  Resp resp_;
  grpc::ServerAsyncResponseWriter<Resp> writer_{&ctx_};
  bool finishing_ = false;
};

template <class Resp>
using Writer = grpc::ServerAsyncResponseWriter<Resp>;
void RequestStatus(Async* s, grpc::ServerContext* c, v2::StatusRequest* q,
                   Writer<v2::StatusResponse>* w, grpc::ServerCompletionQueue* cq, void* tag) {
  s->RequestStatus(c, q, w, cq, cq, tag);
}
void RequestEncrypt(Async* s, grpc::ServerContext* c, v2::EncryptRequest* q,
                    Writer<v2::EncryptResponse>* w, grpc::ServerCompletionQueue* cq, void* tag) {
  s->RequestEncrypt(c, q, w, cq, cq, tag);
}
void RequestDecrypt(Async* s, grpc::ServerContext* c, v2::DecryptRequest* q,
                    Writer<v2::DecryptResponse>* w, grpc::ServerCompletionQueue* cq, void* tag) {
  s->RequestDecrypt(c, q, w, cq, cq, tag);
}
void HandleStatus(const v2::StatusRequest&, v2::StatusResponse* r) { FillStatus(r); }
using StatusCall = CallData<v2::StatusRequest, v2::StatusResponse, &RequestStatus, &HandleStatus>;
using EncryptCall =
    CallData<v2::EncryptRequest, v2::EncryptResponse, &RequestEncrypt, &FillEncrypt>;
using DecryptCall =
    CallData<v2::DecryptRequest, v2::DecryptResponse, &RequestDecrypt, &FillDecrypt>;

void Usage() {
  std::fprintf(stderr,
               "usage: floor_server --listen unix:///ABS/PATH [--api sync|async|callback] "
               "[--threads N]\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen, api = "sync";
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a != "--listen" && a != "--api" && a != "--threads") || i + 1 >= argc) {
      Usage();
      return 2;
    }
    const std::string value = argv[++i];
    if (a == "--listen") {
      listen = value;
    } else if (a == "--api") {
      api = value;
    } else {
      threads = std::stoi(value);
    }
  }
  if (listen.rfind("unix://", 0) != 0 || (api != "sync" && api != "async" && api != "callback") ||
      threads < 1) {
    Usage();
    return 2;
  }
  unlink(listen.c_str() + std::strlen("unix://"));

  // Signals are taken synchronously by the main thread; every gRPC thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SyncService sync_service;
  CallbackService callback_service;
  Async async_service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials());
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  if (api == "sync") {
    builder.RegisterService(&sync_service);
  } else if (api == "callback") {
    builder.RegisterService(&callback_service);
  } else {
    builder.RegisterService(&async_service);
    cq = builder.AddCompletionQueue();
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "floor_server: cannot listen on %s\n", listen.c_str());
    return 1;
  }

  std::vector<std::thread> workers;
  if (cq) {
    for (int t = 0; t < threads; ++t) {
      new StatusCall(&async_service, cq.get());
      new EncryptCall(&async_service, cq.get());
      new DecryptCall(&async_service, cq.get());
    }
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([q = cq.get()] {
        void* tag = nullptr;
        bool ok = false;
        while (q->Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
      });
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (cq) {
    cq->Shutdown();
    for (auto& w : workers) w.join();
  }
  server->Wait();
  return 0;
}
