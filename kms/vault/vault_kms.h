// VaultKms: the HashiCorp Vault / OpenBao Transit backend of KeyEncryptionService.
// Wrap = POST <mount>/encrypt/<key>, Unwrap = POST <mount>/decrypt/<key>, Probe = GET
// <mount>/keys/<key>, RotateKek = POST <mount>/keys/<key>/rotate. Logins and token renewal:
// vault_auth.h; HTTP, retries and error mapping: vault_api.h. Facts: remote-kms-apis.md §4.
//
// kek_id scheme (becomes the KMS v2 key_id; copy of this paragraph in the README):
//
//     vault:<namespace>/<mount>/<key>/v<N>
//
//   e.g. vault:root/transit/k8s-kek/v3, vault:team-a/clusters/transit/k8s-kek/v1
//   - <namespace> is --vault-namespace without surrounding '/', or "root" when none is given
//     (Vault reserves that name); <mount> is --vault-transit-mount; <key> is --vault-key.
//   - N is the transit key version: for Wrap, the one in the "vault:v<N>:" prefix of the
//     ciphertext Vault returned (exact per call, no read needed); for Probe, latest_version of
//     GET <mount>/keys/<key>. So `vault write -f <mount>/keys/<key>/rotate` (or `kms-plugin rotate
//     --kek`) gives a new kek_id once the plugin's poll sees it.
//   - Deterministic across processes, public (names and a number), at most 1024 bytes (checked).
//
// Associated data: every encrypt and decrypt carries associated_data = base64 of
//     kms-plugin/kubernetes-kms-v2:<mount>/<key>
// (the key must be an AEAD type: aes256-gcm96, the default, aes128-gcm96 or chacha20-poly1305).
// It binds the blob to the plugin and to that key; it must stay the same for the life of the
// blobs (so remounting the transit engine elsewhere makes old blobs undecryptable).
// `vault write <mount>/decrypt/<key> ciphertext=<blob> associated_data=<same base64>` opens one.
//
// The blob is the "vault:v<N>:…" ciphertext string exactly as Vault returned it. Unwrap accepts
// only a kek_id of this namespace, mount and key whose version equals the blob's "vault:v<N>:"
// prefix; anything else is FAILED_PRECONDITION with no remote call (the plugin never lends its
// token to a key a client names). Older versions decrypt while min_decryption_version allows;
// below it Vault answers 400 "... disallowed by policy (too old)", returned as
// FAILED_PRECONDITION naming min_decryption_version.
//
// Revocation vs outage (key_encryption_service.h): transit has no "disabled" state. A key is
// treated as disabled (FAILED_PRECONDITION from Probe) when its min_decryption_version is above
// its latest_version, or it does not support encryption and decryption; a 403 (after one
// re-login or token-file re-read) is PERMISSION_DENIED and a deleted key (404) NOT_FOUND: all
// revocations. A sealed or standby Vault, 5xx, 412, 429 and dropped connections are UNAVAILABLE
// after retries: an outage, through which the plugin coasts on cached keys.
//
// --vault-addr must be https://; http:// is refused unless allow_insecure_http (the
// --vault-insecure-http-for-tests flag). TLS verification is always on. Thread-safe.
#ifndef KMSP_KMS_VAULT_VAULT_KMS_H_
#define KMSP_KMS_VAULT_VAULT_KMS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "kms/http_client.h"
#include "kms/key_encryption_service.h"
#include "kms/remote_backend_options.h"
#include "kms/retry.h"
#include "kms/vault/vault_api.h"
#include "kms/vault/vault_auth.h"

namespace kmsplugin::vault {

inline constexpr std::string_view kAssociatedDataPrefix = "kms-plugin/kubernetes-kms-v2:";

// The common fields (retry, max_concurrent_calls, timeouts, http, observer) are in
// RemoteBackendOptions; observer reports: key = "[<namespace>/]<mount>/keys/<key>".
struct VaultKmsOptions : RemoteBackendOptions {
  std::string addr;  // https://vault.example:8200
  std::string key;   // Transit key name.
  std::string transit_mount = "transit";
  std::string namespace_;        // Empty: none (the root namespace).
  std::string ca_file;           // PEM CA bundle; empty: the system bundle.
  std::string client_cert_file;  // mTLS; both or neither.
  std::string client_key_file;
  bool allow_insecure_http = false;  // --vault-insecure-http-for-tests.
  VaultAuthOptions auth;
};

class VaultKms final : public KeyEncryptionService {
 public:
  // INVALID_ARGUMENT for a missing or malformed address, key, mount, namespace or login, and
  // unreadable TLS files. Makes no remote call. `clock` must outlive the backend.
  static absl::StatusOr<std::unique_ptr<VaultKms>> Create(VaultKmsOptions options,
                                                          const Clock* clock);
  ~VaultKms() override;

  std::string_view Name() const override { return "vault"; }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override;
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override;
  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override;
  absl::Status RotateKek(const CallContext& ctx) override;

  // "vault:<namespace or root>/<mount>/<key>/v<version>".
  static std::string MakeKekId(std::string_view namespace_, std::string_view mount,
                               std::string_view key, int64_t version);
  // The associated data (before base64) for a mount and key.
  static std::string AssociatedData(std::string_view mount, std::string_view key);

 private:
  VaultKms(VaultKmsOptions options, std::unique_ptr<HttpClient> http);
  // A call with the current token; after a 403 the token is replaced once and the call repeated.
  // `kek_id` (may be empty) and `key_id_from_answer` (may be null) are only used in the attempt
  // reports (kms/remote_attempt.h).
  absl::StatusOr<SecretBytes> Authed(
      std::string_view operation, std::string_view method, const std::string& path,
      const SecretBytes& body, bool idempotent, const CallContext& ctx,
      std::string_view kek_id = {},
      std::function<std::string(std::string_view)> key_id_from_answer = nullptr);

  const VaultKmsOptions options_;
  const std::string kek_prefix_;  // "vault:<ns>/<mount>/<key>/v"
  const std::string aad_b64_;
  const std::string audit_key_;  // "[<namespace>/]<mount>/keys/<key>", for attempt reports.
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<VaultApi> api_;
  std::unique_ptr<VaultAuth> auth_;
};

}  // namespace kmsplugin::vault

#endif  // KMSP_KMS_VAULT_VAULT_KMS_H_
