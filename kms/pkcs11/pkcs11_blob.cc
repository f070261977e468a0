#include "kms/pkcs11/pkcs11_blob.h"

#include "absl/strings/numbers.h"
#include "fmt/format.h"

namespace kmsplugin::pkcs11 {

std::string_view MechanismName(Mechanism m) {
  return m == Mechanism::kAesGcm ? "CKM_AES_GCM" : "CKM_AES_KEY_WRAP_PAD";
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '.' ||
        u == '_' || u == '-') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

std::string EncodeVersionId(uint32_t version) {
  std::string id;
  id.reserve(4);
  bool started = false;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const auto byte = static_cast<uint8_t>((version >> shift) & 0xFF);
    if (byte != 0 || started || shift == 0) {
      id.push_back(static_cast<char>(byte));
      started = true;
    }
  }
  return id;
}

std::optional<uint32_t> ParseVersionId(std::string_view id) {
  if (id.empty() || id.size() > 4) return std::nullopt;
  uint32_t v = 0;
  for (char c : id) v = (v << 8) | static_cast<uint8_t>(c);
  if (v == 0) return std::nullopt;
  return v;
}

std::string KeyRef(std::string_view key_label, uint32_t version) {
  return PercentEncode(key_label) + "/v" + std::to_string(version);
}

std::string MakeKekId(std::string_view token_serial, std::string_view key_label, uint32_t version) {
  return std::string(kKekIdPrefix) + PercentEncode(token_serial) + "/" + KeyRef(key_label, version);
}

std::optional<uint32_t> ParseKekId(std::string_view kek_id, std::string_view token_serial,
                                   std::string_view key_label) {
  const std::string prefix = std::string(kKekIdPrefix) + PercentEncode(token_serial) + "/" +
                             PercentEncode(key_label) + "/v";
  if (kek_id.size() <= prefix.size() || kek_id.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  std::string_view digits = kek_id.substr(prefix.size());
  if (digits.size() > 10 || digits[0] == '0') return std::nullopt;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &v) || v == 0 ||
      v > UINT32_MAX)
    return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::string BlobHeader(Mechanism mechanism) {
  return std::string{static_cast<char>(kBlobFormat1), static_cast<char>(mechanism)};
}

absl::StatusOr<ParsedBlob> ParseBlob(std::string_view blob) {
  if (blob.size() < 2) {
    return absl::InvalidArgumentError(
        fmt::format("PKCS#11 wrapped key of {} bytes is too short", blob.size()));
  }
  if (blob.size() > kMaxBlobSize) {
    return absl::InvalidArgumentError(
        fmt::format("PKCS#11 wrapped key of {} bytes exceeds {}", blob.size(), kMaxBlobSize));
  }
  if (static_cast<uint8_t>(blob[0]) != kBlobFormat1) {
    return absl::InvalidArgumentError(fmt::format("PKCS#11 wrapped key has unknown format 0x{:02x}",
                                                  static_cast<uint8_t>(blob[0])));
  }
  ParsedBlob parsed;
  parsed.header = blob.substr(0, 2);
  const auto mech = static_cast<uint8_t>(blob[1]);
  std::string_view rest = blob.substr(2);
  if (mech == static_cast<uint8_t>(Mechanism::kAesGcm)) {
    if (rest.size() < kGcmIvSize + kGcmTagSize + 1) {
      return absl::InvalidArgumentError(
          fmt::format("PKCS#11 AES-GCM wrapped key of {} bytes is too short", blob.size()));
    }
    parsed.mechanism = Mechanism::kAesGcm;
    parsed.iv = rest.substr(0, kGcmIvSize);
    parsed.body = rest.substr(kGcmIvSize);
    return parsed;
  }
  if (mech == static_cast<uint8_t>(Mechanism::kAesKeyWrapPad)) {
    if (rest.size() < 16 || rest.size() % 8 != 0) {
      return absl::InvalidArgumentError(fmt::format(
          "PKCS#11 AES-KEY-WRAP-PAD wrapped key of {} bytes has a bad size", blob.size()));
    }
    parsed.mechanism = Mechanism::kAesKeyWrapPad;
    parsed.body = rest;
    return parsed;
  }
  return absl::InvalidArgumentError(
      fmt::format("PKCS#11 wrapped key has unknown mechanism 0x{:02x}", mech));
}

std::string EncodeBlob(Mechanism mechanism, std::string_view iv, std::string_view body) {
  std::string blob = BlobHeader(mechanism);
  blob.reserve(blob.size() + iv.size() + body.size());
  blob.append(iv);
  blob.append(body);
  return blob;
}

std::string GcmAad(std::string_view header, std::string_view key_label, uint32_t version) {
  return std::string(header) + KeyRef(key_label, version);
}

}  // namespace kmsplugin::pkcs11
