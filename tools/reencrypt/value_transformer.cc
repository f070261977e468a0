#include "tools/reencrypt/value_transformer.h"

#include <algorithm>
#include <optional>
#include <set>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "tools/reencrypt/recovery_kms_client.h"
#include "tools/reencrypt/storage_format.h"

namespace kmsplugin::reencrypt {
namespace {

// --- identity ---

class IdentityTransformer final : public ValueTransformer {
 public:
  ProviderKind kind() const override { return ProviderKind::kIdentity; }
  bool Claims(std::string_view value, ValueOrigin* origin) const override {
    // identity has an empty prefix but refuses values that look encrypted (§4.1).
    if (absl::StartsWith(ToAbsl(value), ToAbsl(kEncryptedValuePrefix))) return false;
    origin->provider = "identity";
    origin->prefix.clear();
    return true;
  }
  bool IsCurrent(const ValueOrigin& origin) override { return true; }
  absl::StatusOr<DecryptedValue> Open(std::string_view, std::string_view value) override {
    if (absl::StartsWith(ToAbsl(value), ToAbsl(kEncryptedValuePrefix))) {
      return absl::InvalidArgumentError("identity transformer: value is encrypted");
    }
    return DecryptedValue{SecretBytes::CopyFrom(value), true, -1};
  }
  absl::StatusOr<std::string> Encrypt(std::string_view, const SecretBytes& plaintext) override {
    return std::string(plaintext.Reveal());
  }
};

// Describes an encrypted value that no configured provider claims, for the inventory.
ValueOrigin DescribeUnclaimed(std::string_view value) {
  ValueOrigin o;
  if (!absl::StartsWith(ToAbsl(value), ToAbsl(kEncryptedValuePrefix))) {
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
      o.recovery = RecoveryWrapLabel(obj->annotations);
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

constexpr char kAmbiguousPayloadUrl[] = "kmsplugin/reencrypt/ambiguous-value";

absl::Status AmbiguousValueError(std::string_view message) {
  absl::Status s = absl::FailedPreconditionError(
      ToAbsl(fmt::format("ambiguous value, left untouched: {}", message)));
  s.SetPayload(kAmbiguousPayloadUrl, absl::Cord("1"));
  return s;
}

bool IsAmbiguousValueError(const absl::Status& status) {
  return status.GetPayload(kAmbiguousPayloadUrl).has_value();
}

absl::StatusOr<SecretBytes> ValueTransformer::Decrypt(std::string_view etcd_key,
                                                      std::string_view value) {
  KMSP_ASSIGN_OR_RETURN(DecryptedValue d, Open(etcd_key, value));
  return std::move(d.plaintext);
}

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

absl::StatusOr<ProviderChain::Opened> ProviderChain::Open(std::string_view etcd_key,
                                                         std::string_view value) const {
  absl::Status last = absl::InvalidArgumentError("no matching prefix found");
  std::optional<Opened> found;
  for (size_t i = 0; i < transformers_.size(); ++i) {
    ValueTransformer* t = transformers_[i];
    ValueOrigin o;
    if (!t->Claims(value, &o)) continue;
    // The same provider listed twice opens the value the same way.
    if (found && t == transformers_[found->provider_index]) continue;
    auto d = t->Open(etcd_key, value);
    if (!d.ok()) {
      if (IsAmbiguousValueError(d.status())) return d.status();
      if (!found) last = d.status();
      continue;
    }
    if (!found) {
      found = Opened{std::move(d->plaintext), static_cast<int>(i), d->key_index};
      if (d->authenticated) return std::move(*found);
      continue;  // AES-CBC: every other claimant must agree or fail
    }
    if (!d->plaintext.ConstantTimeEquals(found->plaintext)) {
      return AmbiguousValueError(fmt::format(
          "providers {} ({}) and {} ({}) both open the value, to different plaintexts",
          found->provider_index, ProviderKindName(transformers_[found->provider_index]->kind()), i,
          ProviderKindName(t->kind())));
    }
  }
  if (found) return std::move(*found);
  return last;
}

absl::StatusOr<SecretBytes> ProviderChain::Decrypt(std::string_view etcd_key,
                                                   std::string_view value) const {
  KMSP_ASSIGN_OR_RETURN(Opened opened, Open(etcd_key, value));
  return std::move(opened.plaintext);
}

absl::StatusOr<std::string> ProviderChain::Encrypt(std::string_view etcd_key,
                                                   const SecretBytes& plaintext) const {
  return transformers_.front()->Encrypt(etcd_key, plaintext);
}

std::unique_ptr<ValueTransformer> NewIdentityTransformer() {
  return std::make_unique<IdentityTransformer>();
}

absl::StatusOr<std::unique_ptr<TransformerSet>> TransformerSet::Create(
    const EncryptionConfig& config, const KmsClientFactory& factory) {
  std::unique_ptr<TransformerSet> set(new TransformerSet());
  set->config_ = &config;
  std::map<std::string, ValueTransformer*> kms_by_name;
  std::set<std::string> write_kms_v2;  // names of KMS v2 providers that some rule writes with
  for (const ResourceRule& rule : config.rules) {
    if (!rule.providers.empty() && rule.providers.front().kind == ProviderKind::kKmsV2) {
      write_kms_v2.insert(rule.providers.front().name);
    }
  }
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
            if (factory.wrap_read_only_v2 && write_kms_v2.count(p.name) == 0) {
              client = factory.wrap_read_only_v2(p.name, std::move(client));
            }
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
