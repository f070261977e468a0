#include "tools/reencrypt/reencryptor.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "absl/synchronization/mutex.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "tools/reencrypt/etcd_response.h"
#include "tools/reencrypt/storage_format.h"

namespace kmsplugin::reencrypt {
namespace {

struct WorkItem {
  size_t target = 0;
  EtcdKeyValue kv;
};

// Bounded multi-producer multi-consumer queue; Close() lets consumers drain and stop.
class WorkQueue {
 public:
  explicit WorkQueue(size_t capacity) : capacity_(capacity) {}

  void Push(WorkItem item) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &WorkQueue::HasRoom));
    q_.push_back(std::move(item));
  }
  bool Pop(WorkItem* item) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &WorkQueue::ReadyToPop));
    if (q_.empty()) return false;
    *item = std::move(q_.front());
    q_.pop_front();
    return true;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

 private:
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return q_.size() < capacity_; }
  bool ReadyToPop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !q_.empty(); }

  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<WorkItem> q_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// Spaces objects 1/rate apart across all workers (a token bucket of depth one).
class RateLimiter {
 public:
  RateLimiter(double rate, const Clock* clock) : rate_(rate), clock_(clock) {}
  void Acquire() {
    if (rate_ <= 0) return;
    absl::Time now = clock_->Now();
    absl::Time slot;
    {
      absl::MutexLock lock(&mu_);
      slot = std::max(next_, now);
      next_ = slot + absl::Seconds(1.0 / rate_);
    }
    if (slot > now) absl::SleepFor(slot - now);
  }

 private:
  const double rate_;
  const Clock* const clock_;
  absl::Mutex mu_;
  absl::Time next_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// resource, provider, key_id, dek_type, current, recovery.
using InventoryKey = std::tuple<std::string, std::string, std::string, int, bool, std::string>;

class RunState {
 public:
  RunState(EtcdClient* etcd, const std::vector<ResourceTarget>& targets,
           std::vector<const ProviderChain*> chains, const ReencryptOptions& options,
           ProgressListener* progress, const Clock* clock)
      : etcd_(etcd),
        targets_(targets),
        chains_(std::move(chains)),
        options_(options),
        progress_(progress),
        limiter_(options.rate, clock) {}

  void Worker(WorkQueue* queue) {
    WorkItem item;
    while (queue->Pop(&item)) {
      limiter_.Acquire();
      Process(item);
      if (progress_ != nullptr) progress_->Update(Counters());
    }
  }

  ProgressCounters Counters() const {
    ProgressCounters c;
    c.total = total_.load();
    c.scanned = scanned_.load();
    c.rewritten = rewritten_.load();
    c.already_current = already_current_.load();
    c.failed = failed_.load();
    return c;
  }

  void set_total(int64_t total) { total_ = total; }

  void FillSummary(ReencryptSummary* s) {
    s->scanned = scanned_;
    s->rewritten = rewritten_;
    s->already_current = already_current_;
    s->would_rewrite = would_rewrite_;
    s->failed = failed_;
    s->conflicts = conflicts_;
    s->vanished = vanished_;
    absl::MutexLock lock(&mu_);
    for (const auto& [k, count] : inventory_) {
      s->inventory.push_back(InventoryRow{std::get<0>(k), std::get<1>(k), std::get<2>(k),
                                          std::get<3>(k), std::get<4>(k), count,
                                          std::get<5>(k)});
    }
    s->failures = failures_;
  }

 private:
  void Fail(const EtcdKeyValue& kv, const ValueOrigin& origin, const absl::Status& status) {
    failed_.fetch_add(1);
    // Keys and messages may carry stored or remote bytes (key_ids, annotation keys, plugin and
    // etcd error text): the log line and the report get them through Printable only.
    std::string key = Printable(kv.key, 1024);
    std::string error = Printable(ToStd(status.message()), 1024);
    spdlog::error("reencrypt: key {} (prefix \"{}\", provider {}) left untouched: {}", key,
                  Printable(origin.prefix), Printable(origin.provider), error);
    absl::MutexLock lock(&mu_);
    if (failures_.size() < options_.max_reported_failures) {
      failures_.push_back(FailedKey{std::move(key), Printable(origin.prefix), std::move(error)});
    }
  }

