// RSA-OAEP-SHA256 of the recovery key (crypto/rsa_oaep.h): key loading and its refusals, wrap and
// unwrap, the fixed fingerprint of the test key, and interoperability with the openssl CLI (the
// keys an operator makes with `openssl genpkey`, wraps made by `openssl pkeyutl`, both ways).
#include "crypto/rsa_oaep.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/rsa_test_keys.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::ReadFileOrEmpty;
using ::kmsplugin::testing::ScratchDir;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::string_view kLabel = "kms-plugin/recovery/v1";

RsaPublicKey TestPublicKey() {
  auto key = RsaPublicKey::FromPem(ReadFileOrEmpty(testing::kRecoveryTestPubPem));
  EXPECT_THAT(key, IsOk());
  return *std::move(key);
}

RsaPrivateKey TestPrivateKey() {
  std::string pem = ReadFileOrEmpty(testing::kRecoveryTestKeyPem);
  auto key = RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem));
  EXPECT_THAT(key, IsOk());
  return *std::move(key);
}

SecretBytes DataKey() {
  auto k = RandomSecret(32);
  EXPECT_THAT(k, IsOk());
  return *std::move(k);
}

// Runs argv[0] (found on PATH) with no shell, stderr discarded and stdout to `stdout_path`
// (/dev/null when empty); true when it exits 0.
bool RunArgv(const std::vector<std::string>& argv, const std::string& stdout_path = "") {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1,
                                   stdout_path.empty() ? "/dev/null" : stdout_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// --- RsaPublicKey ---

TEST(RsaPublicKeyTest, LoadsTheTestKeyWithItsFixedSpkiFingerprint) {
  RsaPublicKey key = TestPublicKey();
  EXPECT_EQ(key.bits(), 3072);
  EXPECT_EQ(HexEncode(key.fingerprint()), testing::kRecoveryTestKeyFingerprintHex);
  EXPECT_EQ(key.FingerprintText(),
            std::string("sha256:") + testing::kRecoveryTestKeyFingerprintHex);
  EXPECT_EQ(FingerprintText(key.fingerprint()), key.FingerprintText());
}

TEST(RsaPublicKeyTest, RefusesA2048BitKeyNamingItsSize) {
  EXPECT_THAT(RsaPublicKey::FromPem(ReadFileOrEmpty(testing::kRsa2048TestPubPem)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("RSA-2048; only RSA-3072 and RSA-4096")));
}

TEST(RsaPublicKeyTest, RefusesAnEcKey) {
  EXPECT_THAT(RsaPublicKey::FromPem(ReadFileOrEmpty(testing::kEcP256TestPubPem)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RSA key of 3072 or 4096")));
}

TEST(RsaPublicKeyTest, RefusesAPrivateKeyFileSayingToKeepItOffline) {
  EXPECT_THAT(RsaPublicKey::FromPem(ReadFileOrEmpty(testing::kRecoveryTestKeyPem)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("holds a PRIVATE key")));
}

TEST(RsaPublicKeyTest, RefusesEmptyAndNonPemInputWithoutEchoingIt) {
  EXPECT_THAT(RsaPublicKey::FromPem(""), StatusIs(absl::StatusCode::kInvalidArgument));
  auto garbage = RsaPublicKey::FromPem("secret-looking-bytes");
  EXPECT_THAT(garbage,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PEM public key")));
  EXPECT_THAT(std::string(garbage.status().message()), Not(HasSubstr("secret-looking")));
}

TEST(RsaPublicKeyTest, WrapHasTheModulusSizeAndIsRandomised) {
  RsaPublicKey key = TestPublicKey();
  SecretBytes dek = DataKey();
  auto a = key.Wrap(dek, kLabel);
  auto b = key.Wrap(dek, kLabel);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->size(), 384u);
  EXPECT_NE(*a, *b);
}

TEST(RsaPublicKeyTest, WrapRefusesAnEmptyOrOversizedKey) {
  RsaPublicKey key = TestPublicKey();
  EXPECT_THAT(key.Wrap(SecretBytes(), kLabel), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(key.Wrap(SecretBytes(384 - 66 + 1), kLabel),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(key.Wrap(SecretBytes(384 - 66), kLabel), IsOk());
}

// --- RsaPrivateKey ---

TEST(RsaPrivateKeyTest, UnwrapGivesBackTheWrappedKey) {
  RsaPrivateKey priv = TestPrivateKey();
  SecretBytes dek = DataKey();
  auto wrapped = TestPublicKey().Wrap(dek, kLabel);
  ASSERT_THAT(wrapped, IsOk());
  auto out = priv.Unwrap(*wrapped, kLabel);
  ASSERT_THAT(out, IsOk());
  EXPECT_TRUE(out->ConstantTimeEquals(dek));
}

TEST(RsaPrivateKeyTest, FingerprintIsThatOfItsPublicHalf) {
  RsaPrivateKey priv = TestPrivateKey();
  EXPECT_EQ(priv.bits(), 3072);
  EXPECT_EQ(priv.fingerprint(), TestPublicKey().fingerprint());
  EXPECT_EQ(priv.FingerprintText(), TestPublicKey().FingerprintText());
}

TEST(RsaPrivateKeyTest, UnwrapWithTheWrongPrivateKeyIsAClearInvalidArgument) {
  auto other = GenerateRsaKeyPair(3072);
  ASSERT_THAT(other, IsOk());
  auto wrong = RsaPrivateKey::FromPem(other->private_pem);
  ASSERT_THAT(wrong, IsOk());
  auto wrapped = TestPublicKey().Wrap(DataKey(), kLabel);
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_THAT(wrong->Unwrap(*wrapped, kLabel),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "recovery key cannot unwrap: wrong private key or damaged wrap"));
}

TEST(RsaPrivateKeyTest, TamperedWrongSizedOrWrongLabelWrapFailsToUnwrap) {
  RsaPrivateKey priv = TestPrivateKey();
  auto wrapped = TestPublicKey().Wrap(DataKey(), kLabel);
  ASSERT_THAT(wrapped, IsOk());
  for (size_t pos : {size_t{0}, size_t{1}, size_t{200}, size_t{383}}) {
    std::string bad = *wrapped;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
    EXPECT_THAT(priv.Unwrap(bad, kLabel), StatusIs(absl::StatusCode::kInvalidArgument)) << pos;
  }
  EXPECT_THAT(priv.Unwrap(wrapped->substr(1), kLabel),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(priv.Unwrap(*wrapped + "x", kLabel), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(priv.Unwrap("", kLabel), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(priv.Unwrap(*wrapped, "kms-plugin/recovery/v2"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RsaPrivateKeyTest, RefusesAPublicKeyEmptyInputAndA2048BitKey) {
  std::string pub = ReadFileOrEmpty(testing::kRecoveryTestPubPem);
  EXPECT_THAT(RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pub)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an unencrypted PEM")));
  EXPECT_THAT(RsaPrivateKey::FromPem(SecretBytes()), StatusIs(absl::StatusCode::kInvalidArgument));
  ScratchDir dir;
  ASSERT_TRUE(RunArgv({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                       "rsa_keygen_bits:2048", "-out", dir.Path("k2048.pem")}));
  std::string pem = ReadFileOrEmpty(dir.Path("k2048.pem"));
  EXPECT_THAT(RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RSA-2048")));
}

// --- GenerateRsaKeyPair ---

TEST(GenerateRsaKeyPairTest, Makes4096BitPkcs8PairThatRoundTrips) {
  auto pair = GenerateRsaKeyPair(4096);
  ASSERT_THAT(pair, IsOk());
  EXPECT_THAT(std::string(pair->private_pem.Reveal()), StartsWith("-----BEGIN PRIVATE KEY-----"));
  EXPECT_THAT(pair->public_pem, StartsWith("-----BEGIN PUBLIC KEY-----"));
  auto pub = RsaPublicKey::FromPem(pair->public_pem);
  auto priv = RsaPrivateKey::FromPem(pair->private_pem);
  ASSERT_THAT(pub, IsOk());
  ASSERT_THAT(priv, IsOk());
  EXPECT_EQ(pub->bits(), 4096);
  EXPECT_EQ(pub->fingerprint(), priv->fingerprint());
  SecretBytes dek = DataKey();
  auto wrapped = pub->Wrap(dek, kLabel);
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->size(), 512u);
  auto out = priv->Unwrap(*wrapped, kLabel);
  ASSERT_THAT(out, IsOk());
  EXPECT_TRUE(out->ConstantTimeEquals(dek));
}

TEST(GenerateRsaKeyPairTest, RefusesEverySizeBut3072And4096) {
  for (int bits : {0, 1024, 2048, 3071, 8192}) {
    EXPECT_THAT(GenerateRsaKeyPair(bits), StatusIs(absl::StatusCode::kInvalidArgument)) << bits;
  }
}

// --- openssl CLI interop ---

TEST(RsaOpensslInteropTest, GenpkeyKeyPairLoadsWithTheFingerprintOfSha256sumOfItsDer) {
  ScratchDir dir;
  const std::string priv = dir.Path("priv.pem");
  const std::string pub = dir.Path("pub.pem");
  ASSERT_TRUE(RunArgv({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                       "rsa_keygen_bits:3072", "-out", priv}));
  ASSERT_TRUE(RunArgv({"openssl", "pkey", "-in", priv, "-pubout", "-out", pub}));
  ASSERT_TRUE(RunArgv(
      {"openssl", "pkey", "-pubin", "-in", pub, "-outform", "DER", "-out", dir.Path("pub.der")}));
  // PKCS#1 ("BEGIN RSA PRIVATE KEY") too.
  ASSERT_TRUE(
      RunArgv({"openssl", "pkey", "-in", priv, "-traditional", "-out", dir.Path("pkcs1.pem")}));
  auto pk = RsaPublicKey::FromPem(ReadFileOrEmpty(pub));
  ASSERT_THAT(pk, IsOk());
  std::string pem8 = ReadFileOrEmpty(priv);
  std::string pem1 = ReadFileOrEmpty(dir.Path("pkcs1.pem"));
  ASSERT_THAT(pem1, StartsWith("-----BEGIN RSA PRIVATE KEY-----"));
  auto sk8 = RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem8));
  auto sk1 = RsaPrivateKey::FromPem(SecretBytes::TakeFrom(pem1));
  ASSERT_THAT(sk8, IsOk());
  ASSERT_THAT(sk1, IsOk());
  const std::string der = ReadFileOrEmpty(dir.Path("pub.der"));
  ASSERT_FALSE(der.empty());
  EXPECT_EQ(pk->fingerprint(), sk8->fingerprint());
  EXPECT_EQ(pk->fingerprint(), sk1->fingerprint());
  // Sha256 of the DER, as `sha256sum` computes it.
  ASSERT_TRUE(RunArgv({"sha256sum", dir.Path("pub.der")}, dir.Path("fp")));
  EXPECT_EQ(HexEncode(pk->fingerprint()), ReadFileOrEmpty(dir.Path("fp")).substr(0, 64));
}

// `openssl pkeyutl <op> <key args> -in <in> -out <out>` with the options of an OAEP-SHA256 wrap
// with our label.
std::vector<std::string> Pkeyutl(std::vector<std::string> args, const std::string& in,
                                 const std::string& out) {
  args.insert(args.begin(), {"openssl", "pkeyutl"});
  for (const std::string& opt :
       {std::string("rsa_padding_mode:oaep"), std::string("rsa_oaep_md:sha256"),
        std::string("rsa_mgf1_md:sha256"), "rsa_oaep_label:" + HexEncode(kLabel)}) {
    args.push_back("-pkeyopt");
    args.push_back(opt);
  }
  args.insert(args.end(), {"-in", in, "-out", out});
  return args;
}

TEST(RsaOpensslInteropTest, PkeyutlWrapUnwrapsWithRsaPrivateKey) {
  ScratchDir dir;
  const std::string key_hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  auto key = HexDecode(key_hex);
  ASSERT_THAT(key, IsOk());
  const std::string in = dir.Write("dek.bin", *key);
  ASSERT_TRUE(RunArgv(Pkeyutl({"-encrypt", "-pubin", "-inkey", testing::kRecoveryTestPubPem}, in,
                              dir.Path("wrapped.bin"))));
  const std::string wrapped = ReadFileOrEmpty(dir.Path("wrapped.bin"));
  ASSERT_EQ(wrapped.size(), 384u);
  auto out = TestPrivateKey().Unwrap(wrapped, kLabel);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(HexEncode(out->Reveal()), key_hex);
}

TEST(RsaOpensslInteropTest, OurWrapDecryptsWithPkeyutl) {
  ScratchDir dir;
  SecretBytes dek = DataKey();
  auto wrapped = TestPublicKey().Wrap(dek, kLabel);
  ASSERT_THAT(wrapped, IsOk());
  const std::string in = dir.Write("wrapped.bin", *wrapped);
  ASSERT_TRUE(RunArgv(
      Pkeyutl({"-decrypt", "-inkey", testing::kRecoveryTestKeyPem}, in, dir.Path("dek.bin"))));
  EXPECT_EQ(HexEncode(ReadFileOrEmpty(dir.Path("dek.bin"))), HexEncode(dek.Reveal()));
}

}  // namespace
}  // namespace kmsplugin
