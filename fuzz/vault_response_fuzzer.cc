// libFuzzer target: arbitrary answers from Vault, fed through the Vault backend's real parsers
// behind a fake HttpClient (no network):
//   mode 0: token file: the lookup-self answer, then Probe's key read (GET <mount>/keys/<key>);
//   mode 1: AppRole: the login answer, then Wrap's transit encrypt answer;
//   mode 2: Kubernetes: the login answer, then Unwrap's transit decrypt answer;
//   mode 3: token file: the lookup-self answer, then RotateKek's answer;
//   mode 4: AppRole: the login answer (its TTL), the clock moved past two thirds of it, then the
//           renew-self answer and Probe's;
//   mode 5: the pure parsers: CiphertextVersion and ClassifyVaultError.
// Properties checked on every input: no crash, no sanitizer report; every error message is
// printable ASCII and bounded (remote text goes through Printable()); a wrapped key's kek_id is
// this backend's and at most 1024 bytes, and its blob has a vault:v<N>: prefix.
//
// Input: byte 0 = mode, byte 1 = HTTP status selector (for the second answer), then the first
// answer (always HTTP 200), a 0xff byte, and the second answer.
// Build: clang-14, -DKMSP_SANITIZE=ON -DKMSP_BUILD_FUZZ=ON (like aws_response_fuzzer).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz/fuzz_http_client.h"
#include "kms/vault/vault_api.h"
#include "kms/vault/vault_kms.h"
#include "spdlog/spdlog.h"
#include "tests/fakes/fake_clock.h"

namespace {

using namespace kmsplugin::fuzz;  // NOLINT(google-build-using-namespace)
namespace vault = kmsplugin::vault;

constexpr int kStatuses[] = {200, 204, 307, 400, 403, 404, 412, 429, 500, 501, 503};
constexpr char kPrefix[] = "vault:root/transit/k8s/v";

std::string TempFile(const char* content) {
  char tmpl[] = "/tmp/kmsp-vault-fuzz-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) std::abort();
  const size_t n = std::char_traits<char>::length(content);
  if (write(fd, content, n) != static_cast<ssize_t>(n)) std::abort();
  close(fd);
  return tmpl;
}

struct State {
  std::string token_file = TempFile("hvs.fuzz-token");
  std::string secret_file = TempFile("secret-id");
  State() { spdlog::set_level(spdlog::level::off); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static State* st = new State();
  if (size < 2) return 0;
  const int mode = data[0] % 6;
  const int status = PickStatus(kStatuses, data[1]);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t sep = rest.find('\xff');
  const std::string_view first = rest.substr(0, sep);
  const std::string_view second =
      sep == std::string_view::npos ? std::string_view() : rest.substr(sep + 1);
  if (mode == 5) {
    (void)vault::CiphertextVersion(rest);
    CheckMessage(vault::ClassifyVaultError("transit decrypt", status, rest).status);
    return 0;
  }
  auto handler = [&](const RecordedRequest& r) -> absl::StatusOr<HttpResponse> {
    const bool auth = r.url.find("/login") != std::string::npos ||
                      r.url.find("/lookup-self") != std::string::npos;
    return MakeResponse(auth ? 200 : status, auth ? first : second);
  };
  vault::VaultKmsOptions options;
  options.addr = "https://127.0.0.1:8200";
  options.key = "k8s";
  options.retry.max_attempts = 1;
  options.http = std::make_unique<FakeHttpClient>(handler);
  options.auth.method = mode == 0 || mode == 3 ? vault::LoginMethod::kToken
                        : mode == 2            ? vault::LoginMethod::kKubernetes
                                               : vault::LoginMethod::kAppRole;
  options.auth.token_file = st->token_file;
  options.auth.approle_role_id = "role";
  options.auth.approle_secret_id_file = st->secret_file;
  options.auth.k8s_role = "kms";
  options.auth.k8s_token_file = st->secret_file;
  kmsplugin::testing::FakeClock clock;
  auto kms = vault::VaultKms::Create(std::move(options), &clock);
  if (!kms.ok()) std::abort();
  const CallContext ctx{absl::InfiniteFuture(), "fuzz"};
  if (mode == 0) {
    CheckMessage((*kms)->Probe(ctx).status());
  } else if (mode == 1) {
    auto wrapped = (*kms)->Wrap(SecretBytes::CopyFrom(std::string(32, 'k')), ctx);
    CheckMessage(wrapped.status());
    if (wrapped.ok() && (wrapped->kek_id.size() > kmsplugin::kMaxKekIdSize ||
                         wrapped->kek_id.rfind(kPrefix, 0) != 0 ||
                         !vault::CiphertextVersion(wrapped->blob).has_value())) {
      __builtin_trap();
    }
  } else if (mode == 2) {
    CheckMessage((*kms)->Unwrap({std::string(kPrefix) + "1", "vault:v1:QUJD"}, ctx).status());
  } else if (mode == 3) {
    CheckMessage((*kms)->RotateKek(ctx));
  } else {
    CheckMessage((*kms)->Probe(ctx).status());
    clock.Advance(absl::Hours(24 * 365));
    CheckMessage((*kms)->Probe(ctx).status());
  }
  return 0;
}
