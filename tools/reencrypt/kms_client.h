// Clients of KMS plugins as kube-apiserver speaks to them (kmsv2-contract.md §1): the KMS v2 API
// (package v2) and, to read and write data of legacy KMS v1 providers, the v1beta1 API.
//
// The interfaces carry no gRPC types; kms_client_grpc.cc implements them over a unix socket.
// Implementations are thread-safe; every call is bounded by the timeout given at creation.
// Errors keep the plugin's gRPC code (UNAVAILABLE, DEADLINE_EXCEEDED, ...), and messages name
// the endpoint and the method, never plaintext or ciphertext bytes.
#ifndef KMSP_TOOLS_REENCRYPT_KMS_CLIENT_H_
#define KMSP_TOOLS_REENCRYPT_KMS_CLIENT_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin::reencrypt {

struct KmsV2Status {
  std::string version;
  std::string healthz;
  std::string key_id;
};

struct KmsV2EncryptResult {
  std::string ciphertext;
  std::string key_id;
  std::map<std::string, std::string> annotations;
};

class KmsV2Client {
 public:
  virtual ~KmsV2Client() = default;
  virtual absl::StatusOr<KmsV2Status> Status() = 0;
  virtual absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes& plaintext,
                                                     std::string_view uid) = 0;
  virtual absl::StatusOr<SecretBytes> Decrypt(std::string_view ciphertext, std::string_view key_id,
                                              const std::map<std::string, std::string>& annotations,
                                              std::string_view uid) = 0;
};

class KmsV1Client {
 public:
  virtual ~KmsV1Client() = default;
  virtual absl::StatusOr<std::string> Encrypt(const SecretBytes& plaintext) = 0;
  virtual absl::StatusOr<SecretBytes> Decrypt(std::string_view ciphertext) = 0;
};

// Parses a kube-apiserver KMS endpoint ("unix:///abs/path", or "unix:///@name" for a Linux
// abstract socket) into a gRPC target ("unix:/abs/path" / "unix-abstract:name"), with the
// plugin's own address parser (plugin/listen_address.h).
// INVALID_ARGUMENT for any other scheme or an empty path.
absl::StatusOr<std::string> KmsEndpointToGrpcTarget(std::string_view endpoint);

// Creates clients over an insecure (plaintext HTTP/2) channel with :authority "localhost", as the
// apiserver does. The connection is made lazily; calls wait for the socket until the timeout.
absl::StatusOr<std::unique_ptr<KmsV2Client>> CreateGrpcKmsV2Client(std::string_view endpoint,
                                                                   absl::Duration timeout);
// The v1 client checks the plugin's Version ("v1beta1") on its first call.
absl::StatusOr<std::unique_ptr<KmsV1Client>> CreateGrpcKmsV1Client(std::string_view endpoint,
                                                                   absl::Duration timeout);

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_KMS_CLIENT_H_
