// libFuzzer target: every parser of the PKCS#11 backend's public formats (kms/pkcs11/
// pkcs11_blob.h) on arbitrary bytes: the wrapped-key blob (stored in etcd), the kek_id (sent back
// by the apiserver) and the CKA_ID version (read from the token). Properties checked on every
// input:
//   - no crash, no sanitizer report;
//   - an accepted blob is re-encoded to the same bytes, its views lie inside the input, and its
//     sizes are the ones format 1 allows (GCM: 12-byte IV, ciphertext and 16-byte tag; KWP: a
//     multiple of 8, at least 16);
//   - an accepted kek_id is the one MakeKekId builds for the version it names;
//   - an accepted CKA_ID names a non-zero version whose canonical encoding parses to it again.
// Build and run as the other fuzzers (scripts/dev.sh fuzz); seeds in corpus/pkcs11_blob_fuzzer/.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kms/pkcs11/pkcs11_blob.h"

namespace {

using namespace kmsplugin::pkcs11;  // NOLINT(google-build-using-namespace): a fuzzer's one file.

constexpr std::string_view kSerial = "93ece3a5263bcd4d";
constexpr std::string_view kLabel = "k8s kek/1";

void CheckBlob(std::string_view in) {
  auto parsed = ParseBlob(in);
  if (!parsed.ok()) return;
  const ParsedBlob& b = *parsed;
  if (b.header.data() != in.data() || b.header.size() != 2) __builtin_trap();
  if (b.mechanism == Mechanism::kAesGcm) {
    if (b.iv.size() != kGcmIvSize || b.body.size() < kGcmTagSize + 1) __builtin_trap();
  } else {
    if (!b.iv.empty() || b.body.size() < 16 || b.body.size() % 8 != 0) __builtin_trap();
  }
  if (EncodeBlob(b.mechanism, b.iv, b.body) != in) __builtin_trap();
  if (in.size() > kMaxBlobSize) __builtin_trap();
}

void CheckKekId(std::string_view in) {
  auto version = ParseKekId(in, kSerial, kLabel);
  if (!version.has_value()) return;
  if (*version == 0 || MakeKekId(kSerial, kLabel, *version) != in) __builtin_trap();
}

void CheckVersionId(std::string_view in) {
  auto version = ParseVersionId(in);
  if (!version.has_value()) return;
  if (*version == 0 || in.size() > 4) __builtin_trap();
  auto again = ParseVersionId(EncodeVersionId(*version));
  if (!again.has_value() || *again != *version) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckBlob(in);
  CheckKekId(in);
  CheckVersionId(in);
  // Text that follows a known kek_id prefix reaches the version parser's corner cases faster.
  CheckKekId(std::string("pkcs11:93ece3a5263bcd4d/k8s%20kek%2F1/v") + std::string(in));
  return 0;
}
