#include "tests/integration/kms_client.h"

#include <cstdlib>

#include "absl/synchronization/notification.h"
#include "crypto/random.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace kmsplugin::testing {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

void PrepareContext(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  ctx.set_wait_for_ready(true);
}

}  // namespace

std::string NewUuid() {
  auto uuid = RandomUuid();
  if (!uuid.ok()) abort();
  return *uuid;
}

std::shared_ptr<grpc::Channel> NewApiserverChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

ApiserverKmsClient::ApiserverKmsClient(std::string target, absl::Duration timeout)
    : target_(std::move(target)),
      timeout_(timeout),
      channel_(NewApiserverChannel(target_)),
      stub_(v2::KeyManagementService::NewStub(channel_)),
      generic_stub_(std::make_unique<grpc::GenericStub>(channel_)) {}

ApiserverKmsClient::~ApiserverKmsClient() = default;

absl::StatusOr<v2::StatusResponse> ApiserverKmsClient::Status() {
  grpc::ClientContext ctx;
  PrepareContext(ctx, timeout_);
  v2::StatusRequest req;
  v2::StatusResponse resp;
  grpc::Status s = stub_->Status(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

absl::StatusOr<v2::EncryptResponse> ApiserverKmsClient::Encrypt(std::string_view plaintext) {
  grpc::ClientContext ctx;
  PrepareContext(ctx, timeout_);
  v2::EncryptRequest req;
  req.set_plaintext(std::string(plaintext));
  req.set_uid(NewUuid());
  v2::EncryptResponse resp;
  grpc::Status s = stub_->Encrypt(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

absl::StatusOr<v2::DecryptResponse> ApiserverKmsClient::Decrypt(v2::DecryptRequest request) {
  if (request.uid().empty()) request.set_uid(NewUuid());
  grpc::ClientContext ctx;
  PrepareContext(ctx, timeout_);
  v2::DecryptResponse resp;
  grpc::Status s = stub_->Decrypt(&ctx, request, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp;
}

v2::DecryptRequest ApiserverKmsClient::DecryptRequestFor(const v2::EncryptResponse& encrypted) {
  v2::DecryptRequest req;
  req.set_ciphertext(encrypted.ciphertext());
  req.set_key_id(encrypted.key_id());
  *req.mutable_annotations() = encrypted.annotations();
  return req;
}

absl::StatusOr<std::string> ApiserverKmsClient::RoundTrip(std::string_view plaintext) {
  auto enc = Encrypt(plaintext);
  if (!enc.ok()) return enc.status();
  auto dec = Decrypt(DecryptRequestFor(*enc));
  if (!dec.ok()) return dec.status();
  return std::move(*dec->mutable_plaintext());
}

absl::StatusOr<std::string> ApiserverKmsClient::CallRaw(std::string_view method,
                                                        std::string_view request_bytes) {
  grpc::ClientContext ctx;
  PrepareContext(ctx, timeout_);
  grpc::Slice slice(request_bytes.data(), request_bytes.size());
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  absl::Notification done;
  grpc::Status result;
  generic_stub_->UnaryCall(&ctx, std::string(method), grpc::StubOptions(), &request, &response,
                           [&](grpc::Status s) {
                             result = std::move(s);
                             done.Notify();
                           });
  done.WaitForNotification();
  if (!result.ok()) return FromGrpc(result);
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("cannot read the raw reply");
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

}  // namespace kmsplugin::testing
