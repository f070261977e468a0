// The local-key providers aescbc, aesgcm and secretbox: "k8s:enc:<type>:v1:<keyName>:" + body
// (kmsv2-contract.md §4.2).
//
// aescbc has no integrity. A wrong key opens a value with valid padding about once in 256 tries,
// so an aescbc result is accepted only when it is also a plausible stored object
// (IsPlausibleStoredObject), and every key whose prefix matches is tried: two keys that both
// open the value to different plaintexts make it ambiguous (AmbiguousValueError).
#include <optional>

#include "absl/strings/match.h"
#include "base/printable.h"
#include "base/status.h"
#include "crypto/aes_cbc.h"
#include "crypto/aes_gcm.h"
#include "crypto/secretbox.h"
#include "fmt/format.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {
namespace {

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
    KMSP_ASSIGN_OR_RETURN(SecretBytes pt, c_->Decrypt(body));
    if (!IsPlausibleStoredObject(pt.Reveal())) {
      return absl::InvalidArgumentError(
          "AES-CBC output is no stored object (wrong key with a valid-looking padding, or corrupt "
          "data)");
    }
    return pt;
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
      if (absl::StartsWith(ToAbsl(value), ToAbsl(keys_[i].prefix))) {
        origin->provider = std::string(ProviderKindName(kind_));
        origin->key_id = keys_[i].name;
        origin->key_index = static_cast<int>(i);
        origin->prefix = keys_[i].prefix;
        return true;
      }
    }
    return false;
  }
  bool IsCurrent(const ValueOrigin& origin) override { return origin.key_index == 0; }

  absl::StatusOr<DecryptedValue> Open(std::string_view etcd_key, std::string_view value) override {
    const bool authenticated = kind_ != ProviderKind::kAesCbc;
    absl::Status last = absl::InvalidArgumentError("no key of this provider matches the value");
    std::optional<DecryptedValue> found;
    for (size_t i = 0; i < keys_.size(); ++i) {
      const Key& k = keys_[i];
      if (!absl::StartsWith(ToAbsl(value), ToAbsl(k.prefix))) continue;
      auto pt = k.cipher->Open(etcd_key, value.substr(k.prefix.size()));
      if (!pt.ok()) {
        if (!found) {
          last = Annotate(pt.status(),
                          fmt::format("{} key {}", ProviderKindName(kind_), Printable(k.name)));
        }
        continue;
      }
      if (!found) {
        found = DecryptedValue{std::move(*pt), authenticated, static_cast<int>(i)};
        if (authenticated) break;
        continue;
      }
      if (!pt->ConstantTimeEquals(found->plaintext)) {
        return AmbiguousValueError(fmt::format(
            "{} keys {} and {} both open the value, to different plaintexts",
            ProviderKindName(kind_), Printable(keys_[found->key_index].name), Printable(k.name)));
      }
    }
    if (found) return std::move(*found);
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

}  // namespace

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

}  // namespace kmsplugin::reencrypt
