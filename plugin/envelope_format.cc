#include "plugin/envelope_format.h"

#include "fmt/format.h"

namespace kmsplugin {
namespace {

void PutU16(std::string& out, size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void PutU32(std::string& out, size_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
bool IsDns1123Label(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (!IsAlnum(label.front()) || !IsAlnum(label.back())) return false;
  for (char c : label) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<ParsedEnvelope> ParseEnvelope(std::string_view ciphertext) {
  if (ciphertext.size() < kEnvelopeOverhead || ciphertext.size() > kMaxCiphertextSize) {
    return absl::InvalidArgumentError(fmt::format(
        "ciphertext is {} bytes; a kms-plugin ciphertext is {} to {} bytes", ciphertext.size(),
        kEnvelopeOverhead, kMaxCiphertextSize));
  }
  if (static_cast<uint8_t>(ciphertext[0]) != kEnvelopeVersion) {
    return absl::InvalidArgumentError(
        fmt::format("ciphertext has unknown format version {}", static_cast<uint8_t>(ciphertext[0])));
  }
  return ParsedEnvelope{ciphertext.substr(1, kEnvelopeNonceSize),
                        ciphertext.substr(1 + kEnvelopeNonceSize)};
}

std::string SerializeEnvelope(std::string_view nonce, std::string_view ct_and_tag) {
  std::string out;
  out.reserve(1 + nonce.size() + ct_and_tag.size());
  out.push_back(static_cast<char>(kEnvelopeVersion));
  out.append(nonce);
  out.append(ct_and_tag);
  return out;
}

std::string EnvelopeAad(std::string_view key_id, const Annotations& annotations) {
  std::string aad = "kms-plugin/v1";
  aad.push_back('\0');
  PutU16(aad, key_id.size());
  aad.append(key_id);
  PutU32(aad, annotations.size());
  for (const auto& [k, v] : annotations) {  // std::map iterates in key order.
    PutU16(aad, k.size());
    aad.append(k);
    PutU32(aad, v.size());
    aad.append(v);
  }
  return aad;
}

bool IsFullyQualifiedDomainName(std::string_view key) {
  if (!key.empty() && key.back() == '.') key.remove_suffix(1);
  if (key.empty() || key.size() > 253) return false;
  size_t labels = 0;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string_view label = key.substr(start, dot == std::string_view::npos ? key.npos : dot - start);
    if (!IsDns1123Label(label)) return false;
    ++labels;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return labels >= 2;
}

absl::Status ValidateAnnotations(const Annotations& annotations) {
  size_t total = 0;
  for (const auto& [k, v] : annotations) {
    total += k.size() + v.size();
    if (total > kMaxAnnotationsSize) {
      return absl::InvalidArgumentError(fmt::format(
          "annotations exceed {} bytes ({} entries)", kMaxAnnotationsSize, annotations.size()));
    }
    if (!IsFullyQualifiedDomainName(k)) {
      return absl::InvalidArgumentError(fmt::format(
          "annotation key of {} bytes is not a lower-case fully qualified domain name", k.size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace kmsplugin
