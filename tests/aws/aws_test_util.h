// Helpers the AWS unit tests share: an injected environment (MapEnv), a call context without a
// deadline (kCtx), a scratch directory removed at the end of the test (TempDir), and the test
// doubles they all use, named in kmsplugin::aws.
#ifndef KMSP_TESTS_AWS_AWS_TEST_UTIL_H_
#define KMSP_TESTS_AWS_AWS_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "kms/aws/credentials_provider.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"

namespace kmsplugin::aws {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeHttpClient;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::MakeResponse;
using ::kmsplugin::testing::RecordedRequest;
using ::kmsplugin::testing::StatusIs;

// An environment of exactly `vars`.
inline EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

inline const CallContext kCtx = CallContext{absl::InfiniteFuture(), "test"};

// Whether every byte of `s` is printable ASCII (0x20 to 0x7e).
inline bool PrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// A fresh directory under /tmp, removed with everything in it by the destructor.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kmsp-aws-creds-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace kmsplugin::aws

#endif  // KMSP_TESTS_AWS_AWS_TEST_UTIL_H_
