// Frozen format: NaCl secretbox values (crypto/secretbox.h; kube-apiserver's `secretbox` provider,
// kmsv2-contract.md §4.2), checked against an independent implementation. The vectors in
// testdata/secretbox_golden.json were made by testdata/make_secretbox_golden.py with PyNaCl
// (python3-nacl, nacl.secret.SecretBox) from a fixed key, nonces and plaintexts; none of our code.
// Our Open must open them, and our Seal, given the same nonce, must produce the same bytes. The
// other direction (PyNaCl opens what our Seal makes) is secretbox_nacl_test.py, run by ctest.
// Never edit the JSON: a change that breaks this test breaks values stored in etcd.
//
//   sealed          = nonce(24) || tag(16) || ciphertext
//   apiserver value = "k8s:enc:secretbox:v1:" + key name + ":" + sealed
#include <sodium.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "crypto/secretbox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/crypto/vectors.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::Unhex;
using ::kmsplugin::testing::StatusIs;

constexpr char kGoldenFile[] = KMSP_SOURCE_DIR "/tests/crypto/testdata/secretbox_golden.json";
// The first vector's sealed bytes, pinned here too so that regenerating the JSON cannot pass
// unnoticed.
constexpr char kSecretSealedHex[] =
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7b62324f9aa3334ee8089973ea4b16f099cdd14d140"
    "86db352b0701300675825e0966789db0fc7ba692d269d2";

struct Vector {
  std::string name, nonce, plaintext, sealed, apiserver_value;
};

struct Golden {
  std::string key, key_name;
  std::vector<Vector> vectors;
};

Golden LoadGolden() {
  std::ifstream in(kGoldenFile, std::ios::binary);
  EXPECT_TRUE(in.good()) << kGoldenFile;
  nlohmann::json j = nlohmann::json::parse(in);
  Golden g;
  g.key = Unhex(j.at("key_hex"));
  g.key_name = j.at("key_name");
  for (const auto& v : j.at("vectors")) {
    g.vectors.push_back(Vector{v.at("name"), Unhex(v.at("nonce_hex")), Unhex(v.at("plaintext_hex")),
                               Unhex(v.at("sealed_hex")), Unhex(v.at("apiserver_value_hex"))});
  }
  return g;
}

std::unique_ptr<Secretbox> Box(const std::string& key) {
  auto box = Secretbox::Create(SecretBytes::CopyFrom(key));
  EXPECT_THAT(box, IsOk());
  return box.ok() ? std::move(*box) : nullptr;
}

// While alive, libsodium's randombytes_buf returns `nonce` (our Seal draws exactly one nonce
// with it), so Seal can be compared with PyNaCl's output for the same nonce. Test-only; restores
// libsodium's default generator.
class FixedNonceRandom {
 public:
  explicit FixedNonceRandom(std::string nonce) {
    nonce_ = std::move(nonce);
    impl_.implementation_name = [] { return "golden-fixed-nonce"; };
    impl_.random = [] { return uint32_t{0}; };
    impl_.stir = nullptr;
    impl_.uniform = nullptr;
    impl_.buf = [](void* const buf, const size_t size) {
      ++calls_;
      std::memset(buf, 0, size);
      std::memcpy(buf, nonce_.data(), std::min(size, nonce_.size()));
    };
    impl_.close = nullptr;
    calls_ = 0;
    randombytes_set_implementation(&impl_);
  }
  ~FixedNonceRandom() { randombytes_set_implementation(&randombytes_internal_implementation); }
  static int calls() { return calls_; }

 private:
  static inline std::string nonce_;
  static inline int calls_ = 0;
  randombytes_implementation impl_{};
};

TEST(SecretboxGoldenTest, TheCommittedVectorsAreTheOnesPinnedInThisTest) {
  Golden g = LoadGolden();
  ASSERT_EQ(g.vectors.size(), 3u);
  EXPECT_EQ(g.key.size(), 32u);
  EXPECT_EQ(HexEncode(g.vectors[0].sealed), kSecretSealedHex);
  for (const Vector& v : g.vectors) {
    EXPECT_EQ(v.sealed.size(), 24 + 16 + v.plaintext.size()) << v.name;
    EXPECT_EQ(v.sealed.substr(0, 24), v.nonce) << v.name;
  }
}

TEST(SecretboxGoldenTest, OpenOfEveryPyNaclVectorGivesItsPlaintext) {
  Golden g = LoadGolden();
  auto box = Box(g.key);
  ASSERT_NE(box, nullptr);
  int opened = 0;
  for (const Vector& v : g.vectors) {
    auto pt = box->Open(v.sealed);
    ASSERT_THAT(pt, IsOk()) << v.name;
    EXPECT_EQ(HexEncode(pt->Reveal()), HexEncode(v.plaintext)) << v.name;
    ++opened;
  }
  EXPECT_EQ(opened, 3);
}

TEST(SecretboxGoldenTest, SealWithEachVectorsNonceGivesThePyNaclBytes) {
  Golden g = LoadGolden();
  auto box = Box(g.key);
  ASSERT_NE(box, nullptr);
  for (const Vector& v : g.vectors) {
    FixedNonceRandom fixed(v.nonce);
    auto sealed = box->Seal(v.plaintext);
    ASSERT_THAT(sealed, IsOk()) << v.name;
    EXPECT_EQ(FixedNonceRandom::calls(), 1) << v.name;
    EXPECT_EQ(HexEncode(*sealed), HexEncode(v.sealed)) << v.name;
  }
}

TEST(SecretboxGoldenTest, TheApiserverValueIsThePrefixKeyNameAndTheSealedBytes) {
  Golden g = LoadGolden();
  auto box = Box(g.key);
  ASSERT_NE(box, nullptr);
  const std::string prefix = "k8s:enc:secretbox:v1:" + g.key_name + ":";
  for (const Vector& v : g.vectors) {
    EXPECT_EQ(v.apiserver_value, prefix + v.sealed) << v.name;
    auto pt = box->Open(std::string_view(v.apiserver_value).substr(prefix.size()));
    ASSERT_THAT(pt, IsOk()) << v.name;
    EXPECT_EQ(pt->Reveal(), v.plaintext) << v.name;
  }
}

TEST(SecretboxGoldenTest, AnyFlippedByteOfThePyNaclVectorFailsToOpen) {
  Golden g = LoadGolden();
  auto box = Box(g.key);
  ASSERT_NE(box, nullptr);
  const std::string& sealed = g.vectors[0].sealed;
  int refused = 0;
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] ^= 0x01;
    if (!box->Open(bad).ok()) ++refused;
  }
  EXPECT_EQ(refused, static_cast<int>(sealed.size()));
  std::string other_key = g.key;
  other_key[0] ^= 0x01;
  EXPECT_THAT(Box(other_key)->Open(sealed), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin
