// load_client: drives a KMS v2 server over ONE channel (one HTTP/2 connection) to a unix socket,
// the way kube-apiserver does (:authority "localhost", 3 s deadline per call).
//
// Load:   load_client --target unix:///ABS.sock --method status|encrypt|decrypt
//                     [--concurrency C] [--calls N] [--warmup W] [--size 32] [--deadline 3s]
//                     [--record FILE [--record-max R]]   (encrypt: write the responses)
//                     [--replay FILE]                    (decrypt: the recorded responses)
//   Keeps C calls in flight on an async stub (one CompletionQueue, one thread); the first W
//   calls are not counted. Prints one JSON object: method, concurrency, calls, ops_per_s
//   (successful calls per second; attempts_per_s counts failed ones too), p50_ms, p99_ms,
//   max_ms (all counted calls), errors (count by gRPC code; invalid responses as BAD_RESPONSE),
//   wall_s.
// Ready:  load_client --target unix:///ABS.sock --wait-ready [--timeout 5s] [--since-ns NS]
//   Probes the socket with connect() every 0.5 ms, then polls Status until healthz == "ok";
//   prints the wall clock of the first OK and, with
//   --since-ns (CLOCK_REALTIME ns), the milliseconds since then. Exit 1 on timeout.
// Admin:  load_client --target unix:///ABS.sock --admin rotate-data-key|report
//   Calls the plugin's admin API on --admin-socket (default: target + ".admin").
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/load_client_util.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "proto/admin/admin.grpc.pb.h"
#include "proto/kmsv2/api.grpc.pb.h"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

std::shared_ptr<grpc::Channel> Dial(const std::string& target, bool fast_reconnect) {
  grpc::ChannelArguments args;
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
  if (fast_reconnect) {  // --wait-ready: retry a refused connect within a millisecond or two
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 1);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2);
  }
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// One call in flight. Subclasses own the request and response.
struct Call {
  virtual ~Call() = default;
  // Empty when the response is acceptable; otherwise why not.
  virtual std::string Check() const = 0;
  int64_t index = 0;
  Clock::time_point start;
  grpc::ClientContext ctx;
  grpc::Status status;
};

struct StatusCall : Call {
  v2::StatusRequest req;
  v2::StatusResponse resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v2::StatusResponse>> rpc;
  std::string Check() const override {
    return resp.healthz() == "ok" && !resp.key_id().empty() ? "" : "status not ok";
  }
};

struct EncryptCall : Call {
  v2::EncryptRequest req;
  v2::EncryptResponse resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v2::EncryptResponse>> rpc;
  std::string Check() const override {
    return !resp.ciphertext().empty() && !resp.key_id().empty() ? "" : "empty ciphertext/key_id";
  }
};

struct DecryptCall : Call {
  const Record* record = nullptr;
  v2::DecryptRequest req;
  v2::DecryptResponse resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v2::DecryptResponse>> rpc;
  std::string Check() const override {
    if (!record->plaintext.empty() && resp.plaintext() != record->plaintext) {
      return "plaintext differs";
    }
    return "";
  }
};

struct LoadOptions {
  std::string target, method = "status", record_path, replay_path;
  int concurrency = 1;
  int64_t calls = 1000, warmup = 100, record_max = 20000;
  size_t size = 32;
  double deadline_s = 3.0;
};

class Load {
 public:
  Load(const LoadOptions& o, std::shared_ptr<grpc::Channel> channel)
      : o_(o), stub_(v2::KeyManagementService::NewStub(channel)), rng_(std::random_device{}()) {
    uid_prefix_ = Hex(RandomBytes(8));
  }

  bool LoadReplay(std::string* error) {
    if (o_.method != "decrypt") return true;
    if (o_.replay_path.empty()) {
      *error = "--method decrypt needs --replay FILE";
      return false;
    }
    if (!ReadRecords(o_.replay_path, &replay_, error)) return false;
    if (replay_.empty()) {
      *error = "no records in " + o_.replay_path;
      return false;
    }
    return true;
  }