  void Count(const std::string& resource, const ValueOrigin& origin, bool current) {
    absl::MutexLock lock(&mu_);
    // Resource names found in etcd keys and KMS v2 key_ids are stored bytes: printable only.
    ++inventory_[InventoryKey{Printable(resource), origin.provider,
                              Printable(origin.key_id, kMaxKeyIdSize), origin.dek_type, current,
                              origin.recovery}];
  }

  void Process(const WorkItem& item) {
    const ProviderChain& chain = *chains_[item.target];
    const std::string resource = targets_[item.target].resource.ToString();
    EtcdKeyValue kv = item.kv;
    scanned_.fetch_add(1);
    for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
      ValueOrigin origin = chain.Classify(kv.value);
      bool current = chain.IsCurrent(origin);
      if (current && chain.ClaimedByLaterProvider(kv.value, origin)) {
        // Overlapping prefixes (§4.1): current only if the chain's decrypt attributes the value
        // to the first provider's first key, unambiguously (two aescbc keys that both "open" it
        // leave it untouched). Only aescbc/aesgcm/secretbox prefixes overlap in practice, so
        // this decrypt is local (also in a scan).
        auto opened = chain.Open(kv.key, kv.value);
        current = opened.ok() && opened->provider_index == 0 && opened->key_index <= 0;
        if (!opened.ok() && IsAmbiguousValueError(opened.status())) {
          if (attempt == 1) Count(resource, origin, false);
          return Fail(kv, origin, opened.status());
        }
      }
      if (attempt == 1) Count(resource, origin, current);
      if (options_.scan_only) return;
      if (current) {
        already_current_.fetch_add(1);
        return;
      }
      auto plaintext = chain.Decrypt(kv.key, kv.value);
      if (!plaintext.ok()) return Fail(kv, origin, plaintext.status());
      auto rewritten = chain.Encrypt(kv.key, *plaintext);
      if (!rewritten.ok()) return Fail(kv, origin, Annotate(rewritten.status(), "encrypt"));
      // Never write what we cannot read back: decrypt the new value and compare.
      auto check = chain.Decrypt(kv.key, *rewritten);
      if (!check.ok() || !check->ConstantTimeEquals(*plaintext)) {
        return Fail(kv, origin,
                    absl::InternalError(check.ok() ? "re-encrypted value does not read back"
                                                   : fmt::format("re-encrypted value does not "
                                                                 "decrypt: {}",
                                                                 ToStd(check.status().message()))));
      }
      if (!chain.IsCurrent(chain.Classify(*rewritten))) {
        // The plugin's key_id changed while this object was in flight: redo it under the new
        // one rather than write it under a superseded key_id.
        continue;
      }
      if (options_.dry_run) {
        would_rewrite_.fetch_add(1);
        return;
      }
      // Keep the key's lease (events expire through it).
      auto cas = etcd_->CompareAndSwap(kv.key, kv.mod_revision, *rewritten, kv.lease);
      if (!cas.ok()) {
        if (cas.status().code() == absl::StatusCode::kUnavailable ||
            cas.status().code() == absl::StatusCode::kDeadlineExceeded ||
            cas.status().code() == absl::StatusCode::kNotFound) {
          // Unknown outcome, or the lease expired (and with it, soon, the key): re-read and redo.
          // The compare protects a write that did land.
          auto reread = etcd_->Range(kv.key, "", EtcdRangeOptions{});
          if (reread.ok()) {
            if (reread->kvs.empty()) {
              vanished_.fetch_add(1);
              return;
            }
            if (reread->kvs[0].key != kv.key) {
              return Fail(kv, origin, absl::DataLossError("etcd re-read returned another key"));
            }
            kv = std::move(reread->kvs[0]);
            continue;
          }
        }
        return Fail(kv, origin, Annotate(cas.status(), "etcd write"));
      }
      if (cas->succeeded) {
        rewritten_.fetch_add(1);
        return;
      }
      conflicts_.fetch_add(1);
      if (!cas->current.has_value()) {
        vanished_.fetch_add(1);
        return;
      }
      kv = std::move(*cas->current);
    }
    Fail(
        kv, chain.Classify(kv.value),
        absl::AbortedError(fmt::format("still changing after {} attempts", options_.max_attempts)));
  }

