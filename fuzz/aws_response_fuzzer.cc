// libFuzzer target: arbitrary answers from AWS and the credential endpoints, fed through the real
// parsers behind a fake HttpClient (no network):
//   mode 0: KMS JSON 1.1 answers and error bodies (AwsKms Probe = DescribeKey, Unwrap = Decrypt,
//           Wrap = Encrypt + Decrypt; KmsApi's error classification), and ClassifyKmsError with
//           the x-amzn-ErrorType header;
//   mode 1: the STS AssumeRoleWithWebIdentity XML answer (WebIdentityCredentialsProvider);
//   mode 2: the container credentials JSON (ContainerCredentialsProvider);
//   mode 3: IMDSv2: the role name, then the role's credentials JSON (ImdsCredentialsProvider).
// Properties checked on every input: no crash, no sanitizer report; every error message is
// printable ASCII and bounded (remote text goes through Printable()); credentials that parse have
// an access key id and a secret.
//
// Input: byte 0 = mode, byte 1 = HTTP status selector, then the body; in mode 0 the part after
// the first 0xfe byte is the x-amzn-ErrorType header; in mode 3 the part after the first 0xff
// byte is the credentials answer (before it: the role name answer).
// Build: clang-14, -DKMSP_SANITIZE=ON -DKMSP_BUILD_FUZZ=ON (like decrypt_fuzzer).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "fuzz/fuzz_http_client.h"
#include "kms/aws/aws_kms.h"
#include "kms/aws/kms_api.h"
#include "kms/aws/remote_credentials_provider.h"
#include "spdlog/spdlog.h"
#include "tests/fakes/fake_clock.h"

namespace {

using namespace kmsplugin::fuzz;  // NOLINT(google-build-using-namespace)
namespace aws = kmsplugin::aws;

constexpr int kStatuses[] = {200, 400, 401, 403, 404, 408, 409, 429, 500, 503};
constexpr char kKeyArn[] = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-12";

class FixedCredentials final : public aws::CredentialsProvider {
 public:
  std::string_view Name() const override { return "fixed"; }
  absl::StatusOr<aws::AwsCredentials> Fetch(const CallContext&) override {
    aws::AwsCredentials c;
    c.access_key_id = "AKIDEXAMPLE";
    c.secret_access_key = SecretBytes::CopyFrom("secret");
    c.session_token = SecretBytes::CopyFrom("token");
    return c;
  }
};

template <typename T>
void CheckCredentials(const absl::StatusOr<T>& c) {
  if (!c.ok()) return CheckMessage(c.status());
  if (c->access_key_id.empty() || c->secret_access_key.empty()) __builtin_trap();
}

aws::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

struct State {
  kmsplugin::testing::FakeClock clock;
  std::string token_file;
  State() {
    spdlog::set_level(spdlog::level::off);
    char tmpl[] = "/tmp/kmsp-aws-fuzz-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) std::abort();
    if (write(fd, "jwt", 3) != 3) std::abort();
    close(fd);
    token_file = tmpl;
  }
};

void FuzzKms(State& st, int status, std::string_view body, std::string_view error_type) {
  CheckMessage(
      aws::ClassifyKmsError("Decrypt", status, error_type, body, "request-id").status);
  auto handler = [&](const RecordedRequest&) {
    return MakeResponse(status, body, {{"x-amzn-errortype", std::string(error_type)}});
  };
  aws::AwsKmsOptions options;
  options.key_id = kKeyArn;
  options.region = "us-east-1";
  options.retry.max_attempts = 1;
  options.env = Env({});
  options.credentials = std::make_unique<FixedCredentials>();
  options.http = std::make_unique<FakeHttpClient>(handler);
  auto kms = aws::AwsKms::Create(std::move(options), &st.clock);
  if (!kms.ok()) std::abort();
  const CallContext ctx{absl::InfiniteFuture(), "fuzz"};
  CheckMessage((*kms)->Probe(ctx).status());
  CheckMessage((*kms)->Unwrap({std::string("aws:") + kKeyArn + "/m", "blob"}, ctx).status());
  auto wrapped = (*kms)->Wrap(SecretBytes::CopyFrom(std::string(32, 'k')), ctx);
  CheckMessage(wrapped.status());
  if (wrapped.ok() && wrapped->kek_id.size() > kmsplugin::kMaxKekIdSize) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static State* st = new State();
  if (size < 2) return 0;
  const int mode = data[0] % 4;
  const int status = PickStatus(kStatuses, data[1]);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const CallContext ctx{absl::InfiniteFuture(), "fuzz"};
  if (mode == 0) {
    const size_t sep = rest.find('\xfe');
    FuzzKms(*st, status, rest.substr(0, sep),
            sep == std::string_view::npos ? std::string_view() : rest.substr(sep + 1));
    return 0;
  }
  FakeHttpClient http([&](const RecordedRequest& r) -> absl::StatusOr<HttpResponse> {
    if (mode == 3) {
      if (r.method == "PUT") return MakeResponse(200, "imds-token");
      const size_t sep = rest.find('\xff');
      const bool role = r.url.back() == '/';
      std::string_view part = role ? rest.substr(0, sep)
                                   : (sep == std::string_view::npos ? std::string_view()
                                                                    : rest.substr(sep + 1));
      return MakeResponse(role ? 200 : status, part);
    }
    return MakeResponse(status, rest);
  });
  if (mode == 1) {
    aws::WebIdentityCredentialsProvider p(
        Env({{"AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/r"},
             {"AWS_WEB_IDENTITY_TOKEN_FILE", st->token_file}}),
        &http, &st->clock, aws::DefaultChainOptions{"us-east-1", false});
    CheckCredentials(p.Fetch(ctx));
  } else if (mode == 2) {
    aws::ContainerCredentialsProvider p(
        Env({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/v1/credentials"}}), &http);
    CheckCredentials(p.Fetch(ctx));
  } else {
    aws::ImdsCredentialsProvider p(
        Env({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1"}}), &http, &st->clock);
    CheckCredentials(p.Fetch(ctx));
  }
  return 0;
}
