// EtcdClient: the few etcd v3 KV operations the reencrypt tool needs, without gRPC types.
// etcd_client_grpc.cc implements it over etcd's gRPC API (proto/etcd/rpc.proto); tests may wrap
// it to inject races.
//
// Keys and values are raw bytes in std::string. All methods are thread-safe and bounded by the
// request timeout given at creation. Errors keep etcd's gRPC code (UNAVAILABLE when no endpoint
// answers, DEADLINE_EXCEEDED, OUT_OF_RANGE for a compacted revision, ...); messages never carry
// values.
#ifndef KMSP_TOOLS_REENCRYPT_ETCD_CLIENT_H_
#define KMSP_TOOLS_REENCRYPT_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace kmsplugin::reencrypt {

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0 = none; a rewrite keeps it (events expire through their lease)
};

struct EtcdRangePage {
  std::vector<EtcdKeyValue> kvs;
  bool more = false;     // more keys exist in the range past `limit`
  int64_t count = 0;     // total keys in the range (at `revision`)
  int64_t revision = 0;  // store revision the read was served at
};

struct EtcdRangeOptions {
  int64_t limit = 0;  // 0 = no limit
  bool keys_only = false;
  bool count_only = false;
};

struct EtcdCasResult {
  bool succeeded = false;
  int64_t revision = 0;  // on success: the new mod_revision of the key
  // On failure: the key as it is now (read in the same transaction), or nullopt if deleted.
  std::optional<EtcdKeyValue> current;
};

class EtcdClient {
 public:
  virtual ~EtcdClient() = default;

  // Keys in [key, range_end) at the latest revision, ascending by key. An empty range_end reads
  // the single key `key`.
  virtual absl::StatusOr<EtcdRangePage> Range(std::string_view key, std::string_view range_end,
                                              const EtcdRangeOptions& options) = 0;
  // Unconditional put (lease 0 = none); returns the new revision.
  virtual absl::StatusOr<int64_t> Put(std::string_view key, std::string_view value,
                                      int64_t lease = 0) = 0;
  // Grants a lease of `ttl`; returns its id. (Tests use it to make keys that carry a lease.)
  virtual absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) = 0;
  // Txn: If(mod_revision(key) == expected_mod_revision) Then(Put(key, value, lease))
  // Else(Range(key)). NOT_FOUND when `lease` no longer exists.
  virtual absl::StatusOr<EtcdCasResult> CompareAndSwap(std::string_view key,
                                                       int64_t expected_mod_revision,
                                                       std::string_view value, int64_t lease) = 0;
  // Deletes [key, range_end) (or just `key` when range_end is empty); returns the number deleted.
  virtual absl::StatusOr<int64_t> DeleteRange(std::string_view key, std::string_view range_end) = 0;
};

// The smallest key greater than every key starting with `prefix` (etcd's "prefix + 1").
std::string PrefixRangeEnd(std::string_view prefix);

struct EtcdClientOptions {
  // "http://host:port", "https://host:port" or "host:port"; tried in order, with fail-over to the
  // next on UNAVAILABLE.
  std::vector<std::string> endpoints;
  // TLS as kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile: CA alone for server
  // TLS, plus cert and key for mutual TLS. TLS is used for https:// endpoints or when any file is
  // given.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  absl::Duration request_timeout = absl::Seconds(30);
};

// INVALID_ARGUMENT for no endpoints, a malformed endpoint, or cert without key (or vice versa);
// NOT_FOUND, FAILED_PRECONDITION (a symlink not allowed, not a regular file, another owner) or
// UNAVAILABLE when a TLS file cannot be read, INVALID_ARGUMENT when one is over 1 MiB (TLS files
// go through kms/secret_file.h). Connects lazily.
absl::StatusOr<std::unique_ptr<EtcdClient>> CreateGrpcEtcdClient(const EtcdClientOptions& options);

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_ETCD_CLIENT_H_
