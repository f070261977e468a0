// InMemoryEtcd: a single-member etcd in memory for unit tests (no etcd-server): Range (limit,
// count_only, keys_only, more), Put and the mod_revision compare-and-swap, with one store
// revision counter. Thread-safe.
#ifndef KMSP_TESTS_REENCRYPT_IN_MEMORY_ETCD_H_
#define KMSP_TESTS_REENCRYPT_IN_MEMORY_ETCD_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "tools/reencrypt/etcd_client.h"

namespace kmsplugin::testing {

class InMemoryEtcd final : public reencrypt::EtcdClient {
 public:
  absl::StatusOr<reencrypt::EtcdRangePage> Range(
      std::string_view key, std::string_view range_end,
      const reencrypt::EtcdRangeOptions& options) override {
    absl::MutexLock lock(&mu_);
    reencrypt::EtcdRangePage page;
    page.revision = revision_;
    auto it = kvs_.lower_bound(std::string(key));
    for (; it != kvs_.end(); ++it) {
      if (range_end.empty() ? it->first != key : it->first >= range_end) break;
      ++page.count;
      if (options.count_only) continue;
      if (options.limit > 0 && static_cast<int64_t>(page.kvs.size()) == options.limit) {
        page.more = true;
        continue;
      }
      reencrypt::EtcdKeyValue kv = it->second;
      if (options.keys_only) kv.value.clear();
      page.kvs.push_back(std::move(kv));
    }
    return page;
  }
  absl::StatusOr<int64_t> Put(std::string_view key, std::string_view value,
                              int64_t lease) override {
    absl::MutexLock lock(&mu_);
    return PutLocked(std::string(key), std::string(value), lease);
  }
  absl::StatusOr<int64_t> GrantLease(absl::Duration) override {
    return absl::UnimplementedError("no leases");
  }
  absl::StatusOr<reencrypt::EtcdCasResult> CompareAndSwap(std::string_view key, int64_t expected,
                                                          std::string_view value,
                                                          int64_t lease) override {
    absl::MutexLock lock(&mu_);
    reencrypt::EtcdCasResult out;
    auto it = kvs_.find(std::string(key));
    int64_t mod = it == kvs_.end() ? 0 : it->second.mod_revision;
    if (mod != expected) {
      if (it != kvs_.end()) out.current = it->second;
      return out;
    }
    out.succeeded = true;
    out.revision = PutLocked(std::string(key), std::string(value), lease);
    ++cas_writes_;
    return out;
  }
  absl::StatusOr<int64_t> DeleteRange(std::string_view, std::string_view) override {
    return absl::UnimplementedError("no deletes");
  }

  std::string Get(const std::string& key) {
    absl::MutexLock lock(&mu_);
    auto it = kvs_.find(key);
    return it == kvs_.end() ? std::string() : it->second.value;
  }
  int cas_writes() {
    absl::MutexLock lock(&mu_);
    return cas_writes_;
  }

 private:
  int64_t PutLocked(std::string key, std::string value, int64_t lease)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    reencrypt::EtcdKeyValue& kv = kvs_[key];
    ++revision_;
    if (kv.create_revision == 0) kv.create_revision = revision_;
    kv.key = std::move(key);
    kv.value = std::move(value);
    kv.mod_revision = revision_;
    ++kv.version;
    kv.lease = lease;
    return revision_;
  }

  absl::Mutex mu_;
  std::map<std::string, reencrypt::EtcdKeyValue> kvs_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 1;
  int cas_writes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_REENCRYPT_IN_MEMORY_ETCD_H_
