// Frozen format: the plugin's ciphertext envelope (format version 1) and the AAD it seals under,
// committed as bytes in testdata/envelope_v1_golden.json. The vector was generated independently
// of this code base by testdata/make_envelope_v1_golden.py with python3-cryptography (AESGCM), from
// the README and the layout below; a ctest (EnvelopeV1GoldenMatchesItsPythonGenerator) re-runs the
// generator in --check mode. Never edit the JSON or the constants: a change that breaks this test
// breaks every Secret a cluster stored.
//
// Ciphertext (README "Envelope"): 0x01 || nonce(12) || AES-256-GCM(data key, seed, AAD) || tag(16).
// AAD (plugin/envelope_format.h), all integers big-endian:
//   "kms-plugin/v1" 0x00
//   u16 len(key_id)  key_id
//   u32 count(annotations)
//   for each annotation, keys in byte order:  u16 len(key)  key  u32 len(value)  value
// The decoder below is written from that text with OpenSSL EVP directly and uses none of our code.
#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <string>

#include "crypto/aes_gcm.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "plugin/envelope_format.h"
#include "plugin/envelope_service.h"
#include "tests/crypto/vectors.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"
#include "tests/plugin/fixed_blob_kes.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FixedBlobKes;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::Unhex;

constexpr char kGoldenFile[] = KMSP_SOURCE_DIR "/tests/plugin/testdata/envelope_v1_golden.json";
// The same ciphertext, pinned here too so that regenerating the JSON cannot pass unnoticed.
constexpr char kGoldenCiphertextHex[] =
    "01a0a1a2a3a4a5a6a7a8a9aaabb0e06a5b8785bc4c0906329bfbca5584cf6490a28843a51ed0fc8ce39da70dd9dc5e"
    "e748d6d71953b1fe70ad1452c344";

struct Golden {
  std::string data_key, nonce, seed, key_id, aad, ciphertext, two_aad;
  Annotations annotations, two_annotations;
};

Golden LoadGolden() {
  std::ifstream in(kGoldenFile, std::ios::binary);
  EXPECT_TRUE(in.good()) << kGoldenFile;
  nlohmann::json j = nlohmann::json::parse(in);
  Golden g;
  g.data_key = Unhex(j.at("data_key_hex"));
  g.nonce = Unhex(j.at("nonce_hex"));
  g.seed = Unhex(j.at("seed_hex"));
  g.key_id = j.at("key_id");
  g.aad = Unhex(j.at("aad_hex"));
  g.ciphertext = Unhex(j.at("ciphertext_hex"));
  g.two_aad = Unhex(j.at("two_annotations_aad_hex"));
  for (const auto& [k, v] : j.at("annotations_hex").items()) g.annotations[k] = Unhex(v);
  for (const auto& [k, v] : j.at("two_annotations_hex").items()) g.two_annotations[k] = Unhex(v);
  return g;
}

// --- The independent decoder (README and the layout above only). ---

void PutBe(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string DocumentedAad(const std::string& key_id, const Annotations& annotations) {
  std::string out("kms-plugin/v1\0", 14);
  PutBe(out, key_id.size(), 2);
  out += key_id;
  PutBe(out, annotations.size(), 4);
  for (const auto& [k, v] : annotations) {  // std::map<std::string>: byte order of keys.
    PutBe(out, k.size(), 2);
    out += k;
    PutBe(out, v.size(), 4);
    out += v;
  }
  return out;
}

// Opens a version-1 envelope with OpenSSL's AES-256-GCM; false if anything fails.
bool OpenWithOpenSsl(const std::string& key, const std::string& envelope, const std::string& aad,
                     std::string* seed) {
  if (envelope.size() < 1 + 12 + 16 || envelope[0] != '\x01' || key.size() != 32) return false;
  const std::string nonce = envelope.substr(1, 12);
  const std::string ct = envelope.substr(13, envelope.size() - 13 - 16);
  std::string tag = envelope.substr(envelope.size() - 16);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::string out(ct.size() + 16, '\0');
  int len = 0, fin = 0;
  auto u = [](const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  bool ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx, nullptr, nullptr, u(key), u(nonce)) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &len, u(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, u(ct),
                              static_cast<int>(ct.size())) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &fin) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (ok) *seed = out.substr(0, len + fin);
  return ok;
}

// --- Tests. ---

TEST(EnvelopeFormatGoldenTest, TheCommittedVectorIsTheOnePinnedInThisTest) {
  Golden g = LoadGolden();
  EXPECT_EQ(HexEncode(g.ciphertext), kGoldenCiphertextHex);
  EXPECT_EQ(g.ciphertext.size(), 1u + 12 + 32 + 16);
  EXPECT_EQ(g.annotations.size(), 1u);
  EXPECT_EQ(g.annotations.count("dek.kms-plugin.io"), 1u);
}

