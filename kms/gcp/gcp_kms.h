// GcpKms: the Google Cloud KMS backend of KeyEncryptionService (REST v1, remote-kms-apis.md §5).
// Wrap = POST /v1/<key>:encrypt, Unwrap = POST /v1/<key>:decrypt (the CryptoKey name only: the
// ciphertext names its version), Probe = GET /v1/<key> (cryptoKeys.get), RotateKek = POST
// /v1/<key>/cryptoKeyVersions + POST /v1/<key>:updatePrimaryVersion. Calls go through the shared
// BearerRestApi (kms/bearer/rest_api.h) with tokens from gcp_credentials.h.
//
// kek_id scheme (becomes the KMS v2 key_id; copy of this paragraph in the README):
//
//     gcp:projects/<P>/locations/<L>/keyRings/<R>/cryptoKeys/<K>/cryptoKeyVersions/<N>
//
//   - the CryptoKeyVersion that wrapped, read from the encrypt answer's `name` (exact per call,
//     no extra read) and checked to be a version of the configured --gcp-key; Probe gives the
//     primary version's name from cryptoKeys.get. A scheduled rotation or `rotate --kek`
//     therefore changes key_id, and every node that shares the key computes the same one.
//   - Unwrap accepts only kek_ids of versions of the configured key (FAILED_PRECONDITION with
//     no remote call otherwise); every ENABLED version still decrypts.
//
// Associated data: every encrypt and decrypt carries additionalAuthenticatedData =
//     kms-plugin/kubernetes-kms-v2:<key name>
// (identical on every node), which binds the blob to the plugin and the key. The blob is the
// ciphertext bytes Cloud KMS returned, as they are.
//
// Integrity (§5.3): encrypt sends plaintextCrc32c and additionalAuthenticatedDataCrc32c and
// requires both verified… flags, CRC32C(ciphertext) == ciphertextCrc32c and a `name` under the
// key; decrypt sends ciphertextCrc32c and the AAD CRC and requires CRC32C(plaintext) ==
// plaintextCrc32c. A mismatch discards the answer and the call is made once more; a second
// mismatch is UNAVAILABLE (an outage: the plugin coasts on cached keys).
//
// Errors (§5.5), from the google.rpc `status` and the HTTP code: 400 FAILED_PRECONDITION (a
// disabled or destroyed version), 403 PERMISSION_DENIED and 404 NOT_FOUND are returned as such:
// revocations (key_encryption_service.h); 400 INVALID_ARGUMENT (a blob that does not open) is
// INVALID_ARGUMENT; 401 refreshes the token once; 429, 5xx, ABORTED and network failures are
// retried with backoff, then UNAVAILABLE: an outage. Thread-safe.
#ifndef KMSP_KMS_GCP_GCP_KMS_H_
#define KMSP_KMS_GCP_GCP_KMS_H_

#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "kms/bearer/rest_api.h"
#include "kms/gcp/gcp_credentials.h"
#include "kms/http_client.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_backend_options.h"
#include "kms/retry.h"

namespace kmsplugin::gcp {

inline constexpr std::string_view kAssociatedDataPrefix = "kms-plugin/kubernetes-kms-v2:";
inline constexpr char kDefaultEndpoint[] = "https://cloudkms.googleapis.com";

// The common fields (retry, max_concurrent_calls, timeouts, http, observer) are in
// RemoteBackendOptions; observer reports: key = the CryptoKey name.
struct GcpKmsOptions : RemoteBackendOptions {
  std::string key;  // --gcp-key: projects/P/locations/L/keyRings/R/cryptoKeys/K.
  std::string endpoint = kDefaultEndpoint;  // --gcp-endpoint: any https URL.
  // --gcp-ca-file: PEM bundle trusted on top of the system roots for every endpoint (KMS,
  // token_uri, STS, impersonation); empty: the system roots only.
  std::string ca_file;
  GcpCredentialsOptions credentials;  // FromEnvironment() is applied by Create().
  std::unique_ptr<TokenSource> tokens;  // Overrides the credential chain (tests); owned.
};

class GcpKms final : public KeyEncryptionService {
 public:
  // INVALID_ARGUMENT for a malformed key name or endpoint, an unreadable CA file or a bad
  // credentials file. Makes no remote call. `clock` must outlive the backend.
  static absl::StatusOr<std::unique_ptr<GcpKms>> Create(GcpKmsOptions options, const Clock* clock);
  ~GcpKms() override;

  std::string_view Name() const override { return "gcp"; }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override;
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override;
  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override;
  absl::Status RotateKek(const CallContext& ctx) override;

  // "gcp:" + version name.
  static std::string MakeKekId(std::string_view version_name);
  // kAssociatedDataPrefix + key name.
  static std::string AssociatedData(std::string_view key_name);
  // True for projects/<P>/locations/<L>/keyRings/<R>/cryptoKeys/<K> with non-empty segments of
  // [A-Za-z0-9_.-] (no version).
  static bool ValidKeyName(std::string_view name);

 private:
  explicit GcpKms(GcpKmsOptions options);
  // The version number when `name` is "<key>/cryptoKeyVersions/<N>", else 0.
  int64_t VersionOf(std::string_view name) const;

  GcpKmsOptions options_;
  std::string aad_;
  std::string url_;  // <endpoint>/v1/<key>
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<TokenSource> tokens_;
  std::unique_ptr<BearerRestApi> api_;
};

// The RestClassifier of Cloud KMS answers (exposed for tests).
RestError ClassifyGcpAnswer(std::string_view operation, const HttpResponse& response);

}  // namespace kmsplugin::gcp

#endif  // KMSP_KMS_GCP_GCP_KMS_H_
