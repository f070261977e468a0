// The KMS providers: v2 ("k8s:enc:kms:v2:<name>:" + EncryptedObject, kmsv2-contract.md §3) and
// v1 ("k8s:enc:kms:v1:<name>:" + u16be(len) + encDEK + AES-GCM(nonce||ct||tag), §4.2).
//
// KMS v2 key_id tracking: the run writes under the plugin's Status key_id R. key_ids are never
// reused and never flip-flop (§2.9), so a value under a key_id X != R is either older than R, or
// the plugin rotated after our last Status and the apiserver already writes under X. A fresh
// Status tells: if it reports X, X is current (and the run switches to X with a fresh seed);
// otherwise X is older, remembered as such, and never asked about again.
#include <atomic>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "base/printable.h"
#include "base/status.h"
#include "crypto/aes_cbc.h"
#include "crypto/aes_gcm.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "tools/reencrypt/recovery_kms_client.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {
namespace {

// key_ids remembered as older than the plugin's current one (values carry few distinct ones).
constexpr size_t kMaxRememberedKeyIds = 4096;

// A small thread-safe map from a public cache key to a decrypted KMS seed or DEK.
class SeedCache {
 public:
  std::shared_ptr<const SecretBytes> Get(const std::string& key) const {
    absl::MutexLock lock(&mu_);
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : it->second;
  }
  void Put(const std::string& key, std::shared_ptr<const SecretBytes> value) {
    absl::MutexLock lock(&mu_);
    map_[key] = std::move(value);
  }
  // Returns the cached value, or calls `fetch` and caches its result. Misses are serialised so
  // that workers missing on the same key at once make one plugin call, not one each.
  template <typename Fetch>
  absl::StatusOr<std::shared_ptr<const SecretBytes>> GetOrFetch(const std::string& key,
                                                                Fetch fetch) {
    if (auto hit = Get(key)) return hit;
    absl::MutexLock fetch_lock(&fetch_mu_);
    if (auto hit = Get(key)) return hit;
    absl::StatusOr<SecretBytes> fetched = fetch();
    if (!fetched.ok()) return fetched.status();
    auto value = std::make_shared<const SecretBytes>(std::move(*fetched));
    Put(key, value);
    return value;
  }

 private:
  absl::Mutex fetch_mu_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const SecretBytes>> map_ ABSL_GUARDED_BY(mu_);
};

class KmsV2Transformer final : public ValueTransformer {
 public:
  KmsV2Transformer(std::string name, std::unique_ptr<KmsV2Client> client)
      : name_(std::move(name)),
        prefix_(fmt::format("{}{}:", kKmsV2Prefix, name_)),
        client_(std::move(client)) {}

  ProviderKind kind() const override { return ProviderKind::kKmsV2; }

  bool Claims(std::string_view value, ValueOrigin* origin) const override {
    if (!absl::StartsWith(ToAbsl(value), ToAbsl(prefix_))) return false;
    origin->provider = fmt::format("kms-v2:{}", name_);
    origin->prefix = prefix_;
    // The inventory needs keyID and type; a malformed object is still ours (Decrypt reports it).
    auto obj = ParseEncryptedObject(value.substr(prefix_.size()));
    if (obj.ok()) {
      origin->key_id = obj->key_id;
      origin->dek_type = static_cast<int>(obj->type);
      origin->recovery = RecoveryWrapLabel(obj->annotations);
    } else {
      origin->key_id = "<malformed>";
    }
    return true;
  }

  bool IsCurrent(const ValueOrigin& origin) override {
    if (origin.dek_type != static_cast<int>(DekSourceType::kHkdfSha256XNonceAesGcmSeed)) {
      return false;
    }
    {
      absl::MutexLock lock(&mu_);
      if (status_key_id_.empty()) return false;
      if (origin.key_id == status_key_id_) return true;
      if (older_key_ids_.count(origin.key_id) > 0) return false;
    }
    absl::Status synced = SyncKeyId(origin.key_id);
    absl::MutexLock lock(&mu_);
    if (!synced.ok()) {
      // Whether the plugin rotated is unknown: write nothing until a Status answers (Refresh,
      // once per page, retries; the value is reported as failed, not rewritten).
      spdlog::warn("reencrypt: KMS v2 provider {}: Status failed, writes paused: {}", name_,
                   ToStd(synced.message()));
      seed_ = nullptr;
      return false;
    }
    // Even when the switch to a new seed failed, a value under the plugin's current key_id is
    // current (Encrypt fails until a seed is wrapped: no downgrade either way).
    return origin.key_id == status_key_id_;
  }

