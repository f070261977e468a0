// The local keyring file, format 1 (see local_kms.h for the layout): parsing, serialising, the
// atomic replacement of the file and its lock. Used by LocalKms and by fuzz/keyring_fuzzer.cc.
#ifndef KMSP_KMS_LOCAL_KEYRING_FILE_H_
#define KMSP_KMS_LOCAL_KEYRING_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

inline constexpr int kKeyringFormat = 1;
// A keyring holds at most this many versions (a rotation beyond is refused), and the read limit
// is sized so that a file of that many versions, as the plugin writes it, always fits: one entry
// takes about 150 bytes (version up to 10 digits, a 20-character timestamp, 44 characters of
// base64, indentation), 256 allowed; 4 KiB for the rest. About 16 MiB in all.
inline constexpr size_t kMaxKeyringVersions = 65536;
inline constexpr size_t kKeyringEntryMaxBytes = 256;
inline constexpr size_t kKeyringHeaderMaxBytes = 4096;
inline constexpr size_t kMaxKeyringFileSize =
    kKeyringHeaderMaxBytes + kMaxKeyringVersions * kKeyringEntryMaxBytes;

// One version as stored in the file.
struct KeyringEntry {
  uint32_t version = 0;
  std::string created;
  SecretBytes material;  // 32 bytes.
};

struct KeyringFile {
  std::string keyring_id;  // 32 lower-case hex characters.
  uint32_t primary = 0;
  std::vector<KeyringEntry> entries;  // Versions unique, >= 1; one of them is `primary`.
};

// Parses the text of a format-1 keyring; `path` only names it in errors. INVALID_ARGUMENT for
// anything malformed. Every copy of key material it makes is wiped or owned by the result.
absl::StatusOr<KeyringFile> ParseKeyring(std::string_view text, std::string_view path);

// The file's text exactly as the plugin writes it (2-space JSON and a newline). Holds key
// material: the caller wipes it (WipeString).
std::string SerializeKeyring(const KeyringFile& file);

// Reads (ReadSecretFile: owner only, no FIFO, at most kMaxKeyringFileSize) and parses the file.
// `allow_symlinks` as SecretFileOptions::allow_symlinks. A missing file is UNAVAILABLE (an outage
// of the backend, not a missing key); `*size` receives the file's size when not null.
absl::StatusOr<KeyringFile> ReadKeyringFile(const std::string& path,
                                            std::optional<bool> allow_symlinks,
                                            size_t* size = nullptr);

// Replaces `path` atomically with `file`: a temp file from mkstemp (O_EXCL, a random name, mode
// 0600) in the same directory, fsync, rename, fsync of the directory.
absl::Status WriteKeyringFile(const std::string& path, const KeyringFile& file);

// An exclusive flock on "<keyring path>.lock", held for the object's lifetime.
class KeyringLock {
 public:
  // Waits for the lock until `deadline` (absl::InfiniteFuture(): as long as it takes, logging
  // once that it waits). DEADLINE_EXCEEDED when the deadline passes first: then nothing holds
  // or will take the lock on the caller's behalf.
  static absl::StatusOr<std::unique_ptr<KeyringLock>> Acquire(const std::string& keyring_path,
                                                              absl::Time deadline);
  ~KeyringLock();
  KeyringLock(const KeyringLock&) = delete;
  KeyringLock& operator=(const KeyringLock&) = delete;

 private:
  explicit KeyringLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace kmsplugin

#endif  // KMSP_KMS_LOCAL_KEYRING_FILE_H_
