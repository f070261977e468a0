#include "kms/aws/sigv4.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "base/printable.h"
#include "base/status.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "fmt/format.h"

namespace kmsplugin::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

// RFC 9110 §5.6.2 token: methods and header names.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!std::isalnum(c) && std::string_view("!#$%&'*+-.^_`|~").find(ch) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Visible ASCII, space and tab; with `folds`, also CR and LF (obs-fold line breaks, which the
// canonical form collapses to one space, as the suite's get-header-value-multiline expects).
// Control bytes and non-ASCII would reach the canonical request raw.
bool IsSignableValue(std::string_view s, bool folds) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool ok = (c >= 0x20 && c <= 0x7e) || c == '\t' || (folds && (c == '\r' || c == '\n'));
    if (!ok) return false;
  }
  return true;
}

// Refuses what would put raw bytes into the canonical request or onto the wire (a '\n' or ':' in
// a name forges canonical lines) and headers the signer adds itself. No value is quoted: header
// values and the credentials may be secret.
absl::Status CheckSignable(const SigV4Request& request, const AwsCredentials& credentials,
                           const SigV4Options& options) {
  if (!IsToken(request.method)) {
    return absl::InvalidArgumentError("SigV4: the method is not an HTTP token");
  }
  for (const HttpHeader& h : request.headers) {
    if (!IsToken(h.name)) {
      return absl::InvalidArgumentError(
          fmt::format("SigV4: header name \"{}\" is not an HTTP token", Printable(h.name)));
    }
    if (!IsSignableValue(h.value, /*folds=*/true)) {
      return absl::InvalidArgumentError(fmt::format(
          "SigV4: the value of header {} has a control or non-ASCII byte", h.name));
    }
    const std::string name = absl::AsciiStrToLower(h.name);
    if (name == "x-amz-date" || name == "authorization" ||
        (name == "x-amz-security-token" && !credentials.session_token.empty()) ||
        (name == "x-amz-content-sha256" && options.add_content_sha256_header)) {
      return absl::InvalidArgumentError(
          fmt::format("SigV4: the request already has {}, which the signer adds", h.name));
    }
  }
  for (char c : credentials.access_key_id) {
    if (c <= 0x20 || c > 0x7e || c == '/' || c == ',') {
      return absl::InvalidArgumentError("SigV4: the access key id has a byte it cannot carry");
    }
  }
  if (!IsSignableValue(credentials.session_token.Reveal(), /*folds=*/false)) {
    return absl::InvalidArgumentError(
        "SigV4: the session token has a control or non-ASCII byte");
  }
  return absl::OkStatus();
}

// Decodes %XX escapes (leaving malformed ones as they are); '+' stays '+'.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = HexDigitValue(s[i + 1]);
      const int lo = HexDigitValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Builds a string straight into a SecretBytes of exactly the right size: a first pass counts, a
// second pass writes. The bytes are never in a growable std::string, whose reallocations would
// leave unwiped copies of the session token on the heap.
class SecretBuilder {
 public:
  void Append(std::string_view s) {
    if (writing_) std::memcpy(out_.RevealMutable() + pos_, s.data(), s.size());
    pos_ += s.size();
  }
  void Push(char c) { Append(std::string_view(&c, 1)); }
  // Ends the counting pass; the same Append/Push calls must follow.
  void StartWriting() {
    out_ = SecretBytes(pos_);
    pos_ = 0;
    writing_ = true;
  }
  SecretBytes Take() { return std::move(out_); }

 private:
  SecretBytes out_;
  size_t pos_ = 0;
  bool writing_ = false;
};

// Appends `v` trimmed, with every run of whitespace (spaces, tabs, folded line breaks) collapsed
// to one space.
void AppendTrimmed(SecretBuilder& out, std::string_view v) {
  bool any = false;
  bool pending_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = any;
      continue;
    }
    if (pending_space) out.Push(' ');
    pending_space = false;
    any = true;
    out.Push(c);
  }
}

// RFC 3986 §5.2.4 remove_dot_segments, also collapsing empty segments (repeated '/'), as every
// AWS service but S3 expects.
std::string NormalizePath(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!seg.empty() && seg != ".") {
      out.push_back(seg);
    }
    pos = next + 1;
  }
  std::string result = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i > 0) result += '/';
    result += out[i];
  }
  if (path.back() == '/' && !out.empty()) result += '/';
  return result;
}

}  // namespace

std::string UriEncode(std::string_view bytes, bool encode_slash) {
  std::string out;
  out.reserve(bytes.size() * 3);
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view path, bool normalize) {
  std::string p = normalize ? NormalizePath(path) : std::string(path);
  // The canonical URI is absolute, as the request target on the wire is (found by sigv4_fuzzer:
  // a relative path was signed as given).
  if (p.empty() || p.front() != '/') p.insert(0, "/");
  return UriEncode(p, /*encode_slash=*/false);
}

std::string CanonicalQueryString(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      std::string_view name = pair.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
      params.emplace_back(UriEncode(PercentDecode(name), /*encode_slash=*/true),
                          UriEncode(PercentDecode(value), /*encode_slash=*/true));
    }
    pos = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out += '&';
    out += params[i].first + "=" + params[i].second;
  }
  return out;
}

