// Where kube-apiserver stores each resource in etcd: "<etcd-prefix>/<path>/<namespace>/<name>"
// (or ".../<name>" for cluster-scoped ones). Most built-in resources use their plural name as
// <path>, a few have historical paths (nodes -> "minions", services -> "services/specs",
// endpoints -> "services/endpoints", replicationcontrollers -> "controllers", ingresses ->
// "ingress"), and custom resources use "<group>/<plural>".
//
// Pure functions plus one etcd discovery walk; thread-compatible.
#ifndef KMSP_TOOLS_REENCRYPT_RESOURCES_H_
#define KMSP_TOOLS_REENCRYPT_RESOURCES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/etcd_client.h"

namespace kmsplugin::reencrypt {

struct ResourceTarget {
  GroupResource resource;
  std::string key_prefix;  // e.g. "/registry/secrets/" (always ends in '/')
};

// The etcd path (without prefix and slashes) of a group/resource, e.g. "secrets", "minions",
// "services/specs", "example.com/widgets".
std::string EtcdPathFor(const GroupResource& gr);

// Parses one --resources entry: "secrets", "deployments.apps", "widgets.example.com", or with an
// explicit path "widgets.example.com=example.com/widgets". INVALID_ARGUMENT for an empty name, a
// wildcard, or an empty/absolute path.
absl::StatusOr<ResourceTarget> ParseResourceTarget(std::string_view spec,
                                                   std::string_view etcd_prefix);

// Walks the keys under `etcd_prefix` (keys only, skipping past each resource once found) and
// returns every resource present, in key order. Errors are etcd's.
absl::StatusOr<std::vector<ResourceTarget>> DiscoverResources(EtcdClient* etcd,
                                                              std::string_view etcd_prefix);

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_RESOURCES_H_
