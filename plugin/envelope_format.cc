#include "plugin/envelope_format.h"

#include "fmt/format.h"

namespace kmsplugin {
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
  PutU16(key_id.size(), &aad);
  aad.append(key_id);
  PutU32(annotations.size(), &aad);
  for (const auto& [k, v] : annotations) {  // std::map iterates in key order.
    PutU16(k.size(), &aad);
    aad.append(k);
    PutU32(v.size(), &aad);
    aad.append(v);
  }
  return aad;
}

}  // namespace kmsplugin
