// Interpreting etcd's Range and Txn responses (proto/etcd/rpc.proto; bytes from the network,
// parsed by protobuf) as the gRPC-free types of etcd_client.h. Separate from the client so that
// the fuzzers can drive it with arbitrary responses. Pure functions, thread-safe.
#ifndef KMSP_TOOLS_REENCRYPT_ETCD_RESPONSE_H_
#define KMSP_TOOLS_REENCRYPT_ETCD_RESPONSE_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "proto/etcd/rpc.pb.h"
#include "tools/reencrypt/etcd_client.h"

namespace kmsplugin::reencrypt {

// Moves the keys and values out of `resp`. No checks (see ValidateRangePage).
EtcdRangePage PageFromRangeResponse(etcdserverpb::RangeResponse* resp);
// Txn(If mod_revision == x Then Put Else Range(key)) as issued by CompareAndSwap for `key`.
// DATA_LOSS when a failed compare's read-back names another key than `key`.
absl::StatusOr<EtcdCasResult> CasResultFromTxnResponse(const etcdserverpb::TxnResponse& resp,
                                                       std::string_view key);

// Checks a listing page against the request: every key in [from, range_end) ("\0" = no upper
// bound) and strictly ascending. DATA_LOSS otherwise: a server or proxy that answers with other
// keys must not make the tool rewrite objects of another resource, or loop forever.
absl::Status ValidateRangePage(const EtcdRangePage& page, std::string_view from,
                               std::string_view range_end);

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_ETCD_RESPONSE_H_
