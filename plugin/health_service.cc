#include "plugin/health_service.h"

#include <algorithm>
#include <chrono>

#include "absl/synchronization/mutex.h"
#include "grpcpp/alarm.h"

namespace kmsplugin {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

constexpr auto kWatchPeriod = std::chrono::seconds(1);

}  // namespace

// One Watch stream. Three kinds of completion can be outstanding at once: the request/write of
// the stream, the periodic alarm and the done notification; each has its own tag, and the call
// deletes itself when the stream is over and nothing is outstanding.
class HealthService::WatchCall {
 public:
  explicit WatchCall(HealthService* owner) : owner_(owner), writer_(&context_) {}

  void Post() {
    context_.AsyncNotifyWhenDone(&done_tag_);
    owner_->service_.RequestWatch(&context_, &request_, &writer_, owner_->cq_, owner_->cq_,
                                  &stream_tag_);
    stream_busy_ = true;
  }

 private:
  struct Tag final : CompletionTag {
    Tag(WatchCall* call, void (WatchCall::*on)(bool)) : call(call), on(on) {}
    void Proceed(bool ok) override { (call->*on)(ok); }
    WatchCall* call;
    void (WatchCall::*on)(bool);
  };

  // Each handler updates the state under the lock; the call deletes itself, outside the lock,
  // once the stream is over and no completion is outstanding.
  void OnStream(bool ok) {
    if (Step([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          stream_busy_ = false;
          if (!started_) {
            if (!ok) {  // Never started: no done notification will come.
              done_ = true;
              return;
            }
            started_ = true;
            owner_->PostWatch();
            SendLocked();
          } else if (ok && !done_) {
            ArmLocked();
          }
        })) {
      delete this;
    }
  }

  void OnAlarm(bool ok) {
    if (Step([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          alarm_busy_ = false;
          if (!ok || done_) return;
          if (owner_->StatusOf(request_.service()) != last_sent_) {
            SendLocked();
          } else {
            ArmLocked();
          }
        })) {
      delete this;
    }
  }

  void OnDone(bool) {
    if (Step([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          done_ = true;
          if (alarm_busy_) alarm_.Cancel();
        })) {
      delete this;
    }
  }

  // Runs `update` under the lock; true when the call is over and may be deleted.
  template <typename F>
  bool Step(F&& update) {
    absl::MutexLock lock(&mu_);
    update();
    return done_ && !stream_busy_ && !alarm_busy_;
  }

  void ArmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    alarm_busy_ = true;
    alarm_.Set(owner_->cq_, std::chrono::system_clock::now() + kWatchPeriod, &alarm_tag_);
  }

  void SendLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    last_sent_ = owner_->StatusOf(request_.service());
    response_.set_status(last_sent_);
    stream_busy_ = true;
    writer_.Write(response_, &stream_tag_);
  }

  HealthService* const owner_;
  grpc::ServerContext context_;
  HealthCheckRequest request_;
  HealthCheckResponse response_;
  grpc::ServerAsyncWriter<HealthCheckResponse> writer_;
  grpc::Alarm alarm_;
  Tag stream_tag_{this, &WatchCall::OnStream};
  Tag alarm_tag_{this, &WatchCall::OnAlarm};
  Tag done_tag_{this, &WatchCall::OnDone};
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool stream_busy_ ABSL_GUARDED_BY(mu_) = false;
  bool alarm_busy_ ABSL_GUARDED_BY(mu_) = false;
  HealthCheckResponse::ServingStatus last_sent_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
};

HealthService::HealthService(std::vector<std::string> service_names, ServingFn serving)
    : service_names_(std::move(service_names)), serving_(std::move(serving)) {}

HealthService::~HealthService() = default;

HealthCheckResponse::ServingStatus HealthService::StatusOf(const std::string& name) const {
  if (!name.empty() &&
      std::find(service_names_.begin(), service_names_.end(), name) == service_names_.end()) {
    return HealthCheckResponse::SERVICE_UNKNOWN;
  }
  return serving_() ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

void HealthService::Start(grpc::ServerCompletionQueue* cq, int slots) {
  cq_ = cq;
  check_ = std::make_unique<CheckCall::Method>(CheckCall::Method{
      [this](grpc::ServerContext* ctx, HealthCheckRequest* req, CheckCall::Writer* w,
             grpc::ServerCompletionQueue* q, void* tag) {
        service_.RequestCheck(ctx, req, w, q, q, tag);
      },
      [this](CheckCall* call) { HandleCheck(call); }, cq});
  for (int i = 0; i < slots; ++i) CheckCall::Post(check_.get());
  PostWatch();
}

void HealthService::PostWatch() { (new WatchCall(this))->Post(); }

void HealthService::HandleCheck(CheckCall* call) {
  HealthCheckResponse::ServingStatus status = StatusOf(call->request().service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    call->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
    return;
  }
  call->response()->set_status(status);
  call->Finish(grpc::Status::OK);
}

}  // namespace kmsplugin
