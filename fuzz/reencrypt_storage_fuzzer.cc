// libFuzzer target: every stored-value format reencrypt reads (kmsv2-contract.md §3-4), as bytes
// from etcd. Input: one etcd value. Exercised: the KMS v2 EncryptedObject parser, the KMS v1
// body parser, the prefix splitter, type 0/1 decryption, the plausibility check, and Classify,
// IsCurrent and Open of every provider (kms v2, kms v1 with its CBC fallback, two overlapping
// aescbc, aesgcm, secretbox, identity) through a ProviderChain, with in-process KMS clients.
// Properties checked on every input:
//   - no crash, no sanitizer report;
//   - a parsed EncryptedObject re-serialises to bytes that parse to the same object;
//   - a successful Open of the secrets chain equals the first success of a lone provider's Open
//     when only that provider claims the value.
// Build: -DKMSP_BUILD_FUZZ=ON with clang (fuzz/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz/reencrypt_fuzz_support.h"
#include "spdlog/spdlog.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

namespace {

using namespace kmsplugin::reencrypt;  // NOLINT

constexpr char kEtcdKey[] = "/registry/secrets/default/fuzz";

struct State {
  EncryptionConfig config;
  State() {
    spdlog::set_level(spdlog::level::off);
    config = std::move(*ParseEncryptionConfig(kmsplugin::fuzz::FuzzConfigYaml()));
  }
};

bool SameObject(const EncryptedObject& a, const EncryptedObject& b) {
  return a.encrypted_data == b.encrypted_data && a.key_id == b.key_id &&
         a.encrypted_dek_source == b.encrypted_dek_source && a.annotations == b.annotations &&
         a.type == b.type;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static State* state = new State();
  // Fresh transformers per input: their seed caches would otherwise grow with every input.
  auto set = std::move(*TransformerSet::Create(state->config, kmsplugin::fuzz::IdentityKmsFactory()));
  for (const auto& t : set->transformers()) (void)t->PrepareForRead();
  const std::string_view value(reinterpret_cast<const char*>(data), size);

  std::string_view name, rest;
  for (std::string_view prefix : {kKmsV2Prefix, kKmsV1Prefix, kAesCbcPrefix}) {
    if (!SplitKmsValue(value, prefix, &name, &rest)) continue;
    if (prefix == kKmsV1Prefix) (void)ParseKmsV1Body(rest);
    if (prefix != kKmsV2Prefix) continue;
    auto obj = ParseEncryptedObject(rest);
    if (!obj.ok()) continue;
    auto again = ParseEncryptedObject(SerializeEncryptedObject(*obj));
    if (!again.ok() || !SameObject(*obj, *again)) __builtin_trap();  // round trip broke
    (void)DekSourceCacheKey(*obj);
  }
  // Raw bodies as encryptedData of both types under a fixed seed.
  static const kmsplugin::SecretBytes seed = kmsplugin::SecretBytes::CopyFrom(std::string(32, 's'));
  (void)OpenKmsV2Data(DekSourceType::kHkdfSha256XNonceAesGcmSeed, seed, value, kEtcdKey);
  (void)OpenKmsV2Data(DekSourceType::kAesGcmKey, seed, value, kEtcdKey);
  (void)IsPlausibleStoredObject(value);

  for (const char* resource : {"secrets", "configmaps"}) {
    const ProviderChain& chain = set->ChainFor(GroupResource::Parse(resource));
    ValueOrigin origin = chain.Classify(value);
    (void)chain.IsCurrent(origin);
    (void)chain.ClaimedByLaterProvider(value, origin);
    auto opened = chain.Open(kEtcdKey, value);
    if (opened.ok() && !chain.ClaimedByLaterProvider(value, origin) &&
        origin.provider_index >= 0) {
      auto alone = chain.transformers()[origin.provider_index]->Decrypt(kEtcdKey, value);
      if (!alone.ok() || !alone->ConstantTimeEquals(opened->plaintext)) __builtin_trap();
    }
  }
  return 0;
}
