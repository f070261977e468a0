// libFuzzer target: the local keyring parser (kms/local/keyring_file.h ParseKeyring) on arbitrary
// file contents. Properties checked on every input:
//   - no crash, no sanitizer report, no quadratic blow-up (versions are checked with a set);
//   - an accepted keyring holds what format 1 promises: a 32-hex keyring_id, versions unique and
//     >= 1, 32 bytes of material each, a primary that names one of them;
//   - what is accepted survives a round trip: SerializeKeyring() of it parses to the same
//     keyring, and serialising that gives the same bytes (the writer's output is canonical).
// Build: CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -DKMSP_SANITIZE=ON
// -DKMSP_BUILD_FUZZ=ON
//   -DKMSP_BUILD_TESTS=OFF -DKMSP_BUILD_BENCH=OFF && cmake --build build-fuzz --target
//   keyring_fuzzer
// Run:   build-fuzz/fuzz/keyring_fuzzer fuzz/corpus/keyring_fuzzer -max_len=4096
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "crypto/secret_bytes.h"
#include "kms/local/keyring_file.h"
#include "spdlog/spdlog.h"

namespace {

using kmsplugin::KeyringFile;

bool Same(const KeyringFile& a, const KeyringFile& b) {
  if (a.keyring_id != b.keyring_id || a.primary != b.primary ||
      a.entries.size() != b.entries.size()) {
    return false;
  }
  for (size_t i = 0; i < a.entries.size(); ++i) {
    if (a.entries[i].version != b.entries[i].version ||
        a.entries[i].created != b.entries[i].created ||
        !a.entries[i].material.ConstantTimeEquals(b.entries[i].material)) {
      return false;
    }
  }
  return true;
}

void CheckInvariants(const KeyringFile& k) {
  if (k.keyring_id.size() != 32) __builtin_trap();
  if (k.entries.empty()) __builtin_trap();
  std::set<uint32_t> versions;
  for (const auto& e : k.entries) {
    if (e.version == 0 || e.material.size() != 32) __builtin_trap();
    if (!versions.insert(e.version).second) __builtin_trap();
  }
  if (versions.count(k.primary) == 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = kmsplugin::ParseKeyring(text, "fuzz");
  if (!parsed.ok()) return 0;
  CheckInvariants(*parsed);
  std::string written = kmsplugin::SerializeKeyring(*parsed);
  auto again = kmsplugin::ParseKeyring(written, "fuzz-roundtrip");
  if (!again.ok() || !Same(*parsed, *again)) __builtin_trap();
  std::string rewritten = kmsplugin::SerializeKeyring(*again);
  if (rewritten != written) __builtin_trap();
  kmsplugin::WipeString(written);
  kmsplugin::WipeString(rewritten);
  return 0;
}
