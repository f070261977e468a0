#include "tests/integration/kms_client.h"

#include <cstdlib>

#include "absl/synchronization/notification.h"
#include "crypto/random.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "plugin/channel.h"
#include "plugin/grpc_status.h"

namespace kmsplugin::testing {
namespace {

KmsV2ClientOptions ClientOptions(absl::Duration timeout) {
  KmsV2ClientOptions options;
  options.timeout = timeout;
  return options;
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
  // Quick reconnection after a plugin restart. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at its
  // default: gRPC also uses it as the connect timeout (the wait for the server's SETTINGS frame),
  // and at 50 ms a loaded machine failed the first calls of a burst with "connection attempt
  // timed out before receiving SETTINGS frame" (PluginServingTest, while a CI build ran).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

ApiserverKmsClient::ApiserverKmsClient(std::string target, absl::Duration timeout)
    : target_(std::move(target)),
      timeout_(timeout),
      client_(NewApiserverChannel(target_), ClientOptions(timeout)),
      generic_stub_(std::make_unique<grpc::GenericStub>(client_.channel())) {}

ApiserverKmsClient::~ApiserverKmsClient() = default;

absl::StatusOr<v2::StatusResponse> ApiserverKmsClient::Status() { return client_.Status(); }

absl::StatusOr<v2::EncryptResponse> ApiserverKmsClient::Encrypt(std::string_view plaintext) {
  v2::EncryptRequest req;
  req.set_plaintext(std::string(plaintext));  // The client fills in a fresh uid.
  return client_.Encrypt(std::move(req));
}

absl::StatusOr<v2::DecryptResponse> ApiserverKmsClient::Decrypt(v2::DecryptRequest request) {
  return client_.Decrypt(std::move(request));
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
  PrepareCallContext(ctx, timeout_, /*wait_for_ready=*/true);
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
  if (!result.ok()) return FromGrpcStatus(result);
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("cannot read the raw reply");
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

}  // namespace kmsplugin::testing
