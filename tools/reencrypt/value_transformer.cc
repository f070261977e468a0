#include "tools/reencrypt/value_transformer.h"

#include <algorithm>

#include "absl/synchronization/mutex.h"
#include "base/status.h"
#include "crypto/aes_cbc.h"
#include "crypto/aes_gcm.h"
#include "crypto/random.h"
#include "crypto/secretbox.h"
#include "fmt/format.h"
#include "tools/reencrypt/storage_format.h"

namespace kmsplugin::reencrypt {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// --- identity ---

class IdentityTransformer final : public ValueTransformer {
 public:
  ProviderKind kind() const override { return ProviderKind::kIdentity; }
  bool Claims(std::string_view value, ValueOrigin* origin) const override {
    // identity has an empty prefix but refuses values that look encrypted (§4.1).
    if (StartsWith(value, kEncryptedValuePrefix)) return false;
    origin->provider = "identity";
    origin->prefix.clear();
    return true;
  }
  bool IsCurrent(const ValueOrigin& origin) const override { return true; }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view, std::string_view value) override {
    if (StartsWith(value, kEncryptedValuePrefix)) {
      return absl::InvalidArgumentError("identity transformer: value is encrypted");
    }
    return SecretBytes::CopyFrom(value);
  }
  absl::StatusOr<std::string> Encrypt(std::string_view, const SecretBytes& plaintext) override {
    return std::string(plaintext.Reveal());
  }
};

// --- aescbc, aesgcm, secretbox: "k8s:enc:<type>:v1:<keyName>:" + body ---

class KeyCipher {
 public:
  virtual ~KeyCipher() = default;
  virtual absl::StatusOr<std::string> Seal(std::string_view etcd_key, const SecretBytes& pt) = 0;
  virtual absl::StatusOr<SecretBytes> Open(std::string_view etcd_key, std::string_view body) = 0;
};

class CbcCipher final : public KeyCipher {
 public:
  explicit CbcCipher(std::unique_ptr<AesCbc> c) : c_(std::move(c)) {}
  absl::StatusOr<std::string> Seal(std::string_view, const SecretBytes& pt) override {
    return c_->Encrypt(pt.Reveal());  // aescbc has no AAD
  }
  absl::StatusOr<SecretBytes> Open(std::string_view, std::string_view body) override {
    return c_->Decrypt(body);
  }

 private:
  std::unique_ptr<AesCbc> c_;
};

class GcmCipher final : public KeyCipher {
 public:
  explicit GcmCipher(std::unique_ptr<AesGcm> c) : c_(std::move(c)) {}
  absl::StatusOr<std::string> Seal(std::string_view etcd_key, const SecretBytes& pt) override {
    return c_->Seal(pt.Reveal(), etcd_key);
  }
  absl::StatusOr<SecretBytes> Open(std::string_view etcd_key, std::string_view body) override {
    return c_->Open(body, etcd_key);
  }

 private:
  std::unique_ptr<AesGcm> c_;
};

class SecretboxCipher final : public KeyCipher {
 public:
  explicit SecretboxCipher(std::unique_ptr<Secretbox> c) : c_(std::move(c)) {}
  absl::StatusOr<std::string> Seal(std::string_view, const SecretBytes& pt) override {
    return c_->Seal(pt.Reveal());
  }
  absl::StatusOr<SecretBytes> Open(std::string_view, std::string_view body) override {
    return c_->Open(body);
  }

 private:
  std::unique_ptr<Secretbox> c_;
};

std::string_view AesPrefix(ProviderKind kind) {
  switch (kind) {
    case ProviderKind::kAesCbc:
      return kAesCbcPrefix;
    case ProviderKind::kAesGcm:
      return kAesGcmPrefix;
    default:
      return kSecretboxPrefix;
  }
}

class AesTransformer final : public ValueTransformer {
 public:
  struct Key {
    std::string prefix;  // full prefix incl. key name and ':'
    std::string name;
    std::unique_ptr<KeyCipher> cipher;
  };
  AesTransformer(ProviderKind kind, std::vector<Key> keys) : kind_(kind), keys_(std::move(keys)) {}

