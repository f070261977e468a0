// The EncryptionConfiguration file kube-apiserver reads (--encryption-provider-config), parsed
// once into typed structs (kmsv2-contract.md §5.1), and the resource-to-rule lookup as
// kube-apiserver applies it.
//
//   apiVersion: apiserver.config.k8s.io/v1       (legacy "kind: EncryptionConfig, v1" accepted)
//   kind: EncryptionConfiguration
//   resources:
//     - resources: [secrets, "widgets.example.com", "*.apps", "*.*"]
//       providers:
//         - kms: {apiVersion: v2, name: kms-plugin, endpoint: unix:///run/kms.sock, timeout: 3s}
//         - aescbc: {keys: [{name: key1, secret: <base64>}]}   (also aesgcm, secretbox)
//         - identity: {}
//
// Key secrets are decoded into SecretBytes and never leave this struct except to build ciphers.
// Not thread-safe to mutate; const access from many threads is fine.
#ifndef KMSP_TOOLS_REENCRYPT_ENCRYPTION_CONFIG_H_
#define KMSP_TOOLS_REENCRYPT_ENCRYPTION_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin::reencrypt {

enum class ProviderKind { kIdentity, kAesCbc, kAesGcm, kSecretbox, kKmsV1, kKmsV2 };

std::string_view ProviderKindName(ProviderKind kind);

struct ProviderKey {
  std::string name;
  SecretBytes secret;
};

struct ProviderConfig {
  ProviderKind kind = ProviderKind::kIdentity;
  // kms only:
  std::string name;
  std::string endpoint;
  absl::Duration timeout = absl::Seconds(3);
  // aescbc, aesgcm, secretbox: the first key writes.
  std::vector<ProviderKey> keys;
};

// A Kubernetes group/resource: "secrets" = {secrets, ""}, "deployments.apps" = {deployments,
// apps}, "*." = {*, ""}, "*.*" = {*, *}. Parsed like schema.ParseGroupResource: split at the
// first dot.
struct GroupResource {
  std::string resource;
  std::string group;

  static GroupResource Parse(std::string_view s);
  std::string ToString() const { return group.empty() ? resource : resource + "." + group; }
  bool operator==(const GroupResource& o) const {
    return resource == o.resource && group == o.group;
  }
  bool operator<(const GroupResource& o) const {
    return group != o.group ? group < o.group : resource < o.resource;
  }
};

struct ResourceRule {
  std::vector<std::string> resources;
  std::vector<ProviderConfig> providers;  // never empty
};

struct EncryptionConfig {
  std::vector<ResourceRule> rules;

  // The rule whose providers apply to `gr`, as kube-apiserver resolves it: an exact name first,
  // then "*.<group>" ("*." for the core group), then "*.*". nullptr means no rule: the resource
  // is stored unencrypted (identity).
  const ResourceRule* FindRule(const GroupResource& gr) const;
  // Every resource named explicitly (no wildcard), in file order.
  std::vector<GroupResource> ExplicitResources() const;
  bool HasWildcards() const;
};

// INVALID_ARGUMENT with the reason for a malformed or invalid file (bad YAML, unknown kind,
// provider without exactly one type, kms v2 name with ':', duplicate kms names, bad key size or
// base64, cachesize on v2, timeout <= 0, "*" alone, a duplicate resource, a resource masked by an
// earlier wildcard). Messages never contain key material.
absl::StatusOr<EncryptionConfig> ParseEncryptionConfig(std::string_view yaml);
// Reads `path` with the secret-file reader (kms/secret_file.h: one wipeable buffer, wiped after
// the parse) and parses it; NOT_FOUND when it does not exist, INVALID_ARGUMENT when over 1 MiB,
// UNAVAILABLE for other read errors.
absl::StatusOr<EncryptionConfig> LoadEncryptionConfigFile(const std::string& path);

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_ENCRYPTION_CONFIG_H_