  EtcdClient* const etcd_;
  const std::vector<ResourceTarget>& targets_;
  const std::vector<const ProviderChain*> chains_;
  const ReencryptOptions& options_;
  ProgressListener* const progress_;
  RateLimiter limiter_;

  std::atomic<int64_t> total_{0}, scanned_{0}, rewritten_{0}, already_current_{0},
      would_rewrite_{0}, failed_{0}, conflicts_{0}, vanished_{0};
  absl::Mutex mu_;
  std::map<InventoryKey, int64_t> inventory_ ABSL_GUARDED_BY(mu_);
  std::vector<FailedKey> failures_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

Reencryptor::Reencryptor(EtcdClient* etcd, TransformerSet* transformers, ReencryptOptions options,
                         ProgressListener* progress, const Clock* clock)
    : etcd_(etcd),
      transformers_(transformers),
      options_(options),
      progress_(progress),
      clock_(clock) {}

absl::StatusOr<ReencryptSummary> Reencryptor::Run(const std::vector<ResourceTarget>& targets) {
  if (options_.concurrency < 1) return absl::InvalidArgumentError("concurrency must be >= 1");
  if (options_.page_size < 1) return absl::InvalidArgumentError("page size must be >= 1");
  if (options_.max_attempts < 1) return absl::InvalidArgumentError("max attempts must be >= 1");
  if (options_.rate < 0) return absl::InvalidArgumentError("rate must be >= 0");
  const absl::Time start = clock_->Now();

  // Resolve each target's chain; prepare each distinct first provider once (one seed per run).
  std::vector<const ProviderChain*> chains;
  std::set<ValueTransformer*> prepared;  // the write providers
  for (const ResourceTarget& t : targets) {
    const ProviderChain& chain = transformers_->ChainFor(t.resource);
    chains.push_back(&chain);
    ValueTransformer* first = chain.transformers().front();
    if (!prepared.insert(first).second) continue;
    if (options_.scan_only) {
      absl::Status s = first->PrepareForRead();
      if (!s.ok()) {
        spdlog::warn("reencrypt: cannot tell current key_id for {}: {}",
                     Printable(t.resource.ToString()), Printable(ToStd(s.message()), 1024));
      }
    } else {
      KMSP_RETURN_IF_ERROR(
          Annotate(first->PrepareForWrite(),
                   fmt::format("preparing the write provider for {}", t.resource.ToString())));
    }
  }

  RunState run(etcd_, targets, chains, options_, progress_, clock_);
  int64_t total = 0;
  for (const ResourceTarget& t : targets) {
    EtcdRangeOptions count;
    count.count_only = true;
    KMSP_ASSIGN_OR_RETURN(EtcdRangePage page,
                          etcd_->Range(t.key_prefix, PrefixRangeEnd(t.key_prefix), count));
    total += page.count;
  }
  run.set_total(total);

  WorkQueue queue(static_cast<size_t>(options_.page_size) * 2);
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(options_.concurrency));
  for (int i = 0; i < options_.concurrency; ++i) {
    workers.emplace_back([&run, &queue] { run.Worker(&queue); });
  }
  absl::Status paging;
  for (size_t i = 0; i < targets.size() && paging.ok(); ++i) {
    const std::string end = PrefixRangeEnd(targets[i].key_prefix);
    std::string from = targets[i].key_prefix;
    while (true) {
      EtcdRangeOptions opts;
      opts.limit = options_.page_size;
      auto page = etcd_->Range(from, end, opts);
      if (!page.ok()) {
        paging = Annotate(page.status(), fmt::format("listing {}", targets[i].key_prefix));
        break;
      }
      if (page->kvs.empty()) break;
      absl::Status valid = ValidateRangePage(*page, from, end);
      if (!valid.ok()) {
        paging = valid;
        break;
      }
      // The plugin may have rotated its KEK since the last page: re-read every write provider's
      // Status key_id before this page's objects are judged, so that none is written under a
      // superseded key_id and values the apiserver already wrote under the new one are current.
      for (ValueTransformer* t : prepared) {
        absl::Status refreshed = t->Refresh();
        if (refreshed.ok()) continue;
        if (options_.scan_only) {
          spdlog::warn("reencrypt: cannot re-check the current key_id: {}",
                       Printable(ToStd(refreshed.message()), 1024));
          continue;
        }
        paging = Annotate(refreshed, "re-checking the write provider's key_id");
        break;
      }
      if (!paging.ok()) break;
      from = page->kvs.back().key + '\0';  // the next key after the last one seen
      bool more = page->more;
      for (EtcdKeyValue& kv : page->kvs) queue.Push(WorkItem{i, std::move(kv)});
      if (!more) break;
    }
  }
  queue.Close();
  for (std::thread& w : workers) w.join();
  if (progress_ != nullptr) progress_->Finish(run.Counters());
  KMSP_RETURN_IF_ERROR(paging);