  ProviderKind kind() const override { return kind_; }
  bool Claims(std::string_view value, ValueOrigin* origin) const override {
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (StartsWith(value, keys_[i].prefix)) {
        origin->provider = std::string(ProviderKindName(kind_));
        origin->key_id = keys_[i].name;
        origin->key_index = static_cast<int>(i);
        origin->prefix = keys_[i].prefix;
        return true;
      }
    }
    return false;
  }
  bool IsCurrent(const ValueOrigin& origin) const override { return origin.key_index == 0; }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view etcd_key, std::string_view value) override {
    absl::Status last = absl::InvalidArgumentError("no key of this provider matches the value");
    for (const Key& k : keys_) {
      if (!StartsWith(value, k.prefix)) continue;
      auto pt = k.cipher->Open(etcd_key, value.substr(k.prefix.size()));
      if (pt.ok()) return pt;
      last = Annotate(pt.status(), fmt::format("{} key {}", ProviderKindName(kind_), k.name));
    }
    return last;
  }
  absl::StatusOr<std::string> Encrypt(std::string_view etcd_key, const SecretBytes& pt) override {
    KMSP_ASSIGN_OR_RETURN(std::string body, keys_[0].cipher->Seal(etcd_key, pt));
    return keys_[0].prefix + body;
  }

 private:
  const ProviderKind kind_;
  std::vector<Key> keys_;
};

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

// --- kms v2: "k8s:enc:kms:v2:<name>:" + EncryptedObject ---

class KmsV2Transformer final : public ValueTransformer {
 public:
  KmsV2Transformer(std::string name, std::unique_ptr<KmsV2Client> client)
      : name_(std::move(name)),
        prefix_(fmt::format("{}{}:", kKmsV2Prefix, name_)),
        client_(std::move(client)) {}

  ProviderKind kind() const override { return ProviderKind::kKmsV2; }

  bool Claims(std::string_view value, ValueOrigin* origin) const override {
    if (!StartsWith(value, prefix_)) return false;
    origin->provider = fmt::format("kms-v2:{}", name_);
    origin->prefix = prefix_;
    // The inventory needs keyID and type; a malformed object is still ours (Decrypt reports it).
    auto obj = ParseEncryptedObject(value.substr(prefix_.size()));
    if (obj.ok()) {
      origin->key_id = obj->key_id;
      origin->dek_type = static_cast<int>(obj->type);
    } else {
      origin->key_id = "<malformed>";
    }
    return true;
  }

  bool IsCurrent(const ValueOrigin& origin) const override {
    absl::MutexLock lock(&mu_);
    return !status_key_id_.empty() && origin.key_id == status_key_id_ &&
           origin.dek_type == static_cast<int>(DekSourceType::kHkdfSha256XNonceAesGcmSeed);
  }

  absl::StatusOr<SecretBytes> Decrypt(std::string_view etcd_key, std::string_view value) override {
    if (!StartsWith(value, prefix_))
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
    return OpenKmsV2Data(obj.type, *dek_source, obj.encrypted_data, etcd_key);
  }

  absl::StatusOr<std::string> Encrypt(std::string_view etcd_key, const SecretBytes& pt) override {
    std::shared_ptr<const SecretBytes> seed;
    EncryptedObject obj;
    {
      absl::MutexLock lock(&mu_);
      if (seed_ == nullptr) return absl::FailedPreconditionError("KMS v2 seed is not prepared");
      seed = seed_;
      obj = write_template_;
    }
    KMSP_ASSIGN_OR_RETURN(obj.encrypted_data, SealKmsV2Type1(*seed, pt.Reveal(), etcd_key));
    return prefix_ + SerializeEncryptedObject(obj);
  }

