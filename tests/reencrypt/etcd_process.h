// A real etcd-server (/usr/bin/etcd) for integration tests: loopback only, random free ports, a
// temporary data dir, optional server TLS and client-certificate auth. Ready when a gRPC
// connection to its client port is established (with a deadline). The destructor SIGKILLs and
// reaps it (Subprocess), so a failing test leaves nothing behind.
//
// Also: a test PKI made with the openssl CLI (CA, server cert for 127.0.0.1, client cert), and a
// child process whose stderr is read line by line through a pipe (to react to progress output).
#ifndef KMSP_TESTS_REENCRYPT_ETCD_PROCESS_H_
#define KMSP_TESTS_REENCRYPT_ETCD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/integration/plugin_process.h"
#include "tools/reencrypt/etcd_client.h"

namespace kmsplugin::testing {

inline constexpr char kEtcdBinary[] = "/usr/bin/etcd";

struct TestPki {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;
  std::string client_key;
};
// Writes a CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost) and a client certificate
// into `dir` with the openssl CLI (P-256 keys, valid one day).
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

struct EtcdOptions {
  std::string data_dir;           // required; created by etcd
  std::string log_path;           // required
  const TestPki* tls = nullptr;   // serve https with this PKI
  bool client_cert_auth = false;  // require client certificates (mutual TLS)
  absl::Duration ready_timeout = absl::Seconds(30);
};

class EtcdProcess {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(const EtcdOptions& options);

  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  const std::string& endpoint() const { return endpoint_; }
  // A client for this server (with the PKI's client cert when TLS is on).
  absl::StatusOr<std::unique_ptr<reencrypt::EtcdClient>> NewClient() const;
  Subprocess& process() { return *process_; }

 private:
  EtcdProcess(EtcdOptions options, std::string endpoint, std::unique_ptr<Subprocess> process)
      : options_(std::move(options)),
        endpoint_(std::move(endpoint)),
        process_(std::move(process)) {}
  EtcdOptions options_;
  std::string endpoint_;
  std::unique_ptr<Subprocess> process_;
};

// A child process with stdout going to a file and stderr to a pipe the test reads line by line.
class PipedProcess {
 public:
  static absl::StatusOr<std::unique_ptr<PipedProcess>> Start(const std::string& binary,
                                                             const std::vector<std::string>& args,
                                                             const std::string& stdout_path);
  ~PipedProcess();  // SIGKILL + reap if running
  PipedProcess(const PipedProcess&) = delete;
  PipedProcess& operator=(const PipedProcess&) = delete;

  // The next stderr line (without '\n'); nullopt at EOF. DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<std::optional<std::string>> ReadLine(absl::Duration timeout);
  // Everything left on stderr until EOF (bounded by `timeout`).
  absl::StatusOr<std::string> ReadRest(absl::Duration timeout);
  absl::Status Kill(int sig);
  // Reads stderr to EOF (kept in drained_stderr()), then reaps the child (bounded by `timeout`).
  absl::StatusOr<ExitInfo> Wait(absl::Duration timeout);
  const std::string& drained_stderr() const { return drained_; }
  pid_t pid() const { return pid_; }

 private:
  PipedProcess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  pid_t pid_;
  int fd_;
  bool reaped_ = false;
  std::string buffer_;
  std::string drained_;
  bool eof_ = false;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_REENCRYPT_ETCD_PROCESS_H_
