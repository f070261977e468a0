// reencrypt_bench: objects per second of the reencrypt tool against a real etcd-server, next to
// etcd's own put rate measured in the same run on the same machine.
//
//   reencrypt_bench [--objects N] [--concurrency C] [--value-size BYTES] [--etcd /usr/bin/etcd]
//
// Starts etcd on loopback (random ports, temp data dir under /dev/shm when present), writes N
// aescbc-encrypted secrets with C threads of plain Puts (that is the "etcd put rate"), then runs
// the Reencryptor over them (aescbc -> KMS v2 type 1, C workers) with an in-process base64 KMS
// (one Encrypt per run, so the plugin is not what is measured). Prints one line per figure and a
// JSON line. Not a test: it asserts nothing but that every object was rewritten.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "base/clock.h"
#include "crypto/aes_cbc.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/etcd_client.h"
#include "tools/reencrypt/reencryptor.h"
#include "tools/reencrypt/resources.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin {
namespace {

using namespace reencrypt;  // NOLINT: a bench program

class Base64Kms final : public KmsV2Client {
 public:
  absl::StatusOr<KmsV2Status> Status() override { return KmsV2Status{"v2", "ok", "bench-key-1"}; }
  absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes& pt, std::string_view) override {
    return KmsV2EncryptResult{
        Base64Encode(pt.Reveal()), "bench-key-1", {{"local-kek.kms.kubernetes.io", "bench"}}};
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ct, std::string_view,
                                      const std::map<std::string, std::string>&,
                                      std::string_view) override {
    return Base64DecodeSecret(ct);
  }
};

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  // 0 if the kernel gave no port (as an unbound socket's name reads).
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

struct Etcd {
  pid_t pid = -1;
  std::string dir;
  std::string endpoint;
  ~Etcd() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
};

bool StartEtcd(const std::string& binary, Etcd* etcd) {
  std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string tmpl = base + "/kmsp-reencrypt-bench-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return false;
  etcd->dir = tmpl;
  std::string client = fmt::format("http://127.0.0.1:{}", FreePort());
  std::string peer = fmt::format("http://127.0.0.1:{}", FreePort());
  etcd->endpoint = client;
  std::vector<std::string> args = {binary,
                                   "--name",
                                   "bench",
                                   "--data-dir",
                                   etcd->dir + "/data",
                                   "--listen-client-urls",
                                   client,
                                   "--advertise-client-urls",
                                   client,
                                   "--listen-peer-urls",
                                   peer,
                                   "--initial-advertise-peer-urls",
                                   peer,
                                   "--initial-cluster",
                                   "bench=" + peer,
                                   "--log-outputs",
                                   "stderr"};
  std::string log = etcd->dir + "/etcd.log";
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  etcd->pid = pid;
  return pid > 0;
}

