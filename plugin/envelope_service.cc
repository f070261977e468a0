#include "plugin/envelope_service.h"

#include <algorithm>

#include "absl/time/time.h"
#include "base/status.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "plugin/recovery_format.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

constexpr size_t kDekSize = 32;
constexpr size_t kMaxWrappedSize = size_t{8} * 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<EnvelopeService>> EnvelopeService::Create(
    const EnvelopeOptions& options, std::unique_ptr<KeyEncryptionService> kes,
    const Clock* clock) {
  if (kes == nullptr) return absl::InvalidArgumentError("no KMS backend");
  if (options.dek_max_uses < 1 || options.dek_max_uses > (uint64_t{1} << 32)) {
    return absl::InvalidArgumentError("--dek-max-uses must be between 1 and 2^32");
  }
  if (options.dek_max_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--dek-max-age must be positive");
  }
  if (options.outage_window < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--kms-outage-window must not be negative");
  }
  if (options.dek_cache_size < 1) return absl::InvalidArgumentError("--dek-cache-size must be >= 1");
  if (options.key_change_confirmations < 1) {
    return absl::InvalidArgumentError("--key-change-confirmations must be >= 1");
  }
  return std::unique_ptr<EnvelopeService>(new EnvelopeService(options, std::move(kes), clock));
}

EnvelopeService::EnvelopeService(const EnvelopeOptions& options,
                                 std::unique_ptr<KeyEncryptionService> kes, const Clock* clock)
    : options_(options), kes_(std::move(kes)), clock_(clock), cache_(options.dek_cache_size) {}

bool EnvelopeService::DueForReplacement(const DataKey& dk, absl::Time now) const {
  return dk.uses.load(std::memory_order_relaxed) >= options_.dek_max_uses ||
         now - dk.created >= options_.dek_max_age;
}

std::string EnvelopeService::HealthzLocked(absl::Time now) const {
  if (revoked_) {
    return fmt::format("unhealthy: the KMS refused the KEK ({})",
                       absl::StatusCodeToString(last_probe_status_.code()));
  }
  if (current_ == nullptr) {
    return fmt::format("unhealthy: no data key yet ({}: {})",
                       absl::StatusCodeToString(last_probe_status_.code()),
                       ToStd(last_probe_status_.message()));
  }
  if (now - last_probe_ok_ > options_.outage_window) {
    return fmt::format("unhealthy: KMS unreachable since {} (outage window {})",
                       FormatRfc3339(last_probe_ok_), absl::FormatDuration(options_.outage_window));
  }
  if (current_->uses.load(std::memory_order_relaxed) >= options_.dek_max_uses) {
    return "unhealthy: the data key is used up and no new one could be wrapped";
  }
  return "ok";
}

PluginStatus EnvelopeService::Status() const {
  absl::ReaderMutexLock lock(&mu_);
  PluginStatus s;
  s.version = "v2";
  s.healthz = HealthzLocked(clock_->Now());
  if (current_ != nullptr) {
    s.key_id = current_->key_id;
  } else if (!kek_ids_seen_.empty()) {
    s.key_id = kek_ids_seen_.back();
  }
  return s;
}

std::string EnvelopeService::DescribeKeyId(std::string_view key_id) const {
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& seen : kek_ids_seen_) {
      if (seen == key_id) return "key_id " + seen;
    }
  }
  // Never echo request bytes: name an unknown key_id by a short hash.
  return "an unrecognised key_id (sha256:" + Sha256Hex(key_id).substr(0, 16) + ")";
}

void EnvelopeService::NoteKekIdLocked(const std::string& kek_id) {
  for (const auto& seen : kek_ids_seen_) {
    if (seen == kek_id) return;
  }
  kek_ids_seen_.push_back(kek_id);
}

