#include "kms/local/local_kms.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "base/status.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

constexpr std::string_view kKind = "kms-plugin-local-keyring";
constexpr int kFormat = 1;
constexpr std::string_view kWrapAadPrefix = "kms-plugin/local-wrap/v1:";
constexpr size_t kKekSize = 32;

// One version as stored in the file.
struct Entry {
  uint32_t version = 0;
  std::string created;
  SecretBytes material;
};

struct KeyringFile {
  std::string keyring_id;
  uint32_t primary = 0;
  std::vector<Entry> entries;
};

std::string ErrnoText(int err) { return std::strerror(err); }

absl::Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  return absl::UnavailableError(fmt::format("{} {}: {}", what, path, ErrnoText(err)));
}

absl::StatusOr<std::string> StampOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat keyring", path, errno);
  return fmt::format("{}.{}:{}:{}", st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_size, st.st_ino);
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<KeyringFile> ParseKeyringFile(const std::string& path) {
  absl::StatusOr<std::string> read = ReadSecretFile(path, /*owner_only=*/true);
  if (!read.ok()) {
    // A keyring that cannot be read is an outage of this backend, not a missing key.
    if (read.status().code() == absl::StatusCode::kNotFound) {
      return absl::UnavailableError(std::string(ToStd(read.status().message())));
    }
    return read.status();
  }
  std::string text = std::move(*read);
  absl::Cleanup wipe_text = [&text] { WipeString(text); };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  // Wipes every material string held by the json document, whatever happens below.
  absl::Cleanup wipe_json = [&j] {
    if (!j.is_object() || !j.contains("keys") || !j["keys"].is_array()) return;
    for (auto& k : j["keys"]) {
      if (k.is_object() && k.contains("material") && k["material"].is_string()) {
        WipeString(k["material"].get_ref<std::string&>());
      }
    }
  };
  auto bad = [&path](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("keyring {} is malformed: {}", path, why));
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (!j.contains("kind") || j["kind"] != kKind) return bad("kind is not " + std::string(kKind));
  if (!j.contains("format") || !j["format"].is_number_integer() || j["format"] != kFormat) {
    return bad("unsupported format (want 1)");
  }
  KeyringFile out;
  if (!j.contains("keyring_id") || !j["keyring_id"].is_string()) return bad("no keyring_id");
  out.keyring_id = j["keyring_id"].get<std::string>();
  if (out.keyring_id.size() != 32 || !IsLowerHex(out.keyring_id)) {
    return bad("keyring_id must be 32 lower-case hex characters");
  }
  if (!j.contains("primary") || !j["primary"].is_number_unsigned()) return bad("no primary");
  out.primary = j["primary"].get<uint32_t>();
  if (!j.contains("keys") || !j["keys"].is_array() || j["keys"].empty()) return bad("no keys");
  bool primary_found = false;
  for (auto& k : j["keys"]) {
    if (!k.is_object() || !k.contains("version") || !k["version"].is_number_unsigned() ||
        !k.contains("material") || !k["material"].is_string()) {
      return bad("each key needs a version and a material");
    }
    Entry e;
    e.version = k["version"].get<uint32_t>();
    if (e.version == 0) return bad("versions start at 1");
    for (const Entry& other : out.entries) {
      if (other.version == e.version) return bad("duplicate version");
    }
    if (k.contains("created") && k["created"].is_string()) e.created = k["created"].get<std::string>();
    auto material = Base64DecodeSecret(k["material"].get_ref<const std::string&>());
    if (!material.ok() || material->size() != kKekSize) {
      return bad(fmt::format("version {} material is not base64 of 32 bytes", e.version));
    }
    e.material = std::move(*material);
    primary_found |= e.version == out.primary;
    out.entries.push_back(std::move(e));
  }
  if (!primary_found) return bad("primary names no version");
  return out;
}

absl::Status FsyncDir(const std::string& path) {
  std::string dir = path.substr(0, path.find_last_of('/'));
  if (dir.empty()) dir = "/";
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory of", path, errno);
  fsync(fd);
  close(fd);
  return absl::OkStatus();
}

