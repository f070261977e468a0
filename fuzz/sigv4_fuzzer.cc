// libFuzzer target: SigV4 canonicalisation and signing (kms/aws/sigv4.h SignV4) of arbitrary
// methods, paths, queries, header lists and bodies, with the fixed credentials, region, service
// and time of AWS's signing test suite (shared/testdata/sigv4/README.md).
// Properties checked on every input:
//   - no crash, no sanitizer report; a refusal is INVALID_ARGUMENT with a printable message;
//   - a signed request has the spec's shape: the canonical request is printable ASCII with '\n'
//     only between its lines (method, URI, query, one line per signed header, blank line,
//     SignedHeaders, payload hash), its URI and query equal CanonicalUri/CanonicalQueryString,
//     its headers are the sorted lower-case names of SignedHeaders; the string to sign is the
//     four fixed-shape lines; the Authorization header is one printable line with the fixed
//     credential scope; X-Amz-Date is the signer's own, once;
//   - signing is deterministic: the same input signed twice gives the same bytes everywhere;
//   - the secret access key never appears in any output, and the session token appears only in
//     the X-Amz-Security-Token header (and in the canonical request when it is signed), unless the
//     input itself carries those bytes.
//
// Input (FuzzedDataProvider): last byte = flags (normalize_path, sign_session_token,
// add_content_sha256_header, with session token, add a Host header), the byte before it = the
// number of headers (mod 13); from the front: method, path, query, then name and value of each
// header (ConsumeRandomLengthString: "\\" escapes a backslash, "\\" + any other byte ends the
// string), the rest is the body. Seeds: fuzz/corpus/sigv4_fuzzer (make_sigv4_seeds.py).
// Build: clang-14, -DKMSP_SANITIZE=ON -DKMSP_BUILD_FUZZ=ON (like decrypt_fuzzer).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "crypto/hash.h"
#include "kms/aws/sigv4.h"

namespace {

using kmsplugin::HttpHeader;
using kmsplugin::SecretBytes;
namespace aws = kmsplugin::aws;

constexpr std::string_view kAccessKeyId = "AKIDEXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kToken = "FuzzSessionToken/6e86291e8372ff2a2260956d9b8aae1d763fbf31";
constexpr std::string_view kAmzDate = "20150830T123600Z";
constexpr std::string_view kScope = "20150830/us-east-1/service/aws4_request";

#define CHECK(cond)                     \
  do {                                  \
    if (!(cond)) __builtin_trap();      \
  } while (0)

bool Contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

bool IsPrintableLine(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool IsLowerHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    const size_t next = s.find(sep, pos);
    if (next == std::string_view::npos) {
      out.push_back(s.substr(pos));
      return out;
    }
    out.push_back(s.substr(pos, next - pos));
    pos = next + 1;
  }
}

bool SameResult(const aws::SigV4Result& a, const aws::SigV4Result& b) {
  if (a.amz_date != b.amz_date || a.canonical_request.Reveal() != b.canonical_request.Reveal() ||
      a.string_to_sign != b.string_to_sign || a.signed_headers != b.signed_headers ||
      a.signature != b.signature || a.authorization != b.authorization ||
      a.headers_to_add.size() != b.headers_to_add.size()) {
    return false;
  }
  for (size_t i = 0; i < a.headers_to_add.size(); ++i) {
    if (a.headers_to_add[i].name != b.headers_to_add[i].name ||
        a.headers_to_add[i].value != b.headers_to_add[i].value) {
      return false;
    }
  }
  return true;
}

void CheckShape(const aws::SigV4Request& req, const aws::SigV4Options& options, bool with_token,
                const aws::SigV4Result& r) {
  // SignedHeaders: lower-case, strictly sorted, non-empty names; host and x-amz-date among them.
  const std::vector<std::string_view> names = Split(r.signed_headers, ';');
  for (size_t i = 0; i < names.size(); ++i) {
    CHECK(!names[i].empty() && IsPrintableLine(names[i]));
    for (char c : names[i]) CHECK(!(c >= 'A' && c <= 'Z') && c != ':' && c != ' ');
    if (i > 0) CHECK(names[i - 1] < names[i]);
  }
  CHECK(Contains(";" + r.signed_headers + ";", ";host;"));
  CHECK(Contains(";" + r.signed_headers + ";", ";x-amz-date;"));

  // Canonical request: method, URI, query, H header lines, blank, SignedHeaders, payload hash.
  const std::string_view cr = r.canonical_request.Reveal();
  for (char c : cr) CHECK(c == '\n' || (c >= 0x20 && c <= 0x7e));
  const std::vector<std::string_view> lines = Split(cr, '\n');
  const size_t h = names.size();
  CHECK(lines.size() == h + 6);
  CHECK(lines[0] == req.method && !req.method.empty());
  CHECK(lines[1] == aws::CanonicalUri(req.path, options.normalize_path));
  CHECK(!lines[1].empty() && lines[1][0] == '/');
  CHECK(lines[2] == aws::CanonicalQueryString(req.query));
  for (size_t i = 0; i < h; ++i) {
    const std::string_view line = lines[3 + i];
    CHECK(line.size() > names[i].size() && line.substr(0, names[i].size()) == names[i] &&
          line[names[i].size()] == ':');
    const std::string_view value = line.substr(names[i].size() + 1);
    CHECK(value.empty() || (value.front() != ' ' && value.back() != ' '));
    CHECK(!Contains(value, "  "));
    if (names[i] == "x-amz-date") CHECK(value == kAmzDate);
  }
  CHECK(lines[3 + h].empty());
  CHECK(lines[4 + h] == r.signed_headers);
  CHECK(IsLowerHex64(lines[5 + h]) && lines[5 + h] == kmsplugin::Sha256Hex(req.payload));

  // String to sign: four fixed-shape lines.
  CHECK(r.string_to_sign == std::string("AWS4-HMAC-SHA256\n") + std::string(kAmzDate) + "\n" +
                                std::string(kScope) + "\n" + kmsplugin::Sha256Hex(cr));
  CHECK(IsLowerHex64(r.signature));
  CHECK(r.amz_date == kAmzDate);
  CHECK(r.authorization == "AWS4-HMAC-SHA256 Credential=" + std::string(kAccessKeyId) + "/" +
                               std::string(kScope) + ", SignedHeaders=" + r.signed_headers +
                               ", Signature=" + r.signature);
  CHECK(IsPrintableLine(r.authorization));

  // Headers to add: X-Amz-Date, [x-amz-content-sha256], [X-Amz-Security-Token], Authorization.
  size_t expected = 2 + (options.add_content_sha256_header ? 1 : 0) + (with_token ? 1 : 0);
  CHECK(r.headers_to_add.size() == expected);
  CHECK(r.headers_to_add.front().name == "X-Amz-Date" &&
        r.headers_to_add.front().value == kAmzDate);
  CHECK(r.headers_to_add.back().name == "Authorization" &&
        r.headers_to_add.back().value == r.authorization);
  for (const HttpHeader& hh : r.headers_to_add) CHECK(IsPrintableLine(hh.value));
}

