// `kms-plugin recovery-keygen`: makes the offline recovery key pair of issue 12 (RSA-OAEP-SHA256,
// crypto/rsa_oaep.h). The private key is written as PKCS#8 PEM, mode 0600; the public key is what
// `serve --recovery-public-key` takes. Neither file is ever overwritten: both are created with
// O_EXCL, and on any failure nothing is left behind. Prints the key's fingerprint on stdout.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "base/error_text.h"
#include "cmd/commands.h"
#include "crypto/rsa_oaep.h"

namespace kmsplugin {
namespace {

struct KeygenFlags {
  std::string private_key_out;
  std::string public_key_out;
  int bits = kRsaRecoveryBits4096;
};

// Creates `path` (never overwrites; no symlink followed) with `mode`; -1 and *error on failure.
int CreateExclusive(const std::string& path, mode_t mode, std::string* error) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    *error = errno == EEXIST ? "refusing to overwrite " + path + " (it exists); nothing written"
                             : "cannot create " + path + ": " + ErrnoText(errno);
    return -1;
  }
  if (fchmod(fd, mode) != 0) {  // Exactly `mode`, whatever the umask.
    *error = "cannot chmod " + path + ": " + ErrnoText(errno);
    close(fd);
    return -1;
  }
  return fd;
}

// Writes all of `bytes`, fsyncs and closes `fd`.
bool WriteAndClose(int fd, std::string_view bytes, const std::string& path, std::string* error) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = "cannot write " + path + ": " + ErrnoText(errno);
      close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    *error = "cannot fsync " + path + ": " + ErrnoText(errno);
    close(fd);
    return false;
  }
  if (close(fd) != 0) {
    *error = "cannot close " + path + ": " + ErrnoText(errno);
    return false;
  }
  return true;
}

int Fail(const std::string& message) {
  std::cerr << "kms-plugin recovery-keygen: " << message << "\n";
  return 1;
}

int RunKeygen(const KeygenFlags& flags) {
  if (flags.private_key_out == flags.public_key_out) {
    return Fail("--private-key-out and --public-key-out must be different files");
  }
  // A fast refusal before the key generation; O_EXCL below is the authoritative check.
  for (const std::string* path : {&flags.private_key_out, &flags.public_key_out}) {
    struct stat st;
    if (lstat(path->c_str(), &st) == 0) {
      return Fail("refusing to overwrite " + *path + " (it exists); nothing written");
    }
  }
  absl::StatusOr<RsaKeyPairPem> pair = GenerateRsaKeyPair(flags.bits);
  if (!pair.ok()) return Fail(std::string(pair.status().message()));
  absl::StatusOr<RsaPublicKey> pub = RsaPublicKey::FromPem(pair->public_pem);
  if (!pub.ok()) return Fail(std::string(pub.status().message()));

  std::string error;
  const int priv_fd = CreateExclusive(flags.private_key_out, 0600, &error);
  if (priv_fd < 0) return Fail(error);
  const int pub_fd = CreateExclusive(flags.public_key_out, 0644, &error);
  if (pub_fd < 0) {
    close(priv_fd);
    unlink(flags.private_key_out.c_str());
    return Fail(error);
  }
  bool ok = WriteAndClose(priv_fd, pair->private_pem.Reveal(), flags.private_key_out, &error);
  pair->private_pem.Clear();
  if (ok) {
    ok = WriteAndClose(pub_fd, pair->public_pem, flags.public_key_out, &error);
  } else {
    close(pub_fd);
  }
  if (!ok) {
    unlink(flags.private_key_out.c_str());
    unlink(flags.public_key_out.c_str());
    return Fail(error + "; nothing written");
  }
  std::cerr << "kms-plugin recovery-keygen: RSA-" << pub->bits() << " recovery key pair written:\n"
            << "  private key " << flags.private_key_out
            << " (PKCS#8 PEM, mode 0600): store it OFFLINE, never on the cluster\n"
            << "  public key  " << flags.public_key_out
            << " (for kms-plugin serve --recovery-public-key)\n"
            << "  fingerprint (stdout):\n";
  std::cout << pub->FingerprintText() << std::endl;
  return 0;
}

}  // namespace

void AddRecoveryKeygenCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<KeygenFlags>();
  CLI::App* cmd = app.add_subcommand(
      "recovery-keygen",
      "Make an offline recovery RSA key pair for serve --recovery-public-key; print its "
      "fingerprint");
  cmd->add_option("--private-key-out", flags->private_key_out,
                  "New file for the private key (PKCS#8 PEM, mode 0600; never overwritten)")
      ->required();
  cmd->add_option("--public-key-out", flags->public_key_out,
                  "New file for the public key (PEM; never overwritten)")
      ->required();
  cmd->add_option("--bits", flags->bits, "RSA modulus size: 3072 or 4096")
      ->capture_default_str()
      ->check(CLI::IsMember({kRsaRecoveryBits3072, kRsaRecoveryBits4096}));
  cmd->callback([flags, exit_code] { *exit_code = RunKeygen(*flags); });
}

}  // namespace kmsplugin
