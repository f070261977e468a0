// Reading small files that hold secrets (keyrings, AWS credentials and token files).
#ifndef KMSP_KMS_SECRET_FILE_H_
#define KMSP_KMS_SECRET_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace kmsplugin {

inline constexpr size_t kMaxSecretFileSize = 1 << 20;

// Reads the whole file into one buffer sized from fstat, with no stream buffers and no
// reallocation, so the caller can wipe it (WipeString) and no other copy is left behind.
// With `owner_only`, refuses a file that group or others may access (checked on the open file).
// NOT_FOUND when it does not exist; FAILED_PRECONDITION for a file others may read (owner_only);
// INVALID_ARGUMENT when larger than kMaxSecretFileSize; UNAVAILABLE for other I/O errors.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, bool owner_only = false);

}  // namespace kmsplugin

#endif  // KMSP_KMS_SECRET_FILE_H_