void CheckNoSecrets(std::string_view input, bool sign_token, const aws::SigV4Result& r) {
  if (!Contains(input, kSecret)) {
    CHECK(!Contains(r.canonical_request.Reveal(), kSecret));
    CHECK(!Contains(r.string_to_sign, kSecret) && !Contains(r.authorization, kSecret));
    CHECK(!Contains(r.signed_headers, kSecret) && !Contains(r.signature, kSecret));
    for (const HttpHeader& hh : r.headers_to_add) {
      CHECK(!Contains(hh.name, kSecret) && !Contains(hh.value, kSecret));
    }
  }
  if (!Contains(input, kToken)) {
    if (!sign_token) CHECK(!Contains(r.canonical_request.Reveal(), kToken));
    CHECK(!Contains(r.string_to_sign, kToken) && !Contains(r.authorization, kToken));
    CHECK(!Contains(r.signed_headers, kToken));
    for (const HttpHeader& hh : r.headers_to_add) {
      if (hh.name != "X-Amz-Security-Token") CHECK(!Contains(hh.value, kToken));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  FuzzedDataProvider fdp(data, size);
  const uint8_t flags = fdp.ConsumeIntegral<uint8_t>();
  const size_t header_count = fdp.ConsumeIntegralInRange<size_t>(0, 12);

  aws::SigV4Request req;
  req.method = fdp.ConsumeRandomLengthString(32);
  req.path = fdp.ConsumeRandomLengthString(512);
  req.query = fdp.ConsumeRandomLengthString(512);
  if ((flags & 0x10) != 0) req.headers.push_back({"Host", "example.amazonaws.com"});
  for (size_t i = 0; i < header_count && fdp.remaining_bytes() > 0; ++i) {
    std::string name = fdp.ConsumeRandomLengthString(64);
    std::string value = fdp.ConsumeRandomLengthString(256);
    req.headers.push_back({std::move(name), std::move(value)});
  }
  const std::string body = fdp.ConsumeRemainingBytesAsString();
  req.payload = body;

  aws::AwsCredentials creds;
  creds.access_key_id = std::string(kAccessKeyId);
  creds.secret_access_key = SecretBytes::CopyFrom(kSecret);
  const bool with_token = (flags & 0x08) != 0;
  if (with_token) creds.session_token = SecretBytes::CopyFrom(kToken);

  aws::SigV4Options options;
  options.region = "us-east-1";
  options.service = "service";
  options.time = absl::FromUnixSeconds(1440938160);  // 2015-08-30T12:36:00Z
  options.normalize_path = (flags & 0x01) != 0;
  options.sign_session_token = (flags & 0x02) != 0;
  options.add_content_sha256_header = (flags & 0x04) != 0;

  absl::StatusOr<aws::SigV4Result> first = aws::SignV4(req, creds, options);
  absl::StatusOr<aws::SigV4Result> second = aws::SignV4(req, creds, options);
  CHECK(first.ok() == second.ok());
  if (!first.ok()) {
    CHECK(first.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(first.status() == second.status());
    const absl::string_view m = first.status().message();
    CHECK(m.size() <= 1024 && IsPrintableLine(std::string_view(m.data(), m.size())));
    const std::string_view msg(m.data(), m.size());
    if (!Contains(input, kSecret)) CHECK(!Contains(msg, kSecret));
    if (!Contains(input, kToken)) CHECK(!Contains(msg, kToken));
    return 0;
  }
  CHECK(SameResult(*first, *second));
  CheckShape(req, options, with_token, *first);
  CheckNoSecrets(input, with_token && options.sign_session_token, *first);
  return 0;
}
