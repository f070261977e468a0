// DekCache: a bounded LRU of unwrapped data keys, keyed by SHA-256(key_id || 0 || wrapped blob),
// with single-flight loading: concurrent misses for one wrapped key cause one backend call, and
// every waiter gets its result.
//
// Values are shared AesGcm objects holding the key in SecretBytes; an evicted or purged key is
// wiped as soon as the last in-flight request using it finishes.
//
// Thread-safe.
#ifndef KMSP_PLUGIN_DEK_CACHE_H_
#define KMSP_PLUGIN_DEK_CACHE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "crypto/aes_gcm.h"

namespace kmsplugin {

class DekCache {
 public:
  using Loader = std::function<absl::StatusOr<std::shared_ptr<const AesGcm>>()>;

  // REQUIRES: capacity >= 1.
  explicit DekCache(size_t capacity);

  // The cache key for a wrapped data key.
  static std::string KeyFor(std::string_view key_id, std::string_view wrapped_blob);

  // Returns the cached key for `cache_key`, or runs `load` once for all concurrent callers of the
  // same key and caches a success. Errors are returned to every waiter and are not cached. A
  // caller that waits for another's load gives up with DEADLINE_EXCEEDED at its own `deadline`
  // (the load goes on for the others).
  absl::StatusOr<std::shared_ptr<const AesGcm>> GetOrLoad(
      const std::string& cache_key, const Loader& load,
      absl::Time deadline = absl::InfiniteFuture());

  // The cached key for `cache_key` (counted as a hit), or nullptr (not counted: the caller is
  // expected to follow with GetOrLoad, which counts the miss). Never blocks on a load.
  std::shared_ptr<const AesGcm> Lookup(const std::string& cache_key);

  // Inserts (or refreshes) an entry.
  void Put(const std::string& cache_key, std::shared_ptr<const AesGcm> value);

  // Drops every entry (revocation). Loads in flight finish but their results are not cached.
  void Purge();

  size_t size() const;
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  struct InFlight {
    absl::Notification done;
    absl::StatusOr<std::shared_ptr<const AesGcm>> result;
  };
  using LruList = std::list<std::pair<std::string, std::shared_ptr<const AesGcm>>>;

  void PutLocked(const std::string& cache_key, std::shared_ptr<const AesGcm> value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  mutable absl::Mutex mu_;
  LruList lru_ ABSL_GUARDED_BY(mu_);  // Front = most recently used.
  std::unordered_map<std::string, LruList::iterator> index_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::shared_ptr<InFlight>> in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // Bumped by Purge().
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace kmsplugin

#endif  // KMSP_PLUGIN_DEK_CACHE_H_
