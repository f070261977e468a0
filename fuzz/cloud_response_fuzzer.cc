// libFuzzer target: arbitrary answers from Google Cloud KMS, Azure Key Vault and their token
// endpoints, fed through the real backends (kms/gcp, kms/azure) and the shared bearer layer
// (kms/bearer) behind a fake HttpClient (no network). The token comes from the real credential
// chains: the GCE metadata server for Google, the client-secret flow at Entra for Azure.
//   mode 0: Google Wrap: the metadata token answer, then the encrypt answer;
//   mode 1: Google Unwrap: the token answer, then the decrypt answer;
//   mode 2: Google Probe: the token answer, then the cryptoKeys.get answer;
//   mode 3: Google RotateKek: the token answer, the versions.create answer (200), then the
//           updatePrimaryVersion answer;
//   mode 4: Azure Wrap: the Entra token answer, the key GET (200), then the wrapkey answer;
//   mode 5: Azure Unwrap: the token answer, then the unwrapkey answer;
//   mode 6: Azure Probe: the token answer, then the key GET answer;
//   mode 7: Azure RotateKek: the token answer, then the rotate answer (any later call gets the
//           same status);
//   mode 8: the pure parsers: ParseTokenAnswer, the Azure challenge, kid and vault URL parsers,
//           base64url, and both backends' error classifiers.
// Properties checked on every input: no crash, no sanitizer report; every error message is
// printable ASCII and bounded (remote text goes through Printable()); a wrapped key's kek_id is
// this backend's own key (gcp:<key>/cryptoKeyVersions/<N>, azure:<vault>/keys/<name>/<version>)
// and at most kMaxKekIdSize bytes; a parsed token is non-empty.
//
// Input: byte 0 = mode, byte 1 = HTTP status selector (for the operation's last answer), then
// segments split by 0xff: the token answer (always 200), the backend's answers in call order,
// and last the WWW-Authenticate header value sent with every Key Vault answer.
// Build: clang-14, -DKMSP_SANITIZE=ON -DKMSP_BUILD_FUZZ=ON (like vault_response_fuzzer).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_http_client.h"
#include "kms/azure/azure_kms.h"
#include "kms/azure/azure_wire.h"
#include "kms/bearer/token_endpoint.h"
#include "kms/gcp/gcp_kms.h"
#include "spdlog/spdlog.h"
#include "tests/fakes/fake_clock.h"

namespace {

using namespace kmsplugin::fuzz;  // NOLINT(google-build-using-namespace)
namespace azure = kmsplugin::azure;
namespace gcp = kmsplugin::gcp;

constexpr int kStatuses[] = {200, 400, 401, 403, 404, 409, 429, 500, 503};
constexpr char kGcpKey[] = "projects/p/locations/global/keyRings/r/cryptoKeys/k";
constexpr char kVault[] = "https://myvault.vault.azure.net";
constexpr char kVersion[] = "0123456789abcdef0123456789abcdef";

// The answers of one input: the token endpoint's, then the backend's in call order (the last
// one with the selected status, the others 200), and the header Key Vault answers carry.
class Script {
 public:
  Script(std::vector<std::string_view> segments, int status, size_t backend_calls)
      : segments_(std::move(segments)), status_(status), backend_calls_(backend_calls) {}

  absl::StatusOr<HttpResponse> Answer(const kmsplugin::testing::RecordedRequest& r) {
    if (r.url.find("/token") != std::string::npos) return MakeResponse(200, Segment(0));
    const size_t call = calls_++;
    const int status = call + 1 >= backend_calls_ ? status_ : 200;
    std::vector<kmsplugin::HttpHeader> headers;
    if (r.url.rfind(kVault, 0) == 0) {
      headers.push_back({"WWW-Authenticate", std::string(Segment(segments_.size() - 1))});
      headers.push_back({"Retry-After", "0"});
    }
    return MakeResponse(status, Segment(1 + call), std::move(headers));
  }

 private:
  std::string_view Segment(size_t i) const { return i < segments_.size() ? segments_[i] : ""; }

