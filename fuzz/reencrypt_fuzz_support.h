// Shared pieces of the reencrypt fuzzers: in-process KMS clients (no sockets) whose "wrapping"
// is the identity, so that fuzzed values reach the AES-GCM, HKDF and AES-CBC paths, and the
// EncryptionConfiguration every fuzzer uses (every provider type, with fixed keys that the seed
// corpora under fuzz/corpus/ were written with).
#ifndef KMSP_FUZZ_REENCRYPT_FUZZ_SUPPORT_H_
#define KMSP_FUZZ_REENCRYPT_FUZZ_SUPPORT_H_

#include <map>
#include <memory>
#include <string>

#include "crypto/encoding.h"
#include "tools/reencrypt/kms_client.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::fuzz {

class IdentityKmsV2Client final : public reencrypt::KmsV2Client {
 public:
  absl::StatusOr<reencrypt::KmsV2Status> Status() override {
    return reencrypt::KmsV2Status{"v2", "ok", "fuzz-key-1"};
  }
  absl::StatusOr<reencrypt::KmsV2EncryptResult> Encrypt(const SecretBytes& pt,
                                                        std::string_view) override {
    return reencrypt::KmsV2EncryptResult{std::string(pt.Reveal()), "fuzz-key-1", {}};
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ct, std::string_view,
                                      const std::map<std::string, std::string>&,
                                      std::string_view) override {
    return SecretBytes::CopyFrom(ct);
  }
};

class IdentityKmsV1Client final : public reencrypt::KmsV1Client {
 public:
  absl::StatusOr<std::string> Encrypt(const SecretBytes& pt) override {
    return std::string(pt.Reveal());
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ct) override {
    return SecretBytes::CopyFrom(ct);
  }
};

inline reencrypt::KmsClientFactory IdentityKmsFactory() {
  reencrypt::KmsClientFactory f;
  f.v2 = [](std::string_view, absl::Duration)
      -> absl::StatusOr<std::unique_ptr<reencrypt::KmsV2Client>> {
    return std::make_unique<IdentityKmsV2Client>();
  };
  f.v1 = [](std::string_view, absl::Duration)
      -> absl::StatusOr<std::unique_ptr<reencrypt::KmsV1Client>> {
    return std::make_unique<IdentityKmsV1Client>();
  };
  return f;
}

// Keys: aescbc/aesgcm/secretbox "key1" = 32 x 'k'; "key0" = 32 x 'o'.
inline std::string FuzzConfigYaml() {
  const std::string k = Base64Encode(std::string(32, 'k'));
  const std::string o = Base64Encode(std::string(32, 'o'));
  return "apiVersion: apiserver.config.k8s.io/v1\n"
         "kind: EncryptionConfiguration\n"
         "resources:\n"
         "  - resources: [secrets]\n"
         "    providers:\n"
         "      - kms: {apiVersion: v2, name: fuzz-v2, endpoint: unix:///fuzz.sock}\n"
         "      - kms: {name: fuzz-v1, endpoint: unix:///fuzz-v1.sock}\n"
         "      - aescbc: {keys: [{name: key1, secret: " + k + "}, {name: key0, secret: " + o +
         "}]}\n"
         "      - aescbc: {keys: [{name: key1, secret: " + o + "}]}\n"
         "      - aesgcm: {keys: [{name: key1, secret: " + k + "}]}\n"
         "      - secretbox: {keys: [{name: key1, secret: " + k + "}]}\n"
         "      - identity: {}\n"
         "  - resources: [configmaps]\n"
         "    providers:\n"
         "      - aescbc: {keys: [{name: key1, secret: " + k + "}]}\n"
         "      - aescbc: {keys: [{name: key1, secret: " + o + "}]}\n"
         "      - identity: {}\n";
}

}  // namespace kmsplugin::fuzz

#endif  // KMSP_FUZZ_REENCRYPT_FUZZ_SUPPORT_H_
