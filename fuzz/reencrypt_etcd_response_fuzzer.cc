// libFuzzer target: etcd's answers as reencrypt interprets them. The bytes are protobuf
// (RangeResponse, TxnResponse) parsed by protobuf itself; fuzzed here is our code on top:
// PageFromRangeResponse, CasResultFromTxnResponse, ValidateRangePage, and the Reencryptor's
// paging and compare-and-swap loop fed with those answers (a hostile or broken etcd or proxy).
// Input: chunks of u16be(len) || bytes; even chunks answer the Range calls (the count, then the
// pages), odd chunks the Txn calls, each in order (one worker: deterministic).
// Properties: no crash, no sanitizer report, termination (libFuzzer's -timeout), and no write to
// a key outside the listed prefix.
// Build: -DKMSP_BUILD_FUZZ=ON with clang (fuzz/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include <algorithm>
#include "base/clock.h"
#include "fuzz/reencrypt_fuzz_support.h"
#include "proto/etcd/rpc.pb.h"
#include "spdlog/spdlog.h"
#include "tools/reencrypt/encryption_config.h"
#include "tools/reencrypt/etcd_response.h"
#include "tools/reencrypt/reencryptor.h"

namespace {

using namespace kmsplugin::reencrypt;  // NOLINT

constexpr char kPrefix[] = "/registry/configmaps/";

class FuzzEtcd final : public EtcdClient {
 public:
  FuzzEtcd(std::deque<std::string> ranges, std::deque<std::string> txns)
      : ranges_(std::move(ranges)), txns_(std::move(txns)) {}
  absl::StatusOr<EtcdRangePage> Range(std::string_view key, std::string_view end,
                                      const EtcdRangeOptions&) override {
    etcdserverpb::RangeResponse resp;
    std::string chunk = Next(&ranges_);
    if (!resp.ParseFromString(chunk)) return absl::UnavailableError("bad range response");
    EtcdRangePage page = PageFromRangeResponse(&resp);
    (void)ValidateRangePage(page, key, end);
    return page;
  }
  absl::StatusOr<int64_t> Put(std::string_view, std::string_view, int64_t) override {
    return absl::UnimplementedError("put");
  }
  absl::StatusOr<int64_t> GrantLease(absl::Duration) override {
    return absl::UnimplementedError("lease");
  }
  absl::StatusOr<EtcdCasResult> CompareAndSwap(std::string_view key, int64_t, std::string_view,
                                               int64_t) override {
    if (key.substr(0, sizeof(kPrefix) - 1) != kPrefix) __builtin_trap();  // wrote elsewhere
    etcdserverpb::TxnResponse resp;
    if (!resp.ParseFromString(Next(&txns_))) return absl::UnavailableError("bad txn response");
    return CasResultFromTxnResponse(resp, key);
  }
  absl::StatusOr<int64_t> DeleteRange(std::string_view, std::string_view) override {
    return absl::UnimplementedError("delete");
  }

 private:
  static std::string Next(std::deque<std::string>* q) {
    if (q->empty()) return {};  // an empty answer ends every loop
    std::string c = std::move(q->front());
    q->pop_front();
    return c;
  }
  std::deque<std::string> ranges_;  // the producer thread's
  std::deque<std::string> txns_;    // the one worker's
};

struct State {
  EncryptionConfig config;
  std::unique_ptr<TransformerSet> set;
  State() {
    spdlog::set_level(spdlog::level::off);
    config = std::move(*ParseEncryptionConfig(kmsplugin::fuzz::FuzzConfigYaml()));
    set = std::move(*TransformerSet::Create(config, kmsplugin::fuzz::IdentityKmsFactory()));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static State* state = new State();
  std::deque<std::string> chunks[2];
  size_t pos = 0;
  for (int i = 0; pos + 2 <= size && i < 64; ++i) {
    size_t len = (static_cast<size_t>(data[pos]) << 8) | data[pos + 1];
    pos += 2;
    len = std::min(len, size - pos);
    chunks[i % 2].emplace_back(reinterpret_cast<const char*>(data) + pos, len);
    pos += len;
  }
  FuzzEtcd etcd(std::move(chunks[0]), std::move(chunks[1]));
  ReencryptOptions options;
  options.concurrency = 1;
  options.page_size = 4;
  options.max_attempts = 4;
  Reencryptor tool(&etcd, state->set.get(), options, nullptr, kmsplugin::RealClock::Get());
  (void)tool.Run({ResourceTarget{GroupResource::Parse("configmaps"), kPrefix}});
  return 0;
}
