#include "kms/local/keyring_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"
#include "base/error_text.h"
#include "base/status.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

constexpr std::string_view kKind = "kms-plugin-local-keyring";
constexpr size_t kKekSize = 32;

absl::Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  return absl::UnavailableError(fmt::format("{} {}: {}", what, path, ErrnoText(err)));
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A JSON unsigned integer that fits in uint32 (nlohmann's get<uint32_t>() would truncate).
bool GetU32(const nlohmann::json& v, uint32_t* out) {
  if (!v.is_number_unsigned()) return false;
  uint64_t wide = v.get<uint64_t>();
  if (wide > std::numeric_limits<uint32_t>::max()) return false;
  *out = static_cast<uint32_t>(wide);
  return true;
}

std::string DirOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

absl::Status FsyncDir(const std::string& path) {
  std::string dir = DirOf(path);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir, errno);
  fsync(fd);
  close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KeyringFile> ParseKeyring(std::string_view text, std::string_view path) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                           /*allow_exceptions=*/false);
  // Wipes every material string held by the json document, whatever happens below.
  absl::Cleanup wipe_json = [&j] {
    if (!j.is_object()) return;
    auto keys = j.find("keys");
    if (keys == j.end() || !keys->is_array()) return;
    for (auto& k : *keys) {
      if (!k.is_object()) continue;
      auto m = k.find("material");
      if (m != k.end() && m->is_string()) WipeString(m->get_ref<std::string&>());
    }
  };
  auto bad = [&path](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format("keyring {} is malformed: {}", path, why));
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto kind = j.find("kind");
  if (kind == j.end() || *kind != kKind) return bad("kind is not " + std::string(kKind));
  auto format = j.find("format");
  if (format == j.end() || !format->is_number_integer() || *format != kKeyringFormat) {
    return bad("unsupported format (want 1)");
  }
  KeyringFile out;
  auto id = j.find("keyring_id");
  if (id == j.end() || !id->is_string()) return bad("no keyring_id");
  out.keyring_id = id->get<std::string>();
  if (out.keyring_id.size() != 32 || !IsLowerHex(out.keyring_id)) {
    return bad("keyring_id must be 32 lower-case hex characters");
  }
  auto primary = j.find("primary");
  if (primary == j.end() || !GetU32(*primary, &out.primary)) {
    return bad("no primary (an integer from 1 to 4294967295)");
  }
  auto keys = j.find("keys");
  if (keys == j.end() || !keys->is_array() || keys->empty()) return bad("no keys");
  std::unordered_set<uint32_t> versions;
  for (auto& k : *keys) {
    KeyringEntry e;
    if (!k.is_object() || !k.contains("version") || !GetU32(k["version"], &e.version) ||
        !k.contains("material") || !k["material"].is_string()) {
      return bad("each key needs a version (an integer from 1 to 4294967295) and a material");
    }
    if (e.version == 0) return bad("versions start at 1");
    if (!versions.insert(e.version).second) return bad("duplicate version");
    auto created = k.find("created");
    if (created != k.end() && created->is_string()) e.created = created->get<std::string>();
    auto material = Base64DecodeSecret(k["material"].get_ref<const std::string&>());
    if (!material.ok() || material->size() != kKekSize) {
      return bad(fmt::format("version {} material is not base64 of 32 bytes", e.version));
    }
    e.material = std::move(*material);
    out.entries.push_back(std::move(e));
  }
  if (versions.count(out.primary) == 0) return bad("primary names no version");
  return out;
}

std::string SerializeKeyring(const KeyringFile& file) {
  nlohmann::ordered_json j;
  j["kind"] = kKind;
  j["format"] = kKeyringFormat;
  j["keyring_id"] = file.keyring_id;
  j["primary"] = file.primary;
  j["keys"] = nlohmann::ordered_json::array();
  absl::Cleanup wipe = [&j] {
    for (auto& k : j["keys"]) WipeString(k["material"].get_ref<std::string&>());
  };
  for (const KeyringEntry& e : file.entries) {
    nlohmann::ordered_json k;
    k["version"] = e.version;
    k["created"] = e.created;
    k["material"] = Base64Encode(e.material.Reveal());
    j["keys"].push_back(std::move(k));
  }
  return j.dump(2) + "\n";
}

absl::StatusOr<KeyringFile> ReadKeyringFile(const std::string& path,
                                            std::optional<bool> allow_symlinks, size_t* size) {
  SecretFileOptions options;
  options.owner_only = true;
  options.allow_symlinks = allow_symlinks;
  options.max_size = kMaxKeyringFileSize;
  absl::StatusOr<std::string> read = ReadSecretFile(path, options);
  if (!read.ok()) {
    // A keyring that cannot be read is an outage of this backend, not a missing key.
    if (read.status().code() == absl::StatusCode::kNotFound) {
      return absl::UnavailableError(std::string(ToStd(read.status().message())));
    }
    return read.status();
  }
  std::string text = std::move(*read);
  absl::Cleanup wipe_text = [&text] { WipeString(text); };
  if (size != nullptr) *size = text.size();
  return ParseKeyring(text, path);
}

absl::Status WriteKeyringFile(const std::string& path, const KeyringFile& file) {
  std::string text = SerializeKeyring(file);
  absl::Cleanup wipe = [&text] { WipeString(text); };
  // mkstemp: O_CREAT | O_EXCL (never an existing file or a symlink), a random name, mode 0600.
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot create a temp file beside", path, errno);
  auto fail = [&](std::string_view what) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return ErrnoStatus(what, tmp, err);
  };
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) return fail("cannot sync");
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return ErrnoStatus("cannot replace", path, err);
  }
  return FsyncDir(path);
}

absl::StatusOr<std::unique_ptr<KeyringLock>> KeyringLock::Acquire(const std::string& keyring_path,
                                                                  absl::Time deadline) {
  const std::string lock_path = keyring_path + ".lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus("cannot open lock file", lock_path, errno);
  auto fail = [&](int err) {
    close(fd);
    return ErrnoStatus("cannot lock", lock_path, err);
  };
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return fail(errno);
    if (deadline == absl::InfiniteFuture()) {
      spdlog::warn("waiting for the keyring lock {}: another process holds it", lock_path);
      while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) return fail(errno);
      }
      break;
    }
    // A bounded wait: poll, so that no blocked flock() outlives the caller's deadline and takes
    // the lock (and rotates) after the caller was told it did not.
    absl::Duration pause = absl::Milliseconds(1);
    while (true) {
      const absl::Time now = absl::Now();
      if (now >= deadline) {
        close(fd);
        return absl::DeadlineExceededError(fmt::format(
            "the keyring lock {} is held by another process; gave up waiting at the call's "
            "deadline, nothing was changed",
            lock_path));
      }
      absl::SleepFor(std::min(pause, deadline - now));
      pause = std::min(pause * 2, absl::Milliseconds(50));
      if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
      if (errno != EWOULDBLOCK && errno != EINTR) return fail(errno);
    }
    break;
  }
  return std::unique_ptr<KeyringLock>(new KeyringLock(fd));
}

KeyringLock::~KeyringLock() {
  flock(fd_, LOCK_UN);
  close(fd_);
}

}  // namespace kmsplugin
