// KmsV2Client: the one client of v2.KeyManagementService, calling a plugin as kube-apiserver does
// (kmsv2-contract.md §1.3, §2.3): a channel from DialUnixSocket() (plaintext HTTP/2, :authority
// "localhost"), a deadline on every call (3 s by default), WaitForReady(true), and a fresh random
// UUIDv4 uid in an Encrypt or Decrypt request that carries none.
//
// Errors are the plugin's, converted with FromGrpcStatus(): its code, its message as is (remote
// bytes: callers that show it wrap it with AnnotatePeerError()). Thread-safe.
#ifndef KMSP_PLUGIN_KMS_V2_CLIENT_H_
#define KMSP_PLUGIN_KMS_V2_CLIENT_H_

#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "proto/kmsv2/api.pb.h"

namespace kmsplugin {

struct KmsV2ClientOptions {
  // The deadline of each call (the apiserver's default `timeout`); a call may override it.
  absl::Duration timeout = absl::Seconds(3);
  // As the apiserver: a call waits for the socket until its deadline. false: a call fails at once
  // with UNAVAILABLE when nothing listens (what a command-line probe wants).
  bool wait_for_ready = true;
};

class KmsV2Client {
 public:
  // `address` in any form ParseListenAddress() accepts. INVALID_ARGUMENT for a bad address or a
  // timeout <= 0. No connection is made until the first call.
  static absl::StatusOr<std::unique_ptr<KmsV2Client>> Dial(std::string_view address,
                                                           KmsV2ClientOptions options = {});
  // Over a channel of the caller's (e.g. a test's, with its own connection settings).
  explicit KmsV2Client(std::shared_ptr<grpc::Channel> channel, KmsV2ClientOptions options = {});
  ~KmsV2Client();

  // `timeout`, when given, replaces options.timeout for this call.
  absl::StatusOr<v2::StatusResponse> Status(std::optional<absl::Duration> timeout = {}) const;
  // The request's plaintext is wiped once sent (protobuf's internal copies aside).
  absl::StatusOr<v2::EncryptResponse> Encrypt(v2::EncryptRequest request,
                                              std::optional<absl::Duration> timeout = {}) const;
  absl::StatusOr<v2::DecryptResponse> Decrypt(v2::DecryptRequest request,
                                              std::optional<absl::Duration> timeout = {}) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  class Stub;
  std::shared_ptr<grpc::Channel> channel_;
  KmsV2ClientOptions options_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_KMS_V2_CLIENT_H_
