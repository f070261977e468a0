// Frozen format: one KMS v2 record as reencrypt writes it (type 1, fixed seed, info and nonce),
// committed as bytes. The writer must keep producing exactly these bytes, and a small decoder
// written from ../shared/docs/kmsv2-contract.md alone (§3.1 prefix, §3.2 field numbers, §3.4
// HKDF-Expand and AES-256-GCM with the etcd key as AAD), using OpenSSL directly and none of our
// code, must open them.
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <map>
#include <optional>

#include "crypto/encoding.h"
#include "gtest/gtest.h"
#include "tools/reencrypt/kms_client.h"
#include "tools/reencrypt/storage_format.h"
#include "tools/reencrypt/value_transformer.h"

namespace kmsplugin::reencrypt {
namespace {

constexpr char kGoldenEtcdKey[] = "/registry/secrets/default/golden";
// "k8s:enc:kms:v2:kms-provider:" + EncryptedObject{1: info(20..3f) || nonce(40..4b) || ct || tag,
// 2: "golden-key-1", 3: "wrapped-seed:0123456789abcdef", 4: {"kek.kms.example.com":
// "\0\1wrapped-kek"}, 5: 1}, seed = bytes 00..1f.
constexpr char kGoldenHex[] =
    "6b38733a656e633a6b6d733a76323a6b6d732d70726f76696465723a0a58202122232425262728292a2b2c2d2e2f3031"
    "32333435363738393a3b3c3d3e3f404142434445464748494a4b6c3858a1a507746bd8ba94ab211348d65ff2eebaa395"
    "ec6bab18cbe62c20c493066bcfb3d0f5d8e46e88e956120c676f6c64656e2d6b65792d311a1d777261707065642d7365"
    "65643a3031323334353637383961626364656622240a136b656b2e6b6d732e6578616d706c652e636f6d120d00017772"
    "61707065642d6b656b2801";
const std::string kPlaintext("k8s\0\n\x0c\n\x02v1\x12\x06Secret\x12\x08\n\x06golden", 28);

std::string Range(int from, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(from + i));
  return s;
}

// --- The independent decoder (contract only). ---

struct Record {
  std::string provider;
  std::string data, key_id, dek_source;
  std::map<std::string, std::string> annotations;
  uint64_t type = 0;
};

bool Varint(std::string_view s, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < s.size(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(s[(*pos)++]);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Field number -> list of (wire type 2) payloads or (wire type 0) values.
bool Fields(std::string_view s, std::multimap<uint64_t, std::string>* bytes,
            std::map<uint64_t, uint64_t>* varints) {
  size_t pos = 0;
  while (pos < s.size()) {
    uint64_t tag = 0, v = 0;
    if (!Varint(s, &pos, &tag)) return false;
    if ((tag & 7) == 0) {
      if (!Varint(s, &pos, &v)) return false;
      (*varints)[tag >> 3] = v;
    } else if ((tag & 7) == 2) {
      if (!Varint(s, &pos, &v) || v > s.size() - pos) return false;
      bytes->emplace(tag >> 3, std::string(s.substr(pos, v)));
      pos += v;
    } else {
      return false;
    }
  }
  return true;
}

std::optional<Record> ParseRecord(std::string_view value) {
  constexpr std::string_view kPrefix = "k8s:enc:kms:v2:";  // §3.1
  if (value.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  size_t colon = value.find(':', kPrefix.size());
  if (colon == std::string_view::npos) return std::nullopt;
  Record r;
  r.provider = std::string(value.substr(kPrefix.size(), colon - kPrefix.size()));
  std::multimap<uint64_t, std::string> b;
  std::map<uint64_t, uint64_t> v;
  if (!Fields(value.substr(colon + 1), &b, &v)) return std::nullopt;
  auto one = [&](uint64_t f) { auto it = b.find(f); return it == b.end() ? "" : it->second; };
  r.data = one(1);        // encryptedData
  r.key_id = one(2);      // keyID
  r.dek_source = one(3);  // encryptedDEKSource
  for (auto [it, end] = b.equal_range(4); it != end; ++it) {  // annotations map entries
    std::multimap<uint64_t, std::string> eb;
    std::map<uint64_t, uint64_t> ev;
    if (!Fields(it->second, &eb, &ev)) return std::nullopt;
    r.annotations[eb.find(1)->second] = eb.find(2)->second;
  }
  r.type = v.count(5) ? v[5] : 0;  // encryptedDEKSourceType
  return r;
}

// §3.4: DEK = HKDF-Expand(SHA-256, PRK = seed, info, 32), no Extract.
std::string HkdfExpand(const std::string& seed, const std::string& info) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(seed.data()),
                                        seed.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  std::string out(32, '\0');
  int ok = EVP_KDF_derive(ctx, reinterpret_cast<unsigned char*>(out.data()), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  return ok == 1 ? out : std::string();
}

// §3.4: info(32) || nonce(12) || ct || tag(16), AES-256-GCM, AAD = the etcd key (§3.3).
std::optional<std::string> OpenType1(const std::string& seed, const std::string& data,
                                     const std::string& aad) {
  if (data.size() < 32 + 12 + 16) return std::nullopt;
  std::string dek = HkdfExpand(seed, data.substr(0, 32));
  std::string nonce = data.substr(32, 12);
  std::string ct = data.substr(44, data.size() - 44 - 16);
  std::string tag = data.substr(data.size() - 16);
  auto u = [](const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::string out(ct.size(), '\0');
  int len = 0, fin = 0;
  bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx, nullptr, nullptr, u(dek), u(nonce)) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &len, u(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, u(ct),
                              static_cast<int>(ct.size())) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, const_cast<char*>(tag.data())) ==
                1 &&
            EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &fin) ==
                1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) return std::nullopt;
  return out.substr(0, static_cast<size_t>(len) + static_cast<size_t>(fin));
}

TEST(GoldenRecordTest, WriterStillProducesTheFrozenBytes) {
  EncryptedObject obj;
  auto data = SealKmsV2Type1WithInfoAndNonce(SecretBytes::CopyFrom(Range(0x00, 32)),
                                             Range(0x20, 32), Range(0x40, 12), kPlaintext,
                                             kGoldenEtcdKey);
  ASSERT_TRUE(data.ok()) << data.status();
  obj.encrypted_data = *data;
  obj.key_id = "golden-key-1";
  obj.encrypted_dek_source = "wrapped-seed:0123456789abcdef";
  obj.annotations["kek.kms.example.com"] = std::string("\0\1wrapped-kek", 13);
  obj.type = DekSourceType::kHkdfSha256XNonceAesGcmSeed;
  ASSERT_TRUE(ValidateEncryptedObject(obj).ok());
  std::string value = std::string(kKmsV2Prefix) + "kms-provider:" + SerializeEncryptedObject(obj);
  EXPECT_EQ(HexEncode(value), kGoldenHex);
}

// A plugin that wraps every seed as the golden record's encryptedDEKSource.
class GoldenKmsClient final : public KmsV2Client {
 public:
  absl::StatusOr<KmsV2Status> Status() override { return KmsV2Status{"v2", "ok", "golden-key-1"}; }
  absl::StatusOr<KmsV2EncryptResult> Encrypt(const SecretBytes& pt, std::string_view) override {
    seed_ = pt.Clone();
    return KmsV2EncryptResult{"wrapped-seed:0123456789abcdef",
                              "golden-key-1",
                              {{"kek.kms.example.com", std::string("\0\1wrapped-kek", 13)}}};
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view, std::string_view,
                                      const std::map<std::string, std::string>&,
                                      std::string_view) override {
    return seed_.Clone();
  }