// Writes `file` to `path` atomically with mode 0600.
absl::Status WriteKeyringFile(const std::string& path, const KeyringFile& file) {
  nlohmann::ordered_json j;
  j["kind"] = kKind;
  j["format"] = kFormat;
  j["keyring_id"] = file.keyring_id;
  j["primary"] = file.primary;
  j["keys"] = nlohmann::ordered_json::array();
  for (const Entry& e : file.entries) {
    nlohmann::ordered_json k;
    k["version"] = e.version;
    k["created"] = e.created;
    k["material"] = Base64Encode(e.material.Reveal());
    j["keys"].push_back(std::move(k));
  }
  std::string text = j.dump(2) + "\n";
  absl::Cleanup wipe = [&text, &j] {
    WipeString(text);
    for (auto& k : j["keys"]) WipeString(k["material"].get_ref<std::string&>());
  };
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("cannot create", tmp, errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return ErrnoStatus("cannot write", tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return ErrnoStatus("cannot sync", tmp, err);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return ErrnoStatus("cannot replace", path, err);
  }
  return FsyncDir(path);
}

// An exclusive advisory lock on "<path>.lock", held for the object's lifetime.
class FileLock {
 public:
  static absl::StatusOr<std::unique_ptr<FileLock>> Acquire(const std::string& path) {
    std::string lock_path = path + ".lock";
    int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("cannot open lock file", lock_path, errno);
    while (flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int err = errno;
        close(fd);
        return ErrnoStatus("cannot lock", lock_path, err);
      }
    }
    return std::unique_ptr<FileLock>(new FileLock(fd));
  }
  ~FileLock() {
    flock(fd_, LOCK_UN);
    close(fd_);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

absl::StatusOr<Entry> NewEntry(uint32_t version, const Clock* clock) {
  KMSP_ASSIGN_OR_RETURN(SecretBytes material, RandomSecret(kKekSize));
  return Entry{version, FormatRfc3339(clock->Now()), std::move(material)};
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalKms>> LocalKms::Create(const LocalKmsOptions& options,
                                                           const Clock* clock) {
  if (options.keyring_path.empty() || options.keyring_path[0] != '/') {
    return absl::InvalidArgumentError("--local-keyring must be an absolute path");
  }
  std::unique_ptr<LocalKms> kms(new LocalKms(options, clock));
  if (access(options.keyring_path.c_str(), F_OK) != 0) {
    if (!options.create_if_missing) {
      return absl::NotFoundError(fmt::format("keyring {} does not exist", options.keyring_path));
    }
    KMSP_ASSIGN_OR_RETURN(auto lock, FileLock::Acquire(options.keyring_path));
    if (access(options.keyring_path.c_str(), F_OK) != 0) {  // Nobody created it meanwhile.
      KeyringFile file;
      KMSP_ASSIGN_OR_RETURN(file.keyring_id, RandomHex(16));
      KMSP_ASSIGN_OR_RETURN(Entry first, NewEntry(1, clock));
      file.primary = 1;
      file.entries.push_back(std::move(first));
      KMSP_RETURN_IF_ERROR(WriteKeyringFile(options.keyring_path, file));
      spdlog::warn("created local keyring {} (keyring_id {}, mode 0600)", options.keyring_path,
                   file.keyring_id);
    }
  }
  {
    absl::MutexLock lock(&kms->mu_);
    KMSP_RETURN_IF_ERROR(kms->ReloadIfChangedLocked());
  }
  spdlog::warn(
      "KMS backend 'local' is a development backend: the KEKs are in the file {}; use a real KMS "
      "(--kms aws) in production",
      options.keyring_path);
  return kms;
}

std::string LocalKms::KekIdFor(uint32_t version) const {
  absl::MutexLock lock(&mu_);
  return fmt::format("local:{}:v{}", ring_.keyring_id, version);
}

absl::Status LocalKms::ReloadIfChangedLocked() {
  KMSP_ASSIGN_OR_RETURN(std::string stamp, StampOf(options_.keyring_path));
  if (stamp == ring_.stamp && !ring_.keks.empty()) return absl::OkStatus();
  KMSP_ASSIGN_OR_RETURN(KeyringFile file, ParseKeyringFile(options_.keyring_path));
  if (!ring_.keyring_id.empty() && file.keyring_id != ring_.keyring_id) {
    // The file was replaced by another keyring: keep serving what we hold, refuse to switch.
    return absl::FailedPreconditionError(fmt::format(
        "keyring {} now has keyring_id {}, not {}; restore the original file",
        options_.keyring_path, file.keyring_id, ring_.keyring_id));
  }
  Keyring ring;
  ring.keyring_id = file.keyring_id;
  ring.primary = file.primary;
  ring.stamp = stamp;
  for (Entry& e : file.entries) {
    KMSP_ASSIGN_OR_RETURN(ring.keks[e.version], AesGcm::Create(std::move(e.material)));
  }
  if (!ring_.keks.empty() && (ring.primary != ring_.primary || ring.keks.size() != ring_.keks.size())) {
    spdlog::info("local keyring reloaded: primary version {} of {}", ring.primary, ring.keks.size());
  }
  ring_ = std::move(ring);
  return absl::OkStatus();
}

absl::StatusOr<WrappedKey> LocalKms::Wrap(const SecretBytes& key, const CallContext& ctx) {
  absl::MutexLock lock(&mu_);
  const AesGcm& kek = *ring_.keks.at(ring_.primary);
  std::string kek_id = fmt::format("local:{}:v{}", ring_.keyring_id, ring_.primary);
  KMSP_ASSIGN_OR_RETURN(std::string blob,
                        kek.Seal(key.Reveal(), std::string(kWrapAadPrefix) + kek_id));
  return WrappedKey{std::move(kek_id), std::move(blob)};
}

absl::StatusOr<SecretBytes> LocalKms::Unwrap(const WrappedKey& wrapped, const CallContext& ctx) {
  // kek_id = "local:" + keyring_id(32) + ":v" + version.
  std::string_view id = wrapped.kek_id;
  constexpr std::string_view kPrefix = "local:";
  uint32_t version = 0;
  if (id.size() < kPrefix.size() + 32 + 3 || id.substr(0, kPrefix.size()) != kPrefix ||
      id.substr(kPrefix.size() + 32, 2) != ":v" ||
      !absl::SimpleAtoi(ToAbsl(id.substr(kPrefix.size() + 34)), &version)) {
    return absl::FailedPreconditionError("key_id is not a local keyring key_id");
  }
  std::string_view keyring_id = id.substr(kPrefix.size(), 32);
  absl::MutexLock lock(&mu_);
  if (keyring_id != ring_.keyring_id) {
    return absl::FailedPreconditionError(
        fmt::format("key_id belongs to another keyring (this one is {})", ring_.keyring_id));
  }
  if (ring_.keks.count(version) == 0) {
    // Another process may have rotated the keyring since we last read it.
    absl::Status reload = ReloadIfChangedLocked();
    if (!reload.ok()) spdlog::warn("local keyring reload failed: {}", reload.ToString());
    if (ring_.keks.count(version) == 0) {
      return absl::FailedPreconditionError(
          fmt::format("key_id names version {}, which keyring {} does not hold", version,
                      ring_.keyring_id));
    }
  }
  auto key = ring_.keks.at(version)->Open(wrapped.blob, std::string(kWrapAadPrefix) + wrapped.kek_id);
  if (!key.ok()) return absl::InvalidArgumentError("wrapped data key failed authentication");
  return key;
}

absl::StatusOr<KeyStatus> LocalKms::Probe(const CallContext& ctx) {
  absl::MutexLock lock(&mu_);
  absl::Status reload = ReloadIfChangedLocked();
  if (!reload.ok()) {
    // The keys we hold stay usable; report the file problem as an outage, not a revocation.
    return absl::UnavailableError(std::string(ToStd(reload.message())));
  }
  return KeyStatus{fmt::format("local:{}:v{}", ring_.keyring_id, ring_.primary),
                   fmt::format("local keyring {} version {} of {}", ring_.keyring_id,
                               ring_.primary, ring_.keks.size())};
}

absl::Status LocalKms::RotateKek(const CallContext& ctx) {
  KMSP_ASSIGN_OR_RETURN(auto file_lock, FileLock::Acquire(options_.keyring_path));
  KMSP_ASSIGN_OR_RETURN(KeyringFile file, ParseKeyringFile(options_.keyring_path));
  uint32_t next = 0;
  for (const Entry& e : file.entries) next = std::max(next, e.version);
  ++next;
  KMSP_ASSIGN_OR_RETURN(Entry entry, NewEntry(next, clock_));
  file.entries.push_back(std::move(entry));
  file.primary = next;
  KMSP_RETURN_IF_ERROR(WriteKeyringFile(options_.keyring_path, file));
  spdlog::info("local keyring {} rotated: new primary version {}", file.keyring_id, next);
  absl::MutexLock lock(&mu_);
  return ReloadIfChangedLocked();
}

}  // namespace kmsplugin
