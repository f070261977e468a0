#include "kms/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "fmt/format.h"

namespace kmsplugin {

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, bool owner_only) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = fmt::format("cannot open {}: {}", path, std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::UnavailableError(msg);
  }
  absl::Cleanup closer = [fd] { close(fd); };
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::UnavailableError(fmt::format("cannot stat {}: {}", path, std::strerror(errno)));
  }
  if (owner_only && (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(fmt::format(
        "{} is accessible by group or others (mode {:o}); run chmod 600 on it", path,
        st.st_mode & 0777));
  }
  if (st.st_size > static_cast<off_t>(kMaxSecretFileSize)) {
    return absl::InvalidArgumentError(fmt::format("{} is larger than 1 MiB", path));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      std::fill(out.begin(), out.end(), '\0');
      return absl::UnavailableError(fmt::format("cannot read {}: {}", path, std::strerror(err)));
    }
    if (n == 0) break;  // The file shrank meanwhile: keep what was read.
    got += static_cast<size_t>(n);
  }
  out.resize(got);  // Shrinking never reallocates.
  return out;
}

}  // namespace kmsplugin
