// The fixed TEST-ONLY RSA keys of tests/crypto/testdata (issue 12, recovery key) and small helpers
// shared by the crypto, plugin and integration tests that use them.
#ifndef KMSP_TESTS_CRYPTO_RSA_TEST_KEYS_H_
#define KMSP_TESTS_CRYPTO_RSA_TEST_KEYS_H_

#include <stdlib.h>  // mkdtemp

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kmsplugin::testing {

// RSA-3072, PKCS#8 PEM (with an explanatory line before BEGIN), and its public half.
inline constexpr char kRecoveryTestKeyPem[] =
    KMSP_SOURCE_DIR "/tests/crypto/testdata/recovery_test_key_3072.pem";
inline constexpr char kRecoveryTestPubPem[] =
    KMSP_SOURCE_DIR "/tests/crypto/testdata/recovery_test_key_3072.pub.pem";
// `openssl pkey -pubin -in recovery_test_key_3072.pub.pem -outform DER | sha256sum`
inline constexpr char kRecoveryTestKeyFingerprintHex[] =
    "274e75082d2c204e1824e77988da938df7b6bc1e0ba7572c7ab32d2d6b443f44";
// Keys the plugin must refuse.
inline constexpr char kRsa2048TestPubPem[] =
    KMSP_SOURCE_DIR "/tests/crypto/testdata/rsa2048_test.pub.pem";
inline constexpr char kEcP256TestPubPem[] =
    KMSP_SOURCE_DIR "/tests/crypto/testdata/ec_p256_test.pub.pem";

// The whole file, or "" if it cannot be read.
inline std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// A fresh directory under /tmp, removed with everything in it by the destructor.
class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/kmsp-rsa-XXXXXX";
    const char* made = mkdtemp(tmpl);
    path_ = made != nullptr ? made : "/nonexistent-scratch-dir";
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string Path(const std::string& name) const { return path_ + "/" + name; }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string p = Path(name);
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_CRYPTO_RSA_TEST_KEYS_H_
