#include "kms/local/local_kms.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "base/error_text.h"
#include "base/printable.h"
#include "base/status.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

constexpr std::string_view kWrapAadPrefix = "kms-plugin/local-wrap/v1:";
constexpr size_t kKekSize = 32;

absl::StatusOr<std::string> StampOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::UnavailableError(
        fmt::format("cannot stat keyring {}: {}", path, ErrnoText(errno)));
  }
  return fmt::format("{}.{}:{}:{}", st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_size, st.st_ino);
}

absl::StatusOr<KeyringEntry> NewEntry(uint32_t version, const Clock* clock) {
  KMSP_ASSIGN_OR_RETURN(SecretBytes material, RandomSecret(kKekSize));
  return KeyringEntry{version, FormatRfc3339(clock->Now()), std::move(material)};
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalKms>> LocalKms::Create(const LocalKmsOptions& options,
                                                           const Clock* clock) {
  if (options.keyring_path.empty() || options.keyring_path[0] != '/') {
    return absl::InvalidArgumentError("--local-keyring must be an absolute path");
  }
  if (!options.expected_keyring_id.empty() && options.create_if_missing) {
    return absl::InvalidArgumentError(
        "--local-keyring-id cannot be combined with --local-keyring-create: a new keyring gets a "
        "new random keyring_id; copy the cluster's keyring file instead");
  }
  std::unique_ptr<LocalKms> kms(new LocalKms(options, clock));
  // lstat: a symlink (even a dangling one) is never replaced by a new keyring.
  struct stat st;
  if (lstat(options.keyring_path.c_str(), &st) != 0 && errno == ENOENT) {
    if (!options.create_if_missing) {
      return absl::NotFoundError(fmt::format(
          "local keyring {} does not exist. Every node must use the same keyring: copy the "
          "cluster's keyring file here (mode 0600), or pass --local-keyring-create to create a new "
          "one (the first node, or a single-node cluster)",
          options.keyring_path));
    }
    KMSP_ASSIGN_OR_RETURN(auto lock,
                          KeyringLock::Acquire(options.keyring_path, absl::InfiniteFuture()));
    if (lstat(options.keyring_path.c_str(), &st) != 0 && errno == ENOENT) {
      // Nobody created it meanwhile.
      KeyringFile file;
      KMSP_ASSIGN_OR_RETURN(file.keyring_id, RandomHex(16));
      KMSP_ASSIGN_OR_RETURN(KeyringEntry first, NewEntry(1, clock));
      file.primary = 1;
      file.entries.push_back(std::move(first));
      KMSP_RETURN_IF_ERROR(WriteKeyringFile(options.keyring_path, file));
      spdlog::warn(
          "created a NEW local keyring {} with keyring_id {} (mode 0600); every node of this "
          "cluster must use a copy of this file (and may pass --local-keyring-id {})",
          options.keyring_path, file.keyring_id, file.keyring_id);
    }
  }
  {
    absl::MutexLock lock(&kms->mu_);
    KMSP_RETURN_IF_ERROR(kms->ReloadIfChangedLocked());
    const Keyring& ring = kms->ring_;
    if (!options.expected_keyring_id.empty() && ring.keyring_id != options.expected_keyring_id) {
      return absl::FailedPreconditionError(fmt::format(
          "local keyring {} has keyring_id {}, not {} as --local-keyring-id requires; copy the "
          "cluster's keyring file to this node (every node must share one keyring)",
          options.keyring_path, ring.keyring_id, Printable(options.expected_keyring_id)));
    }
    spdlog::info("local keyring {}: keyring_id {}, primary version {} of {}", options.keyring_path,
                 ring.keyring_id, ring.primary, ring.keks.size());
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

void LocalKms::WarnIfNearLimits(const KeyringFile& file, size_t size) const {
  const size_t max_versions = std::min(options_.max_versions, kMaxKeyringVersions);
  if (file.entries.size() * 4 < max_versions * 3 && size * 4 < kMaxKeyringFileSize * 3) return;
  spdlog::warn(
      "local keyring {} holds {} versions ({} bytes); at {} versions ({} bytes) it can no longer "
      "rotate. Move to a new keyring (or a real KMS) and re-encrypt before then",
      options_.keyring_path, file.entries.size(), size, max_versions, kMaxKeyringFileSize);
}

absl::StatusOr<std::string> LocalKms::WriteTarget() const {
  const std::string& path = options_.keyring_path;
  struct stat st;
  if (lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  // Reading succeeded, so the symlink is allowed: replace the file it points to, keep the link.
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) {
    return absl::UnavailableError(
        fmt::format("cannot resolve the symlink {}: {}", path, ErrnoText(errno)));
  }
  return std::string(resolved);
}

absl::Status LocalKms::ReloadIfChangedLocked() {
  KMSP_ASSIGN_OR_RETURN(std::string stamp, StampOf(options_.keyring_path));
  if (stamp == ring_.stamp && !ring_.keks.empty()) return absl::OkStatus();
  size_t size = 0;
  KMSP_ASSIGN_OR_RETURN(KeyringFile file,
                        ReadKeyringFile(options_.keyring_path, options_.allow_symlinks, &size));
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
  for (KeyringEntry& e : file.entries) {
    KMSP_ASSIGN_OR_RETURN(ring.keks[e.version], AesGcm::Create(std::move(e.material)));
  }
  if (!ring_.keks.empty() && (ring.primary != ring_.primary || ring.keks.size() != ring_.keks.size())) {
    spdlog::info("local keyring reloaded: primary version {} of {}", ring.primary, ring.keks.size());
  }
  if (ring.keks.size() != ring_.keks.size()) WarnIfNearLimits(file, size);
  ring_ = std::move(ring);
  return absl::OkStatus();
}

void LocalKms::Report(std::string_view operation, std::string_view kek_id,
                      const absl::Status& status, absl::Time start, const CallContext& ctx) const {
  RemoteAttempt report{"local", operation, options_.keyring_path, kek_id, ""};
  report.code = status.code();
  report.error_class = ErrorClassOf(status);
  report.latency = absl::Now() - start;
  report.uid = ctx.uid;
  ReportAttempt(options_.observer, report, status);
}

absl::StatusOr<WrappedKey> LocalKms::Wrap(const SecretBytes& key, const CallContext& ctx) {
  const absl::Time start = absl::Now();
  absl::StatusOr<WrappedKey> wrapped = WrapNow(key);
  Report("wrap", wrapped.ok() ? std::string_view(wrapped->kek_id) : "", wrapped.status(), start,
         ctx);
  return wrapped;
}

absl::StatusOr<SecretBytes> LocalKms::Unwrap(const WrappedKey& wrapped, const CallContext& ctx) {
  const absl::Time start = absl::Now();
  absl::StatusOr<SecretBytes> key = UnwrapNow(wrapped);
  Report("unwrap", wrapped.kek_id, key.status(), start, ctx);
  return key;
}

absl::Status LocalKms::RotateKek(const CallContext& ctx) {
  const absl::Time start = absl::Now();
  absl::Status status = RotateNow(ctx);
  std::string kek_id;
  if (status.ok()) {
    absl::MutexLock lock(&mu_);
    kek_id = fmt::format("local:{}:v{}", ring_.keyring_id, ring_.primary);
  }
  Report("rotate", kek_id, status, start, ctx);
  return status;
}

absl::StatusOr<WrappedKey> LocalKms::WrapNow(const SecretBytes& key) {
  absl::MutexLock lock(&mu_);
  const AesGcm& kek = *ring_.keks.at(ring_.primary);
  std::string kek_id = fmt::format("local:{}:v{}", ring_.keyring_id, ring_.primary);
  KMSP_ASSIGN_OR_RETURN(std::string blob,
                        kek.Seal(key.Reveal(), std::string(kWrapAadPrefix) + kek_id));
  return WrappedKey{std::move(kek_id), std::move(blob)};
}

absl::StatusOr<SecretBytes> LocalKms::UnwrapNow(const WrappedKey& wrapped) {
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
    return absl::FailedPreconditionError(fmt::format(
        "key_id is from local keyring {}, but this plugin's keyring {} is {}: all nodes must "
        "share one keyring (copy the same keyring file to every node)",
        Printable(keyring_id), options_.keyring_path, ring_.keyring_id));
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

absl::Status LocalKms::RotateNow(const CallContext& ctx) {
  const std::string& path = options_.keyring_path;
  KMSP_ASSIGN_OR_RETURN(auto file_lock, KeyringLock::Acquire(path, ctx.deadline));
  size_t size = 0;
  KMSP_ASSIGN_OR_RETURN(KeyringFile file, ReadKeyringFile(path, options_.allow_symlinks, &size));
  const size_t max_versions = std::min(options_.max_versions, kMaxKeyringVersions);
  if (file.entries.size() >= max_versions) {
    return absl::OutOfRangeError(fmt::format(
        "keyring {} holds {} versions, the most a keyring may hold; nothing was rotated. Move to "
        "a new keyring (or a real KMS) and re-encrypt",
        path, file.entries.size()));
  }
  uint32_t last = 0;
  for (const KeyringEntry& e : file.entries) last = std::max(last, e.version);
  if (last == std::numeric_limits<uint32_t>::max()) {
    return absl::OutOfRangeError(fmt::format(
        "keyring {} already holds version {}, the largest there is; nothing was rotated. Move to "
        "a new keyring (or a real KMS) and re-encrypt",
        path, last));
  }
  const uint32_t next = last + 1;
  KMSP_ASSIGN_OR_RETURN(KeyringEntry entry, NewEntry(next, clock_));
  file.entries.push_back(std::move(entry));
  file.primary = next;
  if (absl::Now() >= ctx.deadline) {
    return absl::DeadlineExceededError(
        "the call's deadline passed before the keyring was written; nothing was rotated");
  }
  KMSP_ASSIGN_OR_RETURN(std::string target, WriteTarget());
  KMSP_RETURN_IF_ERROR(WriteKeyringFile(target, file));
  spdlog::info("local keyring {} rotated: new primary version {}", file.keyring_id, next);
  absl::MutexLock lock(&mu_);
  return ReloadIfChangedLocked();
}

}  // namespace kmsplugin
