#include "tools/reencrypt/etcd_response.h"

#include "base/printable.h"
#include "fmt/format.h"

namespace kmsplugin::reencrypt {
namespace {

EtcdKeyValue FromProto(const mvccpb::KeyValue& kv) {
  return EtcdKeyValue{kv.key(),          kv.value(),   kv.create_revision(),
                      kv.mod_revision(), kv.version(), kv.lease()};
}

}  // namespace

EtcdRangePage PageFromRangeResponse(etcdserverpb::RangeResponse* resp) {
  EtcdRangePage page;
  page.kvs.reserve(resp->kvs_size());
  for (auto& kv : *resp->mutable_kvs()) {
    EtcdKeyValue out;
    out.key = std::move(*kv.mutable_key());
    out.value = std::move(*kv.mutable_value());
    out.create_revision = kv.create_revision();
    out.mod_revision = kv.mod_revision();
    out.version = kv.version();
    out.lease = kv.lease();
    page.kvs.push_back(std::move(out));
  }
  page.more = resp->more();
  page.count = resp->count();
  page.revision = resp->header().revision();
  return page;
}

absl::StatusOr<EtcdCasResult> CasResultFromTxnResponse(const etcdserverpb::TxnResponse& resp,
                                                       std::string_view key) {
  EtcdCasResult out;
  out.succeeded = resp.succeeded();
  if (out.succeeded) {
    out.revision = resp.header().revision();
    return out;
  }
  if (resp.responses_size() == 1 && resp.responses(0).has_response_range() &&
      resp.responses(0).response_range().kvs_size() > 0) {
    const mvccpb::KeyValue& kv = resp.responses(0).response_range().kvs(0);
    if (kv.key() != key) {
      return absl::DataLossError(fmt::format(
          "etcd Txn on {} read back another key, {}", Printable(key), Printable(kv.key())));
    }
    out.current = FromProto(kv);
  }
  return out;
}

absl::Status ValidateRangePage(const EtcdRangePage& page, std::string_view from,
                               std::string_view range_end) {
  const bool unbounded = range_end == std::string_view("\0", 1);
  std::string_view prev;
  for (size_t i = 0; i < page.kvs.size(); ++i) {
    std::string_view k = page.kvs[i].key;
    bool in_range = k >= from && (unbounded || k < range_end);
    if (!in_range || (i > 0 && k <= prev)) {
      return absl::DataLossError(fmt::format(
          "etcd answered a listing of [{}, {}) with key {} {}", Printable(from),
          Printable(range_end), Printable(k), in_range ? "out of order" : "outside the range"));
    }
    prev = k;
  }
  return absl::OkStatus();
}

}  // namespace kmsplugin::reencrypt
