// libFuzzer target: the EncryptionConfiguration YAML parser (tools/reencrypt/encryption_config)
// and what is built from a parsed config (rule lookup, transformers with in-process KMS clients).
// Properties: no crash, no sanitizer report, no uncaught exception (yaml-cpp throws; the parser
// must turn every throw into INVALID_ARGUMENT); every parsed config has rules with providers and
// keys of valid sizes; an error message never contains a configured key's raw bytes.
// Build: -DKMSP_BUILD_FUZZ=ON with clang (fuzz/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/reencrypt_fuzz_support.h"
#include "spdlog/spdlog.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/value_transformer.h"

using namespace kmsplugin::reencrypt;  // NOLINT

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = (spdlog::set_level(spdlog::level::off), true);
  (void)quiet;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto config = ParseEncryptionConfig(yaml);
  if (!config.ok()) {
    if (config.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  for (const ResourceRule& rule : config->rules) {
    if (rule.providers.empty() || rule.resources.empty()) __builtin_trap();
    for (const ProviderConfig& p : rule.providers) {
      for (const ProviderKey& k : p.keys) {
        size_t n = k.secret.size();
        if (n != 16 && n != 24 && n != 32) __builtin_trap();
      }
    }
  }
  (void)config->ExplicitResources();
  (void)config->HasWildcards();
  for (const char* r : {"secrets", "configmaps", "deployments.apps", "widgets.example.com", "x"}) {
    (void)config->FindRule(GroupResource::Parse(r));
  }
  auto set = TransformerSet::Create(*config, kmsplugin::fuzz::IdentityKmsFactory());
  if (set.ok()) {
    const ProviderChain& chain = (*set)->ChainFor(GroupResource::Parse("secrets"));
    (void)chain.Classify("k8s:enc:aescbc:v1:key1:0123456789abcdef0123456789abcdef");
  }
  return 0;
}
