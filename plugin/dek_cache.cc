#include "plugin/dek_cache.h"

#include "crypto/hash.h"

namespace kmsplugin {

DekCache::DekCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

std::string DekCache::KeyFor(std::string_view key_id, std::string_view wrapped_blob) {
  std::string material;
  material.reserve(key_id.size() + 1 + wrapped_blob.size());
  material.append(key_id);
  material.push_back('\0');
  material.append(wrapped_blob);
  return Sha256(material);
}

std::shared_ptr<const AesGcm> DekCache::Lookup(const std::string& cache_key) {
  absl::MutexLock lock(&mu_);
  auto it = index_.find(cache_key);
  if (it == index_.end()) return nullptr;
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

absl::StatusOr<std::shared_ptr<const AesGcm>> DekCache::GetOrLoad(const std::string& cache_key,
                                                                  const Loader& load,
                                                                  absl::Time deadline) {
  std::shared_ptr<InFlight> flight;
  bool leader = false;
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(cache_key);
    if (it != index_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
    ++misses_;
    auto f = in_flight_.find(cache_key);
    if (f != in_flight_.end()) {
      flight = f->second;
    } else {
      flight = std::make_shared<InFlight>();
      in_flight_.emplace(cache_key, flight);
      leader = true;
      generation = generation_;
    }
  }
  if (!leader) {
    if (!flight->done.WaitForNotificationWithDeadline(deadline)) {
      return absl::DeadlineExceededError(
          "deadline exceeded while waiting for another call's unwrap of the same data key");
    }
    return flight->result;
  }
  flight->result = load();
  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(cache_key);
    if (flight->result.ok() && generation == generation_) PutLocked(cache_key, *flight->result);
  }
  flight->done.Notify();
  return flight->result;
}

void DekCache::Put(const std::string& cache_key, std::shared_ptr<const AesGcm> value) {
  absl::MutexLock lock(&mu_);
  PutLocked(cache_key, std::move(value));
}

void DekCache::PutLocked(const std::string& cache_key, std::shared_ptr<const AesGcm> value) {
  auto it = index_.find(cache_key);
  if (it != index_.end()) {
    it->second->second = std::move(value);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(cache_key, std::move(value));
  index_[cache_key] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();  // The key is wiped when its last user releases it.
  }
}

void DekCache::Purge() {
  LruList dropped;
  {
    absl::MutexLock lock(&mu_);
    ++generation_;
    index_.clear();
    dropped.swap(lru_);
  }
}

size_t DekCache::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}
uint64_t DekCache::hits() const {
  absl::MutexLock lock(&mu_);
  return hits_;
}
uint64_t DekCache::misses() const {
  absl::MutexLock lock(&mu_);
  return misses_;
}

}  // namespace kmsplugin