  absl::Status PrepareForRead() override {
    KMSP_ASSIGN_OR_RETURN(KmsV2Status status, client_->Status());
    if (status.healthz != "ok") {
      return absl::UnavailableError(fmt::format(
          "KMS v2 provider {}: Status healthz is \"{}\", want \"ok\"", name_, status.healthz));
    }
    if (status.version != "v2" && status.version != "v2beta1") {
      return absl::FailedPreconditionError(fmt::format(
          "KMS v2 provider {}: Status version is \"{}\", want \"v2\"", name_, status.version));
    }
    if (status.key_id.empty() || status.key_id.size() > kMaxKeyIdSize) {
      return absl::FailedPreconditionError(
          fmt::format("KMS v2 provider {}: Status key_id is {} bytes, want 1..{}", name_,
                      status.key_id.size(), kMaxKeyIdSize));
    }
    absl::MutexLock lock(&mu_);
    status_key_id_ = status.key_id;
    return absl::OkStatus();
  }

  // One fresh seed per run, wrapped once (kmsv2-contract.md §3.9 "Produce a value").
  absl::Status PrepareForWrite() override {
    KMSP_RETURN_IF_ERROR(PrepareForRead());
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
          name_, wrapped.key_id, status_key_id_));
    }
    auto shared_seed = std::make_shared<const SecretBytes>(std::move(seed));
    cache_.Put(DekSourceCacheKey(tmpl), shared_seed);
    seed_ = std::move(shared_seed);
    write_template_ = std::move(tmpl);
    return absl::OkStatus();
  }

  std::string current_key_id() const override {
    absl::MutexLock lock(&mu_);
    return status_key_id_;
  }
  int64_t kms_decrypt_calls() const override { return decrypt_calls_.load(); }

 private:
  const std::string name_;
  const std::string prefix_;
  std::unique_ptr<KmsV2Client> client_;
  SeedCache cache_;
  std::atomic<int64_t> decrypt_calls_{0};
  mutable absl::Mutex mu_;
  std::string status_key_id_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const SecretBytes> seed_ ABSL_GUARDED_BY(mu_);
  EncryptedObject write_template_ ABSL_GUARDED_BY(mu_);
};

// --- kms v1: "k8s:enc:kms:v1:<name>:" + u16be(len) + encDEK + AES-GCM(nonce||ct||tag) ---

class KmsV1Transformer final : public ValueTransformer {
 public:
  KmsV1Transformer(std::string name, std::unique_ptr<KmsV1Client> client)
      : name_(std::move(name)),
        prefix_(fmt::format("{}{}:", kKmsV1Prefix, name_)),
        client_(std::move(client)) {}

  ProviderKind kind() const override { return ProviderKind::kKmsV1; }
  bool Claims(std::string_view value, ValueOrigin* origin) const override {
    if (!StartsWith(value, prefix_)) return false;
    origin->provider = fmt::format("kms-v1:{}", name_);
    origin->prefix = prefix_;
    return true;
  }
  // v1 values carry no key id: any value of the first provider counts as current.
  bool IsCurrent(const ValueOrigin&) const override { return true; }

