// VaultAuth: the Vault token the backend sends, from one of three logins, kept fresh.
// Facts: remote-kms-apis.md §4.2.
//
//   kToken       --vault-token-file: the token is read from the file; GET auth/token/lookup-self
//                tells its remaining TTL and whether it is renewable.
//   kAppRole     --vault-approle-role-id + --vault-approle-secret-id-file:
//                POST auth/<approle mount>/login {"role_id", "secret_id"} (the secret id file is
//                re-read at each login).
//   kKubernetes  --vault-k8s-role [+ --vault-k8s-mount, --vault-k8s-token-file]:
//                POST auth/<mount>/login {"role", "jwt"} (Kubernetes auth, or JWT auth with
//                --vault-k8s-mount jwt); the service-account token file is re-read at each login,
//                since kubelet rotates projected tokens.
//
// Lifecycle (checked on each Token() call; the plugin's periodic Probe makes one at least every
// --key-poll-interval, so keep token TTLs above 1.5 times that):
//   - at 2/3 of the TTL a renewable token is renewed (POST auth/token/renew-self, asking for the
//     TTL it had); when renewal fails or grants less than asked (max TTL reached), the login
//     methods log in again and the token file is read again;
//   - an expired (or never obtained) token is replaced: log in again, or re-read the file;
//   - Invalidate() after a 403 (revoked or expired token, or a policy change) drops the token:
//     the next Token() logs in again or re-reads the file. The caller retries the call once.
// While the current token is still valid, a failed renewal or re-login (an outage) keeps it.
//
// Error codes: UNAVAILABLE when Vault is unreachable or a token, secret id or jwt file cannot be
// read (a local outage, never a revocation); UNAUTHENTICATED when a login is refused (HTTP 400,
// e.g. an invalid secret id or jwt) or the file holds no token; PERMISSION_DENIED for a 403 (a
// login role or the token refused). Tokens, secret ids and jwts live only in SecretBytes and
// never reach a message or a log line. Thread-safe.
#ifndef KMSP_KMS_VAULT_VAULT_AUTH_H_
#define KMSP_KMS_VAULT_VAULT_AUTH_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "crypto/secret_bytes.h"
#include "kms/vault/vault_api.h"

namespace kmsplugin::vault {

inline constexpr std::string_view kDefaultK8sTokenFile =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

enum class LoginMethod { kToken, kAppRole, kKubernetes };

struct VaultAuthOptions {
  LoginMethod method = LoginMethod::kToken;
  std::string token_file;
  std::string approle_role_id;
  std::string approle_secret_id_file;
  std::string approle_mount = "approle";
  std::string k8s_role;
  std::string k8s_mount = "kubernetes";
  std::string k8s_token_file = std::string(kDefaultK8sTokenFile);
};

// INVALID_ARGUMENT when the method's inputs are missing or a mount is not a Vault path.
absl::Status ValidateAuthOptions(const VaultAuthOptions& options);

class VaultAuth {
 public:
  // `api` and `clock` must outlive this.
  VaultAuth(VaultAuthOptions options, VaultApi* api, const Clock* clock)
      : options_(std::move(options)), api_(api), clock_(clock) {}

  struct Token {
    SecretBytes value;
    uint64_t generation = 0;  // For Invalidate().
  };
  // The token to send now (see the file comment).
  absl::StatusOr<Token> Get(const CallContext& ctx);
  // Vault refused the token of `generation` (403): the next Get() replaces it.
  void Invalidate(uint64_t generation);

  std::string_view MethodName() const;

 private:
  struct Grant {
    SecretBytes token;
    absl::Duration ttl = absl::ZeroDuration();  // Zero: no expiry.
    bool renewable = false;
  };
  absl::StatusOr<Grant> Acquire(const CallContext& ctx);
  absl::StatusOr<Grant> Login(const CallContext& ctx);
  absl::StatusOr<Grant> ReadTokenFile(const CallContext& ctx);
  absl::StatusOr<Grant> Renew(const SecretBytes& token, absl::Duration increment,
                              const CallContext& ctx);
  void Install(Grant grant, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const VaultAuthOptions options_;
  VaultApi* const api_;
  const Clock* const clock_;
  absl::Mutex refresh_mu_;  // One refresher at a time; taken before mu_.
  absl::Mutex mu_;
  bool have_ ABSL_GUARDED_BY(mu_) = false;
  SecretBytes token_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time obtained_ ABSL_GUARDED_BY(mu_);
  absl::Duration ttl_ ABSL_GUARDED_BY(mu_);
  absl::Duration base_ttl_ ABSL_GUARDED_BY(mu_);  // The TTL renewals ask for.
  bool renewable_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kmsplugin::vault

#endif  // KMSP_KMS_VAULT_VAULT_AUTH_H_
