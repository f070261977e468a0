// SigV4 against every case of AWS's signing test suite (shared/testdata/sigv4, 38 cases) and the
// KMS-shaped botocore vectors (shared/testdata/sigv4-kms, 3 cases), step by step: canonical
// request, string to sign, signature, Authorization header and the headers added to the request.
#include "kms/aws/sigv4.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/matchers.h"

namespace kmsplugin::aws {
namespace {

using ::kmsplugin::testing::IsOk;
using ::testing::UnorderedElementsAreArray;

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ParsedRequest {
  std::string method;
  std::string path;
  std::string query;
  std::vector<HttpHeader> headers;
  std::string body;
};

// Parses the suite's request files: request line, "Name:value" headers (continuation lines that
// start with whitespace are folded into the previous value with '\n'), blank line, body.
ParsedRequest ParseRequest(const std::string& text) {
  ParsedRequest r;
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    lines.push_back(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
  const std::string& first = lines[0];
  const size_t sp1 = first.find(' ');
  const size_t sp2 = first.rfind(' ');
  r.method = first.substr(0, sp1);
  const std::string uri = first.substr(sp1 + 1, sp2 - sp1 - 1);
  const size_t q = uri.find('?');
  r.path = uri.substr(0, q);
  if (q != std::string::npos) r.query = uri.substr(q + 1);
  size_t i = 1;
  for (; i < lines.size() && !lines[i].empty(); ++i) {
    const std::string& line = lines[i];
    if ((line[0] == ' ' || line[0] == '\t') && !r.headers.empty()) {
      r.headers.back().value += "\n" + line;
      continue;
    }
    const size_t colon = line.find(':');
    r.headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
  }
  for (size_t j = i + 1; j < lines.size(); ++j) {
    if (j > i + 1) r.body += "\n";
    r.body += lines[j];
  }
  return r;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<fs::path> AllCases() {
  std::vector<fs::path> cases;
  for (const char* suite : {"sigv4", "sigv4-kms"}) {
    const fs::path dir = fs::path(KMSP_SHARED_TESTDATA) / suite;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_directory() && fs::exists(entry.path() / "context.json")) {
        cases.push_back(entry.path());
      }
    }
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

class SigV4VectorTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(SigV4VectorTest, EveryStepMatchesTheVector) {
  const fs::path dir = GetParam();
  const nlohmann::json ctx = nlohmann::json::parse(ReadFile(dir / "context.json"));
  ParsedRequest req = ParseRequest(ReadFile(dir / "request.txt"));

  AwsCredentials creds;
  creds.access_key_id = ctx["credentials"]["access_key_id"].get<std::string>();
  creds.secret_access_key =
      SecretBytes::CopyFrom(ctx["credentials"]["secret_access_key"].get<std::string>());
  if (ctx["credentials"].contains("token")) {
    creds.session_token = SecretBytes::CopyFrom(ctx["credentials"]["token"].get<std::string>());
  }
  std::vector<std::string> unsigned_headers;
  if (ctx.contains("unsigned_headers")) {
    unsigned_headers = ctx["unsigned_headers"].get<std::vector<std::string>>();
  }

  SigV4Request to_sign;
  to_sign.method = req.method;
  to_sign.path = req.path;
  to_sign.query = req.query;
  for (const HttpHeader& h : req.headers) {
    if (std::find(unsigned_headers.begin(), unsigned_headers.end(), Lower(h.name)) ==
        unsigned_headers.end()) {
      to_sign.headers.push_back(h);
    }
  }
  to_sign.payload = req.body;

  SigV4Options options;
  options.region = ctx["region"].get<std::string>();
  options.service = ctx["service"].get<std::string>();
  absl::Time t;
  std::string err;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, ctx["timestamp"].get<std::string>(), &t, &err));
  options.time = t;
  options.normalize_path = ctx.value("normalize", true);
  options.add_content_sha256_header = ctx.value("sign_body", false);
  options.sign_session_token = !ctx.value("omit_session_token", false);

  absl::StatusOr<SigV4Result> result = SignV4(to_sign, creds, options);
  ASSERT_THAT(result, IsOk());

  EXPECT_EQ(result->canonical_request.Reveal(), ReadFile(dir / "header-canonical-request.txt"))
      << "canonical request";
  EXPECT_EQ(result->string_to_sign, ReadFile(dir / "header-string-to-sign.txt"))
      << "string to sign";
  EXPECT_EQ(result->signature, ReadFile(dir / "header-signature.txt")) << "signature";

  // The signed request holds the original headers plus exactly the ones the signer added
  // (X-Amz-Date, optional token and content hash, Authorization), whatever their order.
  ParsedRequest signed_req = ParseRequest(ReadFile(dir / "header-signed-request.txt"));
  std::vector<std::string> expected;
  for (const HttpHeader& h : signed_req.headers) expected.push_back(Lower(h.name) + ":" + h.value);
  std::vector<std::string> actual;
  for (const HttpHeader& h : req.headers) actual.push_back(Lower(h.name) + ":" + h.value);
  for (const HttpHeader& h : result->headers_to_add) {
    actual.push_back(Lower(h.name) + ":" + h.value);
  }
  EXPECT_THAT(actual, UnorderedElementsAreArray(expected)) << "signed request headers";
  auto auth = std::find_if(signed_req.headers.begin(), signed_req.headers.end(),
                           [](const HttpHeader& h) { return h.name == "Authorization"; });
  ASSERT_NE(auth, signed_req.headers.end());
  EXPECT_EQ(result->authorization, auth->value) << "authorization";
}

std::string CaseName(const ::testing::TestParamInfo<fs::path>& info) {
  std::string name =
      info.param.parent_path().filename().string() + "_" + info.param.filename().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(AwsSuiteAndKmsVectors, SigV4VectorTest, ::testing::ValuesIn(AllCases()),
                         CaseName);

TEST(SigV4Test, AllFortyOneVectorsArePresent) { EXPECT_EQ(AllCases().size(), 41u); }

TEST(SigV4Test, GetVanillaHasThePublishedCanonicalRequestHashAndSignature) {
  AwsCredentials creds;
  creds.access_key_id = "AKIDEXAMPLE";
  creds.secret_access_key = SecretBytes::CopyFrom("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
  SigV4Request req;
  req.method = "GET";
  req.headers = {{"Host", "example.amazonaws.com"}};
  SigV4Options options{"us-east-1", "service", absl::FromUnixSeconds(1440938160)};
  absl::StatusOr<SigV4Result> r = SignV4(req, creds, options);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(
      r->string_to_sign,
      ::testing::EndsWith("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"));
  EXPECT_EQ(r->signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Test, SigningFailsWithoutHostHeaderOrSecret) {
  AwsCredentials creds;
  creds.access_key_id = "AKIDEXAMPLE";
  creds.secret_access_key = SecretBytes::CopyFrom("secret");
  SigV4Request req;
  req.method = "GET";
  SigV4Options options{"us-east-1", "kms", absl::FromUnixSeconds(0)};
  EXPECT_THAT(SignV4(req, creds, options),
              kmsplugin::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  req.headers = {{"Host", "h"}};
  creds.secret_access_key.Clear();
  EXPECT_THAT(SignV4(req, creds, options),
              kmsplugin::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SigV4Test, TheCanonicalRequestHoldingTheSessionTokenIsBuiltInSecretBytes) {
  static_assert(std::is_same_v<decltype(SigV4Result::canonical_request), SecretBytes>,
                "the canonical request holds the session token: SecretBytes only");
  AwsCredentials creds;
  creds.access_key_id = "AKIDEXAMPLE";
  creds.secret_access_key = SecretBytes::CopyFrom("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
  creds.session_token = SecretBytes::CopyFrom("session  token\tvalue");
  SigV4Request req;
  req.method = "POST";
  req.headers = {{"Host", "kms.us-east-1.amazonaws.com"}, {"X-Amz-Target", " a  b "}};
  SigV4Options options{"us-east-1", "kms", absl::FromUnixSeconds(1440938160)};
  absl::StatusOr<SigV4Result> r = SignV4(req, creds, options);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->canonical_request.Reveal(),
            "POST\n/\n\nhost:kms.us-east-1.amazonaws.com\nx-amz-date:20150830T123600Z\n"
            "x-amz-security-token:session token value\nx-amz-target:a b\n\n"
            "host;x-amz-date;x-amz-security-token;x-amz-target\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(r->signed_headers, "host;x-amz-date;x-amz-security-token;x-amz-target");
  // The token goes on the wire verbatim, once.
  int tokens = 0;
  for (const HttpHeader& h : r->headers_to_add) {
    if (h.name == "X-Amz-Security-Token") {
      ++tokens;
      EXPECT_EQ(h.value, "session  token\tvalue");
    }
  }
  EXPECT_EQ(tokens, 1);
}

TEST(SigV4Test, QueryComponentsAreEncodedWithUppercaseHexAndSlash) {
  EXPECT_EQ(UriEncode("a b/c~", /*encode_slash=*/true), "a%20b%2Fc~");
  EXPECT_EQ(UriEncode("a b/c", /*encode_slash=*/false), "a%20b/c");
  EXPECT_EQ(CanonicalQueryString("b=2&a=1&a=0"), "a=0&a=1&b=2");
}

// Found by fuzz/sigv4_fuzzer: raw bytes in the method, a header name or value reached the
// canonical request (a '\n' or ':' in a name forges canonical lines, so two different requests
// shared one signature), and a caller's own X-Amz-Date was signed next to the signer's. The
// signer now refuses them (INVALID_ARGUMENT, with no header value in the message).
TEST(SigV4Test, RequestsWhoseBytesWouldForgeCanonicalLinesAreRefused) {
  AwsCredentials creds;
  creds.access_key_id = "AKIDEXAMPLE";
  creds.secret_access_key = SecretBytes::CopyFrom("secret");
  SigV4Options options{"us-east-1", "kms", absl::FromUnixSeconds(0)};
  auto sign = [&](std::string method, std::vector<HttpHeader> extra) {
    SigV4Request req;
    req.method = std::move(method);
    req.headers = {{"Host", "h"}};
    for (HttpHeader& h : extra) req.headers.push_back(std::move(h));
    return SignV4(req, creds, options);
  };
  const std::vector<std::pair<std::string, std::vector<HttpHeader>>> refused = {
      {"GET\nx", {}},
      {"", {}},
      {"G T", {}},
      {"GET", {{"a\nb", "v"}}},
      {"GET", {{"a:b", "v"}}},
      {"GET", {{"", "v"}}},
      {"GET", {{"a b", "v"}}},
      {"GET", {{"x", std::string("v\0w", 3)}}},
      {"GET", {{"x", "v\x01"}}},
      {"GET", {{"x", "caf\xc3\xa9"}}},
      {"GET", {{"X-Amz-Date", "20150830T123600Z"}}},
      {"GET", {{"authorization", "AWS4-HMAC-SHA256 x"}}},
  };
  int refusals = 0;
  for (const auto& [method, extra] : refused) {
    absl::StatusOr<SigV4Result> r = sign(method, extra);
    EXPECT_THAT(r, kmsplugin::testing::StatusIs(absl::StatusCode::kInvalidArgument))
        << "method " << method.size() << " bytes, " << extra.size() << " extra headers";
    if (!r.ok()) ++refusals;
  }
  EXPECT_EQ(refusals, 12);
  // What the suite's cases use stays accepted: folded values, tabs, quotes, odd token bytes.
  EXPECT_THAT(sign("GET", {{"My-Header1", "value1\n  value2\t\"a  b\""},
                           {"x!#$%&'*+-.^_`|~9", " v "}}),
              IsOk());
}

TEST(SigV4Test, ARelativePathGetsAnAbsoluteCanonicalUri) {
  EXPECT_EQ(CanonicalUri("rr/", /*normalize=*/true), "/rr/");
  EXPECT_EQ(CanonicalUri("a b", /*normalize=*/false), "/a%20b");
  EXPECT_EQ(CanonicalUri("", /*normalize=*/false), "/");
  EXPECT_EQ(CanonicalUri("a/../b", /*normalize=*/true), "/b");
}

TEST(SigV4Test, CredentialsThatWouldInjectHeaderBytesAreRefused) {
  SigV4Request req;
  req.method = "GET";
  req.headers = {{"Host", "h"}};
  SigV4Options options{"us-east-1", "kms", absl::FromUnixSeconds(0)};
  AwsCredentials creds;
  creds.secret_access_key = SecretBytes::CopyFrom("secret");
  creds.access_key_id = "AKID\r\nX-Injected: 1";
  EXPECT_THAT(SignV4(req, creds, options),
              kmsplugin::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  creds.access_key_id = "AKIDEXAMPLE";
  creds.session_token = SecretBytes::CopyFrom("Q7zzW\r\nX-Injected: 1");
  absl::StatusOr<SigV4Result> r = SignV4(req, creds, options);
  EXPECT_THAT(r, kmsplugin::testing::StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(r.status().message().find("Q7zzW"), absl::string_view::npos);
  creds.session_token = SecretBytes::CopyFrom("tok+/=\tvalue");
  EXPECT_THAT(SignV4(req, creds, options), IsOk());
}

}  // namespace
}  // namespace kmsplugin::aws
