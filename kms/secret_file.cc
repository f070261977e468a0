#include "kms/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "base/error_text.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

std::atomic<bool> symlinks_allowed{false};

std::string_view FileType(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

}  // namespace

void SetSecretFileSymlinksAllowed(bool allowed) { symlinks_allowed.store(allowed); }
bool SecretFileSymlinksAllowed() { return symlinks_allowed.load(); }

absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           const SecretFileOptions& options) {
  const bool follow = options.allow_symlinks.value_or(SecretFileSymlinksAllowed());
  // O_NONBLOCK: opening a FIFO without a writer would block for ever; it is refused below.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
  if (fd < 0) {
    int err = errno;
    struct stat lst;
    if (!follow && err == ELOOP && lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
      return absl::FailedPreconditionError(fmt::format(
          "{} is a symbolic link, which secret files may not be; point to the file itself, or "
          "pass --allow-secret-symlinks when it is in a Kubernetes Secret or ConfigMap volume",
          path));
    }
    std::string msg = fmt::format("cannot open {}: {}", path, ErrnoText(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::UnavailableError(msg);
  }
  absl::Cleanup closer = [fd] { close(fd); };
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::UnavailableError(fmt::format("cannot stat {}: {}", path, ErrnoText(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("{} is {}, not a regular file", path, FileType(st.st_mode)));
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    return absl::FailedPreconditionError(
        fmt::format("{} is owned by uid {}, not by this process (uid {}) or root; run chown on it",
                    path, st.st_uid, geteuid()));
  }
  if (options.owner_only && (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        fmt::format("{} is accessible by group or others (mode {:o}); run chmod 600 on it", path,
                    st.st_mode & 0777));
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > options.max_size) {
    return absl::InvalidArgumentError(fmt::format("{} is {} bytes, more than the {} allowed", path,
                                                  st.st_size, options.max_size));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      std::fill(out.begin(), out.end(), '\0');
      return absl::UnavailableError(fmt::format("cannot read {}: {}", path, ErrnoText(err)));
    }
    if (n == 0) break;  // The file shrank meanwhile: keep what was read.
    got += static_cast<size_t>(n);
  }
  out.resize(got);  // Shrinking never reallocates.
  return out;
}

}  // namespace kmsplugin
