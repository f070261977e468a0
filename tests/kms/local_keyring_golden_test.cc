// Frozen format: a local keyring file of format 1, committed as bytes
// (testdata/local_keyring_format1.json), that every later version of the plugin must read, and
// the key_id form derived from it exactly as kms/local/local_kms.h documents:
//   key_id = "local:" + keyring_id + ":v" + version.
// The two wrapped data keys were made outside this code base (AES-256-GCM, nonce || ct || tag,
// AAD "kms-plugin/local-wrap/v1:" + key_id), so they pin the wrap format as well. Never edit the
// file or the constants: a change that breaks this test breaks existing clusters.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/local/local_kms.h"
#include "tests/fakes/fake_clock.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;

constexpr char kGoldenFile[] = KMSP_SOURCE_DIR "/tests/kms/testdata/local_keyring_format1.json";
constexpr char kKeyringId[] = "5b0c9e7d1a2f4c3b8e6d0a1b2c3d4e5f";
constexpr char kDataKey[] = "golden data key, 32 bytes long!!";
constexpr char kWrappedUnderV1[] =
    "AQIDBAUGBwgJCgsMgIkk/Tm2wgftKaT/D+Gx/nUoiyckV9AKr6SHLdnAuk58dCoe5PDVCIKrMDeeZLVq";
constexpr char kWrappedUnderV3[] =
    "AwQFBgcICQoLDA0O7Cv2sRCSlEqq/GQE8b55dnRWqVQ7JO7SjfrSKlg4mhB6UGrG2kNlVFo34a08k1P8";

class LocalKeyringGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/local_keyring_golden_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/keyring.json";
    std::ifstream in(kGoldenFile, std::ios::binary);
    ASSERT_TRUE(in.good()) << kGoldenFile;
    std::stringstream bytes;
    bytes << in.rdbuf();
    golden_ = bytes.str();
    // A checkout does not keep mode 0600; the copy gets it.
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << golden_;
    ASSERT_EQ(chmod(path_.c_str(), 0600), 0);
  }
  void TearDown() override {
    std::error_code ec;  // Best effort, as `rm -rf`: a leftover temp dir fails no test.
    std::filesystem::remove_all(dir_, ec);
  }

  absl::StatusOr<std::unique_ptr<LocalKms>> Open() {
    LocalKmsOptions o;
    o.keyring_path = path_;
    o.create_if_missing = false;
    return LocalKms::Create(o, &clock_);
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(10)); }

  FakeClock clock_;
  std::string dir_;
  std::string path_;
  std::string golden_;
};

TEST_F(LocalKeyringGoldenTest, TheCommittedFormatOneFileIsReadAndNamesItsPrimaryVersion) {
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  auto status = (*kms)->Probe(Ctx());
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(status->kek_id, std::string("local:") + kKeyringId + ":v2");
  EXPECT_EQ((*kms)->KekIdFor(3), std::string("local:") + kKeyringId + ":v3");
}

TEST_F(LocalKeyringGoldenTest, DataKeysWrappedUnderEveryVersionOfTheFileUnwrap) {
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  for (const auto& [version, blob] : {std::pair<int, const char*>{1, kWrappedUnderV1},
                                      std::pair<int, const char*>{3, kWrappedUnderV3}}) {
    WrappedKey wrapped{"local:" + std::string(kKeyringId) + ":v" + std::to_string(version),
                       *Base64Decode(blob)};
    auto key = (*kms)->Unwrap(wrapped, Ctx());
    ASSERT_THAT(key, IsOk()) << version;
    EXPECT_EQ(key->Reveal(), kDataKey) << version;
  }
}

TEST_F(LocalKeyringGoldenTest, AWrappedKeyOnlyOpensUnderTheVersionItsKeyIdNames) {
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  WrappedKey moved{"local:" + std::string(kKeyringId) + ":v3", *Base64Decode(kWrappedUnderV1)};
  EXPECT_THAT((*kms)->Unwrap(moved, Ctx()), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LocalKeyringGoldenTest, NewWrapsUseThePrimaryVersionsKeyIdAndReadingChangesNoByte) {
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  auto wrapped = (*kms)->Wrap(SecretBytes::CopyFrom(kDataKey), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->kek_id, std::string("local:") + kKeyringId + ":v2");
  EXPECT_EQ(wrapped->blob.size(), 12u + 32u + 16u);  // nonce || ciphertext || tag
  std::ifstream in(path_, std::ios::binary);
  std::stringstream now;
  now << in.rdbuf();
  EXPECT_EQ(now.str(), golden_);
}

}  // namespace
}  // namespace kmsplugin
