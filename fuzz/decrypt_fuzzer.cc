// libFuzzer target: arbitrary Decrypt requests (ciphertext, key_id, annotations) against an
// EnvelopeService over an in-memory KEK. Properties checked on every input:
//   - no crash, no sanitizer report;
//   - a request that is not byte-identical to one the service produced never decrypts.
// Build: scripts/dev.sh fuzz (clang-14, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "crypto/random.h"
#include "plugin/envelope_service.h"
#include "spdlog/spdlog.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kes.h"

namespace {

struct State {
  kmsplugin::testing::FakeClock clock;
  std::unique_ptr<kmsplugin::EnvelopeService> svc;
  kmsplugin::EncryptResult sample;
  State() {
    spdlog::set_level(spdlog::level::off);
    svc = std::move(*kmsplugin::EnvelopeService::Create(
        kmsplugin::EnvelopeOptions{}, std::make_unique<kmsplugin::testing::FakeKes>(), &clock));
    (void)svc->Refresh(kmsplugin::CallContext{});
    sample = *svc->Encrypt("fuzz seed fuzz seed fuzz seed 32", kmsplugin::CallContext{});
  }
};

// Splits the input into fields on 0xff bytes: ciphertext, key_id, then key/value pairs.
std::vector<std::string> Split(const uint8_t* data, size_t size) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0xff) {
      out.emplace_back();
    } else {
      out.back().push_back(static_cast<char>(data[i]));
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static State* state = new State();
  std::vector<std::string> f = Split(data, size);
  // Mode 0: fields replace the sample's; mode 1: the sample with the fuzz bytes XORed in.
  std::string ct = f[0];
  std::string key_id = f.size() > 1 ? f[1] : state->sample.key_id;
  kmsplugin::Annotations annotations = state->sample.annotations;
  if (f.size() > 2) {
    annotations.clear();
    for (size_t i = 2; i + 1 < f.size(); i += 2) annotations[f[i]] = f[i + 1];
  }
  if (size > 0 && data[0] == 0x01 && size <= state->sample.ciphertext.size()) {
    ct = state->sample.ciphertext;
    for (size_t i = 1; i < size; ++i) ct[i] ^= static_cast<char>(data[i]);
  }
  auto result = state->svc->Decrypt(ct, key_id, annotations, kmsplugin::CallContext{});
  if (result.ok()) {
    bool identical = ct == state->sample.ciphertext && key_id == state->sample.key_id &&
                     annotations == state->sample.annotations;
    if (!identical) __builtin_trap();  // A modified request decrypted.
  }
  return 0;
}