  absl::StatusOr<SecretBytes> Decrypt(std::string_view etcd_key, std::string_view value) override {
    if (!StartsWith(value, prefix_))
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
    if (pt.ok()) return pt;
    // Data written by apiservers <= 1.24 used AES-CBC under the same DEK (§4.2).
    KMSP_ASSIGN_OR_RETURN(auto cbc, AesCbc::Create(dek->Clone()));
    auto cbc_pt = cbc->Decrypt(body.encrypted_data);
    if (cbc_pt.ok()) return cbc_pt;
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

// Value bytes never reach a report: anything outside printable ASCII becomes '?', at most `max`.
std::string Printable(std::string_view s, size_t max = 64) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}

// Describes an encrypted value that no configured provider claims, for the inventory.
ValueOrigin DescribeUnclaimed(std::string_view value) {
  ValueOrigin o;
  if (!StartsWith(value, kEncryptedValuePrefix)) {
    o.provider = "identity";
    return o;
  }
  // "k8s:enc:<type>:<version>:<name>:" -- up to and including the fifth ':'.
  size_t pos = std::string_view::npos;
  size_t from = 0;
  for (int i = 0; i < 5; ++i) {
    pos = value.find(':', from);
    if (pos == std::string_view::npos) break;
    from = pos + 1;
  }
  o.prefix = Printable(pos == std::string_view::npos ? value.substr(0, 32)
                                                     : value.substr(0, pos + 1));
  std::string_view name, rest;
  if (SplitKmsValue(value, kKmsV2Prefix, &name, &rest)) {
    o.provider = fmt::format("kms-v2:{}", Printable(name));
    auto obj = ParseEncryptedObject(rest);
    if (obj.ok()) {
      o.key_id = Printable(obj->key_id, 1024);
      o.dek_type = static_cast<int>(obj->type);
    }
  } else if (SplitKmsValue(value, kKmsV1Prefix, &name, &rest)) {
    o.provider = fmt::format("kms-v1:{}", Printable(name));
  } else {
    for (auto [prefix, label] : {std::pair{kAesCbcPrefix, "aescbc"},
                                 {kAesGcmPrefix, "aesgcm"},
                                 {kSecretboxPrefix, "secretbox"}}) {
      if (SplitKmsValue(value, prefix, &name, &rest)) {
        o.provider = label;
        o.key_id = Printable(name);
        return o;
      }
    }
    o.provider = "unknown";
  }
  return o;
}

}  // namespace

ValueOrigin ProviderChain::Classify(std::string_view value) const {
  for (size_t i = 0; i < transformers_.size(); ++i) {
    ValueOrigin o;
    if (transformers_[i]->Claims(value, &o)) {
      o.provider_index = static_cast<int>(i);
      return o;
    }
  }
  return DescribeUnclaimed(value);
}

bool ProviderChain::IsCurrent(const ValueOrigin& origin) const {
  return origin.provider_index == 0 && transformers_[0]->IsCurrent(origin);
}

bool ProviderChain::ClaimedByLaterProvider(std::string_view value,
                                           const ValueOrigin& origin) const {
  for (size_t i = static_cast<size_t>(std::max(origin.provider_index, 0)) + 1;
       i < transformers_.size(); ++i) {
    // The same provider listed twice is no ambiguity (and a KMS one would cost a plugin call).
    if (origin.provider_index >= 0 && transformers_[i] == transformers_[origin.provider_index])
      continue;
    ValueOrigin o;
    if (transformers_[i]->Claims(value, &o)) return true;
  }
  return false;
}

absl::StatusOr<SecretBytes> ProviderChain::Decrypt(std::string_view etcd_key,
                                                   std::string_view value) const {
  absl::Status last = absl::InvalidArgumentError("no matching prefix found");
  for (ValueTransformer* t : transformers_) {
    ValueOrigin o;
    if (!t->Claims(value, &o)) continue;
    auto pt = t->Decrypt(etcd_key, value);
    if (pt.ok()) return pt;
    last = pt.status();
  }
  return last;
}

absl::StatusOr<std::string> ProviderChain::Encrypt(std::string_view etcd_key,
                                                   const SecretBytes& plaintext) const {
  return transformers_.front()->Encrypt(etcd_key, plaintext);
}

std::unique_ptr<ValueTransformer> NewIdentityTransformer() {
  return std::make_unique<IdentityTransformer>();
}