  std::vector<std::string_view> segments_;
  int status_;
  size_t backend_calls_;
  size_t calls_ = 0;
};

void CheckKekId(const absl::StatusOr<kmsplugin::WrappedKey>& wrapped, std::string_view prefix) {
  CheckMessage(wrapped.status());
  if (!wrapped.ok()) return;
  if (wrapped->kek_id.size() > kmsplugin::kMaxKekIdSize ||
      wrapped->kek_id.rfind(prefix, 0) != 0 || wrapped->kek_id.size() == prefix.size()) {
    __builtin_trap();
  }
}

// The four operations both backends share, by `op` (mode % 4): Wrap (its kek_id must start with
// `kek_prefix`), Unwrap of `kek_prefix` + `version` with `blob`, Probe, RotateKek.
void Exercise(kmsplugin::KeyEncryptionService& kms, int op, const std::string& kek_prefix,
              const std::string& version, const std::string& blob) {
  const CallContext ctx{absl::InfiniteFuture(), "fuzz"};
  if (op == 0) {
    CheckKekId(kms.Wrap(SecretBytes::CopyFrom(std::string(32, 'k')), ctx), kek_prefix);
  } else if (op == 1) {
    CheckMessage(kms.Unwrap({kek_prefix + version, blob}, ctx).status());
  } else if (op == 2) {
    CheckMessage(kms.Probe(ctx).status());
  } else {
    CheckMessage(kms.RotateKek(ctx));
  }
}

// The backend of `mode` (0-3: Google, 4-7: Azure), its real credential chain answered by `script`.
std::unique_ptr<kmsplugin::KeyEncryptionService> MakeBackend(
    int mode, Script* script, kmsplugin::testing::FakeClock* clock) {
  auto http = std::make_unique<FakeHttpClient>(
      [script](const kmsplugin::testing::RecordedRequest& r) { return script->Answer(r); });
  if (mode < 4) {
    gcp::GcpKmsOptions options;
    options.key = kGcpKey;
    options.endpoint = "https://kms.example";
    options.retry.max_attempts = 1;
    options.credentials.metadata_host = "169.254.169.254";
    options.http = std::move(http);
    auto kms = gcp::GcpKms::Create(std::move(options), clock);
    if (!kms.ok()) std::abort();
    return std::move(*kms);
  }
  azure::AzureKmsOptions options;
  options.vault_url = kVault;
  options.key_name = "kek";
  options.retry.max_attempts = 1;
  options.credentials.tenant_id = "tenant";
  options.credentials.client_id = "client";
  options.credentials.client_secret = SecretBytes::CopyFrom("client-secret");
  options.credentials.authority_host = "https://login.example";
  options.http = std::move(http);
  auto kms = azure::AzureKms::Create(std::move(options), clock);
  if (!kms.ok()) std::abort();
  return std::move(*kms);
}

void RunParsers(int status, std::string_view rest) {
  const absl::StatusOr<kmsplugin::AccessToken> token =
      kmsplugin::ParseTokenAnswer(rest, absl::FromUnixSeconds(1800000000));
  CheckMessage(token.status());
  if (token.ok() && token->token.empty()) __builtin_trap();
  (void)azure::ChallengeScope(rest);
  (void)azure::ParseKeyId(rest);
  CheckMessage(azure::ParseVaultUrl(rest).status());
  CheckMessage(azure::Base64UrlDecodeSecret(rest).status());
  const HttpResponse response = MakeResponse(status, rest);
  CheckMessage(azure::AzureKms::Classify("wrapkey", response).status);
  CheckMessage(gcp::ClassifyGcpAnswer("encrypt", response).status);
}

// `rest` split at each 0xff (absl::StrSplit takes absl::string_view, not std::string_view, in
// Debian's abseil).
std::vector<std::string_view> SplitSegments(std::string_view rest) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t sep = rest.find('\xff');
    out.push_back(rest.substr(0, sep));
    if (sep == std::string_view::npos) return out;
    rest.remove_prefix(sep + 1);
  }
}

struct Quiet {
  Quiet() { spdlog::set_level(spdlog::level::off); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Quiet quiet;
  if (size < 2) return 0;
  const int mode = data[0] % 9;
  const int status = PickStatus(kStatuses, data[1]);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  if (mode == 8) {
    RunParsers(status, rest);
    return 0;
  }
  // Backend calls per operation: the answer with the selected status is the last one.
  constexpr size_t kCalls[] = {1, 1, 1, 2, 2, 1, 1, 1};
  Script script(SplitSegments(rest), status, kCalls[mode]);
  kmsplugin::testing::FakeClock clock;
  std::unique_ptr<kmsplugin::KeyEncryptionService> kms = MakeBackend(mode, &script, &clock);
  if (mode < 4) {
    Exercise(*kms, mode % 4, std::string("gcp:") + kGcpKey + "/cryptoKeyVersions/", "1", "Q1Q6a2tr");
  } else {
    Exercise(*kms, mode % 4, std::string("azure:") + kVault + "/keys/kek/", kVersion,
             "RSA-OAEP-256:WYWJjZA");
  }
  return 0;
}