SigV4Result::~SigV4Result() {
  for (HttpHeader& h : headers_to_add) WipeString(h.value);
}

std::string AmzDate(absl::Time t) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<SigV4Result> SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                                   const SigV4Options& options) {
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return absl::InvalidArgumentError("SigV4: credentials have no access key id or secret");
  }
  if (options.region.empty() || options.service.empty()) {
    return absl::InvalidArgumentError("SigV4: region and service are required");
  }
  KMSP_RETURN_IF_ERROR(CheckSignable(request, credentials, options));
  SigV4Result result;
  result.amz_date = AmzDate(options.time);
  const std::string date = result.amz_date.substr(0, 8);
  const std::string payload_hash = Sha256Hex(request.payload);

  // Headers the signer adds before signing. The session token is only referenced here (a view of
  // the credentials' SecretBytes), never copied into a std::string on the way to the canonical
  // request.
  std::vector<HttpHeader> signed_extra;
  signed_extra.push_back({"X-Amz-Date", result.amz_date});
  if (options.add_content_sha256_header) {
    signed_extra.push_back({"x-amz-content-sha256", payload_hash});
  }
  const bool has_token = !credentials.session_token.empty();
  const bool sign_token = has_token && options.sign_session_token;

  // Canonical headers: lower-cased names, sorted; repeated names joined with ',' in order. The
  // values are views of the request's headers, of signed_extra and of the token.
  std::map<std::string, std::vector<std::string_view>> canonical;
  for (const HttpHeader& h : request.headers)
    canonical[absl::AsciiStrToLower(h.name)].push_back(h.value);
  for (const HttpHeader& h : signed_extra)
    canonical[absl::AsciiStrToLower(h.name)].push_back(h.value);
  if (sign_token) {
    canonical["x-amz-security-token"].push_back(credentials.session_token.Reveal());
  }
  if (canonical.count("host") == 0) {
    return absl::InvalidArgumentError("SigV4: the request has no Host header");
  }
  for (const auto& [name, values] : canonical) {
    if (!result.signed_headers.empty()) result.signed_headers += ';';
    result.signed_headers += name;
  }

  // The canonical request holds the token when it is signed: it is built in SecretBytes.
  const std::string uri = CanonicalUri(request.path, options.normalize_path);
  const std::string query = CanonicalQueryString(request.query);
  SecretBuilder builder;
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) builder.StartWriting();
    builder.Append(request.method);
    builder.Push('\n');
    builder.Append(uri);
    builder.Push('\n');
    builder.Append(query);
    builder.Push('\n');
    for (const auto& [name, values] : canonical) {
      builder.Append(name);
      builder.Push(':');
      for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) builder.Push(',');
        AppendTrimmed(builder, values[i]);
      }
      builder.Push('\n');
    }
    builder.Push('\n');
    builder.Append(result.signed_headers);
    builder.Push('\n');
    builder.Append(payload_hash);
  }
  result.canonical_request = builder.Take();

  const std::string scope =
      fmt::format("{}/{}/{}/aws4_request", date, options.region, options.service);
  result.string_to_sign = fmt::format("{}\n{}\n{}\n{}", kAlgorithm, result.amz_date, scope,
                                      Sha256Hex(result.canonical_request.Reveal()));

  // Signing key chain; every intermediate is secret.
  SecretBytes k_secret(4 + credentials.secret_access_key.size());
  std::memcpy(k_secret.RevealMutable(), "AWS4", 4);
  std::memcpy(k_secret.RevealMutable() + 4, credentials.secret_access_key.Reveal().data(),
              credentials.secret_access_key.size());
  KMSP_ASSIGN_OR_RETURN(SecretBytes k_date, HmacSha256(k_secret, date));
  KMSP_ASSIGN_OR_RETURN(SecretBytes k_region, HmacSha256(k_date, options.region));
  KMSP_ASSIGN_OR_RETURN(SecretBytes k_service, HmacSha256(k_region, options.service));
  KMSP_ASSIGN_OR_RETURN(SecretBytes k_signing, HmacSha256(k_service, "aws4_request"));
  KMSP_ASSIGN_OR_RETURN(SecretBytes signature, HmacSha256(k_signing, result.string_to_sign));
  result.signature = HexEncode(signature.Reveal());  // The signature itself is public.

  result.authorization =
      fmt::format("{} Credential={}/{}, SignedHeaders={}, Signature={}", kAlgorithm,
                  credentials.access_key_id, scope, result.signed_headers, result.signature);

  result.headers_to_add = std::move(signed_extra);
  if (has_token) {
    // The one std::string copy of the token here: HttpHeader values are std::string (wiped by
    // ~SigV4Result and ~HttpRequest; built at its final size, so no reallocation leaves a copy).
    // Copies this code cannot avoid: libcurl's own header list and its send buffer
    // (kms/http_client.cc wipes the curl_slist it builds; curl's internal buffers are freed
    // unwiped), and on the receiving side the JSON/XML parsers' temporaries for the credentials
    // answer (nlohmann's lexer token buffer is not wiped).
    result.headers_to_add.push_back(
        {"X-Amz-Security-Token", std::string(credentials.session_token.Reveal())});
  }
  result.headers_to_add.push_back({"Authorization", result.authorization});
  return result;
}

}  // namespace kmsplugin::aws
