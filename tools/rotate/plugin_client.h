// PluginClient: what `kms-plugin rotate` needs from one running plugin: its KMS v2 API (what
// kube-apiserver sees: Status, Encrypt, Decrypt) and its admin API (proto/admin/admin.proto:
// Report, Refresh, RotateDataKey, RotateKek). The rotator (rotator.h) talks only to this
// interface, so it can be tested in-process; DialPlugin() returns the gRPC implementation.
//
// Every call takes a timeout and fails with the plugin's gRPC code (same codes as absl): e.g.
// UNAVAILABLE when nothing listens on the socket, DEADLINE_EXCEEDED when the call outlives the
// timeout. Implementations are thread-compatible (one rotator uses each client from one thread).
#ifndef KMSP_TOOLS_ROTATE_PLUGIN_CLIENT_H_
#define KMSP_TOOLS_ROTATE_PLUGIN_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin::rotate {

// The KMS v2 StatusResponse.
struct KmsStatus {
  std::string version;
  std::string healthz;
  std::string key_id;
};

// The admin ReportResponse fields the rotator uses (all public: no key material).
struct PluginState {
  std::string healthz;
  std::string key_id;
  std::string backend;
  std::string data_key_created;  // RFC 3339; empty without a data key.
  uint64_t data_key_uses = 0;
  std::vector<std::string> kek_ids_seen;
  std::string last_probe_result;
  std::string kek_description;
};

// An EncryptResponse, as kube-apiserver stores it (public).
struct Ciphertext {
  std::string ciphertext;
  std::string key_id;
  std::map<std::string, std::string> annotations;
};

class PluginClient {
 public:
  virtual ~PluginClient() = default;

  // Admin API. Each returns the plugin's state after the call.
  virtual absl::StatusOr<PluginState> Report(absl::Duration timeout) = 0;
  // Probes the backend now; a new KEK version switches key_id at once.
  virtual absl::StatusOr<PluginState> Refresh(absl::Duration timeout) = 0;
  virtual absl::StatusOr<PluginState> RotateDataKey(absl::Duration timeout) = 0;
  // Creates a new KEK version at the backend (shared by every plugin on it) and switches to it.
  virtual absl::StatusOr<PluginState> RotateKek(absl::Duration timeout) = 0;

  // KMS v2 API. `uid` is logged by the plugin for correlation.
  virtual absl::StatusOr<KmsStatus> Status(absl::Duration timeout) = 0;
  virtual absl::StatusOr<Ciphertext> Encrypt(std::string_view plaintext, std::string_view uid,
                                             absl::Duration timeout) = 0;
  virtual absl::StatusOr<SecretBytes> Decrypt(const Ciphertext& ciphertext, std::string_view uid,
                                              absl::Duration timeout) = 0;
};

// Where one plugin listens.
struct PluginAddress {
  std::string socket;        // The KMS v2 socket, as given (unix:///ABS, /ABS or unix:///@name).
  std::string admin_socket;  // Its admin socket.
};

// `admin_socket` empty: the default that `kms-plugin serve` derives from --listen ("<path>.admin";
// an abstract --listen has none). INVALID_ARGUMENT for an address ParseListenAddress() rejects,
// an abstract admin socket, or an abstract socket without an admin socket.
absl::StatusOr<PluginAddress> ResolvePluginAddress(std::string_view socket,
                                                   std::string_view admin_socket);

// A gRPC client over the two unix sockets (no connection is made until the first call).
// INVALID_ARGUMENT for a bad address.
absl::StatusOr<std::unique_ptr<PluginClient>> DialPlugin(const PluginAddress& address);

}  // namespace kmsplugin::rotate

#endif  // KMSP_TOOLS_ROTATE_PLUGIN_CLIENT_H_
