// gRPC implementations of KmsV2Client (over the plugin's KMS v2 client) and KmsV1Client
// (kms_client.h). The only file of the tool, with etcd_client_grpc.cc, that includes <grpcpp/...>.
#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "plugin/channel.h"
#include "plugin/grpc_status.h"
#include "plugin/kms_v2_client.h"
#include "plugin/listen_address.h"
#include "proto/kmsv1/api.grpc.pb.h"
#include "proto/kmsv2/api.grpc.pb.h"
#include "tools/reencrypt/kms_client.h"

namespace kmsplugin::reencrypt {
namespace {

// A plugin's error, with the endpoint and the method in front of its (sanitised) message.
absl::Status PluginError(const absl::Status& s, std::string_view endpoint,
                         std::string_view method) {
  return AnnotatePeerError(s, fmt::format("KMS plugin {} {}", Printable(endpoint), method));
}

// KMS v2 through the plugin's own client (plugin/kms_v2_client.h), with the apiserver's defaults.
class GrpcKmsV2Client final : public KmsV2Client {
 public:
  GrpcKmsV2Client(std::string endpoint, std::unique_ptr<::kmsplugin::KmsV2Client> client)
      : endpoint_(std::move(endpoint)), client_(std::move(client)) {}

  absl::StatusOr<KmsV2Status> Status() override {
    absl::StatusOr<v2::StatusResponse> resp = client_->Status();
    KMSP_RETURN_IF_ERROR(PluginError(resp.status(), endpoint_, "Status"));
    return KmsV2Status{resp->version(), resp->healthz(), resp->key_id()};
  }

  absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes& plaintext,
                                             std::string_view uid) override {
    v2::EncryptRequest req;
    req.set_plaintext(std::string(plaintext.Reveal()));
    req.set_uid(std::string(uid));
    absl::StatusOr<v2::EncryptResponse> resp = client_->Encrypt(std::move(req));
    KMSP_RETURN_IF_ERROR(PluginError(resp.status(), endpoint_, "Encrypt"));
    KmsV2EncryptResult out;
    out.ciphertext = resp->ciphertext();
    out.key_id = resp->key_id();
    for (const auto& [k, v] : resp->annotations()) out.annotations[k] = v;
    return out;
  }

  absl::StatusOr<SecretBytes> Decrypt(std::string_view ciphertext, std::string_view key_id,
                                      const std::map<std::string, std::string>& annotations,
                                      std::string_view uid) override {
    v2::DecryptRequest req;
    req.set_ciphertext(std::string(ciphertext));
    req.set_key_id(std::string(key_id));
    req.set_uid(std::string(uid));
    for (const auto& [k, v] : annotations) (*req.mutable_annotations())[k] = v;
    absl::StatusOr<v2::DecryptResponse> resp = client_->Decrypt(std::move(req));
    KMSP_RETURN_IF_ERROR(PluginError(resp.status(), endpoint_, "Decrypt"));
    return SecretBytes::TakeFrom(*resp->mutable_plaintext());
  }

 private:
  const std::string endpoint_;
  const std::unique_ptr<::kmsplugin::KmsV2Client> client_;
};

constexpr char kV1Version[] = "v1beta1";

class GrpcKmsV1Client final : public KmsV1Client {
 public:
  GrpcKmsV1Client(std::string endpoint, std::shared_ptr<grpc::Channel> channel,
                  absl::Duration timeout)
      : endpoint_(std::move(endpoint)),
        stub_(v1beta1::KeyManagementService::NewStub(std::move(channel))),
        timeout_(timeout) {}

  absl::StatusOr<std::string> Encrypt(const SecretBytes& plaintext) override {
    KMSP_RETURN_IF_ERROR(CheckVersion());
    grpc::ClientContext ctx;
    PrepareCallContext(ctx, timeout_, /*wait_for_ready=*/true);
    v1beta1::EncryptRequest req;
    req.set_version(kV1Version);
    req.set_plain(std::string(plaintext.Reveal()));
    v1beta1::EncryptResponse resp;
    grpc::Status s = stub_->Encrypt(&ctx, req, &resp);
    WipeString(*req.mutable_plain());
    KMSP_RETURN_IF_ERROR(PluginError(FromGrpcStatus(s), endpoint_, "v1beta1 Encrypt"));
    return resp.cipher();
  }