  absl::StatusOr<DecryptedValue> Open(std::string_view etcd_key, std::string_view value) override {
    if (!absl::StartsWith(ToAbsl(value), ToAbsl(prefix_)))
      return absl::InvalidArgumentError("not a value of this provider");
    KMSP_ASSIGN_OR_RETURN(EncryptedObject obj, ParseEncryptedObject(value.substr(prefix_.size())));
    const std::string cache_key = DekSourceCacheKey(obj);
    KMSP_ASSIGN_OR_RETURN(std::shared_ptr<const SecretBytes> dek_source,
                          cache_.GetOrFetch(cache_key, [&]() -> absl::StatusOr<SecretBytes> {
                            KMSP_ASSIGN_OR_RETURN(std::string uid, RandomUuid());
                            decrypt_calls_.fetch_add(1, std::memory_order_relaxed);
                            return client_->Decrypt(obj.encrypted_dek_source, obj.key_id,
                                                    obj.annotations, uid);
                          }));
    KMSP_ASSIGN_OR_RETURN(SecretBytes pt,
                          OpenKmsV2Data(obj.type, *dek_source, obj.encrypted_data, etcd_key));
    return DecryptedValue{std::move(pt), true, -1};
  }

  absl::StatusOr<std::string> Encrypt(std::string_view etcd_key, const SecretBytes& pt) override {
    std::shared_ptr<const SecretBytes> seed;
    EncryptedObject obj;
    if (!WriteSeed(&seed, &obj)) {
      // A key_id switch may be wrapping the new seed right now (SyncKeyId holds sync_mu_ from
      // dropping the old seed until the new one is in): wait for it, then look again.
      { absl::MutexLock sync(&sync_mu_); }
      if (!WriteSeed(&seed, &obj)) {
        return absl::FailedPreconditionError(fmt::format(
            "KMS v2 provider {}: no seed is wrapped under the plugin's current key_id", name_));
      }
    }
    KMSP_ASSIGN_OR_RETURN(obj.encrypted_data, SealKmsV2Type1(*seed, pt.Reveal(), etcd_key));
    return prefix_ + SerializeEncryptedObject(obj);
  }

  absl::Status PrepareForRead() override { return SyncKeyId(std::nullopt); }

  // One fresh seed per run (and per key_id change), wrapped once (§3.9 "Produce a value").
  absl::Status PrepareForWrite() override {
    {
      absl::MutexLock lock(&mu_);
      write_enabled_ = true;
    }
    return Refresh();
  }

  absl::Status Refresh() override {
    KMSP_RETURN_IF_ERROR(SyncKeyId(std::nullopt));
    absl::MutexLock sync(&sync_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (!write_enabled_ || seed_ != nullptr) return absl::OkStatus();
    }
    return WrapSeedLocked();  // the first wrap, or an earlier switch failed: try again
  }

  std::string current_key_id() const override {
    absl::MutexLock lock(&mu_);
    return status_key_id_;
  }
  int64_t kms_decrypt_calls() const override { return decrypt_calls_.load(); }

 private:
  // Asks Status for the current key_id. On a change the old one becomes "older" and, when
  // writing, the seed is dropped and a new one wrapped under the new key_id. `seen`: a value's
  // key_id that triggered the call; it is "older" unless Status reports it.
  // The seed and object template to write with; false when no seed is wrapped.
  bool WriteSeed(std::shared_ptr<const SecretBytes>* seed, EncryptedObject* obj) {
    absl::MutexLock lock(&mu_);
    if (seed_ == nullptr) return false;
    *seed = seed_;
    *obj = write_template_;
    return true;
  }

  absl::Status SyncKeyId(std::optional<std::string> seen) {
    absl::MutexLock sync(&sync_mu_);
    if (seen.has_value()) {
      absl::MutexLock lock(&mu_);
      // Another worker may have settled it while we waited.
      if (*seen == status_key_id_ || older_key_ids_.count(*seen) > 0) return absl::OkStatus();
    }
    KMSP_ASSIGN_OR_RETURN(KmsV2Status status, client_->Status());
    if (status.healthz != "ok") {
      return absl::UnavailableError(fmt::format("KMS v2 provider {}: Status healthz is \"{}\", want \"ok\"",
                                                name_, Printable(status.healthz)));
    }
    if (status.version != "v2" && status.version != "v2beta1") {
      return absl::FailedPreconditionError(
          fmt::format("KMS v2 provider {}: Status version is \"{}\", want \"v2\"", name_,
                      Printable(status.version)));
    }
    if (status.key_id.empty() || status.key_id.size() > kMaxKeyIdSize) {
      return absl::FailedPreconditionError(
          fmt::format("KMS v2 provider {}: Status key_id is {} bytes, want 1..{}", name_,
                      status.key_id.size(), kMaxKeyIdSize));
    }
    bool rewrap = false;
    {
      absl::MutexLock lock(&mu_);
      // Bounded: past the cap, a further unknown key_id just costs a Status call per value.
      if (seen.has_value() && *seen != status.key_id &&
          older_key_ids_.size() < kMaxRememberedKeyIds) {
        older_key_ids_.insert(*seen);
      }
      if (status.key_id != status_key_id_) {
        if (!status_key_id_.empty()) older_key_ids_.insert(status_key_id_);
        older_key_ids_.erase(status.key_id);
        status_key_id_ = status.key_id;
        // Never write under the superseded key_id again, even if the new wrap fails.
        seed_ = nullptr;
        rewrap = write_enabled_;
      }
    }
    return rewrap ? WrapSeedLocked() : absl::OkStatus();
  }

