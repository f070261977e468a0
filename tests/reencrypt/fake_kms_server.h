// In-test KMS plugins on a unix socket, like the upstream apiserver test plugin
// (kmsv2-contract.md §6.2): "encryption" is base64, so seeds and DEKs are visible to the test.
//
// FakeKmsV2Server: Status {v2, ok, key_id}; Encrypt returns base64(plaintext), the current
// key_id and the annotation local-kek.kms.kubernetes.io = "encrypted-local-kek"; Decrypt accepts
// any key_id the server has ever reported, and returns FAILED_PRECONDITION for others.
// FakeKmsV1Server: the v1beta1 API with the same base64 scheme.
//
// Thread-safe. The destructor shuts the server down.
#ifndef KMSP_TESTS_REENCRYPT_FAKE_KMS_SERVER_H_
#define KMSP_TESTS_REENCRYPT_FAKE_KMS_SERVER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace kmsplugin::testing {

inline constexpr char kFakeAnnotationKey[] = "local-kek.kms.kubernetes.io";
inline constexpr char kFakeAnnotationValue[] = "encrypted-local-kek";

class FakeKmsV2Server {
 public:
  // Listens on `socket_path` (absolute). INTERNAL if the server cannot start.
  static absl::StatusOr<std::unique_ptr<FakeKmsV2Server>> Start(const std::string& socket_path,
                                                                std::string key_id);
  virtual ~FakeKmsV2Server() = default;

  // "unix:///abs/path", as in an EncryptionConfiguration.
  virtual std::string endpoint() const = 0;
  // Makes `key_id` current (a KEK rotation); old key_ids still decrypt.
  virtual void Rotate(std::string key_id) = 0;
  virtual int64_t encrypt_calls() const = 0;
  virtual int64_t decrypt_calls() const = 0;
};

class FakeKmsV1Server {
 public:
  static absl::StatusOr<std::unique_ptr<FakeKmsV1Server>> Start(const std::string& socket_path);
  virtual ~FakeKmsV1Server() = default;
  virtual std::string endpoint() const = 0;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_REENCRYPT_FAKE_KMS_SERVER_H_