  absl::StatusOr<SecretBytes> Decrypt(std::string_view ciphertext) override {
    KMSP_RETURN_IF_ERROR(CheckVersion());
    grpc::ClientContext ctx;
    PrepareCallContext(ctx, timeout_, /*wait_for_ready=*/true);
    v1beta1::DecryptRequest req;
    req.set_version(kV1Version);
    req.set_cipher(std::string(ciphertext));
    v1beta1::DecryptResponse resp;
    KMSP_RETURN_IF_ERROR(PluginError(FromGrpcStatus(stub_->Decrypt(&ctx, req, &resp)), endpoint_,
                                     "v1beta1 Decrypt"));
    return SecretBytes::TakeFrom(*resp.mutable_plain());
  }

 private:
  absl::Status CheckVersion() {
    absl::MutexLock lock(&mu_);
    if (version_checked_) return absl::OkStatus();
    grpc::ClientContext ctx;
    PrepareCallContext(ctx, timeout_, /*wait_for_ready=*/true);
    v1beta1::VersionRequest req;
    req.set_version(kV1Version);
    v1beta1::VersionResponse resp;
    KMSP_RETURN_IF_ERROR(PluginError(FromGrpcStatus(stub_->Version(&ctx, req, &resp)), endpoint_,
                                     "v1beta1 Version"));
    if (resp.version() != kV1Version) {
      return absl::FailedPreconditionError(
          fmt::format("KMS plugin {} speaks version \"{}\", want \"{}\"", Printable(endpoint_),
                      Printable(resp.version()), kV1Version));
    }
    version_checked_ = true;
    return absl::OkStatus();
  }

  const std::string endpoint_;
  std::unique_ptr<v1beta1::KeyManagementService::Stub> stub_;
  const absl::Duration timeout_;
  absl::Mutex mu_;
  bool version_checked_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

absl::StatusOr<std::string> KmsEndpointToGrpcTarget(std::string_view endpoint) {
  // The apiserver requires the unix:// scheme; the rest is the plugin's own address syntax.
  constexpr std::string_view kScheme = "unix://";
  if (endpoint.substr(0, kScheme.size()) != kScheme) {
    return absl::InvalidArgumentError(
        fmt::format("KMS endpoint \"{}\" must use the unix:// scheme", endpoint));
  }
  KMSP_ASSIGN_OR_RETURN(ListenAddress address, ParseListenAddress(endpoint));
  return address.grpc_uri;
}

absl::StatusOr<std::unique_ptr<KmsV2Client>> CreateGrpcKmsV2Client(std::string_view endpoint,
                                                                   absl::Duration timeout) {
  KMSP_RETURN_IF_ERROR(KmsEndpointToGrpcTarget(endpoint).status());
  if (timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("KMS timeout must be > 0");
  KmsV2ClientOptions options;
  options.timeout = timeout;
  KMSP_ASSIGN_OR_RETURN(std::unique_ptr<::kmsplugin::KmsV2Client> client,
                        ::kmsplugin::KmsV2Client::Dial(endpoint, options));
  return std::unique_ptr<KmsV2Client>(
      new GrpcKmsV2Client(std::string(endpoint), std::move(client)));
}

absl::StatusOr<std::unique_ptr<KmsV1Client>> CreateGrpcKmsV1Client(std::string_view endpoint,
                                                                   absl::Duration timeout) {
  KMSP_RETURN_IF_ERROR(KmsEndpointToGrpcTarget(endpoint).status());
  if (timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("KMS timeout must be > 0");
  KMSP_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, DialUnixSocket(endpoint));
  return std::unique_ptr<KmsV1Client>(
      new GrpcKmsV1Client(std::string(endpoint), std::move(channel), timeout));
}

}  // namespace kmsplugin::reencrypt
