#include "kms/aws/sigv4.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <utility>

#include "absl/time/time.h"
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

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes (leaving malformed ones as they are); '+' stays '+'.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = HexValue(s[i + 1]);
      const int lo = HexValue(s[i + 2]);
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

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trims and collapses every run of whitespace (spaces, tabs, folded line breaks) to one space.
std::string TrimAll(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
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
  if (p.empty()) p = "/";
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
  WipeString(canonical_request);
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
  SigV4Result result;
  result.amz_date = AmzDate(options.time);
  const std::string date = result.amz_date.substr(0, 8);
  const std::string payload_hash = Sha256Hex(request.payload);

  // Headers the signer adds before signing.
  std::vector<HttpHeader> signed_extra;
  signed_extra.push_back({"X-Amz-Date", result.amz_date});
  if (options.add_content_sha256_header) {
    signed_extra.push_back({"x-amz-content-sha256", payload_hash});
  }
  const bool has_token = !credentials.session_token.empty();
  if (has_token && options.sign_session_token) {
    signed_extra.push_back(
        {"X-Amz-Security-Token", std::string(credentials.session_token.Reveal())});
  }

  // Canonical headers: lower-cased names, sorted; repeated names joined with ',' in order.
  std::map<std::string, std::string> canonical;
  bool has_host = false;
  auto add = [&canonical, &has_host](const HttpHeader& h) {
    std::string name = Lower(h.name);
    if (name == "host") has_host = true;
    auto [it, inserted] = canonical.try_emplace(name, TrimAll(h.value));
    if (!inserted) it->second += "," + TrimAll(h.value);
  };
  for (const HttpHeader& h : request.headers) add(h);
  for (const HttpHeader& h : signed_extra) add(h);
  if (!has_host) return absl::InvalidArgumentError("SigV4: the request has no Host header");

  std::string canonical_headers;
  for (const auto& [name, value] : canonical) {
    canonical_headers += name + ":" + value + "\n";
    if (!result.signed_headers.empty()) result.signed_headers += ';';
    result.signed_headers += name;
  }
  if (canonical.count("x-amz-security-token") > 0) {
    WipeString(canonical["x-amz-security-token"]);
  }

  result.canonical_request = fmt::format(
      "{}\n{}\n{}\n{}\n{}\n{}", request.method, CanonicalUri(request.path, options.normalize_path),
      CanonicalQueryString(request.query), canonical_headers, result.signed_headers, payload_hash);
  WipeString(canonical_headers);

  const std::string scope =
      fmt::format("{}/{}/{}/aws4_request", date, options.region, options.service);
  result.string_to_sign = fmt::format("{}\n{}\n{}\n{}", kAlgorithm, result.amz_date, scope,
                                      Sha256Hex(result.canonical_request));

  // Signing key chain; every intermediate is secret.
  SecretBytes k_secret(4 + credentials.secret_access_key.size());
  std::memcpy(k_secret.MutableData(), "AWS4", 4);
  std::memcpy(k_secret.MutableData() + 4, credentials.secret_access_key.data(),
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
  if (has_token && !options.sign_session_token) {
    result.headers_to_add.push_back(
        {"X-Amz-Security-Token", std::string(credentials.session_token.Reveal())});
  }
  result.headers_to_add.push_back({"Authorization", result.authorization});
  return result;
}

}  // namespace kmsplugin::aws