absl::StatusOr<std::shared_ptr<const EnvelopeService::DataKey>> EnvelopeService::ReplaceDataKey(
    const std::shared_ptr<const DataKey>& expected_current, const CallContext& ctx,
    std::string_view reason) {
  absl::MutexLock rotate_lock(&rotate_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (current_ != expected_current && current_ != nullptr) return current_;
  }
  KMSP_ASSIGN_OR_RETURN(SecretBytes dek, RandomSecret(kDekSize));
  absl::StatusOr<WrappedKey> wrapped = kes_->Wrap(dek, ctx);
  if (!wrapped.ok()) {
    spdlog::warn("cannot wrap a new data key ({}): {}", reason, wrapped.status().ToString());
    return wrapped.status();
  }
  if (wrapped->kek_id.empty() || wrapped->kek_id.size() > kMaxKeyIdSize ||
      wrapped->blob.empty() || wrapped->blob.size() > kMaxWrappedSize) {
    return absl::InternalError(fmt::format(
        "backend returned a key id of {} bytes and a wrapped key of {} bytes",
        wrapped->kek_id.size(), wrapped->blob.size()));
  }
  std::string recovery;
  if (options_.recovery_key != nullptr) {
    // Once per data key (~0.1 ms), never per Encrypt.
    absl::StatusOr<std::string> made = MakeRecoveryAnnotation(*options_.recovery_key, dek);
    if (!made.ok()) {
      spdlog::error("cannot wrap a new data key under the recovery key: {}",
                    made.status().ToString());
      return made.status();
    }
    recovery = *std::move(made);
    recovery_wraps_.fetch_add(1, std::memory_order_relaxed);
  }
  KMSP_ASSIGN_OR_RETURN(std::unique_ptr<AesGcm> aead, AesGcm::Create(std::move(dek)));
  auto dk = std::make_shared<DataKey>();
  dk->key_id = wrapped->kek_id;
  dk->wrapped = wrapped->blob;
  dk->annotations.emplace(std::string(kDekAnnotation), wrapped->blob);
  if (!recovery.empty()) dk->annotations.emplace(std::string(kRecoveryAnnotation), recovery);
  dk->aad = EnvelopeAad(dk->key_id, dk->annotations);
  dk->aead = std::move(aead);
  dk->created = clock_->Now();
  std::string old_key_id;
  {
    absl::MutexLock lock(&mu_);
    last_probe_ok_ = dk->created;  // A successful wrap proves the KMS is reachable.
    if (retired_key_ids_.count(dk->key_id) > 0) {
      spdlog::warn("backend wrapped under the retired key_id {}; keeping the current one",
                   dk->key_id);
      return absl::UnavailableError("the KMS wrapped under a KEK version that was replaced");
    }
    if (current_ != nullptr && current_->key_id != dk->key_id) {
      retired_key_ids_.insert(current_->key_id);
      old_key_id = current_->key_id;
    }
    NoteKekIdLocked(dk->key_id);
    pending_kek_id_.clear();
    pending_confirmations_ = 0;
    revoked_ = false;
    current_ = dk;
  }
  cache_.Put(DekCache::KeyFor(dk->key_id, dk->wrapped), dk->aead);
  data_keys_made_.fetch_add(1, std::memory_order_relaxed);
  if (!old_key_id.empty()) key_id_changes_.fetch_add(1, std::memory_order_relaxed);
  if (!old_key_id.empty()) {
    spdlog::info("key_id changed from {} to {} ({})", old_key_id, dk->key_id, reason);
  } else {
    spdlog::info("new data key under key_id {} ({})", dk->key_id, reason);
  }
  return std::shared_ptr<const DataKey>(dk);
}

absl::StatusOr<std::shared_ptr<const EnvelopeService::DataKey>> EnvelopeService::EncryptKey(
    absl::Time now) const {
  absl::ReaderMutexLock lock(&mu_);
  if (revoked_) {
    return absl::FailedPreconditionError(
        "the KMS refused the KEK (disabled, deleted or access denied)");
  }
  if (current_ != nullptr && now - last_probe_ok_ > options_.outage_window) {
    return absl::UnavailableError(
        fmt::format("the KMS has been unreachable for longer than the outage window ({})",
                    absl::FormatDuration(options_.outage_window)));
  }
  return current_;
}

absl::StatusOr<EncryptResult> EnvelopeService::Seal(const DataKey& dk,
                                                    std::string_view plaintext) const {
  KMSP_ASSIGN_OR_RETURN(std::string nonce, RandomBytes(kEnvelopeNonceSize));
  KMSP_ASSIGN_OR_RETURN(std::string sealed, dk.aead->SealDetached(nonce, plaintext, dk.aad));
  return EncryptResult{SerializeEnvelope(nonce, sealed), dk.key_id, dk.annotations};
}