  nlohmann::json Run() {
    const int64_t total = o_.warmup + o_.calls;
    latencies_ms_.reserve(static_cast<size_t>(o_.calls));
    int64_t issued = 0, done = 0;
    const Clock::time_point run_start = Clock::now();
    Clock::time_point counted_end = run_start;
    while (issued < total && issued < o_.concurrency) Issue(issued++);
    void* tag = nullptr;
    bool ok = false;
    while (done < total && cq_.Next(&tag, &ok)) {
      const Clock::time_point end = Clock::now();
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      ++done;
      if (issued < total) Issue(issued++);
      if (call->index < o_.warmup) continue;
      counted_end = std::max(counted_end, end);
      latencies_ms_.push_back(std::chrono::duration<double, std::milli>(end - call->start).count());
      if (!call->status.ok()) {
        ++errors_[CodeName(call->status.error_code())];
      } else if (std::string why = call->Check(); !why.empty()) {
        ++errors_["BAD_RESPONSE"];
        if (first_violation_.empty()) first_violation_ = why;
      } else if (auto* e = dynamic_cast<EncryptCall*>(call.get()); e && record_) {
        if (static_cast<int64_t>(recorded_.size()) < o_.record_max) {
          recorded_.push_back(Record{e->req.plaintext(),
                                     e->resp.ciphertext(),
                                     e->resp.key_id(),
                                     {e->resp.annotations().begin(), e->resp.annotations().end()}});
        }
      }
    }
    const double wall = std::chrono::duration<double>(counted_end - counted_start_).count();
    std::sort(latencies_ms_.begin(), latencies_ms_.end());
    int64_t error_total = 0;
    for (auto& [code, n] : errors_) error_total += n;
    nlohmann::json out = {
        {"method", o_.method},
        {"concurrency", o_.concurrency},
        {"calls", o_.calls},
        {"warmup", o_.warmup},
        // Successful calls only: a fast rejection is not throughput.
        {"ops_per_s", wall > 0 ? static_cast<double>(o_.calls - error_total) / wall : 0.0},
        {"attempts_per_s", wall > 0 ? static_cast<double>(o_.calls) / wall : 0.0},
        {"p50_ms", Percentile(latencies_ms_, 0.50)},
        {"p99_ms", Percentile(latencies_ms_, 0.99)},
        {"max_ms", latencies_ms_.empty() ? 0.0 : latencies_ms_.back()},
        {"errors", errors_},
        {"errors_total", error_total},
        {"wall_s", wall},
    };
    if (!first_violation_.empty()) out["first_bad_response"] = first_violation_;
    return out;
  }

  void EnableRecording() { record_ = true; }
  const std::vector<Record>& recorded() const { return recorded_; }

 private:
  std::string RandomBytes(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i += 8) {
      uint64_t v = rng_();
      for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
    }
    return s;
  }

  void Start(Call* call, int64_t index) {
    call->index = index;
    call->ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::microseconds(static_cast<int64_t>(o_.deadline_s * 1e6)));
    call->start = Clock::now();
    if (index == o_.warmup) counted_start_ = call->start;  // the counted window opens
  }

  void Issue(int64_t index) {
    if (o_.method == "status") {
      auto* c = new StatusCall;
      Start(c, index);
      c->rpc = stub_->PrepareAsyncStatus(&c->ctx, c->req, &cq_);
      c->rpc->StartCall();
      c->rpc->Finish(&c->resp, &c->status, c);
    } else if (o_.method == "encrypt") {
      auto* c = new EncryptCall;
      // Distinct plaintexts: the call index in the first 8 bytes, random bytes after.
      std::string p = RandomBytes(std::max<size_t>(o_.size, 8));
      for (int j = 0; j < 8; ++j) p[j] = static_cast<char>(static_cast<uint64_t>(index) >> (8 * j));
      p.resize(o_.size);
      c->req.set_plaintext(std::move(p));
      c->req.set_uid(Uid(index));
      Start(c, index);
      c->rpc = stub_->PrepareAsyncEncrypt(&c->ctx, c->req, &cq_);
      c->rpc->StartCall();
      c->rpc->Finish(&c->resp, &c->status, c);
    } else {
      auto* c = new DecryptCall;
      c->record = &replay_[static_cast<size_t>(index) % replay_.size()];
      c->req.set_ciphertext(c->record->ciphertext);
      c->req.set_key_id(c->record->key_id);
      for (const auto& [k, v] : c->record->annotations) (*c->req.mutable_annotations())[k] = v;
      c->req.set_uid(Uid(index));
      Start(c, index);
      c->rpc = stub_->PrepareAsyncDecrypt(&c->ctx, c->req, &cq_);
      c->rpc->StartCall();
      c->rpc->Finish(&c->resp, &c->status, c);
    }
  }

  std::string Uid(int64_t index) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s-%012llx", uid_prefix_.c_str(),
                  static_cast<unsigned long long>(index));
    return buf;
  }

  LoadOptions o_;
  std::unique_ptr<v2::KeyManagementService::Stub> stub_;
  grpc::CompletionQueue cq_;
  std::mt19937_64 rng_;
  std::string uid_prefix_;
  std::vector<Record> replay_;
  bool record_ = false;
  std::vector<Record> recorded_;
  std::vector<double> latencies_ms_;
  Clock::time_point counted_start_;
  std::map<std::string, int64_t> errors_;
  std::string first_violation_;
};

