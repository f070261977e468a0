// Shared pieces of the fuzzers that feed remote answers through a backend behind the fake
// HttpClient (aws_response_fuzzer, vault_response_fuzzer): the names they use, the status
// selector, and the check that an error message carries no raw remote bytes.
#ifndef KMSP_FUZZ_FUZZ_HTTP_CLIENT_H_
#define KMSP_FUZZ_FUZZ_HTTP_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "crypto/secret_bytes.h"
#include "kms/key_encryption_service.h"
#include "tests/fakes/fake_http_client.h"

namespace kmsplugin::fuzz {

using ::kmsplugin::CallContext;
using ::kmsplugin::HttpResponse;
using ::kmsplugin::SecretBytes;
using ::kmsplugin::testing::FakeHttpClient;
using ::kmsplugin::testing::MakeResponse;
using ::kmsplugin::testing::RecordedRequest;

// statuses[selector % N]: the HTTP status a fuzz input picks with one byte.
template <size_t N>
int PickStatus(const int (&statuses)[N], uint8_t selector) {
  return statuses[selector % N];
}

// Traps unless an error message is printable ASCII and at most 4096 bytes (remote text must go
// through Printable() before it reaches a message).
inline void CheckMessage(const absl::Status& s) {
  if (s.ok()) return;
  const std::string_view m(s.message().data(), s.message().size());
  if (m.size() > 4096) __builtin_trap();
  for (char c : m) {
    if (c < 0x20 || c > 0x7e) __builtin_trap();  // Raw remote bytes reached a message.
  }
}

}  // namespace kmsplugin::fuzz

#endif  // KMSP_FUZZ_FUZZ_HTTP_CLIENT_H_