namespace {

absl::Status CheckPlaintext(std::string_view plaintext) {
  if (plaintext.empty()) return absl::InvalidArgumentError("plaintext is empty");
  if (plaintext.size() > kMaxPlaintextSize) {
    return absl::InvalidArgumentError(fmt::format(
        "plaintext is {} bytes; at most {} fit in a KMS v2 ciphertext", plaintext.size(),
        kMaxPlaintextSize));
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<absl::StatusOr<EncryptResult>> EnvelopeService::TryEncrypt(
    std::string_view plaintext, bool* replacement_due) {
  *replacement_due = false;
  if (absl::Status s = CheckPlaintext(plaintext); !s.ok()) return absl::StatusOr<EncryptResult>(s);
  const absl::Time now = clock_->Now();
  absl::StatusOr<std::shared_ptr<const DataKey>> key = EncryptKey(now);
  if (!key.ok()) return absl::StatusOr<EncryptResult>(key.status());
  const std::shared_ptr<const DataKey>& dk = *key;
  if (dk == nullptr) return std::nullopt;
  if (dk->uses.fetch_add(1, std::memory_order_relaxed) >= options_.dek_max_uses) {
    dk->uses.fetch_sub(1, std::memory_order_relaxed);
    return std::nullopt;  // Used up: Encrypt() replaces it.
  }
  if (now - dk->created >= options_.dek_max_age && !replacement_scheduled_.load()) {
    bool retry_allowed;
    {
      absl::ReaderMutexLock lock(&mu_);
      retry_allowed = now >= next_replacement_;
    }
    if (retry_allowed && !replacement_scheduled_.exchange(true)) *replacement_due = true;
  }
  return Seal(*dk, plaintext);
}

absl::Status EnvelopeService::ReplaceDueDataKey(const CallContext& ctx) {
  absl::Status result = absl::OkStatus();
  std::shared_ptr<const DataKey> cur;
  {
    absl::ReaderMutexLock lock(&mu_);
    cur = current_;
  }
  if (cur != nullptr && DueForReplacement(*cur, clock_->Now())) {
    auto made = ReplaceDataKey(cur, ctx, "data key due for replacement");
    if (!made.ok()) {
      result = made.status();
      absl::MutexLock lock(&mu_);
      next_replacement_ = clock_->Now() + kReplacementRetry;
    }
  }
  replacement_scheduled_.store(false);
  return result;
}

absl::StatusOr<EncryptResult> EnvelopeService::Encrypt(std::string_view plaintext,
                                                      const CallContext& ctx) {
  KMSP_RETURN_IF_ERROR(CheckPlaintext(plaintext));
  const absl::Time now = clock_->Now();
  KMSP_ASSIGN_OR_RETURN(std::shared_ptr<const DataKey> dk, EncryptKey(now));
  if (dk == nullptr) {
    auto made = ReplaceDataKey(nullptr, ctx, "first data key");
    if (!made.ok()) {
      return absl::UnavailableError(
          fmt::format("no data key and cannot wrap one: {}", made.status().ToString()));
    }
    dk = *made;
  }
  if (DueForReplacement(*dk, now)) {
    auto made = ReplaceDataKey(dk, ctx, "data key due for replacement");
    if (made.ok()) {
      dk = *made;
    } else if (dk->uses.load() >= options_.dek_max_uses) {
      return absl::UnavailableError("the data key is used up and the KMS cannot wrap a new one");
    }
  }
  if (dk->uses.fetch_add(1, std::memory_order_relaxed) >= options_.dek_max_uses) {
    return absl::UnavailableError("the data key is used up; retry");
  }
  return Seal(*dk, plaintext);
}

absl::StatusOr<std::string_view> EnvelopeService::CheckDecryptRequest(
    std::string_view ciphertext, std::string_view key_id, const Annotations& annotations) const {
  if (key_id.empty()) return absl::InvalidArgumentError("key_id is empty");
  if (key_id.size() > kMaxKeyIdSize) {
    return absl::InvalidArgumentError(
        fmt::format("key_id is {} bytes (max {})", key_id.size(), kMaxKeyIdSize));
  }
  KMSP_RETURN_IF_ERROR(ParseEnvelope(ciphertext).status());
  // {dek} or, with a recovery wrap (issue 12), {dek, recovery}: the AAD authenticates both.
  auto dek_it = annotations.find(std::string(kDekAnnotation));
  auto recovery_it = annotations.find(std::string(kRecoveryAnnotation));
  const size_t expected = recovery_it == annotations.end() ? 1 : 2;
  if (annotations.size() != expected || dek_it == annotations.end()) {
    return absl::InvalidArgumentError(
        fmt::format("expected the annotation {} (and optionally {}); got {} annotations",
                    kDekAnnotation, kRecoveryAnnotation, annotations.size()));
  }
  if (recovery_it != annotations.end() && recovery_it->second.size() > kMaxWrappedSize) {
    return absl::InvalidArgumentError(
        fmt::format("recovery annotation is {} bytes", recovery_it->second.size()));
  }
  const std::string& wrapped = dek_it->second;
  if (wrapped.empty() || wrapped.size() > kMaxWrappedSize) {
    return absl::InvalidArgumentError(
        fmt::format("wrapped data key annotation is {} bytes", wrapped.size()));
  }
  absl::ReaderMutexLock lock(&mu_);
  if (revoked_) {
    return absl::FailedPreconditionError(
        "the KMS refused the KEK (disabled, deleted or access denied)");
  }
  return std::string_view(wrapped);
}

absl::StatusOr<SecretBytes> EnvelopeService::Open(const AesGcm& aead, std::string_view aad,
                                                  std::string_view ciphertext) const {
  KMSP_ASSIGN_OR_RETURN(ParsedEnvelope env, ParseEnvelope(ciphertext));
  absl::StatusOr<SecretBytes> plaintext = aead.OpenDetached(env.nonce, env.ct_and_tag, aad);
  if (!plaintext.ok()) {
    return absl::InvalidArgumentError(
        "ciphertext failed authentication (modified ciphertext, key_id or annotations)");
  }
  return plaintext;
}

std::optional<absl::StatusOr<SecretBytes>> EnvelopeService::TryDecrypt(
    std::string_view ciphertext, std::string_view key_id, const Annotations& annotations) {
  absl::StatusOr<std::string_view> wrapped = CheckDecryptRequest(ciphertext, key_id, annotations);
  if (!wrapped.ok()) return absl::StatusOr<SecretBytes>(wrapped.status());
  std::shared_ptr<const DataKey> cur;
  {
    absl::ReaderMutexLock lock(&mu_);
    cur = current_;
  }
  // The precomputed AAD is valid only for the very annotations it was computed from.
  if (cur != nullptr && cur->key_id == key_id && cur->annotations == annotations) {
    return Open(*cur->aead, cur->aad, ciphertext);
  }
  std::shared_ptr<const AesGcm> aead = cache_.Lookup(DekCache::KeyFor(key_id, *wrapped));
  if (aead == nullptr) return std::nullopt;
  return Open(*aead, EnvelopeAad(key_id, annotations), ciphertext);
}

absl::StatusOr<SecretBytes> EnvelopeService::Decrypt(std::string_view ciphertext,
                                                     std::string_view key_id,
                                                     const Annotations& annotations,
                                                     const CallContext& ctx) {
  KMSP_ASSIGN_OR_RETURN(std::string_view wrapped,
                        CheckDecryptRequest(ciphertext, key_id, annotations));
  std::shared_ptr<const AesGcm> aead;
  std::string aad;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (current_ != nullptr && current_->key_id == key_id &&
        current_->annotations == annotations) {
      aead = current_->aead;
      aad = current_->aad;
    }
  }
  if (aead == nullptr) {
    WrappedKey wk{std::string(key_id), std::string(wrapped)};
    auto loaded = cache_.GetOrLoad(
        DekCache::KeyFor(key_id, wrapped),
        [&]() -> absl::StatusOr<std::shared_ptr<const AesGcm>> {
          absl::StatusOr<SecretBytes> dek = kes_->Unwrap(wk, ctx);
          if (!dek.ok()) return dek.status();
          if (dek->size() != kDekSize) {
            return absl::InvalidArgumentError("wrapped data key has the wrong size");
          }
          KMSP_ASSIGN_OR_RETURN(std::unique_ptr<AesGcm> a, AesGcm::Create(std::move(*dek)));
          return std::shared_ptr<const AesGcm>(std::move(a));
        },
        ctx.deadline);
    if (!loaded.ok()) {
      return Annotate(loaded.status(),
                      fmt::format("unwrapping the data key under {}", DescribeKeyId(key_id)));
    }
    aead = *std::move(loaded);
    aad = EnvelopeAad(key_id, annotations);
  }
  return Open(*aead, aad, ciphertext);
}

absl::Status EnvelopeService::Refresh(const CallContext& ctx, bool force) {
  absl::StatusOr<KeyStatus> probe = kes_->Probe(ctx);
  const absl::Time now = clock_->Now();
  std::shared_ptr<const DataKey> cur;
  bool want_new = false;
  std::string reason;
  {
    absl::MutexLock lock(&mu_);
    last_probe_ = now;
    if (!probe.ok()) {
      last_probe_status_ = probe.status();
      if (IsKeyRevokedError(probe.status())) {
        if (!revoked_) {
          spdlog::error("the KMS refused the KEK: {}; purging every cached data key",
                        probe.status().ToString());
        }
        revoked_ = true;
        current_.reset();
        cache_.Purge();
      } else {
        spdlog::warn("KMS probe failed (coasting on cached keys): {}", probe.status().ToString());
      }
      return probe.status();
    }
    if (revoked_) spdlog::info("the KMS accepts the KEK again");
    revoked_ = false;
    last_probe_ok_ = now;
    last_probe_status_ = absl::OkStatus();
    kek_description_ = probe->description;
    cur = current_;
    const std::string& kek = probe->kek_id;
    if (cur == nullptr) {
      want_new = true;
      reason = "first data key";
    } else if (kek != cur->key_id) {
      if (retired_key_ids_.count(kek) > 0) {
        spdlog::warn("KMS reports the retired KEK version {}; keeping key_id {}", kek, cur->key_id);
      } else {
        if (pending_kek_id_ == kek) {
          ++pending_confirmations_;
        } else {
          pending_kek_id_ = kek;
          pending_confirmations_ = 1;
        }
        want_new = force || pending_confirmations_ >= options_.key_change_confirmations;
        reason = "the KEK version changed";
      }
    } else {
      pending_kek_id_.clear();
      pending_confirmations_ = 0;
      want_new = DueForReplacement(*cur, now);
      reason = "data key due for replacement";
    }
  }
  if (!want_new) return absl::OkStatus();
  auto made = ReplaceDataKey(cur, ctx, reason);
  return made.ok() ? absl::OkStatus() : made.status();
}

absl::Status EnvelopeService::RotateDataKey(const CallContext& ctx) {
  std::shared_ptr<const DataKey> cur;
  {
    absl::ReaderMutexLock lock(&mu_);
    cur = current_;
  }
  auto made = ReplaceDataKey(cur, ctx, "data key rotation requested");
  return made.ok() ? absl::OkStatus() : made.status();
}

absl::Status EnvelopeService::RotateKek(const CallContext& ctx) {
  KMSP_RETURN_IF_ERROR(kes_->RotateKek(ctx));
  kek_rotations_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("KEK rotated at the {} backend", kes_->Name());
  return Refresh(ctx, /*force=*/true);
}

EnvelopeReport EnvelopeService::Report() const {
  EnvelopeReport r;
  r.status = Status();
  r.backend = std::string(kes_->Name());
  const absl::Time now = clock_->Now();
  {
    absl::ReaderMutexLock lock(&mu_);
    if (current_ != nullptr) {
      r.data_key_created = FormatRfc3339(current_->created);
      r.data_key_uses = current_->uses.load();
      r.data_key_age_seconds = std::max(0.0, absl::ToDoubleSeconds(now - current_->created));
      const absl::Duration left = options_.outage_window - (now - last_probe_ok_);
      r.outage_window_active =
          !revoked_ && !last_probe_status_.ok() && left >= absl::ZeroDuration();
      if (r.outage_window_active) r.outage_window_seconds_left = absl::ToDoubleSeconds(left);
    }
    r.kek_ids_seen = kek_ids_seen_;
    r.last_probe = FormatRfc3339(last_probe_);
    r.last_probe_result = last_probe_status_.ok() ? "ok" : last_probe_status_.ToString();
    r.kek_description = kek_description_;
  }
  if (options_.recovery_key != nullptr) {
    r.recovery_key_fingerprint = options_.recovery_key->FingerprintText();
  }
  r.recovery_wraps = recovery_wraps_.load();
  r.data_keys_made = data_keys_made_.load();
  r.key_id_changes = key_id_changes_.load();
  r.kek_rotations = kek_rotations_.load();
  r.cache_size = cache_.size();
  r.cache_hits = cache_.hits();
  r.cache_misses = cache_.misses();
  return r;
}

}  // namespace kmsplugin