absl::StatusOr<std::unique_ptr<ValueTransformer>> NewAesTransformer(const ProviderConfig& config) {
  std::vector<AesTransformer::Key> keys;
  for (const ProviderKey& k : config.keys) {
    std::unique_ptr<KeyCipher> cipher;
    switch (config.kind) {
      case ProviderKind::kAesCbc: {
        KMSP_ASSIGN_OR_RETURN(auto c, AesCbc::Create(k.secret.Clone()));
        cipher = std::make_unique<CbcCipher>(std::move(c));
        break;
      }
      case ProviderKind::kAesGcm: {
        KMSP_ASSIGN_OR_RETURN(auto c, AesGcm::Create(k.secret.Clone()));
        cipher = std::make_unique<GcmCipher>(std::move(c));
        break;
      }
      case ProviderKind::kSecretbox: {
        KMSP_ASSIGN_OR_RETURN(auto c, Secretbox::Create(k.secret.Clone()));
        cipher = std::make_unique<SecretboxCipher>(std::move(c));
        break;
      }
      default:
        return absl::InvalidArgumentError("not an aescbc/aesgcm/secretbox provider");
    }
    keys.push_back(AesTransformer::Key{fmt::format("{}{}:", AesPrefix(config.kind), k.name), k.name,
                                       std::move(cipher)});
  }
  if (keys.empty()) return absl::InvalidArgumentError("provider has no keys");
  return std::unique_ptr<ValueTransformer>(new AesTransformer(config.kind, std::move(keys)));
}

std::unique_ptr<ValueTransformer> NewKmsV2Transformer(std::string name,
                                                      std::unique_ptr<KmsV2Client> client) {
  return std::make_unique<KmsV2Transformer>(std::move(name), std::move(client));
}

std::unique_ptr<ValueTransformer> NewKmsV1Transformer(std::string name,
                                                      std::unique_ptr<KmsV1Client> client) {
  return std::make_unique<KmsV1Transformer>(std::move(name), std::move(client));
}

absl::StatusOr<std::unique_ptr<TransformerSet>> TransformerSet::Create(
    const EncryptionConfig& config, const KmsClientFactory& factory) {
  std::unique_ptr<TransformerSet> set(new TransformerSet());
  set->config_ = &config;
  std::map<std::string, ValueTransformer*> kms_by_name;
  ValueTransformer* identity = nullptr;
  for (const ResourceRule& rule : config.rules) {
    std::vector<ValueTransformer*> chain;
    for (const ProviderConfig& p : rule.providers) {
      switch (p.kind) {
        case ProviderKind::kIdentity:
          if (identity == nullptr) {
            set->owned_.push_back(NewIdentityTransformer());
            identity = set->owned_.back().get();
          }
          chain.push_back(identity);
          break;
        case ProviderKind::kAesCbc:
        case ProviderKind::kAesGcm:
        case ProviderKind::kSecretbox: {
          KMSP_ASSIGN_OR_RETURN(auto t, NewAesTransformer(p));
          chain.push_back(t.get());
          set->owned_.push_back(std::move(t));
          break;
        }
        case ProviderKind::kKmsV1:
        case ProviderKind::kKmsV2: {
          std::string key = fmt::format("{}/{}", ProviderKindName(p.kind), p.name);
          auto it = kms_by_name.find(key);
          if (it != kms_by_name.end()) {
            chain.push_back(it->second);
            break;
          }
          std::unique_ptr<ValueTransformer> t;
          if (p.kind == ProviderKind::kKmsV2) {
            KMSP_ASSIGN_OR_RETURN(auto client, factory.v2(p.endpoint, p.timeout));
            t = NewKmsV2Transformer(p.name, std::move(client));
          } else {
            KMSP_ASSIGN_OR_RETURN(auto client, factory.v1(p.endpoint, p.timeout));
            t = NewKmsV1Transformer(p.name, std::move(client));
          }
          kms_by_name[key] = t.get();
          chain.push_back(t.get());
          set->owned_.push_back(std::move(t));
          break;
        }
      }
    }
    set->chains_.emplace(&rule, ProviderChain(std::move(chain)));
  }
  if (identity == nullptr) {
    set->owned_.push_back(NewIdentityTransformer());
    identity = set->owned_.back().get();
  }
  set->identity_chain_ = std::make_unique<ProviderChain>(std::vector<ValueTransformer*>{identity});
  return set;
}

const ProviderChain& TransformerSet::ChainFor(const GroupResource& gr) const {
  const ResourceRule* rule = config_->FindRule(gr);
  if (rule == nullptr) return *identity_chain_;
  return chains_.at(rule);
}

}  // namespace kmsplugin::reencrypt
