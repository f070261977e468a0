#include "tests/reencrypt/etcd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/time/clock.h"
#include "fmt/format.h"

extern char** environ;

namespace kmsplugin::testing {
namespace {

absl::StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("bind/getsockname failed");
  }
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

absl::Status RunOpenssl(const std::string& dir, std::vector<std::string> args) {
  ProcessOptions p;
  p.binary = "/usr/bin/openssl";
  p.args = std::move(args);
  p.working_dir = dir;
  p.stdout_path = dir + "/openssl.log";
  p.stderr_path = dir + "/openssl.log";
  auto exit = Subprocess::Run(p, absl::Seconds(30));
  if (!exit.ok()) return exit.status();
  if (!exit->exited || exit->code != 0) {
    auto log = ReadFile(dir + "/openssl.log");
    return absl::InternalError(fmt::format("openssl {} failed ({}): {}", p.args[0],
                                           exit->ToString(), log.ok() ? *log : ""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  auto req = [&](std::vector<std::string> head, std::vector<std::string> tail) {
    head.insert(head.end(), ec.begin(), ec.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  absl::Status s = RunOpenssl(
      dir, req({"req", "-x509"},
               {"-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=kmsp-test-ca"}));
  if (!s.ok()) return s;
  s = WriteFile(dir + "/server.ext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth,clientAuth\n");
  if (!s.ok()) return s;
  s = WriteFile(dir + "/client.ext", "extendedKeyUsage=clientAuth\n");
  if (!s.ok()) return s;
  for (const char* name : {"server", "client"}) {
    std::string n = name;
    s = RunOpenssl(dir, req({"req"}, {"-keyout", n + ".key", "-out", n + ".csr", "-subj",
                                      "/CN=kmsp-test-" + n}));
    if (!s.ok()) return s;
    s = RunOpenssl(dir,
                   {"x509", "-req", "-in", n + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", n + ".crt", "-days", "1", "-extfile", n + ".ext"});
    if (!s.ok()) return s;
  }
  return TestPki{dir + "/ca.crt", dir + "/server.crt", dir + "/server.key", dir + "/client.crt",
                 dir + "/client.key"};
}

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(const EtcdOptions& options) {
  absl::Status last;
  // A port picked by bind(0) can be taken by someone else before etcd binds it: retry.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto client_port = FreeLoopbackPort();
    auto peer_port = FreeLoopbackPort();
    if (!client_port.ok()) return client_port.status();
    if (!peer_port.ok()) return peer_port.status();
    const std::string scheme = options.tls != nullptr ? "https" : "http";
    const std::string client_url = fmt::format("{}://127.0.0.1:{}", scheme, *client_port);
    const std::string peer_url = fmt::format("http://127.0.0.1:{}", *peer_port);
    ProcessOptions p;
    p.binary = kEtcdBinary;
    p.args = {"--name",
              "default",
              "--data-dir",
              options.data_dir,
              "--listen-client-urls",
              client_url,
              "--advertise-client-urls",
              client_url,
              "--listen-peer-urls",
              peer_url,
              "--initial-advertise-peer-urls",
              peer_url,
              "--initial-cluster",
              "default=" + peer_url,
              "--log-outputs",
              "stderr",
              "--logger",
              "zap"};
    if (options.tls != nullptr) {
      p.args.insert(p.args.end(),
                    {"--cert-file", options.tls->server_cert, "--key-file", options.tls->server_key});
      // etcd 3.4 asks every client for a certificate once it has a trusted CA file.
      if (options.client_cert_auth) {
        p.args.insert(p.args.end(),
                      {"--client-cert-auth", "--trusted-ca-file", options.tls->ca_cert});
      }
    }
    p.stdout_path = options.log_path;
    p.stderr_path = options.log_path;
    auto process = Subprocess::Start(p);
    if (!process.ok()) return process.status();

    // Ready when a gRPC connection is established (TLS handshake included).
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (options.tls != nullptr) {
      grpc::SslCredentialsOptions ssl;
      auto ca = ReadFile(options.tls->ca_cert);
      auto cert = ReadFile(options.tls->client_cert);
      auto key = ReadFile(options.tls->client_key);
      if (!ca.ok() || !cert.ok() || !key.ok()) return absl::InternalError("cannot read test PKI");
      ssl.pem_root_certs = *ca;
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
      creds = grpc::SslCredentials(ssl);
    }
    auto channel = grpc::CreateChannel(fmt::format("127.0.0.1:{}", *client_port), creds);
    const absl::Time deadline = absl::Now() + options.ready_timeout;
    bool connected = false;
    while (absl::Now() < deadline && (*process)->Running()) {
      // Bounded waits so that an etcd that died is noticed.
      if (channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)))) {
        connected = true;
        break;
      }
    }
    if (connected) {
      return std::unique_ptr<EtcdProcess>(
          new EtcdProcess(options, client_url, std::move(*process)));
    }
    auto log = ReadFile(options.log_path);
    std::string tail = log.ok() ? log->substr(log->size() > 2000 ? log->size() - 2000 : 0) : "";
    last = absl::UnavailableError(fmt::format("etcd did not become ready: {}", tail));
    (void)(*process)->Kill();
  }
  return last;
}

absl::StatusOr<std::unique_ptr<reencrypt::EtcdClient>> EtcdProcess::NewClient() const {
  reencrypt::EtcdClientOptions o;
  o.endpoints = {endpoint_};
  if (options_.tls != nullptr) {
    o.ca_file = options_.tls->ca_cert;
    o.cert_file = options_.tls->client_cert;
    o.key_file = options_.tls->client_key;
  }
  o.request_timeout = absl::Seconds(30);
  return reencrypt::CreateGrpcEtcdClient(o);
}

absl::StatusOr<std::unique_ptr<PipedProcess>> PipedProcess::Start(
    const std::string& binary, const std::vector<std::string>& args,
    const std::string& stdout_path) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  int out = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return absl::InternalError("cannot open " + stdout_path);
  }
  std::vector<std::string> argv_s = {binary};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_s.size() + 1);
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out, 1);
    dup2(pipefd[1], 2);
    execve(binary.c_str(), argv.data(), environ);
    _exit(127);
  }
  close(out);
  close(pipefd[1]);
  return std::unique_ptr<PipedProcess>(new PipedProcess(pid, pipefd[0]));
}

