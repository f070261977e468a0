// In-process envelope benchmarks: Encrypt / Decrypt (cache hit, cache miss = one local-keyring
// unwrap) against one raw AES-256-GCM seal of 32 bytes measured in the same run, with the ratios
// ("x floor") at the end. The serving path over the socket is measured by bench/run_bench.py
// (scripts/dev.sh bench) against an empty gRPC server. Run: build/bench/envelope_bench
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "crypto/aes_gcm.h"
#include "crypto/random.h"
#include "kms/local/local_kms.h"
#include "plugin/envelope_service.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

struct Fixture {
  std::string dir;
  std::unique_ptr<EnvelopeService> envelope;
  std::unique_ptr<EnvelopeService> tiny_cache;  // cache of 1: every alternating decrypt misses.

  Fixture() {
    spdlog::set_level(spdlog::level::err);
    char tmpl[] = "/tmp/kms-bench.XXXXXX";
    dir = mkdtemp(tmpl);
    envelope = Make(1024);
    tiny_cache = Make(1);
  }
  ~Fixture() {
    std::error_code ec;  // Best effort: a leftover temp dir does not fail the benchmark.
    std::filesystem::remove_all(dir, ec);
  }
  std::unique_ptr<EnvelopeService> Make(size_t cache) {
    LocalKmsOptions o;
    o.keyring_path = dir + "/keyring.json";
    auto kms = LocalKms::Create(o, RealClock::Get());
    EnvelopeOptions eo;
    eo.dek_cache_size = cache;
    auto svc = std::move(*EnvelopeService::Create(eo, std::move(*kms), RealClock::Get()));
    (void)svc->Refresh(Ctx());
    return svc;
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(5)); }
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

void BM_FloorAesGcmSeal32(benchmark::State& state) {
  auto aead = *AesGcm::Create(*RandomSecret(32));
  std::string seed = *RandomBytes(32);
  for (auto _ : state) benchmark::DoNotOptimize(aead->Seal(seed, "aad"));
}
BENCHMARK(BM_FloorAesGcmSeal32);

void BM_EnvelopeEncrypt(benchmark::State& state) {
  std::string seed = *RandomBytes(32);
  for (auto _ : state) benchmark::DoNotOptimize(F().envelope->Encrypt(seed, Fixture::Ctx()));
}
BENCHMARK(BM_EnvelopeEncrypt);

void BM_EnvelopeDecryptCacheHit(benchmark::State& state) {
  auto enc = *F().envelope->Encrypt(*RandomBytes(32), Fixture::Ctx());
  (void)F().envelope->RotateDataKey(Fixture::Ctx());  // Not the current key: the cache path.
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        F().envelope->Decrypt(enc.ciphertext, enc.key_id, enc.annotations, Fixture::Ctx()));
  }
}
BENCHMARK(BM_EnvelopeDecryptCacheHit);

void BM_EnvelopeDecryptCacheMissLocalUnwrap(benchmark::State& state) {
  EnvelopeService* svc = F().tiny_cache.get();
  auto a = *svc->Encrypt(*RandomBytes(32), Fixture::Ctx());
  (void)svc->RotateDataKey(Fixture::Ctx());
  auto b = *svc->Encrypt(*RandomBytes(32), Fixture::Ctx());
  (void)svc->RotateDataKey(Fixture::Ctx());
  bool flip = false;
  for (auto _ : state) {
    const EncryptResult& e = flip ? a : b;
    flip = !flip;
    benchmark::DoNotOptimize(svc->Decrypt(e.ciphertext, e.key_id, e.annotations, Fixture::Ctx()));
  }
}
BENCHMARK(BM_EnvelopeDecryptCacheMissLocalUnwrap);

// Console output plus the ratios to each floor, computed from this run's own figures.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) ns_[r.benchmark_name()] = r.GetAdjustedRealTime();
    ConsoleReporter::ReportRuns(runs);
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    auto ratio = [&](const std::string& a, const std::string& floor) {
      auto ia = Find(a), ib = Find(floor);
      if (ia < 0 || ib <= 0) return;
      printf("ratio %-40s = %7.2f x %s\n", a.c_str(), ia / ib, floor.c_str());
    };
    printf("\n");
    ratio("BM_EnvelopeEncrypt", "BM_FloorAesGcmSeal32");
    ratio("BM_EnvelopeDecryptCacheHit", "BM_FloorAesGcmSeal32");
    ratio("BM_EnvelopeDecryptCacheMissLocalUnwrap", "BM_FloorAesGcmSeal32");
  }

 private:
  double Find(const std::string& prefix) {
    for (auto& [name, ns] : ns_) {
      if (name.rfind(prefix, 0) == 0) return ns;
    }
    return -1;
  }
  std::map<std::string, double> ns_;
};

}  // namespace
}  // namespace kmsplugin

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  kmsplugin::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
