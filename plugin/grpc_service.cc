#include "plugin/grpc_service.h"

#include <chrono>
#include <utility>

#include "base/logging.h"
#include "base/printable.h"
#include "base/status.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

constexpr absl::Duration kMaxCallTime = absl::Seconds(30);

// A kms-plugin ciphertext has one annotation; the apiserver's limit is 32 KiB in total.
constexpr int kMaxAnnotations = 64;

// kube-apiserver sends a 36-character UUID; anything much longer is not from it (issue 9).
constexpr size_t kMaxUidSize = 256;

// INVALID_ARGUMENT for an overlong uid (which is then not logged whole: End() truncates it).
grpc::Status CheckUid(const std::string& uid) {
  if (uid.size() <= kMaxUidSize) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "uid is " + std::to_string(uid.size()) + " bytes (max " +
                          std::to_string(kMaxUidSize) + ")");
}

}  // namespace

struct KmsV2GrpcService::Methods {
  StatusCall::Method status;
  EncryptCall::Method encrypt;
  DecryptCall::Method decrypt;
};

CallContext ServerCallContext(const grpc::ServerContext& context, std::string uid) {
  auto deadline = context.deadline();
  absl::Duration left = kMaxCallTime;
  if (deadline != std::chrono::system_clock::time_point::max()) {
    left = std::min(absl::FromChrono(deadline - std::chrono::system_clock::now()), kMaxCallTime);
  }
  return CallContext::WithTimeout(left, std::move(uid));
}

KmsV2GrpcService::KmsV2GrpcService(EnvelopeService* envelope, PluginMetrics* metrics,
                                   BlockingPool* pool)
    : envelope_(envelope), metrics_(metrics), pool_(pool) {}

KmsV2GrpcService::~KmsV2GrpcService() = default;

void KmsV2GrpcService::Start(grpc::ServerCompletionQueue* cq, int slots) {
  auto m = std::make_unique<Methods>();
  m->status = {[this](grpc::ServerContext* c, v2::StatusRequest* r, StatusCall::Writer* w,
                      grpc::ServerCompletionQueue* q,
                      void* tag) { service_.RequestStatus(c, r, w, q, q, tag); },
               [this](StatusCall* call) { HandleStatus(call); }, cq};
  m->encrypt = {[this](grpc::ServerContext* c, v2::EncryptRequest* r, EncryptCall::Writer* w,
                       grpc::ServerCompletionQueue* q,
                       void* tag) { service_.RequestEncrypt(c, r, w, q, q, tag); },
                [this](EncryptCall* call) { HandleEncrypt(call); }, cq};
  m->decrypt = {[this](grpc::ServerContext* c, v2::DecryptRequest* r, DecryptCall::Writer* w,
                       grpc::ServerCompletionQueue* q,
                       void* tag) { service_.RequestDecrypt(c, r, w, q, q, tag); },
                [this](DecryptCall* call) { HandleDecrypt(call); }, cq};
  for (int i = 0; i < slots; ++i) {
    StatusCall::Post(&m->status);
    EncryptCall::Post(&m->encrypt);
    DecryptCall::Post(&m->decrypt);
  }
  methods_.push_back(std::move(m));
}

absl::Time KmsV2GrpcService::Begin() {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  return absl::Now();
}

template <typename Call>
void KmsV2GrpcService::End(Call* call, RpcMethod method, const std::string& uid, absl::Time start,
                           const grpc::Status& status) {
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  metrics_->ObserveRpc(method, status.error_code(), seconds);
  if (status.ok()) {
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("rpc {} uid={} ok {:.3f} ms", RpcMethodName(method), Printable(uid, 64),
                    seconds * 1e3);
    }
  } else {
    spdlog::info("rpc {} uid={} {} {:.3f} ms: {}", RpcMethodName(method), Printable(uid, 64),
                 absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                 seconds * 1e3, status.error_message());
  }
  call->Finish(status);
  if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1 && draining_.load()) {
    absl::MutexLock lock(&drain_mu_);  // Wakes WaitIdle, which re-checks under this lock.
  }
}