  ReencryptSummary summary;
  run.FillSummary(&summary);
  summary.dry_run = options_.dry_run;
  summary.scan_only = options_.scan_only;
  for (const auto& t : transformers_->transformers())
    summary.kms_decrypt_calls += t->kms_decrypt_calls();
  summary.seconds = absl::ToDoubleSeconds(clock_->Now() - start);
  return summary;
}

namespace {

// KMS v2 objects by recovery wrap, over all resources (the per-resource figures are the
// inventory rows' "recovery").
nlohmann::json RecoveryJson(const std::vector<InventoryRow>& inventory) {
  int64_t total = 0, with = 0, without = 0, invalid = 0;
  nlohmann::json by_fingerprint = nlohmann::json::object();
  for (const InventoryRow& r : inventory) {
    if (r.recovery.empty()) continue;
    total += r.count;
    if (r.recovery == "none") {
      without += r.count;
    } else if (r.recovery == "invalid") {
      invalid += r.count;
    } else {
      with += r.count;
      by_fingerprint[r.recovery] = by_fingerprint.value(r.recovery, int64_t{0}) + r.count;
    }
  }
  return {{"kms_v2_objects", total},
          {"with_recovery_wrap", with},
          {"without_recovery_wrap", without},
          {"invalid_recovery_wrap", invalid},
          {"by_fingerprint", std::move(by_fingerprint)}};
}

}  // namespace

std::string ReencryptSummary::ToJson() const {
  nlohmann::json j;
  j["scanned"] = scanned;
  j["rewritten"] = rewritten;
  j["already_current"] = already_current;
  j["would_rewrite"] = would_rewrite;
  j["failed"] = failed;
  j["conflicts"] = conflicts;
  j["vanished"] = vanished;
  j["kms_decrypt_calls"] = kms_decrypt_calls;
  if (recovery_opens >= 0) j["recovery_opens"] = recovery_opens;
  j["dry_run"] = dry_run;
  j["scan"] = scan_only;
  j["seconds"] = seconds;
  j["objects_per_second"] = seconds > 0 ? static_cast<double>(scanned) / seconds : 0.0;
  if (scan_only) {
    nlohmann::json rows = nlohmann::json::array();
    for (const InventoryRow& r : inventory) {
      nlohmann::json row = {{"resource", r.resource},
                            {"provider", r.provider},
                            {"key_id", r.key_id},
                            {"current", r.current},
                            {"count", r.count}};
      if (r.dek_type >= 0) row["type"] = r.dek_type;
      if (!r.recovery.empty()) row["recovery"] = r.recovery;
      rows.push_back(std::move(row));
    }
    j["inventory"] = std::move(rows);
    j["recovery"] = RecoveryJson(inventory);
  }
  nlohmann::json failed_keys = nlohmann::json::array();
  for (const FailedKey& f : failures) {
    failed_keys.push_back({{"key", f.key}, {"prefix", f.prefix}, {"error", f.error}});
  }
  j["failures"] = std::move(failed_keys);
  // Keys and key_ids are arbitrary bytes: replace invalid UTF-8 rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ReencryptSummary::InventoryTable() const {
  std::vector<std::array<std::string, 7>> rows;
  rows.push_back({"RESOURCE", "PROVIDER", "KEY_ID", "TYPE", "CURRENT", "RECOVERY", "COUNT"});
  for (const InventoryRow& r : inventory) {
    rows.push_back({r.resource, r.provider, r.key_id.empty() ? "-" : r.key_id,
                    r.dek_type < 0 ? "-" : std::to_string(r.dek_type), r.current ? "yes" : "no",
                    r.recovery.empty() ? "-" : r.recovery, std::to_string(r.count)});
  }
  std::array<size_t, 7> width{};
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out.append(width[i] - row[i].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace kmsplugin::reencrypt
