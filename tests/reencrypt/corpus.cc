#include "tests/reencrypt/corpus.h"

#include <map>

#include "crypto/aes_cbc.h"
#include "crypto/aes_gcm.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/secretbox.h"
#include "fmt/format.h"
#include "tests/reencrypt/fake_kms_server.h"

namespace kmsplugin::testing {
namespace {

// Go's proto encoding of EncryptedObject (fields 1, 2, 3, 4, 5), written out by hand.
void Varint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
const std::map<std::string, std::string>& FakeAnnotations() {
  static const auto* const kAnnotations = new std::map<std::string, std::string>{
      {std::string(kFakeAnnotationKey), std::string(kFakeAnnotationValue)}};
  return *kAnnotations;
}

void Bytes(int field, std::string_view b, std::string* out) {
  Varint(static_cast<uint64_t>(field) << 3 | 2, out);
  Varint(b.size(), out);
  out->append(b.data(), b.size());
}
// Annotations in key order, as Go's deterministic map encoding writes them.
std::string EncryptedObjectBytes(std::string_view data, std::string_view key_id,
                                 std::string_view dek_source,
                                 const std::map<std::string, std::string>& annotations, int type) {
  std::string out;
  Bytes(1, data, &out);
  Bytes(2, key_id, &out);
  Bytes(3, dek_source, &out);
  for (const auto& [k, v] : annotations) {
    std::string entry;
    Bytes(1, k, &entry);
    Bytes(2, v, &entry);
    Bytes(4, entry, &out);
  }
  if (type != 0) {
    Varint(5 << 3, &out);
    Varint(static_cast<uint64_t>(type), &out);
  }
  return out;
}

struct Field {
  int number;
  int wire;
  std::string_view bytes;
  uint64_t varint;
};

bool ReadVarint(std::string_view s, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < s.size(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(s[(*pos)++]);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

absl::StatusOr<std::vector<Field>> Fields(std::string_view s) {
  std::vector<Field> out;
  size_t pos = 0;
  while (pos < s.size()) {
    uint64_t tag = 0;
    if (!ReadVarint(s, &pos, &tag)) return absl::InvalidArgumentError("bad tag");
    Field f{static_cast<int>(tag >> 3), static_cast<int>(tag & 7), {}, 0};
    if (f.wire == 0) {
      if (!ReadVarint(s, &pos, &f.varint)) return absl::InvalidArgumentError("bad varint");
    } else if (f.wire == 2) {
      uint64_t len = 0;
      if (!ReadVarint(s, &pos, &len) || len > s.size() - pos) {
        return absl::InvalidArgumentError("bad length");
      }
      f.bytes = s.substr(pos, len);
      pos += len;
    } else {
      return absl::InvalidArgumentError("unexpected wire type");
    }
    out.push_back(f);
  }
  return out;
}

bool IsLowerFqdn(std::string_view k) {
  if (k.find('.') == std::string_view::npos || k.size() > 253) return false;
  for (char c : k) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return k.front() != '.' && k.back() != '.' && k.find("..") == std::string_view::npos;
}

}  // namespace

absl::StatusOr<std::string> EncodeAesCbc(std::string_view key_name, std::string_view key,
                                         std::string_view plaintext) {
  auto c = AesCbc::Create(SecretBytes::CopyFrom(key));
  if (!c.ok()) return c.status();
  auto body = (*c)->Encrypt(plaintext);
  if (!body.ok()) return body.status();
  return fmt::format("k8s:enc:aescbc:v1:{}:", key_name) + *body;
}

absl::StatusOr<std::string> EncodeAesGcm(std::string_view key_name, std::string_view key,
                                         std::string_view etcd_key, std::string_view plaintext) {
  auto c = AesGcm::Create(SecretBytes::CopyFrom(key));
  if (!c.ok()) return c.status();
  auto body = (*c)->Seal(plaintext, etcd_key);
  if (!body.ok()) return body.status();
  return fmt::format("k8s:enc:aesgcm:v1:{}:", key_name) + *body;
}

absl::StatusOr<std::string> EncodeSecretbox(std::string_view key_name, std::string_view key,
                                            std::string_view plaintext) {
  auto c = Secretbox::Create(SecretBytes::CopyFrom(key));
  if (!c.ok()) return c.status();
  auto body = (*c)->Seal(plaintext);
  if (!body.ok()) return body.status();
  return fmt::format("k8s:enc:secretbox:v1:{}:", key_name) + *body;
}

absl::StatusOr<std::string> EncodeKmsV2Type0(std::string_view provider, std::string_view key_id,
                                             std::string_view dek, std::string_view etcd_key,
                                             std::string_view plaintext) {
  auto c = AesGcm::Create(SecretBytes::CopyFrom(dek));
  if (!c.ok()) return c.status();
  auto data = (*c)->Seal(plaintext, etcd_key);
  if (!data.ok()) return data.status();
  return fmt::format("k8s:enc:kms:v2:{}:", provider) +
         EncryptedObjectBytes(*data, key_id, Base64Encode(dek), FakeAnnotations(), 0);
}

absl::StatusOr<std::string> EncodeKmsV2Type1(std::string_view provider, std::string_view key_id,
                                             std::string_view seed, std::string_view etcd_key,
                                             std::string_view plaintext) {
  auto info = RandomBytes(32);
  auto nonce = RandomBytes(12);
  if (!info.ok() || !nonce.ok()) return absl::InternalError("random");
  auto dek = HmacSha256(SecretBytes::CopyFrom(seed), *info + std::string(1, '\x01'));
  if (!dek.ok()) return dek.status();
  auto c = AesGcm::Create(std::move(*dek));
  if (!c.ok()) return c.status();
  auto body = (*c)->SealDetached(*nonce, plaintext, etcd_key);
  if (!body.ok()) return body.status();
  return fmt::format("k8s:enc:kms:v2:{}:", provider) +
         EncryptedObjectBytes(*info + *nonce + *body, key_id, Base64Encode(seed),
                              FakeAnnotations(), 1);
}

absl::StatusOr<std::string> EncodeKmsV2WithPlugin(std::string_view provider, const PluginWrap& wrap,
                                                  int type, std::string_view secret,
                                                  std::string_view etcd_key,
                                                  std::string_view plaintext) {
  std::string data;
  if (type == 1) {
    auto info = RandomBytes(32);
    auto nonce = RandomBytes(12);
    if (!info.ok() || !nonce.ok()) return absl::InternalError("random");
    auto dek = HmacSha256(SecretBytes::CopyFrom(secret), *info + std::string(1, '\x01'));
    if (!dek.ok()) return dek.status();
    auto c = AesGcm::Create(std::move(*dek));
    if (!c.ok()) return c.status();
    auto body = (*c)->SealDetached(*nonce, plaintext, etcd_key);
    if (!body.ok()) return body.status();
    data = *info + *nonce + *body;
  } else if (type == 0) {
    auto c = AesGcm::Create(SecretBytes::CopyFrom(secret));
    if (!c.ok()) return c.status();
    auto body = (*c)->Seal(plaintext, etcd_key);
    if (!body.ok()) return body.status();
    data = *body;
  } else {
    return absl::InvalidArgumentError("type must be 0 or 1");
  }
  return fmt::format("k8s:enc:kms:v2:{}:", provider) +
         EncryptedObjectBytes(data, wrap.key_id, wrap.ciphertext, wrap.annotations, type);
}

absl::StatusOr<std::string> EncodeKmsV1(std::string_view provider, std::string_view dek,
                                        std::string_view etcd_key, std::string_view plaintext) {
  auto c = AesGcm::Create(SecretBytes::CopyFrom(dek));
  if (!c.ok()) return c.status();
  auto data = (*c)->Seal(plaintext, etcd_key);
  if (!data.ok()) return data.status();
  std::string enc_dek = Base64Encode(dek);
  std::string out = fmt::format("k8s:enc:kms:v1:{}:", provider);
  out.push_back(static_cast<char>(enc_dek.size() >> 8));
  out.push_back(static_cast<char>(enc_dek.size() & 0xff));
  return out + enc_dek + *data;
}

absl::StatusOr<DecodedKmsV2> DecodeKmsV2(std::string_view value, std::string_view etcd_key) {
  constexpr std::string_view kPrefix = "k8s:enc:kms:v2:";
  if (value.substr(0, kPrefix.size()) != kPrefix) return absl::InvalidArgumentError("prefix");
  size_t colon = value.find(':', kPrefix.size());
  if (colon == std::string_view::npos) return absl::InvalidArgumentError("no name");
  DecodedKmsV2 out;
  out.provider = std::string(value.substr(kPrefix.size(), colon - kPrefix.size()));
  auto fields = Fields(value.substr(colon + 1));
  if (!fields.ok()) return fields.status();
  std::string_view data, dek_source;
  int last = 0;
  int annotations = 0;
  for (const Field& f : *fields) {
    if (f.number < last) return absl::InvalidArgumentError("fields not in Go order");
    last = f.number;
    switch (f.number) {
      case 1:
        data = f.bytes;
        break;
      case 2:
        out.key_id = std::string(f.bytes);
        break;
      case 3:
        dek_source = f.bytes;
        break;
      case 4: {
        ++annotations;
        auto entry = Fields(f.bytes);
        if (!entry.ok() || entry->size() != 2)
          return absl::InvalidArgumentError("annotation entry");
        if (!IsLowerFqdn((*entry)[0].bytes)) return absl::InvalidArgumentError("annotation key");
        if ((*entry)[0].bytes == kFakeAnnotationKey)
          out.annotation = std::string((*entry)[1].bytes);
        break;
      }
      case 5:
        if (f.wire != 0) return absl::InvalidArgumentError("type wire");
        out.type = static_cast<int>(f.varint);
        break;
      default:
        return absl::InvalidArgumentError(fmt::format("unexpected field {}", f.number));
    }
  }
  if (out.type == -1) out.type = 0;
  if (out.type != 0 && out.type != 1) return absl::InvalidArgumentError("type");
  if (data.empty()) return absl::InvalidArgumentError("encryptedData empty");
  if (dek_source.empty() || dek_source.size() > 1024)
    return absl::InvalidArgumentError("DEK source size");
  if (out.key_id.empty() || out.key_id.size() > 1024)
    return absl::InvalidArgumentError("key_id size");
  auto source = Base64Decode(dek_source);
  if (!source.ok()) return absl::InvalidArgumentError("DEK source is not the fake's base64");
  absl::StatusOr<SecretBytes> pt;
  if (out.type == 1) {
    if (data.size() < 32 + 12 + 16 || source->size() < 32)
      return absl::InvalidArgumentError("short");
    auto dek = HmacSha256(SecretBytes::CopyFrom(*source),
                          std::string(data.substr(0, 32)) + std::string(1, '\x01'));
    if (!dek.ok()) return dek.status();
    auto c = AesGcm::Create(std::move(*dek));
    if (!c.ok()) return c.status();
    pt = (*c)->OpenDetached(data.substr(32, 12), data.substr(44), etcd_key);
  } else {
    auto c = AesGcm::Create(SecretBytes::CopyFrom(*source));
    if (!c.ok()) return c.status();
    pt = (*c)->Open(data, etcd_key);
  }
  if (!pt.ok()) return pt.status();
  out.plaintext = std::string(pt->Reveal());
  return out;
}

std::string MakePlaintext(std::string_view name, size_t size) {
  std::string out("k8s\0", 4);
  out += "\n\x0c\n\x02v1\x12\x06Secret";
  out += std::string(name);
  uint32_t x = 2166136261u;
  for (char c : name) x = (x ^ static_cast<uint8_t>(c)) * 16777619u;
  while (out.size() < size) {
    x = x * 1103515245u + 12345u;
    out.push_back(static_cast<char>(x >> 16));
  }
  return out;
}

}  // namespace kmsplugin::testing