bool KmsV2GrpcService::WaitIdle(absl::Time deadline) {
  draining_.store(true);
  absl::MutexLock lock(&drain_mu_);
  auto idle = [this] { return in_flight_.load() == 0; };
  return drain_mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

void KmsV2GrpcService::HandleStatus(StatusCall* call) {
  absl::Time start = Begin();
  PluginStatus s = envelope_->Status();
  v2::StatusResponse* response = call->response();
  response->set_version(std::move(s.version));
  response->set_healthz(std::move(s.healthz));
  response->set_key_id(std::move(s.key_id));
  End(call, RpcMethod::kStatus, "", start, grpc::Status::OK);
}

void KmsV2GrpcService::HandleEncrypt(EncryptCall* call) {
  absl::Time start = Begin();
  ScopedLogContext log_context(call->request().uid(), "");
  if (grpc::Status uid_ok = CheckUid(call->request().uid()); !uid_ok.ok()) {
    End(call, RpcMethod::kEncrypt, call->request().uid(), start, uid_ok);
    return;
  }
  bool replacement_due = false;
  std::optional<absl::StatusOr<EncryptResult>> fast =
      envelope_->TryEncrypt(call->request().plaintext(), &replacement_due);
  if (replacement_due) {
    EnvelopeService* envelope = envelope_;
    pool_->Submit([envelope, ctx = ServerCallContext(call->context(), "data-key-replacement")] {
      (void)envelope->ReplaceDueDataKey(CallContext::WithTimeout(kMaxCallTime, ctx.uid));
    });
  }
  if (fast.has_value()) {
    FinishEncrypt(call, start, *std::move(fast));
    return;
  }
  pool_->Submit([this, call, start] {
    ScopedLogContext log_context(call->request().uid(), "");
    FinishEncrypt(call, start,
                  envelope_->Encrypt(call->request().plaintext(),
                                     ServerCallContext(call->context(), call->request().uid())));
  });
}

void KmsV2GrpcService::FinishEncrypt(EncryptCall* call, absl::Time start,
                                     absl::StatusOr<EncryptResult> result) {
  const std::string& uid = call->request().uid();
  if (!result.ok()) {
    End(call, RpcMethod::kEncrypt, uid, start, ToGrpcStatus(result.status()));
    return;
  }
  ScopedLogContext log_context(uid, result->key_id);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("Encrypt uid={} plaintext {} bytes -> ciphertext {} bytes, key_id {}",
                  Printable(uid, 64), call->request().plaintext().size(),
                  result->ciphertext.size(), result->key_id);
  }
  v2::EncryptResponse* response = call->response();
  response->set_ciphertext(std::move(result->ciphertext));
  response->set_key_id(std::move(result->key_id));
  for (auto& [k, v] : result->annotations) (*response->mutable_annotations())[k] = std::move(v);
  End(call, RpcMethod::kEncrypt, uid, start, grpc::Status::OK);
}

void KmsV2GrpcService::HandleDecrypt(DecryptCall* call) {
  absl::Time start = Begin();
  const v2::DecryptRequest& request = call->request();
  ScopedLogContext log_context(request.uid(), request.key_id());
  if (grpc::Status uid_ok = CheckUid(request.uid()); !uid_ok.ok()) {
    End(call, RpcMethod::kDecrypt, request.uid(), start, uid_ok);
    return;
  }
  if (request.annotations_size() > kMaxAnnotations) {
    End(call, RpcMethod::kDecrypt, request.uid(), start,
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     "too many annotations (" + std::to_string(request.annotations_size()) +
                         "); a kms-plugin ciphertext has one"));
    return;
  }
  // The annotations live with the call until it ends (the blocking path reads them later).
  auto annotations =
      std::make_shared<Annotations>(request.annotations().begin(), request.annotations().end());
  if (absl::Status valid = ValidateAnnotations(*annotations); !valid.ok()) {
    End(call, RpcMethod::kDecrypt, request.uid(), start, ToGrpcStatus(valid));
    return;
  }
  std::optional<absl::StatusOr<SecretBytes>> fast =
      envelope_->TryDecrypt(request.ciphertext(), request.key_id(), *annotations);
  if (fast.has_value()) {
    FinishDecrypt(call, start, *std::move(fast));
    return;
  }
  pool_->Submit([this, call, start, annotations] {
    const v2::DecryptRequest& r = call->request();
    ScopedLogContext log_context(r.uid(), r.key_id());
    FinishDecrypt(call, start,
                  envelope_->Decrypt(r.ciphertext(), r.key_id(), *annotations,
                                     ServerCallContext(call->context(), r.uid())));
  });
}

void KmsV2GrpcService::FinishDecrypt(DecryptCall* call, absl::Time start,
                                     absl::StatusOr<SecretBytes> result) {
  if (!result.ok()) {
    End(call, RpcMethod::kDecrypt, call->request().uid(), start, ToGrpcStatus(result.status()));
    return;
  }
  // gRPC keeps its own copy of the response; we add none beyond this one.
  call->response()->set_plaintext(result->Reveal().data(), result->size());
  End(call, RpcMethod::kDecrypt, call->request().uid(), start, grpc::Status::OK);
}

}  // namespace kmsplugin