PipedProcess::~PipedProcess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    int ws = 0;
    waitpid(pid_, &ws, 0);
  }
  close(fd_);
}

absl::StatusOr<std::optional<std::string>> PipedProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return std::optional<std::string>(std::move(line));
    }
    if (eof_) {
      if (buffer_.empty()) return std::optional<std::string>();
      std::string line = std::move(buffer_);
      buffer_.clear();
      return std::optional<std::string>(std::move(line));
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("no stderr line in time");
    pollfd pfd{fd_, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0 && errno != EINTR) return absl::InternalError("poll failed");
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0 && errno != EINTR) return absl::InternalError("read failed");
    if (n == 0) eof_ = true;
    if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::string> PipedProcess::ReadRest(absl::Duration timeout) {
  std::string all;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    auto line = ReadLine(deadline - absl::Now());
    if (!line.ok()) return line.status();
    if (!line->has_value()) return all;
    all += **line + "\n";
  }
}

absl::Status PipedProcess::Kill(int sig) {
  if (reaped_) return absl::OkStatus();
  if (kill(pid_, sig) != 0) return absl::InternalError("kill failed");
  return absl::OkStatus();
}

absl::StatusOr<ExitInfo> PipedProcess::Wait(absl::Duration timeout) {
  // Drain stderr until EOF (the child closed it by exiting), then reap.
  auto rest = ReadRest(timeout);
  if (!rest.ok()) return rest.status();
  drained_ += *rest;
  int ws = 0;
  if (waitpid(pid_, &ws, 0) != pid_) return absl::InternalError("waitpid failed");
  reaped_ = true;
  return ExitInfo::FromWaitStatus(ws);
}

}  // namespace kmsplugin::testing
