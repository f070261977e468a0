#include "plugin/kms_v2_client.h"

#include <utility>

#include "base/status.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "plugin/channel.h"
#include "plugin/grpc_status.h"
#include "proto/kmsv2/api.grpc.pb.h"

namespace kmsplugin {

class KmsV2Client::Stub {
 public:
  explicit Stub(const std::shared_ptr<grpc::Channel>& channel)
      : stub(v2::KeyManagementService::NewStub(channel)) {}
  std::unique_ptr<v2::KeyManagementService::Stub> stub;
};

namespace {

// The apiserver sends a fresh UUIDv4 in every request; so do we when the caller gave none.
template <typename Request>
absl::Status FillUid(Request& request) {
  if (!request.uid().empty()) return absl::OkStatus();
  KMSP_ASSIGN_OR_RETURN(std::string uid, RandomUuid());
  request.set_uid(std::move(uid));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KmsV2Client>> KmsV2Client::Dial(std::string_view address,
                                                               KmsV2ClientOptions options) {
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("KMS call timeout must be > 0");
  }
  KMSP_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, DialUnixSocket(address));
  return std::make_unique<KmsV2Client>(std::move(channel), options);
}

KmsV2Client::KmsV2Client(std::shared_ptr<grpc::Channel> channel, KmsV2ClientOptions options)
    : channel_(std::move(channel)), options_(options), stub_(std::make_unique<Stub>(channel_)) {}

KmsV2Client::~KmsV2Client() = default;

absl::StatusOr<v2::StatusResponse> KmsV2Client::Status(
    std::optional<absl::Duration> timeout) const {
  grpc::ClientContext ctx;
  PrepareCallContext(ctx, timeout.value_or(options_.timeout), options_.wait_for_ready);
  v2::StatusResponse response;
  KMSP_RETURN_IF_ERROR(FromGrpcStatus(stub_->stub->Status(&ctx, v2::StatusRequest(), &response)));
  return response;
}

absl::StatusOr<v2::EncryptResponse> KmsV2Client::Encrypt(
    v2::EncryptRequest request, std::optional<absl::Duration> timeout) const {
  KMSP_RETURN_IF_ERROR(FillUid(request));
  grpc::ClientContext ctx;
  PrepareCallContext(ctx, timeout.value_or(options_.timeout), options_.wait_for_ready);
  v2::EncryptResponse response;
  grpc::Status status = stub_->stub->Encrypt(&ctx, request, &response);
  WipeString(*request.mutable_plaintext());
  KMSP_RETURN_IF_ERROR(FromGrpcStatus(status));
  return response;
}

absl::StatusOr<v2::DecryptResponse> KmsV2Client::Decrypt(
    v2::DecryptRequest request, std::optional<absl::Duration> timeout) const {
  KMSP_RETURN_IF_ERROR(FillUid(request));
  grpc::ClientContext ctx;
  PrepareCallContext(ctx, timeout.value_or(options_.timeout), options_.wait_for_ready);
  v2::DecryptResponse response;
  KMSP_RETURN_IF_ERROR(FromGrpcStatus(stub_->stub->Decrypt(&ctx, request, &response)));
  return response;
}

}  // namespace kmsplugin
