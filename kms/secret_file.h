// Reading small files that hold secrets (keyrings, AWS credentials and token files).
#ifndef KMSP_KMS_SECRET_FILE_H_
#define KMSP_KMS_SECRET_FILE_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace kmsplugin {

inline constexpr size_t kMaxSecretFileSize = 1 << 20;

struct SecretFileOptions {
  // Refuse a file that group or others may access (mode & 077).
  bool owner_only = false;
  // Follow a symbolic link in the last path component. std::nullopt: the process-wide setting
  // (SetSecretFileSymlinksAllowed, from `--allow-secret-symlinks`), off by default.
  std::optional<bool> allow_symlinks;
  // Larger files are refused.
  size_t max_size = kMaxSecretFileSize;
};

// The process-wide default of SecretFileOptions::allow_symlinks. Kubernetes Secret and ConfigMap
// volumes (and projected service-account tokens) present every file as a symlink into a
// timestamped directory, so reading secrets from such a volume needs it; set once at start-up.
void SetSecretFileSymlinksAllowed(bool allowed);
bool SecretFileSymlinksAllowed();

// Reads the whole file into one buffer sized from fstat, with no stream buffers and no
// reallocation, so the caller can wipe it (WipeString) and no other copy is left behind.
// The file is opened with O_NONBLOCK (a FIFO never blocks the caller) and O_NOFOLLOW unless
// symlinks are allowed; every check is made on the open file:
//   - it is a regular file (not a FIFO, device, socket or directory);
//   - its owner is this process's effective uid or root;
//   - with owner_only, group and others have no access.
// NOT_FOUND when it does not exist; FAILED_PRECONDITION for a symlink (not allowed), a file that
// is not regular, owned by another user or (owner_only) accessible by others; INVALID_ARGUMENT
// when larger than max_size; UNAVAILABLE for other I/O errors.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           const SecretFileOptions& options);
inline absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                                  bool owner_only = false) {
  SecretFileOptions options;
  options.owner_only = owner_only;
  return ReadSecretFile(path, options);
}

}  // namespace kmsplugin

#endif  // KMSP_KMS_SECRET_FILE_H_
