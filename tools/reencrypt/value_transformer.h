// Value transformers: one per provider of the EncryptionConfiguration, reading and writing the
// etcd value formats of kmsv2-contract.md §3-4, and the per-resource ProviderChain that
// dispatches on a value's prefix exactly as kube-apiserver does (§4.1): providers are tried in
// config order, every provider whose prefix matches is tried, writes use the first.
//
// Plaintext only ever lives in SecretBytes. Thread-safe after construction: Decrypt and Encrypt
// may be called from many threads at once (KMS seed caches are guarded by a mutex).
#ifndef KMSP_TOOLS_REENCRYPT_VALUE_TRANSFORMER_H_
#define KMSP_TOOLS_REENCRYPT_VALUE_TRANSFORMER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/kms_client.h"

namespace kmsplugin::reencrypt {

// What a stored value is, judged from its prefix (and, for KMS v2, its EncryptedObject header)
// without decrypting it. Public: safe to log and to print in the inventory.
struct ValueOrigin {
  // "identity", "aescbc", "aesgcm", "secretbox", "kms-v1:NAME", "kms-v2:NAME", or
  // "unknown" for an encrypted value no configured provider claims.
  std::string provider;
  std::string key_id;       // aes*/secretbox: the key name; kms v2: keyID; otherwise empty
  int dek_type = -1;        // kms v2 only: 0 (AES_GCM_KEY) or 1 (HKDF seed)
  int provider_index = -1;  // which provider of the chain claims it; -1 for none
  int key_index = -1;       // aes*/secretbox: which key of that provider
  std::string prefix;       // the value's format prefix, e.g. "k8s:enc:aescbc:v1:key1:"
  // kms v2 only: the recovery wrap (recovery_kms_client.h RecoveryWrapLabel): "sha256:<hex>" of
  // the recovery key, "none" or "invalid"; empty for other providers.
  std::string recovery;
};

// What a transformer's Open returns.
struct DecryptedValue {
  SecretBytes plaintext;
  // False for AES-CBC (aescbc, the KMS v1 CBC fallback): no integrity, only valid padding and a
  // plausible plaintext vouch for it, so another key that also opens the value makes it
  // ambiguous (see ProviderChain::Open).
  bool authenticated = true;
  int key_index = -1;  // aes*/secretbox: the key that opened it
};

// A value that more than one configured key opens to different plaintexts (only possible for
// AES-CBC): it must be reported and left untouched, never rewritten with either reading.
absl::Status AmbiguousValueError(std::string_view message);
bool IsAmbiguousValueError(const absl::Status& status);

class ValueTransformer {
 public:
  virtual ~ValueTransformer() = default;

  virtual ProviderKind kind() const = 0;
  // Fills `origin` and returns true when `value` carries this provider's prefix.
  virtual bool Claims(std::string_view value, ValueOrigin* origin) const = 0;
  // True when a value this provider claimed is exactly what Encrypt would write now (first key;
  // for KMS v2 also type 1 under the plugin's current Status key_id). KMS v2: a key_id that is
  // neither the run's nor one known to be older costs one fresh Status call; if the plugin now
  // reports that key_id (a KEK rotation in mid-run), the value is current and this transformer
  // switches to it (a fresh seed, when prepared for writing).
  // REQUIRES: PrepareForRead() succeeded, for KMS v2.
  virtual bool IsCurrent(const ValueOrigin& origin) = 0;
  // Decrypts a value this provider claims. INVALID_ARGUMENT when the value does not decrypt
  // (wrong key, bad tag, malformed, an AES-CBC result that is no stored object); an
  // AmbiguousValueError when two keys of this provider open it to different plaintexts; the
  // plugin's code when a KMS call fails.
  virtual absl::StatusOr<DecryptedValue> Open(std::string_view etcd_key,
                                              std::string_view value) = 0;
  // Open() without the details.
  absl::StatusOr<SecretBytes> Decrypt(std::string_view etcd_key, std::string_view value);
  // Encrypts as this provider writes. REQUIRES: PrepareForWrite() succeeded.
  virtual absl::StatusOr<std::string> Encrypt(std::string_view etcd_key,
                                              const SecretBytes& plaintext) = 0;
  // KMS v2: asks the plugin's Status for the current key_id. Others: nothing.
  virtual absl::Status PrepareForRead() { return absl::OkStatus(); }
  // KMS: wraps one fresh seed (v2) or DEK (v1) for the run. Others: nothing.
  virtual absl::Status PrepareForWrite() { return absl::OkStatus(); }
  // KMS v2: re-reads Status (the Reencryptor calls it once per etcd page); when the key_id
  // changed, switches to it, with a fresh seed wrapped under it when prepared for writing, and
  // until that succeeds Encrypt fails: nothing is ever written under a key_id older than the
  // plugin's current one. Others: nothing.
  virtual absl::Status Refresh() { return absl::OkStatus(); }
  // The plugin's Status key_id (KMS v2 after PrepareForRead), else empty.
  virtual std::string current_key_id() const { return {}; }
  // Number of plugin Decrypt calls made so far (KMS only).
  virtual int64_t kms_decrypt_calls() const { return 0; }
};

// The providers of one resource rule, in config order. Borrows the transformers (owned by the
// TransformerSet, which must outlive it).
class ProviderChain {
 public:
  explicit ProviderChain(std::vector<ValueTransformer*> transformers)
      : transformers_(std::move(transformers)) {}

