#include "plugin/grpc_service.h"

#include <chrono>
#include <exception>

#include "base/status.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

// Deadline of the call, as our CallContext. kube-apiserver sets one (3 s by default); a missing
// deadline gets a bounded default so a backend call can never hang a handler thread forever.
CallContext ContextFor(const grpc::ServerContext* context, std::string uid) {
  auto deadline = context->deadline();
  auto now = std::chrono::system_clock::now();
  absl::Duration left = absl::Seconds(30);
  if (deadline != std::chrono::system_clock::time_point::max()) {
    left = absl::FromChrono(deadline - now);
  }
  return CallContext::WithTimeout(std::min(left, absl::Seconds(30)), std::move(uid));
}

// Keeps log lines one line long and free of control bytes whatever the client sent as uid.
std::string SafeUid(const std::string& uid) {
  std::string out;
  for (char c : uid.substr(0, 64)) {
    out.push_back((c >= 0x21 && c <= 0x7e && c != '"' && c != '\\') ? c : '?');
  }
  return out;
}

}  // namespace

template <typename F>
grpc::Status KmsV2GrpcService::Handle(const char* method, const std::string& uid, F&& body) {
  PluginMetrics* metrics = metrics_;
  {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
  }
  auto start = std::chrono::steady_clock::now();
  grpc::Status status;
  try {
    status = body();
  } catch (const std::exception&) {
    status = grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  } catch (...) {
    status = grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string code = absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
  metrics->ObserveRpc(method, code, seconds);
  if (status.ok()) {
    spdlog::debug("rpc {} uid={} ok {:.3f} ms", method, SafeUid(uid), seconds * 1e3);
  } else {
    spdlog::info("rpc {} uid={} {} {:.3f} ms: {}", method, SafeUid(uid), code, seconds * 1e3,
                 status.error_message());
  }
  absl::MutexLock lock(&mu_);
  --in_flight_;
  return status;
}

bool KmsV2GrpcService::WaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(ToStd(status.message())));
}

grpc::Status KmsV2GrpcService::Status(grpc::ServerContext* context,
                                      const v2::StatusRequest* request,
                                      v2::StatusResponse* response) {
  return Handle("Status", "", [&] {
    PluginStatus s = envelope_->Status();
    response->set_version(s.version);
    response->set_healthz(s.healthz);
    response->set_key_id(s.key_id);
    return grpc::Status::OK;
  });
}

grpc::Status KmsV2GrpcService::Encrypt(grpc::ServerContext* context,
                                       const v2::EncryptRequest* request,
                                       v2::EncryptResponse* response) {
  return Handle("Encrypt", request->uid(), [&] {
    absl::StatusOr<EncryptResult> r =
        envelope_->Encrypt(request->plaintext(), ContextFor(context, request->uid()));
    if (!r.ok()) return ToGrpcStatus(r.status());
    spdlog::debug("Encrypt uid={} plaintext {} bytes -> ciphertext {} bytes, key_id {}",
                  SafeUid(request->uid()), request->plaintext().size(), r->ciphertext.size(),
                  r->key_id);
    response->set_ciphertext(std::move(r->ciphertext));
    response->set_key_id(std::move(r->key_id));
    for (auto& [k, v] : r->annotations) (*response->mutable_annotations())[k] = std::move(v);
    return grpc::Status::OK;
  });
}

grpc::Status KmsV2GrpcService::Decrypt(grpc::ServerContext* context,
                                       const v2::DecryptRequest* request,
                                       v2::DecryptResponse* response) {
  return Handle("Decrypt", request->uid(), [&] {
    if (static_cast<size_t>(request->annotations_size()) > 64) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "too many annotations (" + std::to_string(request->annotations_size()) +
                              "); a kms-plugin ciphertext has one");
    }
    Annotations annotations(request->annotations().begin(), request->annotations().end());
    absl::Status valid = ValidateAnnotations(annotations);
    if (!valid.ok()) return ToGrpcStatus(valid);
    absl::StatusOr<SecretBytes> plaintext =
        envelope_->Decrypt(request->ciphertext(), request->key_id(), annotations,
                           ContextFor(context, request->uid()));
    if (!plaintext.ok()) return ToGrpcStatus(plaintext.status());
    // gRPC keeps its own copy of the response; we add none beyond this one.
    response->set_plaintext(plaintext->Reveal().data(), plaintext->size());
    return grpc::Status::OK;
  });
}

}  // namespace kmsplugin