int Main(int argc, char** argv) {
  int64_t objects = 5000;
  int concurrency = 4;
  size_t value_size = 1024;
  std::string etcd_binary = "/usr/bin/etcd";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    bool number_ok = true;
    if (flag == "--objects")
      number_ok = absl::SimpleAtoi(argv[i + 1], &objects);
    else if (flag == "--concurrency")
      number_ok = absl::SimpleAtoi(argv[i + 1], &concurrency);
    else if (flag == "--value-size")
      number_ok = absl::SimpleAtoi(argv[i + 1], &value_size);
    else if (flag == "--etcd")
      etcd_binary = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
    if (!number_ok) {
      std::fprintf(stderr, "%s wants a number\n", flag.c_str());
      return 2;
    }
  }
  Etcd etcd;
  if (!StartEtcd(etcd_binary, &etcd)) {
    std::fprintf(stderr, "cannot start %s\n", etcd_binary.c_str());
    return 2;
  }
  // Wait until etcd accepts TCP connections before dialling gRPC (whose reconnect back-off
  // would otherwise add seconds).
  int port = 0;
  if (!absl::SimpleAtoi(etcd.endpoint.substr(etcd.endpoint.rfind(':') + 1), &port)) {
    std::fprintf(stderr, "no port in etcd endpoint %s\n", etcd.endpoint.c_str());
    return 2;
  }
  const absl::Time tcp_deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < tcp_deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool up = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (up) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EtcdClientOptions eo;
  eo.endpoints = {etcd.endpoint};
  auto client = CreateGrpcEtcdClient(eo);
  if (!client.ok()) return 2;
  const absl::Time ready_deadline = absl::Now() + absl::Seconds(30);
  while (!(*client)->Range("/", "", {}).ok()) {
    if (absl::Now() > ready_deadline) {
      std::fprintf(stderr, "etcd did not become ready\n");
      return 2;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }

  // 1. etcd's own put rate: the aescbc corpus, written by `concurrency` threads.
  const std::string cbc_key(32, 'k');
  auto cbc = AesCbc::Create(SecretBytes::CopyFrom(cbc_key));
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> put_errors{0};
  absl::Time t0 = absl::Now();
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(concurrency));
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int64_t i = next++; i < objects; i = next++) {
        std::string pt(value_size, static_cast<char>('a' + i % 26));
        auto body = (*cbc)->Encrypt(pt);
        std::string key = fmt::format("/registry/secrets/ns-{}/s-{:07}", i % 10, i);
        if (!body.ok() || !(*client)->Put(key, "k8s:enc:aescbc:v1:key1:" + *body).ok())
          ++put_errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double put_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  const double put_rate = objects / put_seconds;

  // 1b. etcd's compare-and-swap rate (the tool's write): rewrite every value unchanged with
  // Txn(mod_revision == observed -> Put), same threads.
  std::vector<EtcdKeyValue> kvs;
  for (std::string from = "/registry/secrets/";;) {
    EtcdRangeOptions ro;
    ro.limit = 1000;
    auto page = (*client)->Range(from, PrefixRangeEnd("/registry/secrets/"), ro);
    if (!page.ok() || page->kvs.empty()) break;
    from = page->kvs.back().key + '\0';
    for (auto& kv : page->kvs) kvs.push_back(std::move(kv));
    if (!page->more) break;
  }
  next = 0;
  std::atomic<int64_t> cas_errors{0};
  t0 = absl::Now();
  threads.clear();
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (int64_t i = next++; i < static_cast<int64_t>(kvs.size()); i = next++) {
        auto r = (*client)->CompareAndSwap(kvs[i].key, kvs[i].mod_revision, kvs[i].value, 0);
        if (!r.ok() || !r->succeeded) ++cas_errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double cas_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  const double cas_rate = kvs.size() / cas_seconds;

  // 2. The tool over the same objects.
  std::string yaml = fmt::format(R"(apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {{apiVersion: v2, name: bench, endpoint: "unix:///unused.sock"}}
      - aescbc: {{keys: [{{name: key1, secret: {}}}]}}
)",
                                 Base64Encode(cbc_key));
  auto config = ParseEncryptionConfig(yaml);
  if (!config.ok()) return 2;
  KmsClientFactory factory;
  factory.v2 = [](std::string_view,
                  absl::Duration) -> absl::StatusOr<std::unique_ptr<KmsV2Client>> {
    return std::make_unique<Base64Kms>();
  };
  auto set = TransformerSet::Create(*config, factory);
  if (!set.ok()) return 2;
  ReencryptOptions options;
  options.concurrency = concurrency;
  Reencryptor tool(client->get(), set->get(), options, nullptr, RealClock::Get());
  auto summary = tool.Run({*ParseResourceTarget("secrets", "/registry")});
  if (!summary.ok()) {
    std::fprintf(stderr, "run failed: %s\n", std::string(summary.status().message()).c_str());
    return 1;
  }
  const double tool_rate = summary->scanned / summary->seconds;
  std::printf("objects:                 %lld x %zu bytes, concurrency %d\n",
              static_cast<long long>(objects), value_size, concurrency);
  std::printf("etcd put rate:           %.0f puts/s (%.2f s, %lld errors)\n", put_rate, put_seconds,
              static_cast<long long>(put_errors.load()));
  std::printf("etcd CAS (Txn) rate:     %.0f txns/s (%.2f s, %lld errors)\n", cas_rate, cas_seconds,
              static_cast<long long>(cas_errors.load()));
  std::printf("reencrypt rate:          %.0f objects/s (%.2f s; rewritten %lld, failed %lld)\n",
              tool_rate, summary->seconds, static_cast<long long>(summary->rewritten),
              static_cast<long long>(summary->failed));
  std::printf("reencrypt / etcd put:    %.2f\n", tool_rate / put_rate);
  std::printf("reencrypt / etcd CAS:    %.2f\n", tool_rate / cas_rate);
  std::printf(
      "{\"objects\":%lld,\"value_size\":%zu,\"concurrency\":%d,\"etcd_puts_per_second\":%.1f,"
      "\"etcd_cas_per_second\":%.1f,\"reencrypt_objects_per_second\":%.1f,\"ratio_to_put\":%.3f,"
      "\"ratio_to_cas\":%.3f}\n",
      static_cast<long long>(objects), value_size, concurrency, put_rate, cas_rate, tool_rate,
      tool_rate / put_rate, tool_rate / cas_rate);
  return summary->rewritten == objects ? 0 : 1;
}

}  // namespace
}  // namespace kmsplugin

int main(int argc, char** argv) { return kmsplugin::Main(argc, argv); }