  // Classifies by prefix: the first provider claiming the value, else a generic description.
  ValueOrigin Classify(std::string_view value) const;
  // True when the value is what the first provider would write now (no rewrite needed).
  bool IsCurrent(const ValueOrigin& origin) const;
  // True when a provider after the one Classify picked also claims `value`: overlapping prefixes
  // are legal (two aescbc blocks that both name a key "key1", §4.1), so the prefix alone does not
  // tell which provider wrote the value; only a decrypt does.
  bool ClaimedByLaterProvider(std::string_view value, const ValueOrigin& origin) const;
  struct Opened {
    SecretBytes plaintext;
    int provider_index = -1;  // which provider opened it
    int key_index = -1;       // and with which of its keys (aes*/secretbox)
  };
  // Tries every provider that claims the value, in order; the first success wins, as in the
  // apiserver, except that an unauthenticated (AES-CBC) success is checked against every later
  // provider claiming the value: if one opens it to another plaintext, the value is ambiguous
  // (AmbiguousValueError). INVALID_ARGUMENT "no matching prefix" when none claims it; otherwise
  // the last failure.
  absl::StatusOr<Opened> Open(std::string_view etcd_key, std::string_view value) const;
  absl::StatusOr<SecretBytes> Decrypt(std::string_view etcd_key, std::string_view value) const;
  // Encrypts with the first provider.
  absl::StatusOr<std::string> Encrypt(std::string_view etcd_key,
                                      const SecretBytes& plaintext) const;

  const std::vector<ValueTransformer*>& transformers() const { return transformers_; }

 private:
  std::vector<ValueTransformer*> transformers_;
};

// How KMS clients are made; tests may substitute in-process fakes.
struct KmsClientFactory {
  std::function<absl::StatusOr<std::unique_ptr<KmsV2Client>>(std::string_view endpoint,
                                                             absl::Duration timeout)>
      v2 = CreateGrpcKmsV2Client;
  std::function<absl::StatusOr<std::unique_ptr<KmsV1Client>>(std::string_view endpoint,
                                                             absl::Duration timeout)>
      v1 = CreateGrpcKmsV1Client;
  // When set, decorates the client of every KMS v2 provider that is the first (write) provider
  // of no rule: providers kept only to read old data (reencrypt --recovery-private-key).
  std::function<std::unique_ptr<KmsV2Client>(std::string_view name,
                                              std::unique_ptr<KmsV2Client> client)>
      wrap_read_only_v2;
};

// Builds one transformer per provider of the config (a KMS provider named in several rules is
// built once and shared, so one run wraps one seed per KMS provider) and one chain per rule.
// `config` must outlive the set.
class TransformerSet {
 public:
  // INVALID_ARGUMENT when a key or endpoint is unusable.
  static absl::StatusOr<std::unique_ptr<TransformerSet>> Create(
      const EncryptionConfig& config, const KmsClientFactory& factory = KmsClientFactory());

  // The chain for `gr`; for a resource no rule covers, an identity-only chain.
  const ProviderChain& ChainFor(const GroupResource& gr) const;
  // Every distinct transformer (for Prepare* calls and statistics).
  const std::vector<std::unique_ptr<ValueTransformer>>& transformers() const { return owned_; }

 private:
  TransformerSet() = default;
  const EncryptionConfig* config_ = nullptr;
  std::vector<std::unique_ptr<ValueTransformer>> owned_;
  std::map<const ResourceRule*, ProviderChain> chains_;
  std::unique_ptr<ProviderChain> identity_chain_;
};

// Single transformers, exposed for tests and tools.
std::unique_ptr<ValueTransformer> NewIdentityTransformer();
absl::StatusOr<std::unique_ptr<ValueTransformer>> NewAesTransformer(const ProviderConfig& config);
std::unique_ptr<ValueTransformer> NewKmsV2Transformer(std::string name,
                                                      std::unique_ptr<KmsV2Client> client);
std::unique_ptr<ValueTransformer> NewKmsV1Transformer(std::string name,
                                                      std::unique_ptr<KmsV1Client> client);

}  // namespace kmsplugin::reencrypt

#endif  // KMSP_TOOLS_REENCRYPT_VALUE_TRANSFORMER_H_
