// Test-side encoders and decoders of kube-apiserver's etcd value formats, written from
// kmsv2-contract.md §3-4 with the crypto/ primitives only (not through tools/reencrypt's
// transformers), so that the tool is checked against an independent implementation.
// KMS "encryption" is the base64 scheme of the fake plugins (fake_kms_server.h).
#ifndef KMSP_TESTS_REENCRYPT_CORPUS_H_
#define KMSP_TESTS_REENCRYPT_CORPUS_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kmsplugin::testing {

// Values as each provider writes them. Keys are raw bytes; `etcd_key` is the AAD where used.
absl::StatusOr<std::string> EncodeAesCbc(std::string_view key_name, std::string_view key,
                                         std::string_view plaintext);
absl::StatusOr<std::string> EncodeAesGcm(std::string_view key_name, std::string_view key,
                                         std::string_view etcd_key, std::string_view plaintext);
absl::StatusOr<std::string> EncodeSecretbox(std::string_view key_name, std::string_view key,
                                            std::string_view plaintext);
// KMS v2 type 0 (AES key = dek) and type 1 (seed), with the fake plugin's annotation.
absl::StatusOr<std::string> EncodeKmsV2Type0(std::string_view provider, std::string_view key_id,
                                             std::string_view dek, std::string_view etcd_key,
                                             std::string_view plaintext);
absl::StatusOr<std::string> EncodeKmsV2Type1(std::string_view provider, std::string_view key_id,
                                             std::string_view seed, std::string_view etcd_key,
                                             std::string_view plaintext);
// KMS v2 as the apiserver writes it with a real plugin: `wrap` is the plugin's EncryptResponse
// for `secret` (type 1: the seed, sealed with HKDF(seed, info); type 0, v1.27: the AES key).
struct PluginWrap {
  std::string ciphertext;
  std::string key_id;
  std::map<std::string, std::string> annotations;
};
absl::StatusOr<std::string> EncodeKmsV2WithPlugin(std::string_view provider, const PluginWrap& wrap,
                                                  int type, std::string_view secret,
                                                  std::string_view etcd_key,
                                                  std::string_view plaintext);
absl::StatusOr<std::string> EncodeKmsV1(std::string_view provider, std::string_view dek,
                                        std::string_view etcd_key, std::string_view plaintext);

// What a KMS v2 value decodes to with the §3.9 recipe, after every §3.2 check.
struct DecodedKmsV2 {
  std::string provider;
  std::string key_id;
  int type = -1;
  std::string plaintext;
  std::string annotation;  // the fake plugin's annotation value
};
// Checks (§3.1, §3.2) the prefix, a canonical Go-order encoding, type, sizes and annotation
// FQDNs, then decrypts (§3.9) with seed = base64-decode(encryptedDEKSource). INVALID_ARGUMENT
// naming the first failed check.
absl::StatusOr<DecodedKmsV2> DecodeKmsV2(std::string_view value, std::string_view etcd_key);

// A deterministic, apiserver-looking plaintext ("k8s\0" + protobuf-ish bytes) of ~`size` bytes.
std::string MakePlaintext(std::string_view name, size_t size);

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_REENCRYPT_CORPUS_H_