TEST(EnvelopeFormatGoldenTest, EnvelopeAadIsTheCommittedBytes) {
  Golden g = LoadGolden();
  EXPECT_EQ(HexEncode(EnvelopeAad(g.key_id, g.annotations)), HexEncode(g.aad));
  EXPECT_EQ(HexEncode(DocumentedAad(g.key_id, g.annotations)), HexEncode(g.aad));
}

TEST(EnvelopeFormatGoldenTest, EnvelopeAadOfTwoAnnotationsIsTheCommittedBytesInKeyOrder) {
  Golden g = LoadGolden();
  ASSERT_EQ(g.two_annotations.size(), 2u);
  EXPECT_EQ(HexEncode(EnvelopeAad(g.key_id, g.two_annotations)), HexEncode(g.two_aad));
  EXPECT_EQ(HexEncode(DocumentedAad(g.key_id, g.two_annotations)), HexEncode(g.two_aad));
  // "a.example.com" is laid down before "z.example.com" although the JSON lists z first.
  EXPECT_LT(g.two_aad.find("a.example.com"), g.two_aad.find("z.example.com"));
}

TEST(EnvelopeFormatGoldenTest, OurSealOfTheFixedInputsIsTheCommittedCiphertext) {
  Golden g = LoadGolden();
  auto aead = AesGcm::Create(SecretBytes::CopyFrom(g.data_key));
  ASSERT_THAT(aead, IsOk());
  // What EnvelopeService::Seal does, with the fixed nonce in place of a random one.
  auto sealed = (*aead)->SealDetached(g.nonce, g.seed, EnvelopeAad(g.key_id, g.annotations));
  ASSERT_THAT(sealed, IsOk());
  EXPECT_EQ(HexEncode(SerializeEnvelope(g.nonce, *sealed)), kGoldenCiphertextHex);
}

TEST(EnvelopeFormatGoldenTest, ParseEnvelopeSplitsTheCommittedCiphertextIntoNonceAndSealedSeed) {
  Golden g = LoadGolden();
  auto parsed = ParseEnvelope(g.ciphertext);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(HexEncode(parsed->nonce), HexEncode(g.nonce));
  EXPECT_EQ(HexEncode(parsed->ct_and_tag), HexEncode(g.ciphertext.substr(13)));
  auto aead = AesGcm::Create(SecretBytes::CopyFrom(g.data_key));
  ASSERT_THAT(aead, IsOk());
  auto seed = (*aead)->OpenDetached(parsed->nonce, parsed->ct_and_tag, g.aad);
  ASSERT_THAT(seed, IsOk());
  EXPECT_EQ(seed->Reveal(), g.seed);
}

TEST(EnvelopeFormatGoldenTest, ADecoderWrittenFromTheReadmeOpensTheCommittedCiphertextWithOpenSsl) {
  Golden g = LoadGolden();
  std::string seed;
  ASSERT_TRUE(
      OpenWithOpenSsl(g.data_key, g.ciphertext, DocumentedAad(g.key_id, g.annotations), &seed));
  EXPECT_EQ(seed, g.seed);
}

TEST(EnvelopeFormatGoldenTest, TheDocumentedDecoderRejectsAnotherKeyIdOrAnnotationValue) {
  Golden g = LoadGolden();
  std::string seed;
  EXPECT_FALSE(OpenWithOpenSsl(g.data_key, g.ciphertext,
                               DocumentedAad(g.key_id + "x", g.annotations), &seed));
  Annotations edited = g.annotations;
  edited.begin()->second.back() ^= 1;
  EXPECT_FALSE(OpenWithOpenSsl(g.data_key, g.ciphertext, DocumentedAad(g.key_id, edited), &seed));
}

TEST(EnvelopeFormatGoldenTest, TheEnvelopeServiceDecryptsTheCommittedCiphertext) {
  Golden g = LoadGolden();
  FakeClock clock;
  auto kes = std::make_unique<FixedBlobKes>(g.key_id, g.annotations.at("dek.kms-plugin.io"),
                                            SecretBytes::CopyFrom(g.data_key));
  FixedBlobKes* kes_ptr = kes.get();
  auto svc = EnvelopeService::Create(EnvelopeOptions{}, std::move(kes), &clock);
  ASSERT_THAT(svc, IsOk());
  auto ctx = CallContext::WithTimeout(absl::Seconds(10), "golden");
  auto seed = (*svc)->Decrypt(g.ciphertext, g.key_id, g.annotations, ctx);
  ASSERT_THAT(seed, IsOk());
  EXPECT_EQ(seed->Reveal(), g.seed);
  EXPECT_EQ(kes_ptr->unwraps, 1);
}

}  // namespace
}  // namespace kmsplugin
