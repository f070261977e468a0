// KeyEncryptionService: THE abstraction over a remote key-encryption key (KEK) held by a KMS
// (AWS KMS, Vault Transit, a PKCS#11 token, or the local keyring file).
//
// The plugin wraps its own AES-256 data keys with it, one call per data key, and unwraps them on
// a cache miss. Nothing else in the plugin talks to a KMS.
//
// kek_id contract (it becomes the KMS v2 key_id, kmsv2-contract.md §2.1, §2.9):
//   - names one KEK *version* (key + key material), never a local key;
//   - public: no secret material (it is logged and stored in clear in etcd);
//   - non-empty and at most kMaxKekIdSize bytes;
//   - stable: the same KEK version always yields the same kek_id, in every process that shares
//     the backend (several control-plane nodes);
//   - never reused for another KEK version, even if an old KEK is reinstated.
//
// Error codes (docs/style.md): UNAVAILABLE for an unreachable, throttling or 5xx KMS (transient);
// DEADLINE_EXCEEDED when ctx.deadline passes; PERMISSION_DENIED / UNAUTHENTICATED when
// credentials are refused; FAILED_PRECONDITION for a disabled, pending-deletion or unknown KEK;
// INVALID_ARGUMENT for a wrapped key the KMS rejects as malformed or unauthentic; INTERNAL for
// broken invariants. Messages carry operation, kek_id, sizes and remote codes, never bytes.
//
// Implementations are thread-safe and may block on I/O until ctx.deadline.
#ifndef KMSP_KMS_KEY_ENCRYPTION_SERVICE_H_
#define KMSP_KMS_KEY_ENCRYPTION_SERVICE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

inline constexpr size_t kMaxKekIdSize = 1024;

// Per-call context: the deadline every remote call must respect, and the request uid for logs.
struct CallContext {
  absl::Time deadline = absl::InfiniteFuture();
  std::string uid;

  static CallContext WithTimeout(absl::Duration timeout, std::string uid = {}) {
    return CallContext{absl::Now() + timeout, std::move(uid)};
  }
};

// A data key wrapped by one KEK version.
struct WrappedKey {
  std::string kek_id;  // The KEK version that wrapped it (see the contract above).
  std::string blob;    // Opaque, backend-specific; public (stored in clear). At most 8 KiB.
};

// What a probe learns about the current KEK.
struct KeyStatus {
  std::string kek_id;       // The current (primary) KEK version.
  std::string description;  // Human-readable, public: e.g. "keyring 3f2a… version 4 of 4".
};

class KeyEncryptionService {
 public:
  virtual ~KeyEncryptionService() = default;

  // Short backend name for logs and metrics: "local", "aws", "vault", "pkcs11".
  virtual std::string_view Name() const = 0;

  // Wraps `key` under the current KEK version; returns the blob and the kek_id used.
  virtual absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) = 0;

  // Unwraps a blob produced by Wrap() under `wrapped.kek_id`, for any KEK version the backend
  // still holds. FAILED_PRECONDITION when kek_id is not one this backend knows or owns.
  virtual absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped,
                                             const CallContext& ctx) = 0;

  // Cheap probe: is the KEK usable, and which version is current. Called periodically in the
  // background, never on the Status RPC's path.
  virtual absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) = 0;

  // Creates a new KEK version at the backend and makes it current (key rotation). Backends that
  // cannot rotate return UNIMPLEMENTED.
  virtual absl::Status RotateKek(const CallContext& ctx) {
    return absl::UnimplementedError("this KMS backend cannot rotate its KEK");
  }
};

// True when the KMS *refused* (key disabled, deleted or unknown, access denied, credentials
// rejected): the plugin then reports unhealthy and purges its cached data keys, so revoking the
// KEK revokes the plugin. Every other error (unreachable, throttled, 5xx, deadline) is treated as
// an outage, through which the plugin coasts on cached keys for a bounded window.
inline bool IsKeyRevokedError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kPermissionDenied ||
         s.code() == absl::StatusCode::kUnauthenticated ||
         s.code() == absl::StatusCode::kFailedPrecondition ||
         s.code() == absl::StatusCode::kNotFound;
}

}  // namespace kmsplugin

#endif  // KMSP_KMS_KEY_ENCRYPTION_SERVICE_H_