 private:
  SecretBytes seed_;
};

TEST(GoldenRecordTest, TransformerWritesTheFrozenFramingAroundItsRandomBytes) {
  // The run's own writer draws seed, info and nonce at random: everything but encryptedData's
  // 88 bytes (info, nonce, ciphertext, tag of the same plaintext) must match the record.
  auto t = NewKmsV2Transformer("kms-provider", std::make_unique<GoldenKmsClient>());
  ASSERT_TRUE(t->PrepareForWrite().ok());
  auto value = t->Encrypt(kGoldenEtcdKey, SecretBytes::CopyFrom(kPlaintext));
  ASSERT_TRUE(value.ok()) << value.status();
  const std::string golden = *HexDecode(kGoldenHex);
  ASSERT_EQ(value->size(), golden.size());
  const size_t data_at = std::string_view("k8s:enc:kms:v2:kms-provider:").size() + 2;
  std::string framed = *value;
  framed.replace(data_at, 88, golden.substr(data_at, 88));
  EXPECT_EQ(HexEncode(framed), kGoldenHex);
}

TEST(GoldenRecordTest, ContractDecoderOpensTheFrozenBytes) {
  const std::string value = *HexDecode(kGoldenHex);
  auto r = ParseRecord(value);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->provider, "kms-provider");
  EXPECT_EQ(r->key_id, "golden-key-1");
  EXPECT_EQ(r->type, 1u);
  EXPECT_EQ(r->dek_source, "wrapped-seed:0123456789abcdef");
  EXPECT_EQ(r->annotations, (std::map<std::string, std::string>{
                                {"kek.kms.example.com", std::string("\0\1wrapped-kek", 13)}}));
  // The plugin would unwrap encryptedDEKSource to this seed.
  EXPECT_EQ(HexEncode(HkdfExpand(Range(0x00, 32), Range(0x20, 32))),
            "ccb4f05e673c90bd153935b11d0dabfc00537bc35cf92953deac178dd081ef8d");
  auto pt = OpenType1(Range(0x00, 32), r->data, kGoldenEtcdKey);
  ASSERT_TRUE(pt.has_value());
  EXPECT_EQ(*pt, kPlaintext);
  EXPECT_FALSE(OpenType1(Range(0x00, 32), r->data, "/registry/secrets/default/other"))
      << "the etcd key must be the AAD";
}

}  // namespace
}  // namespace kmsplugin::reencrypt
