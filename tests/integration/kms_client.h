// ApiserverKmsClient: the plugin's KMS v2 client (plugin/kms_v2_client.h: a per-call deadline,
// 3 s by default, WaitForReady(true), a fresh UUIDv4 uid) over a channel of its own that behaves
// like kube-apiserver's (kmsv2-contract.md §1.3): one long-lived plaintext HTTP/2 connection over
// a unix socket, :authority "localhost". Adds test helpers: round trips and raw calls.
//
// Replies come back as absl::Status (same codes as gRPC, the plugin's message as is) so tests can
// use tests/matchers.h. Thread-safe: calls may be made concurrently from several threads, as the
// apiserver does.
#ifndef KMSP_TESTS_INTEGRATION_KMS_CLIENT_H_
#define KMSP_TESTS_INTEGRATION_KMS_CLIENT_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "plugin/kms_v2_client.h"
#include "proto/kmsv2/api.grpc.pb.h"

namespace kmsplugin::testing {

inline constexpr std::string_view kStatusMethod = "/v2.KeyManagementService/Status";
inline constexpr std::string_view kEncryptMethod = "/v2.KeyManagementService/Encrypt";
inline constexpr std::string_view kDecryptMethod = "/v2.KeyManagementService/Decrypt";
inline constexpr std::string_view kHealthCheckMethod = "/grpc.health.v1.Health/Check";

// A channel as the apiserver opens it, with its own connection (local subchannel pool) and fast
// reconnect back-off (so tests that restart a plugin reconnect within the call deadline).
std::shared_ptr<grpc::Channel> NewApiserverChannel(const std::string& target);

class ApiserverKmsClient {
 public:
  // `target` is a gRPC target: "unix:///abs.sock" or "unix-abstract:name".
  explicit ApiserverKmsClient(std::string target, absl::Duration timeout = absl::Seconds(3));
  ~ApiserverKmsClient();

  absl::StatusOr<v2::StatusResponse> Status();
  // Sends `plaintext` with a fresh uid.
  absl::StatusOr<v2::EncryptResponse> Encrypt(std::string_view plaintext);
  // Sends `request` as is, except that a fresh uid is filled in when request.uid() is empty.
  absl::StatusOr<v2::DecryptResponse> Decrypt(v2::DecryptRequest request);
  // Decrypt request built from an Encrypt reply: its ciphertext, key_id and annotations.
  static v2::DecryptRequest DecryptRequestFor(const v2::EncryptResponse& encrypted);
  // Encrypt then Decrypt; returns the decrypted plaintext.
  absl::StatusOr<std::string> RoundTrip(std::string_view plaintext);

  // Sends `request_bytes` unparsed to `method` (e.g. kDecryptMethod); returns the raw reply.
  absl::StatusOr<std::string> CallRaw(std::string_view method, std::string_view request_bytes);

  const std::string& target() const { return target_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return client_.channel(); }

 private:
  std::string target_;
  absl::Duration timeout_;
  KmsV2Client client_;
  std::unique_ptr<grpc::GenericStub> generic_stub_;
};

// A fresh random RFC 4122 version-4 UUID (dies on RNG failure).
std::string NewUuid();

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_INTEGRATION_KMS_CLIENT_H_