  absl::Status WrapSeedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_) {
    KMSP_ASSIGN_OR_RETURN(SecretBytes seed, RandomSecret(kSeedSize));
    KMSP_ASSIGN_OR_RETURN(std::string uid, RandomUuid());
    KMSP_ASSIGN_OR_RETURN(KmsV2EncryptResult wrapped, client_->Encrypt(seed, uid));
    EncryptedObject tmpl;
    tmpl.key_id = wrapped.key_id;
    tmpl.encrypted_dek_source = wrapped.ciphertext;
    tmpl.annotations = wrapped.annotations;
    tmpl.type = DekSourceType::kHkdfSha256XNonceAesGcmSeed;
    tmpl.encrypted_data = "x";  // placeholder so that the generic checks below apply
    KMSP_RETURN_IF_ERROR(Annotate(ValidateEncryptedObject(tmpl),
                                  fmt::format("KMS v2 provider {}: Encrypt response", name_)));
    tmpl.encrypted_data.clear();
    // Prove the plugin can unwrap what it just wrapped before any object depends on it: the
    // apiserver will have to, and a seed nobody can unwrap would make every rewrite unreadable.
    KMSP_ASSIGN_OR_RETURN(std::string check_uid, RandomUuid());
    decrypt_calls_.fetch_add(1, std::memory_order_relaxed);
    absl::StatusOr<SecretBytes> unwrapped = client_->Decrypt(
        tmpl.encrypted_dek_source, tmpl.key_id, tmpl.annotations, check_uid);
    if (!unwrapped.ok()) {
      return Annotate(unwrapped.status(),
                      fmt::format("KMS v2 provider {}: Decrypt of the freshly wrapped seed", name_));
    }
    if (!unwrapped->ConstantTimeEquals(seed)) {
      return absl::DataLossError(fmt::format(
          "KMS v2 provider {}: Decrypt of the freshly wrapped seed returned other bytes; refusing "
          "to write anything under it",
          name_));
    }
    absl::MutexLock lock(&mu_);
    if (wrapped.key_id != status_key_id_) {
      return absl::FailedPreconditionError(fmt::format(
          "KMS v2 provider {}: Encrypt returned key_id \"{}\" but Status reports \"{}\" (rotation "
          "in progress?)",
          name_, Printable(wrapped.key_id), Printable(status_key_id_)));
    }
    auto shared_seed = std::make_shared<const SecretBytes>(std::move(seed));
    cache_.Put(DekSourceCacheKey(tmpl), shared_seed);
    seed_ = std::move(shared_seed);
    write_template_ = std::move(tmpl);
    return absl::OkStatus();
  }

  const std::string name_;
  const std::string prefix_;
  std::unique_ptr<KmsV2Client> client_;
  SeedCache cache_;
  std::atomic<int64_t> decrypt_calls_{0};
  // Serialises Status calls and seed wraps (held across plugin calls; mu_ never is).
  absl::Mutex sync_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  bool write_enabled_ ABSL_GUARDED_BY(mu_) = false;
  std::string status_key_id_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> older_key_ids_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const SecretBytes> seed_ ABSL_GUARDED_BY(mu_);
  EncryptedObject write_template_ ABSL_GUARDED_BY(mu_);
};

class KmsV1Transformer final : public ValueTransformer {
 public:
  KmsV1Transformer(std::string name, std::unique_ptr<KmsV1Client> client)
      : name_(std::move(name)),
        prefix_(fmt::format("{}{}:", kKmsV1Prefix, name_)),
        client_(std::move(client)) {}

