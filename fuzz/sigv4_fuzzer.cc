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
//   - no output depends on the secrets beyond where the spec puts them: the same request signed
//     with a second secret access key and session token gives byte-equal output everywhere except
//     the signature (and so Authorization), the X-Amz-Security-Token value and, when the token is
//     signed, its one canonical header line (and so the string to sign). This differential check
//     replaces an earlier "the secret's bytes do not occur in the output" check, which a fuzzer
//     defeats without any leak: the percent-encoding of 0xFF ends in 'F', so a path holding
//     0xFF + "uzzSessionToken/..." puts "FuzzSessionToken/..." in the canonical URI (the CI
//     crash of 2026-12-01, kept as fuzz/corpus/sigv4_fuzzer/crash-percent-encoded-token);
//   - a refusal's message is the same whatever the secrets are.
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
// The second credentials of the differential check (other bytes, other lengths).
constexpr std::string_view kSecret2 = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY2";
constexpr std::string_view kToken2 = "SecondToken+3c4e";
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

// `a` was signed with (kSecret, kToken), `b` with (kSecret2, kToken2), everything else equal.
void CheckSecretsOnlyWhereTheSpecPutsThem(bool with_token, bool sign_token,
                                          const aws::SigV4Result& a, const aws::SigV4Result& b) {
  CHECK(a.amz_date == b.amz_date && a.signed_headers == b.signed_headers);
  CHECK(a.signature != b.signature);
  CHECK(a.authorization.substr(0, a.authorization.size() - a.signature.size()) ==
        b.authorization.substr(0, b.authorization.size() - b.signature.size()));
  const std::string_view cr_a = a.canonical_request.Reveal();
  const std::string_view cr_b = b.canonical_request.Reveal();
  if (with_token && sign_token) {
    // Line by line, only "x-amz-security-token:<token>" differs.
    const std::vector<std::string_view> la = Split(cr_a, '\n');
    const std::vector<std::string_view> lb = Split(cr_b, '\n');
    CHECK(la.size() == lb.size());
    size_t differing = 0;
    for (size_t i = 0; i < la.size(); ++i) {
      if (la[i] == lb[i]) continue;
      ++differing;
      CHECK(la[i] == "x-amz-security-token:" + std::string(kToken));
      CHECK(lb[i] == "x-amz-security-token:" + std::string(kToken2));
    }
    CHECK(differing == 1);
  } else {
    CHECK(cr_a == cr_b && a.string_to_sign == b.string_to_sign);
  }
  CHECK(a.headers_to_add.size() == b.headers_to_add.size());
  for (size_t i = 0; i < a.headers_to_add.size(); ++i) {
    const HttpHeader& ha = a.headers_to_add[i];
    const HttpHeader& hb = b.headers_to_add[i];
    CHECK(ha.name == hb.name);
    if (ha.name == "X-Amz-Security-Token") {
      CHECK(with_token && ha.value == kToken && hb.value == kToken2);
    } else if (ha.name != "Authorization") {
      CHECK(ha.value == hb.value);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
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
  aws::AwsCredentials creds2;
  creds2.access_key_id = std::string(kAccessKeyId);
  creds2.secret_access_key = SecretBytes::CopyFrom(kSecret2);
  const bool with_token = (flags & 0x08) != 0;
  if (with_token) {
    creds.session_token = SecretBytes::CopyFrom(kToken);
    creds2.session_token = SecretBytes::CopyFrom(kToken2);
  }

  aws::SigV4Options options;
  options.region = "us-east-1";
  options.service = "service";
  options.time = absl::FromUnixSeconds(1440938160);  // 2015-08-30T12:36:00Z
  options.normalize_path = (flags & 0x01) != 0;
  options.sign_session_token = (flags & 0x02) != 0;
  options.add_content_sha256_header = (flags & 0x04) != 0;

  absl::StatusOr<aws::SigV4Result> first = aws::SignV4(req, creds, options);
  absl::StatusOr<aws::SigV4Result> second = aws::SignV4(req, creds, options);
  absl::StatusOr<aws::SigV4Result> other = aws::SignV4(req, creds2, options);
  CHECK(first.ok() == second.ok() && first.ok() == other.ok());
  if (!first.ok()) {
    CHECK(first.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(first.status() == second.status() && first.status() == other.status());
    const absl::string_view m = first.status().message();
    CHECK(m.size() <= 1024 && IsPrintableLine(std::string_view(m.data(), m.size())));
    return 0;
  }
  CHECK(SameResult(*first, *second));
  CheckShape(req, options, with_token, *first);
  CheckSecretsOnlyWhereTheSpecPutsThem(with_token, options.sign_session_token, *first, *other);
  return 0;
}
