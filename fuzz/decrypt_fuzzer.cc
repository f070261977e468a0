// libFuzzer target: arbitrary Decrypt requests (ciphertext, key_id, annotations) against an
// EnvelopeService over an in-memory KEK with a recovery key (so its responses carry the
// recovery annotation, plugin/recovery_format.h). Properties checked on every input:
//   - no crash, no sanitizer report;
//   - a request that is not byte-identical to one the service produced never decrypts.
// Input: byte 0 selects a mode:
//   0x01: the sample's ciphertext with the rest of the input XORed in;
//   0x02: the rest of the input is the recovery annotation value (untrusted on Decrypt and in
//         reencrypt's offline opener): ParseRecoveryWrap must round-trip what it accepts, and
//         neither Decrypt nor OpenWithRecoveryKey (with the TEST-ONLY key of tests/crypto/testdata;
//         tried only when the value parses) opens the sample under any value but its own;
//   other: fields split on 0xff bytes: ciphertext, key_id, then annotation key/value pairs.
// Seeds: fuzz/corpus/decrypt_fuzzer (fuzz/corpus/make_decrypt_seeds.py).
// Build: scripts/dev.sh fuzz (clang-14, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/random.h"
#include "crypto/rsa_oaep.h"
#include "plugin/envelope_service.h"
#include "plugin/recovery_format.h"
#include "spdlog/spdlog.h"
#include "tests/crypto/rsa_test_keys.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kes.h"

namespace {

constexpr char kSamplePlaintext[] = "fuzz seed fuzz seed fuzz seed 32";

struct State {
  kmsplugin::testing::FakeClock clock;
  std::unique_ptr<kmsplugin::EnvelopeService> svc;
  kmsplugin::EncryptResult sample;
  std::unique_ptr<kmsplugin::RsaPrivateKey> recovery_key;
  State() {
    spdlog::set_level(spdlog::level::off);
    auto key = kmsplugin::RsaPrivateKey::FromPem(kmsplugin::SecretBytes::CopyFrom(
        kmsplugin::testing::ReadFileOrEmpty(kmsplugin::testing::kRecoveryTestKeyPem)));
    auto pub = kmsplugin::RsaPublicKey::FromPem(
        kmsplugin::testing::ReadFileOrEmpty(kmsplugin::testing::kRecoveryTestPubPem));
    if (!key.ok() || !pub.ok()) __builtin_trap();  // tests/crypto/testdata is missing.
    recovery_key = std::make_unique<kmsplugin::RsaPrivateKey>(std::move(*key));
    kmsplugin::EnvelopeOptions options;
    options.recovery_key = std::make_shared<const kmsplugin::RsaPublicKey>(std::move(*pub));
    svc = std::move(*kmsplugin::EnvelopeService::Create(
        options, std::make_unique<kmsplugin::testing::FakeKes>(), &clock));
    (void)svc->Refresh(kmsplugin::CallContext{});
    sample = *svc->Encrypt(kSamplePlaintext, kmsplugin::CallContext{});
    auto opened = kmsplugin::OpenWithRecoveryKey(sample.ciphertext, sample.key_id,
                                                 sample.annotations, {recovery_key.get()});
    if (!opened.ok() || opened->Reveal() != kSamplePlaintext) __builtin_trap();  // Setup broken.
  }
};

// Mode 0x02: `value` as the sample's recovery annotation.
void FuzzRecoveryAnnotation(const State& state, std::string_view value) {
  const std::string& own = state.sample.annotations.at(std::string(kmsplugin::kRecoveryAnnotation));
  kmsplugin::Annotations annotations = state.sample.annotations;
  annotations[std::string(kmsplugin::kRecoveryAnnotation)] = std::string(value);
  auto decrypted = state.svc->Decrypt(state.sample.ciphertext, state.sample.key_id, annotations,
                                      kmsplugin::CallContext{});
  if (decrypted.ok() && value != own) __builtin_trap();  // An edited annotation decrypted.
  auto wrap = kmsplugin::ParseRecoveryWrap(value);
  if (!wrap.ok()) return;
  if (wrap->fingerprint.size() != kmsplugin::kRecoveryFingerprintSize ||
      kmsplugin::SerializeRecoveryWrap(*wrap) != value) {
    __builtin_trap();  // What parses must serialise back to the same bytes.
  }
  auto opened = kmsplugin::OpenWithRecoveryKey(state.sample.ciphertext, state.sample.key_id,
                                               annotations, {state.recovery_key.get()});
  if (opened.ok() && (value != own || opened->Reveal() != kSamplePlaintext)) __builtin_trap();
}

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
  if (size > 0 && data[0] == 0x02) {
    FuzzRecoveryAnnotation(*state,
                           std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
    return 0;
  }
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
