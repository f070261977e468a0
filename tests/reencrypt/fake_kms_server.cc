#include "tests/reencrypt/fake_kms_server.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <set>

#include "absl/synchronization/mutex.h"
#include "crypto/encoding.h"
#include "proto/kmsv1/api.grpc.pb.h"
#include "proto/kmsv2/api.grpc.pb.h"

namespace kmsplugin::testing {
namespace {

class V2Service final : public v2::KeyManagementService::Service {
 public:
  explicit V2Service(std::string key_id) : key_id_(key_id) { known_.insert(std::move(key_id)); }

  grpc::Status Status(grpc::ServerContext*, const v2::StatusRequest*,
                      v2::StatusResponse* resp) override {
    absl::MutexLock lock(&mu_);
    resp->set_version("v2");
    resp->set_healthz("ok");
    resp->set_key_id(key_id_);
    return grpc::Status::OK;
  }
  grpc::Status Encrypt(grpc::ServerContext*, const v2::EncryptRequest* req,
                       v2::EncryptResponse* resp) override {
    if (req->uid().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "uid is empty");
    encrypts_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    resp->set_ciphertext(Base64Encode(req->plaintext()));
    resp->set_key_id(key_id_);
    (*resp->mutable_annotations())[kFakeAnnotationKey] = kFakeAnnotationValue;
    return grpc::Status::OK;
  }
  grpc::Status Decrypt(grpc::ServerContext*, const v2::DecryptRequest* req,
                       v2::DecryptResponse* resp) override {
    if (req->uid().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "uid is empty");
    decrypts_.fetch_add(1);
    {
      absl::MutexLock lock(&mu_);
      if (known_.count(req->key_id()) == 0) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "unknown key_id");
      }
    }
    auto it = req->annotations().find(kFakeAnnotationKey);
    if (it == req->annotations().end() || it->second != kFakeAnnotationValue) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "missing annotation");
    }
    auto plain = Base64Decode(req->ciphertext());
    if (!plain.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not base64");
    resp->set_plaintext(*plain);
    return grpc::Status::OK;
  }

  void Rotate(std::string key_id) {
    absl::MutexLock lock(&mu_);
    known_.insert(key_id);
    key_id_ = std::move(key_id);
  }
  std::atomic<int64_t> encrypts_{0};
  std::atomic<int64_t> decrypts_{0};

 private:
  absl::Mutex mu_;
  std::string key_id_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> known_ ABSL_GUARDED_BY(mu_);
};

class V1Service final : public v1beta1::KeyManagementService::Service {
 public:
  grpc::Status Version(grpc::ServerContext*, const v1beta1::VersionRequest*,
                       v1beta1::VersionResponse* resp) override {
    resp->set_version("v1beta1");
    resp->set_runtime_name("fake");
    resp->set_runtime_version("0");
    return grpc::Status::OK;
  }
  grpc::Status Encrypt(grpc::ServerContext*, const v1beta1::EncryptRequest* req,
                       v1beta1::EncryptResponse* resp) override {
    resp->set_cipher(Base64Encode(req->plain()));
    return grpc::Status::OK;
  }
  grpc::Status Decrypt(grpc::ServerContext*, const v1beta1::DecryptRequest* req,
                       v1beta1::DecryptResponse* resp) override {
    auto plain = Base64Decode(req->cipher());
    if (!plain.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not base64");
    resp->set_plain(*plain);
    return grpc::Status::OK;
  }
};

absl::StatusOr<std::unique_ptr<grpc::Server>> Serve(const std::string& socket_path,
                                                    grpc::Service* service) {
  unlink(socket_path.c_str());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr)
    return absl::InternalError("fake KMS server did not start on " + socket_path);
  return server;
}

class FakeKmsV2ServerImpl final : public FakeKmsV2Server {
 public:
  FakeKmsV2ServerImpl(std::string path, std::string key_id)
      : path_(std::move(path)), service_(std::move(key_id)) {}
  ~FakeKmsV2ServerImpl() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }
  absl::Status Start() {
    auto s = Serve(path_, &service_);
    if (!s.ok()) return s.status();
    server_ = std::move(*s);
    return absl::OkStatus();
  }
  std::string endpoint() const override { return "unix://" + path_; }
  void Rotate(std::string key_id) override { service_.Rotate(std::move(key_id)); }
  int64_t encrypt_calls() const override { return service_.encrypts_.load(); }
  int64_t decrypt_calls() const override { return service_.decrypts_.load(); }

 private:
  std::string path_;
  V2Service service_;
  std::unique_ptr<grpc::Server> server_;
};

class FakeKmsV1ServerImpl final : public FakeKmsV1Server {
 public:
  explicit FakeKmsV1ServerImpl(std::string path) : path_(std::move(path)) {}
  ~FakeKmsV1ServerImpl() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }
  absl::Status Start() {
    auto s = Serve(path_, &service_);
    if (!s.ok()) return s.status();
    server_ = std::move(*s);
    return absl::OkStatus();
  }
  std::string endpoint() const override { return "unix://" + path_; }

 private:
  std::string path_;
  V1Service service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FakeKmsV2Server>> FakeKmsV2Server::Start(
    const std::string& socket_path, std::string key_id) {
  auto server = std::make_unique<FakeKmsV2ServerImpl>(socket_path, std::move(key_id));
  absl::Status s = server->Start();
  if (!s.ok()) return s;
  return std::unique_ptr<FakeKmsV2Server>(std::move(server));
}

absl::StatusOr<std::unique_ptr<FakeKmsV1Server>> FakeKmsV1Server::Start(
    const std::string& socket_path) {
  auto server = std::make_unique<FakeKmsV1ServerImpl>(socket_path);
  absl::Status s = server->Start();
  if (!s.ok()) return s;
  return std::unique_ptr<FakeKmsV1Server>(std::move(server));
}

}  // namespace kmsplugin::testing
