// AwsKms: the AWS KMS backend of KeyEncryptionService. Wrap = Encrypt (then one Decrypt to check
// the blob opens and to learn the key material), Unwrap = Decrypt, Probe = DescribeKey,
// RotateKek = RotateKeyOnDemand. Facts: remote-kms-apis.md §1–3.
//
// kek_id scheme (becomes the KMS v2 key_id; copy of this paragraph in the README):
//
//     aws:<key ARN>[/<KeyMaterialId>]
//
//   e.g. aws:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab/
//        6f0c…(64 hex)
//   - <key ARN> is the resolved key ARN that AWS returns (an alias or bare key id given with
//     --aws-key-id is resolved by AWS; re-pointing an alias therefore changes the kek_id).
//   - /<KeyMaterialId> is present whenever AWS reports key material ids (symmetric AWS_KMS and
//     EXTERNAL keys): DescribeKey's CurrentKeyMaterialId for Probe, and the KeyMaterialId that
//     Decrypt reports for a freshly encrypted blob for Wrap. So an automatic or on-demand rotation
//     of the CMK yields a new kek_id, and Wrap and Probe agree for the same material.
//   - Deterministic across processes (it is what AWS reports), public (ARN and material ids are
//     not secrets), at most 1024 bytes (checked; an ARN is under 150 bytes).
//
// Encryption context: every Encrypt and Decrypt carries {"kms-plugin": "kubernetes-kms-v2"} plus
// the user's --aws-encryption-context entries, so CloudTrail shows who unwrapped what. It must stay
// the same for the life of the wrapped keys: changing the user entries makes AWS refuse to decrypt
// keys wrapped before the change (InvalidCiphertextException).
//
// The blob is the CiphertextBlob exactly as AWS returned it (so `aws kms decrypt` can open it).
// Unwrap accepts only a kek_id whose key ARN is exactly the configured key's ARN (same
// partition, region, account and key id; --aws-key-id given as an alias or key id is resolved
// with DescribeKey once), and sends that ARN as KeyId. Any other kek_id is FAILED_PRECONDITION
// with no remote call: the plugin never lends its IAM role to a key a client names (another
// account's key, another key of the account, the key another alias points to). So re-pointing
// the alias to a new key does not let this plugin open keys wrapped under the old one: keep a
// plugin for the old key as a second, read-only provider until the data is re-encrypted.
//
// --aws-endpoint must be https://; http:// is refused unless allow_insecure_http (the
// --aws-insecure-http-for-tests flag), since wrapped keys, plaintext data keys and session tokens
// would cross the network in clear.
//
// Key states (Probe): Disabled, PendingDeletion, PendingReplicaDeletion and PendingImport are
// FAILED_PRECONDITION (a revocation); Unavailable, Updating, Creating and unknown states are
// UNAVAILABLE (an outage: the plugin coasts on its cached keys).
//
// Client and remote text (kek_ids, ARNs and states in answers, AWS error messages) reaches
// messages and logs only through Printable().
//
// Error codes: those of KmsApi (kms_api.h); Probe also returns FAILED_PRECONDITION when the key is
// revoked (see key states), not ENCRYPT_DECRYPT or not SYMMETRIC_DEFAULT. Thread-safe.
#ifndef KMSP_KMS_AWS_AWS_KMS_H_
#define KMSP_KMS_AWS_AWS_KMS_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "kms/aws/credentials.h"
#include "kms/aws/kms_api.h"
#include "kms/http_client.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_backend_options.h"

namespace kmsplugin::aws {

inline constexpr std::string_view kPluginContextKey = "kms-plugin";
inline constexpr std::string_view kPluginContextValue = "kubernetes-kms-v2";

// The common fields (retry, max_concurrent_calls, timeouts, http, observer) are in
// RemoteBackendOptions; observer reports: key = --aws-key-id as given, encryption_context = the
// canonical "k=v,…" sent.
struct AwsKmsOptions : RemoteBackendOptions {
  std::string key_id;    // Key ARN, key id, alias/NAME or alias ARN.
  std::string region;    // Required, e.g. "us-east-1".
  std::string endpoint;  // Empty: https://kms[-fips].<region>.amazonaws.com (…com.cn in China).
  std::string ca_file;   // PEM CA bundle for the endpoint (and STS); empty: the system bundle.
  bool fips = false;
  // Accept an http:// endpoint (KMS and STS). Tests only (--aws-insecure-http-for-tests).
  bool allow_insecure_http = false;
  // The user's encryption-context entries (kPluginContextKey is reserved and always added).
  std::vector<std::pair<std::string, std::string>> encryption_context;
  // The environment the default credential chain reads; empty = the process environment.
  EnvLookup env;
  // Overrides the default credential chain (tests); owned.
  std::unique_ptr<CredentialsProvider> credentials;
};

// Parses "k=v,k2=v2" (the --aws-encryption-context flag). INVALID_ARGUMENT for an entry without
// '=', an empty key, a repeated key, or the reserved key kPluginContextKey.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseEncryptionContext(
    std::string_view text);

// The default endpoint for a region ("https://kms.us-east-1.amazonaws.com").
std::string DefaultKmsEndpoint(std::string_view region, bool fips);

class AwsKms final : public KeyEncryptionService {
 public:
  // INVALID_ARGUMENT for a missing key id, a malformed region or endpoint, a bad encryption
  // context or an unreadable CA file. Makes no remote call. `clock` must outlive the backend.
  static absl::StatusOr<std::unique_ptr<AwsKms>> Create(AwsKmsOptions options, const Clock* clock);
  ~AwsKms() override;

  std::string_view Name() const override { return "aws"; }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override;
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override;
  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override;
  absl::Status RotateKek(const CallContext& ctx) override;

  // Builds a kek_id from a key ARN and an optional key material id.
  static std::string MakeKekId(std::string_view key_arn, std::string_view key_material_id);

 private:
  AwsKms(AwsKmsOptions options, std::unique_ptr<HttpClient> http,
         std::unique_ptr<CredentialsProvider> credentials);

  // The key ARN a kek_id names, if it is the configured key (resolving it first if needed);
  // FAILED_PRECONDITION otherwise, without a Decrypt call.
  absl::StatusOr<std::string> OwnedKeyArn(std::string_view kek_id, const CallContext& ctx);
  // The configured key's ARN: resolved by DescribeKey once (whatever the key's state), or known.
  absl::StatusOr<std::string> ConfiguredKeyArn(const CallContext& ctx);
  // `kek_id` (may be empty) is only reported with the attempts.
  absl::StatusOr<SecretBytes> Decrypt(std::string_view key_id, std::string_view blob,
                                      std::string_view kek_id, const CallContext& ctx,
                                      std::string* key_material_id);
  // What each request names, for the attempt reports.
  AttemptSubject Subject(std::string_view kek_id = {}) const {
    return AttemptSubject{options_.key_id, kek_id, context_text_};
  }
  absl::StatusOr<KeyStatus> Describe(const CallContext& ctx);

  const AwsKmsOptions options_;
  const std::string context_json_;  // The EncryptionContext object, serialised once.
  const std::string context_text_;  // The same, canonical "k=v,k2=v2" (sorted by key).
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<CredentialsProvider> credentials_;
  std::unique_ptr<KmsApi> api_;

  absl::Mutex mu_;
  std::string key_arn_ ABSL_GUARDED_BY(mu_);           // Resolved by DescribeKey.
  std::string current_material_ ABSL_GUARDED_BY(mu_);  // Last CurrentKeyMaterialId seen.
};

}  // namespace kmsplugin::aws

#endif  // KMSP_KMS_AWS_AWS_KMS_H_