  ProviderKind kind() const override { return ProviderKind::kKmsV1; }
  bool Claims(std::string_view value, ValueOrigin* origin) const override {
    if (!absl::StartsWith(ToAbsl(value), ToAbsl(prefix_))) return false;
    origin->provider = fmt::format("kms-v1:{}", name_);
    origin->prefix = prefix_;
    return true;
  }
  // v1 values carry no key id: any value of the first provider counts as current.
  bool IsCurrent(const ValueOrigin&) override { return true; }

  absl::StatusOr<DecryptedValue> Open(std::string_view etcd_key, std::string_view value) override {
    if (!absl::StartsWith(ToAbsl(value), ToAbsl(prefix_)))
      return absl::InvalidArgumentError("not a value of this provider");
    KMSP_ASSIGN_OR_RETURN(KmsV1Body body, ParseKmsV1Body(value.substr(prefix_.size())));
    const std::string cache_key(body.encrypted_dek);
    KMSP_ASSIGN_OR_RETURN(std::shared_ptr<const SecretBytes> dek,
                          cache_.GetOrFetch(cache_key, [&]() -> absl::StatusOr<SecretBytes> {
                            decrypt_calls_.fetch_add(1, std::memory_order_relaxed);
                            return client_->Decrypt(body.encrypted_dek);
                          }));
    KMSP_ASSIGN_OR_RETURN(auto gcm, AesGcm::Create(dek->Clone()));
    auto pt = gcm->Open(body.encrypted_data, etcd_key);
    if (pt.ok()) return DecryptedValue{std::move(*pt), true, -1};
    // Data written by apiservers <= 1.24 used AES-CBC under the same DEK (§4.2). CBC has no
    // integrity: only a plausible stored object counts (a failed GCM open of a moved or corrupt
    // value would otherwise pass as garbage once in 256).
    KMSP_ASSIGN_OR_RETURN(auto cbc, AesCbc::Create(dek->Clone()));
    auto cbc_pt = cbc->Decrypt(body.encrypted_data);
    if (cbc_pt.ok() && IsPlausibleStoredObject(cbc_pt->Reveal())) {
      return DecryptedValue{std::move(*cbc_pt), false, -1};
    }
    return pt.status();
  }

  absl::StatusOr<std::string> Encrypt(std::string_view etcd_key, const SecretBytes& pt) override {
    std::shared_ptr<const SecretBytes> dek;
    std::string encrypted_dek;
    {
      absl::MutexLock lock(&mu_);
      if (dek_ == nullptr) return absl::FailedPreconditionError("KMS v1 DEK is not prepared");
      dek = dek_;
      encrypted_dek = encrypted_dek_;
    }
    KMSP_ASSIGN_OR_RETURN(auto gcm, AesGcm::Create(dek->Clone()));
    KMSP_ASSIGN_OR_RETURN(std::string sealed, gcm->Seal(pt.Reveal(), etcd_key));
    return prefix_ + SerializeKmsV1Body(encrypted_dek, sealed);
  }

  absl::Status PrepareForWrite() override {
    KMSP_ASSIGN_OR_RETURN(SecretBytes dek, RandomSecret(32));
    KMSP_ASSIGN_OR_RETURN(std::string encrypted_dek, client_->Encrypt(dek));
    if (encrypted_dek.empty() || encrypted_dek.size() > 0xffff) {
      return absl::FailedPreconditionError(fmt::format(
          "KMS v1 provider {}: Encrypt returned {} bytes", name_, encrypted_dek.size()));
    }
    auto shared = std::make_shared<const SecretBytes>(std::move(dek));
    cache_.Put(encrypted_dek, shared);
    absl::MutexLock lock(&mu_);
    dek_ = std::move(shared);
    encrypted_dek_ = std::move(encrypted_dek);
    return absl::OkStatus();
  }
  int64_t kms_decrypt_calls() const override { return decrypt_calls_.load(); }

 private:
  const std::string name_;
  const std::string prefix_;
  std::unique_ptr<KmsV1Client> client_;
  SeedCache cache_;
  std::atomic<int64_t> decrypt_calls_{0};
  mutable absl::Mutex mu_;
  std::shared_ptr<const SecretBytes> dek_ ABSL_GUARDED_BY(mu_);
  std::string encrypted_dek_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<ValueTransformer> NewKmsV2Transformer(std::string name,
                                                      std::unique_ptr<KmsV2Client> client) {
  return std::make_unique<KmsV2Transformer>(std::move(name), std::move(client));
}

std::unique_ptr<ValueTransformer> NewKmsV1Transformer(std::string name,
                                                      std::unique_ptr<KmsV1Client> client) {
  return std::make_unique<KmsV1Transformer>(std::move(name), std::move(client));
}

}  // namespace kmsplugin::reencrypt
