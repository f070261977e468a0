// Wire-level pieces of the Azure Key Vault backend; see azure_wire.h.
#include "kms/azure/azure_wire.h"

#include <array>
#include <cctype>
#include <cstdint>
#include <string>

#include "base/printable.h"

namespace kmsplugin::azure {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && Lower(s.substr(0, prefix.size())) == Lower(prefix);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

size_t EncodedSize(size_t n) { return (n * 4 + 2) / 3; }

void EncodeInto(std::string_view in, char* out) {
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out[o++] = kAlphabet[(v >> 18) & 63];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = kAlphabet[(v >> 6) & 63];
    out[o++] = kAlphabet[v & 63];
  }
  const size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out[o++] = kAlphabet[(v >> 18) & 63];
    out[o++] = kAlphabet[(v >> 12) & 63];
    if (rest == 2) out[o++] = kAlphabet[(v >> 6) & 63];
  }
}

bool AllOf(std::string_view s, size_t min, size_t max, bool allow_dash) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s) {
    if (!IsAlnum(c) && !(allow_dash && c == '-')) {
      return false;
    }
  }
  return true;
}

// The value of `name` in a challenge's comma-separated auth-params (quoted or not).
std::optional<std::string> ChallengeParam(std::string_view params, std::string_view name) {
  size_t pos = 0;
  while (pos < params.size()) {
    while (pos < params.size() && (params[pos] == ' ' || params[pos] == ',')) ++pos;
    const size_t eq = params.find('=', pos);
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string key = Lower(Trim(params.substr(pos, eq - pos)));
    size_t v = eq + 1;
    while (v < params.size() && params[v] == ' ') ++v;
    std::string value;
    if (v < params.size() && params[v] == '"') {
      const size_t close = params.find('"', v + 1);
      if (close == std::string_view::npos) return std::nullopt;
      value = std::string(params.substr(v + 1, close - v - 1));
      pos = close + 1;
    } else {
      const size_t comma = params.find(',', v);
      const size_t end = comma == std::string_view::npos ? params.size() : comma;
      value = std::string(Trim(params.substr(v, end - v)));
      pos = end;
    }
    if (key == name) return value;
  }
  return std::nullopt;
}

// The host of an https URL ("https://vault.azure.net/x" -> "vault.azure.net"), lower case.
std::string HostOf(std::string_view url) {
  if (!StartsWithIgnoreCase(url, "https://")) return "";
  url.remove_prefix(8);
  const size_t end = url.find_first_of("/:?#");
  return Lower(url.substr(0, end));
}

bool IsLoopback(std::string_view host) {
  return host == "127.0.0.1" || host == "localhost" || host == "[::1]" || host == "::1";
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out(EncodedSize(bytes.size()), '\0');
  EncodeInto(bytes, out.data());
  return out;
}

SecretBytes Base64UrlEncodeSecret(const SecretBytes& bytes) {
  SecretBytes out(EncodedSize(bytes.size()));
  EncodeInto(bytes.Reveal(), reinterpret_cast<char*>(out.RevealMutable()));
  return out;
}

absl::StatusOr<SecretBytes> Base64UrlDecodeSecret(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return absl::InvalidArgumentError("invalid base64url length");
  SecretBytes out(text.size() * 3 / 4);
  uint8_t* o = out.RevealMutable();
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char c : text) {
    const int v = Base64UrlValue(c);
    if (v < 0) return absl::InvalidArgumentError("invalid base64url character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[n++] = static_cast<uint8_t>((acc >> bits) & 0xff);
    }
  }
  acc = 0;
  return out;
}

absl::StatusOr<VaultUrl> ParseVaultUrl(std::string_view url) {
  auto bad = [&url](std::string_view why) {
    return absl::InvalidArgumentError("--azure-vault-url '" + Printable(url, 200) + "' " +
                                      std::string(why));
  };
  if (!StartsWithIgnoreCase(url, "https://")) return bad("is not an https:// URL");
  std::string_view rest = url.substr(8);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return bad("has no host");
  if (rest.find_first_of("/?#@ \\") != std::string_view::npos) {
    return bad("must be https://HOST[:PORT] without a path");
  }
  std::string_view host = rest;
  std::string_view port;
  const size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find(']') == std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    uint32_t p = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || p > 65535) return bad("has a bad port");
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port.empty() || p == 0 || p > 65535) return bad("has a bad port");
  }
  for (char c : host) {
    if (!IsAlnum(c) && c != '-' && c != '.' && c != '[' && c != ']' && c != ':') {
      return bad("has a bad host name");
    }
  }
  if (host.empty()) return bad("has no host");
  VaultUrl out;
  out.host = Lower(host);
  out.base = "https://" + out.host;
  if (!port.empty() && port != "443") out.base += ":" + std::string(port);
  return out;
}