// True when something accepts connections on the unix socket `path` (a plain connect()).
bool SocketAccepts(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Waits for the socket with plain connect() probes every 0.5 ms (gRPC's reconnect backoff would
// blur the start-up time), then asks Status on a fresh channel until healthz is "ok".
int WaitReady(const std::string& target, double timeout_s, int64_t since_ns) {
  const std::string path = target.substr(std::strlen("unix://"));
  const Clock::time_point deadline =
      Clock::now() + std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6));
  int attempts = 0;
  std::string last = "no socket";
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v2::KeyManagementService::Stub> stub;
  while (Clock::now() < deadline) {
    if (!stub) {
      if (!SocketAccepts(path)) {
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        continue;
      }
      channel = Dial(target, /*fast_reconnect=*/true);
      stub = v2::KeyManagementService::NewStub(channel);
    }
    ++attempts;
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::min(std::chrono::system_clock::now() + std::chrono::seconds(1),
                              std::chrono::system_clock::now() +
                                  std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                      deadline - Clock::now())));
    v2::StatusResponse resp;
    grpc::Status s = stub->Status(&ctx, v2::StatusRequest(), &resp);
    if (s.ok() && resp.healthz() == "ok") {
      const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      nlohmann::json out = {{"ready", true},
                            {"ready_unix_ns", now_ns},
                            {"attempts", attempts},
                            {"key_id", resp.key_id()}};
      if (since_ns > 0) out["ready_ms"] = static_cast<double>(now_ns - since_ns) / 1e6;
      std::printf("%s\n", out.dump().c_str());
      return 0;
    }
    last = s.ok() ? "healthz " + resp.healthz() : CodeName(s.error_code());
    if (!s.ok()) stub.reset();  // e.g. the socket went away: probe again
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  nlohmann::json out = {{"ready", false}, {"attempts", attempts}, {"last", last}};
  std::printf("%s\n", out.dump().c_str());
  return 1;
}

int Admin(const std::string& admin_target, const std::string& op) {
  auto stub = kmsplugin::admin::v1::Admin::NewStub(Dial(admin_target, false));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  kmsplugin::admin::v1::ReportResponse r;
  grpc::Status s;
  if (op == "rotate-data-key") {
    s = stub->RotateDataKey(&ctx, kmsplugin::admin::v1::RotateDataKeyRequest(), &r);
  } else if (op == "report") {
    s = stub->Report(&ctx, kmsplugin::admin::v1::ReportRequest(), &r);
  } else {
    std::fprintf(stderr, "load_client: unknown --admin %s\n", op.c_str());
    return 2;
  }
  if (!s.ok()) {
    nlohmann::json out = {{"ok", false}, {"code", CodeName(s.error_code())}};
    std::printf("%s\n", out.dump().c_str());
    return 1;
  }
  nlohmann::json out = {{"ok", true},
                        {"key_id", r.key_id()},
                        {"healthz", r.healthz()},
                        {"backend", r.backend()},
                        {"data_key_created", r.data_key_created()},
                        {"data_key_uses", r.data_key_uses()},
                        {"cache_size", r.cache_size()},
                        {"cache_hits", r.cache_hits()},
                        {"cache_misses", r.cache_misses()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int Main(int argc, char** argv) {
  LoadOptions o;
  bool wait_ready = false;
  double timeout_s = 5.0;
  int64_t since_ns = 0;
  std::string admin_op, admin_socket;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--target")
      o.target = value();
    else if (a == "--method")
      o.method = value();
    else if (a == "--concurrency")
      o.concurrency = std::stoi(value());
    else if (a == "--calls")
      o.calls = std::stoll(value());
    else if (a == "--warmup")
      o.warmup = std::stoll(value());
    else if (a == "--size")
      o.size = static_cast<size_t>(std::stoul(value()));
    else if (a == "--deadline")
      o.deadline_s = ParseDuration(value());
    else if (a == "--record")
      o.record_path = value();
    else if (a == "--record-max")
      o.record_max = std::stoll(value());
    else if (a == "--replay")
      o.replay_path = value();
    else if (a == "--wait-ready")
      wait_ready = true;
    else if (a == "--timeout")
      timeout_s = ParseDuration(value());
    else if (a == "--since-ns")
      since_ns = std::stoll(value());
    else if (a == "--admin")
      admin_op = value();
    else if (a == "--admin-socket")
      admin_socket = value();
    else
      throw std::invalid_argument("unknown flag " + a + " (see the header of load_client.cc)");
  }
  if (o.target.rfind("unix://", 0) != 0) throw std::invalid_argument("--target unix:///ABS.sock");
  if (wait_ready) return WaitReady(o.target, timeout_s, since_ns);
  if (!admin_op.empty())
    return Admin(admin_socket.empty() ? o.target + ".admin" : admin_socket, admin_op);
  if (o.method != "status" && o.method != "encrypt" && o.method != "decrypt") {
    throw std::invalid_argument("--method status|encrypt|decrypt");
  }
  if (o.concurrency < 1 || o.calls < 1 || o.warmup < 0) {
    throw std::invalid_argument("--concurrency and --calls must be >= 1, --warmup >= 0");
  }
  Load load(o, Dial(o.target, false));
  std::string error;
  if (!load.LoadReplay(&error)) {
    std::fprintf(stderr, "load_client: %s\n", error.c_str());
    return 2;
  }
  if (!o.record_path.empty()) load.EnableRecording();
  nlohmann::json out = load.Run();
  if (!o.record_path.empty()) {
    if (!WriteRecords(o.record_path, load.recorded(), &error)) {
      std::fprintf(stderr, "load_client: %s\n", error.c_str());
      return 1;
    }
    out["recorded"] = load.recorded().size();
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  try {
    return bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_client: %s\n", e.what());
    return 2;
  }
}
