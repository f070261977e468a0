#include "tools/reencrypt/storage_format.h"

#include <vector>

#include "base/status.h"
#include "crypto/aes_gcm.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::reencrypt {
namespace {

// --- Minimal protobuf wire format (only what EncryptedObject needs). ---

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutTag(uint32_t field, WireType wt, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | wt, out);
}

void PutBytesField(uint32_t field, std::string_view bytes, std::string* out) {
  PutTag(field, kLengthDelimited, out);
  PutVarint(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }

  bool ReadVarint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool ReadBytes(std::string_view* out) {
    uint64_t len = 0;
    if (!ReadVarint(&len) || len > data_.size() - pos_) return false;
    *out = data_.substr(pos_, len);
    pos_ += len;
    return true;
  }
  bool Skip(uint32_t wire_type) {
    uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (wire_type) {
      case kVarint:
        return ReadVarint(&ignored);
      case kFixed64:
        if (data_.size() - pos_ < 8) return false;
        pos_ += 8;
        return true;
      case kLengthDelimited:
        return ReadBytes(&ignored_bytes);
      case kFixed32:
        if (data_.size() - pos_ < 4) return false;
        pos_ += 4;
        return true;
      default:
        return false;  // groups (3, 4) are not valid in proto3
    }
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(fmt::format("malformed EncryptedObject: {}", what));
}

absl::Status ParseAnnotationEntry(std::string_view entry,
                                  std::map<std::string, std::string>* annotations) {
  Reader r(entry);
  std::string key, value;
  while (!r.done()) {
    uint64_t tag = 0;
    if (!r.ReadVarint(&tag)) return Malformed("annotation entry tag");
    uint32_t field = static_cast<uint32_t>(tag >> 3);
    uint32_t wt = static_cast<uint32_t>(tag & 7);
    std::string_view bytes;
    if ((field == 1 || field == 2) && wt == kLengthDelimited) {
      if (!r.ReadBytes(&bytes)) return Malformed("annotation entry field");
      (field == 1 ? key : value) = std::string(bytes);
    } else if (!r.Skip(wt)) {
      return Malformed("annotation entry unknown field");
    }
  }
  (*annotations)[key] = std::move(value);  // proto3 maps: the last entry for a key wins
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateEncryptedObject(const EncryptedObject& obj) {
  if (obj.type != DekSourceType::kAesGcmKey &&
      obj.type != DekSourceType::kHkdfSha256XNonceAesGcmSeed) {
    return absl::InvalidArgumentError(
        fmt::format("unknown encryptedDEKSourceType {}", static_cast<int>(obj.type)));
  }
  if (obj.encrypted_data.empty()) return absl::InvalidArgumentError("encryptedData is empty");
  if (obj.encrypted_dek_source.empty() ||
      obj.encrypted_dek_source.size() > kMaxEncryptedDekSourceSize) {
    return absl::InvalidArgumentError(fmt::format("encryptedDEKSource is {} bytes, want 1..{}",
                                                  obj.encrypted_dek_source.size(),
                                                  kMaxEncryptedDekSourceSize));
  }
  if (obj.key_id.empty() || obj.key_id.size() > kMaxKeyIdSize) {
    return absl::InvalidArgumentError(
        fmt::format("keyID is {} bytes, want 1..{}", obj.key_id.size(), kMaxKeyIdSize));
  }
  return ValidateAnnotations(obj.annotations);
}

absl::StatusOr<EncryptedObject> ParseEncryptedObject(std::string_view bytes) {
  EncryptedObject obj;
  Reader r(bytes);
  while (!r.done()) {
    uint64_t tag = 0;
    if (!r.ReadVarint(&tag)) return Malformed("field tag");
    uint32_t field = static_cast<uint32_t>(tag >> 3);
    uint32_t wt = static_cast<uint32_t>(tag & 7);
    if (field == 0) return Malformed("field number 0");
    std::string_view b;
    if (field >= 1 && field <= 4 && wt == kLengthDelimited) {
      if (!r.ReadBytes(&b)) return Malformed(fmt::format("field {} length", field));
      switch (field) {
        case 1:
          obj.encrypted_data = std::string(b);
          break;
        case 2:
          obj.key_id = std::string(b);
          break;
        case 3:
          obj.encrypted_dek_source = std::string(b);
          break;
        case 4:
          KMSP_RETURN_IF_ERROR(ParseAnnotationEntry(b, &obj.annotations));
          break;
      }
    } else if (field == 5 && wt == kVarint) {
      uint64_t v = 0;
      if (!r.ReadVarint(&v)) return Malformed("field 5");
      obj.type = static_cast<DekSourceType>(static_cast<int32_t>(v));
    } else if (field >= 1 && field <= 5) {
      return Malformed(fmt::format("field {} has wire type {}", field, wt));
    } else if (!r.Skip(wt)) {
      return Malformed(fmt::format("unknown field {}", field));
    }
  }
  KMSP_RETURN_IF_ERROR(ValidateEncryptedObject(obj));
  return obj;
}

std::string SerializeEncryptedObject(const EncryptedObject& obj) {
  std::string out;
  out.reserve(obj.encrypted_data.size() + obj.encrypted_dek_source.size() + obj.key_id.size() + 64);
  if (!obj.encrypted_data.empty()) PutBytesField(1, obj.encrypted_data, &out);
  if (!obj.key_id.empty()) PutBytesField(2, obj.key_id, &out);
  if (!obj.encrypted_dek_source.empty()) PutBytesField(3, obj.encrypted_dek_source, &out);
  for (const auto& [k, v] : obj.annotations) {
    std::string entry;
    PutBytesField(1, k, &entry);
    PutBytesField(2, v, &entry);
    PutBytesField(4, entry, &out);
  }
  if (obj.type != DekSourceType::kAesGcmKey) {
    PutTag(5, kVarint, &out);
    PutVarint(static_cast<uint64_t>(static_cast<int64_t>(obj.type)), &out);
  }
  return out;
}

std::string DekSourceCacheKey(const EncryptedObject& obj) {
  std::string buf;
  PutU32(static_cast<uint32_t>(obj.type), &buf);
  PutU16(obj.encrypted_dek_source.size(), &buf);
  buf += obj.encrypted_dek_source;
  PutU16(obj.key_id.size(), &buf);
  buf += obj.key_id;
  if (!obj.annotations.empty()) {
    PutU32(static_cast<uint32_t>(obj.annotations.size()), &buf);
    for (const auto& [k, v] : obj.annotations) {
      PutU16(k.size(), &buf);
      buf += k;
      PutU16(v.size(), &buf);
      buf += v;
    }
  }
  return Sha256(buf);
}

bool SplitKmsValue(std::string_view value, std::string_view kms_prefix, std::string_view* name,
                   std::string_view* rest) {
  if (value.substr(0, kms_prefix.size()) != kms_prefix) return false;
  std::string_view after = value.substr(kms_prefix.size());
  size_t colon = after.find(':');
  if (colon == std::string_view::npos) return false;
  *name = after.substr(0, colon);
  *rest = after.substr(colon + 1);
  return true;
}

absl::StatusOr<SecretBytes> DeriveKmsV2Type1Dek(const SecretBytes& seed, std::string_view info) {
  if (seed.size() < kSeedSize) {
    return absl::InvalidArgumentError(
        fmt::format("KMS v2 seed is {} bytes, want at least {}", seed.size(), kSeedSize));
  }
  // HKDF-Expand with L = 32 = HashLen is one HMAC block: T(1) = HMAC(PRK, info || 0x01).
  std::string msg(info);
  msg.push_back('\x01');
  return HmacSha256(seed, msg);
}

absl::StatusOr<SecretBytes> OpenKmsV2Data(DekSourceType type, const SecretBytes& dek_source,
                                          std::string_view encrypted_data,
                                          std::string_view etcd_key) {
  switch (type) {
    case DekSourceType::kHkdfSha256XNonceAesGcmSeed: {
      if (encrypted_data.size() < kHkdfInfoSize + AesGcm::kNonceSize + AesGcm::kTagSize) {
        return absl::InvalidArgumentError(fmt::format(
            "KMS v2 type 1 encryptedData is {} bytes, too short", encrypted_data.size()));
      }
      KMSP_ASSIGN_OR_RETURN(
          SecretBytes dek,
          DeriveKmsV2Type1Dek(dek_source, encrypted_data.substr(0, kHkdfInfoSize)));
      KMSP_ASSIGN_OR_RETURN(auto aead, AesGcm::Create(std::move(dek)));
      return aead->Open(encrypted_data.substr(kHkdfInfoSize), etcd_key);
    }
    case DekSourceType::kAesGcmKey: {
      KMSP_ASSIGN_OR_RETURN(auto aead, AesGcm::Create(dek_source.Clone()));
      return aead->Open(encrypted_data, etcd_key);
    }
  }
  return absl::InvalidArgumentError(
      fmt::format("unknown encryptedDEKSourceType {}", static_cast<int>(type)));
}

absl::StatusOr<std::string> SealKmsV2Type1WithInfoAndNonce(const SecretBytes& seed,
                                                           std::string_view info,
                                                           std::string_view nonce,
                                                           std::string_view plaintext,
                                                           std::string_view etcd_key) {
  if (info.size() != kHkdfInfoSize) return absl::InvalidArgumentError("HKDF info must be 32 bytes");
  KMSP_ASSIGN_OR_RETURN(SecretBytes dek, DeriveKmsV2Type1Dek(seed, info));
  KMSP_ASSIGN_OR_RETURN(auto aead, AesGcm::Create(std::move(dek)));
  KMSP_ASSIGN_OR_RETURN(std::string body, aead->SealDetached(nonce, plaintext, etcd_key));
  std::string out;
  out.reserve(info.size() + nonce.size() + body.size());
  out.append(info.data(), info.size());
  out.append(nonce.data(), nonce.size());
  out += body;
  return out;
}

absl::StatusOr<std::string> SealKmsV2Type1(const SecretBytes& seed, std::string_view plaintext,
                                           std::string_view etcd_key) {
  KMSP_ASSIGN_OR_RETURN(std::string info, RandomBytes(kHkdfInfoSize));
  KMSP_ASSIGN_OR_RETURN(std::string nonce, RandomBytes(AesGcm::kNonceSize));
  return SealKmsV2Type1WithInfoAndNonce(seed, info, nonce, plaintext, etcd_key);
}

bool IsPlausibleStoredObject(std::string_view plaintext) {
  constexpr std::string_view kProtobufMagic("k8s\0", 4);
  constexpr std::string_view kCborSelfDescribed("\xd9\xd9\xf7", 3);
  if (plaintext.substr(0, kProtobufMagic.size()) == kProtobufMagic) return true;
  if (plaintext.substr(0, kCborSelfDescribed.size()) == kCborSelfDescribed) return true;
  // '{' alone would pass one garbage block in 256: the whole text must parse.
  return !plaintext.empty() && plaintext.front() == '{' &&
         nlohmann::json::accept(plaintext.begin(), plaintext.end());
}

absl::StatusOr<KmsV1Body> ParseKmsV1Body(std::string_view rest) {
  if (rest.size() < 2)
    return absl::InvalidArgumentError("KMS v1 value too short for its DEK length");
  size_t len =
      (static_cast<size_t>(static_cast<uint8_t>(rest[0])) << 8) | static_cast<uint8_t>(rest[1]);
  if (len == 0 || rest.size() - 2 < len) {
    return absl::InvalidArgumentError(fmt::format(
        "KMS v1 encrypted DEK length {} does not fit a {} byte value", len, rest.size()));
  }
  return KmsV1Body{rest.substr(2, len), rest.substr(2 + len)};
}

std::string SerializeKmsV1Body(std::string_view encrypted_dek, std::string_view encrypted_data) {
  std::string out;
  PutU16(encrypted_dek.size(), &out);
  out.append(encrypted_dek.data(), encrypted_dek.size());
  out.append(encrypted_data.data(), encrypted_data.size());
  return out;
}

}  // namespace kmsplugin::reencrypt