bool ValidKeyName(std::string_view name) { return AllOf(name, 1, 127, true); }
bool ValidKeyVersion(std::string_view version) { return AllOf(version, 1, 64, false); }

std::optional<KeyId> ParseKeyId(std::string_view kid) {
  if (!StartsWithIgnoreCase(kid, "https://")) return std::nullopt;
  const size_t keys = kid.find("/keys/", 8);
  if (keys == std::string_view::npos) return std::nullopt;
  absl::StatusOr<VaultUrl> vault = ParseVaultUrl(kid.substr(0, keys));
  if (!vault.ok()) return std::nullopt;
  const std::string_view path = kid.substr(keys + 6);
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view name = path.substr(0, slash);
  const std::string_view version = path.substr(slash + 1);
  if (!ValidKeyName(name) || !ValidKeyVersion(version)) return std::nullopt;
  return KeyId{*std::move(vault), std::string(name), std::string(version)};
}

std::string DefaultScopeFor(std::string_view vault_host) {
  const std::string host = Lower(vault_host);
  if (host.find(".managedhsm.") != std::string::npos)
    return "https://managedhsm.azure.net/.default";
  return "https://vault.azure.net/.default";
}

std::string ResourceOfScope(std::string_view scope) {
  if (EndsWith(scope, "/.default")) scope.remove_suffix(9);
  while (!scope.empty() && scope.back() == '/') scope.remove_suffix(1);
  return std::string(scope);
}

std::optional<std::string> ChallengeScope(std::string_view www_authenticate) {
  std::string_view h = Trim(www_authenticate);
  if (!StartsWithIgnoreCase(h, "Bearer ")) return std::nullopt;
  h.remove_prefix(7);
  std::optional<std::string> scope = ChallengeParam(h, "scope");
  if (scope.has_value() && !scope->empty()) return scope;
  std::optional<std::string> resource = ChallengeParam(h, "resource");
  if (!resource.has_value() || resource->empty()) return std::nullopt;
  return ResourceOfScope(*resource) + "/.default";
}

bool ChallengeScopeAllowed(std::string_view scope, std::string_view vault_host) {
  static constexpr std::array<std::string_view, 8> kAudiences = {
      "vault.azure.net",         "managedhsm.azure.net",        "vault.azure.cn",
      "managedhsm.azure.cn",     "vault.usgovcloudapi.net",     "managedhsm.usgovcloudapi.net",
      "vault.microsoftazure.de", "managedhsm.microsoftazure.de"};
  const std::string resource_host = HostOf(scope);
  bool known = false;
  for (std::string_view a : kAudiences) known = known || resource_host == a;
  if (!known) return false;
  const std::string host = Lower(vault_host);
  return IsLoopback(host) || EndsWith(host, "." + resource_host);
}

SecretBytes KeyOperationBody(std::string_view alg, const SecretBytes& value,
                             std::string_view iv_b64, std::string_view tag_b64,
                             std::string_view aad_b64) {
  // Every piece is base64url or an algorithm name: nothing needs JSON escaping.
  const size_t value_len = EncodedSize(value.size());
  const std::string head = R"({"alg":")" + std::string(alg) + R"(","value":")";
  std::string tail = "\"";
  if (!iv_b64.empty()) tail += R"(,"iv":")" + std::string(iv_b64) + "\"";
  if (!tag_b64.empty()) tail += R"(,"tag":")" + std::string(tag_b64) + "\"";
  if (!aad_b64.empty()) tail += R"(,"aad":")" + std::string(aad_b64) + "\"";
  tail += "}";
  SecretBytes body(head.size() + value_len + tail.size());
  char* out = reinterpret_cast<char*>(body.RevealMutable());
  head.copy(out, head.size());
  EncodeInto(value.Reveal(), out + head.size());
  tail.copy(out + head.size() + value_len, tail.size());
  return body;
}

}  // namespace kmsplugin::azure
