#include "kms/local/local_kms.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/recording_observer.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class LocalKmsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/local_kms_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/keyring.json";
  }
  void TearDown() override {
    std::error_code ec;  // Best effort, as `rm -rf`: a leftover temp dir fails no test.
    std::filesystem::remove_all(dir_, ec);
  }

  absl::StatusOr<std::unique_ptr<LocalKms>> Open() {
    LocalKmsOptions o;
    o.keyring_path = path_;
    return LocalKms::Create(o, &clock_);
  }
  CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(3)); }

  FakeClock clock_;
  std::string dir_;
  std::string path_;
};

TEST_F(LocalKmsTest, CreatesTheKeyringWithMode0600WhenAbsent) {
  auto kms = Open();
  ASSERT_THAT(kms, IsOk());
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto status = (*kms)->Probe(Ctx());
  ASSERT_THAT(status, IsOk());
  EXPECT_THAT(status->kek_id, StartsWith("local:"));
  EXPECT_LE(status->kek_id.size(), kMaxKekIdSize);
}

TEST_F(LocalKmsTest, WrapThenUnwrapReturnsTheKey) {
  auto kms = *Open();
  SecretBytes key = *RandomSecret(32);
  auto wrapped = kms->Wrap(key, Ctx());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->kek_id, kms->Probe(Ctx())->kek_id);
  auto unwrapped = kms->Unwrap(*wrapped, Ctx());
  ASSERT_THAT(unwrapped, IsOk());
  EXPECT_TRUE(unwrapped->ConstantTimeEquals(key));
}

// Audit (issue 13): wrap, unwrap and rotate are reported like a remote KMS's requests, with the
// keyring path as the key and the kek_id involved.
TEST_F(LocalKmsTest, WrapUnwrapAndRotateAreReportedWithTheKeyringPathAndKekId) {
  ::kmsplugin::testing::RecordingObserver observer;
  LocalKmsOptions o;
  o.keyring_path = path_;
  o.observer = &observer;
  auto kms = *LocalKms::Create(o, &clock_);
  auto wrapped = kms->Wrap(*RandomSecret(32), CallContext::WithTimeout(absl::Seconds(3), "u-1"));
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(kms->Unwrap(*wrapped, Ctx()), IsOk());
  ASSERT_THAT(kms->RotateKek(Ctx()), IsOk());
  WrappedKey bad = *wrapped;
  bad.blob[bad.blob.size() - 1] ^= 1;
  EXPECT_FALSE(kms->Unwrap(bad, Ctx()).ok());
  const auto attempts = observer.attempts();
  ASSERT_EQ(attempts.size(), 4u);
  EXPECT_EQ(attempts[0].operation, "wrap");
  EXPECT_EQ(attempts[0].uid, "u-1");
  EXPECT_EQ(attempts[1].operation, "unwrap");
  EXPECT_EQ(attempts[2].operation, "rotate");
  EXPECT_EQ(attempts[2].key_id, kms->KekIdFor(2));
  EXPECT_EQ(attempts[3].operation, "unwrap");
  EXPECT_EQ(attempts[3].code, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(attempts[3].error_class, "invalid");
  for (int i : {0, 1, 3}) EXPECT_EQ(attempts[i].key_id, wrapped->kek_id);
  for (const auto& a : attempts) {
    EXPECT_EQ(a.backend, "local");
    EXPECT_EQ(a.key, path_);
    EXPECT_EQ(a.attempt, 1);
    EXPECT_FALSE(a.will_retry);
  }
}

TEST_F(LocalKmsTest, RotationAddsAVersionAndOldWrapsStillUnwrap) {
  auto kms = *Open();
  SecretBytes key = *RandomSecret(32);
  auto w1 = *kms->Wrap(key, Ctx());
  ASSERT_THAT(kms->RotateKek(Ctx()), IsOk());
  auto probe = *kms->Probe(Ctx());
  EXPECT_NE(probe.kek_id, w1.kek_id);
  EXPECT_EQ(probe.kek_id, kms->KekIdFor(2));
  auto w2 = *kms->Wrap(key, Ctx());
  EXPECT_EQ(w2.kek_id, probe.kek_id);
  EXPECT_TRUE(kms->Unwrap(w1, Ctx())->ConstantTimeEquals(key));
  EXPECT_TRUE(kms->Unwrap(w2, Ctx())->ConstantTimeEquals(key));
}

TEST_F(LocalKmsTest, TwoInstancesSharingAKeyringSeeEachOthersRotation) {
  auto a = *Open();
  auto b = *Open();
  EXPECT_EQ(a->Probe(Ctx())->kek_id, b->Probe(Ctx())->kek_id);
  ASSERT_THAT(a->RotateKek(Ctx()), IsOk());
  SecretBytes key = *RandomSecret(32);
  auto wa = *a->Wrap(key, Ctx());
  // b has not probed yet, but unwrapping a version it does not know re-reads the file.
  EXPECT_TRUE(b->Unwrap(wa, Ctx())->ConstantTimeEquals(key));
  EXPECT_EQ(b->Probe(Ctx())->kek_id, wa.kek_id);
}

TEST_F(LocalKmsTest, AKeyringCreatedAnewNeverReusesAKeyId) {
  std::string first = (*Open())->Probe(Ctx())->kek_id;
  ASSERT_EQ(unlink(path_.c_str()), 0);
  std::string second = (*Open())->Probe(Ctx())->kek_id;
  EXPECT_NE(first, second);
}

TEST_F(LocalKmsTest, UnwrapRefusesKeyIdsOfAnotherKeyringOrUnknownVersions) {
  auto kms = *Open();
  auto w = *kms->Wrap(*RandomSecret(32), Ctx());
  WrappedKey other = w;
  other.kek_id = "local:00000000000000000000000000000000:v1";
  EXPECT_THAT(kms->Unwrap(other, Ctx()), StatusIs(absl::StatusCode::kFailedPrecondition));
  other.kek_id = w.kek_id.substr(0, w.kek_id.size() - 1) + "9";
  EXPECT_THAT(kms->Unwrap(other, Ctx()), StatusIs(absl::StatusCode::kFailedPrecondition));
  other.kek_id = "aws:whatever";
  EXPECT_THAT(kms->Unwrap(other, Ctx()), StatusIs(absl::StatusCode::kFailedPrecondition));
  WrappedKey tampered = w;
  tampered.blob[5] ^= 1;
  EXPECT_THAT(kms->Unwrap(tampered, Ctx()), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LocalKmsTest, RefusesAKeyringReadableByOthers) {
  (void)*Open();
  ASSERT_EQ(chmod(path_.c_str(), 0644), 0);
  EXPECT_THAT(Open(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chmod 600")));
}

TEST_F(LocalKmsTest, RefusesMalformedKeyrings) {
  for (const char* text : {"", "{}", "[1]", "not json",
                           R"({"kind":"kms-plugin-local-keyring","format":1,"keyring_id":"x","primary":1,"keys":[]})",
                           R"({"kind":"kms-plugin-local-keyring","format":1,"keyring_id":"00000000000000000000000000000000","primary":2,"keys":[{"version":1,"material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]})",
                           R"({"kind":"kms-plugin-local-keyring","format":1,"keyring_id":"00000000000000000000000000000000","primary":1,"keys":[{"version":1,"material":"c2hvcnQ="}]})"}) {
    {
      std::ofstream f(path_, std::ios::trunc);
      f << text;
    }
    ASSERT_EQ(chmod(path_.c_str(), 0600), 0);
    EXPECT_THAT(Open(), StatusIs(absl::StatusCode::kInvalidArgument)) << text;
  }
}

TEST_F(LocalKmsTest, RelativeKeyringPathIsRejected) {
  LocalKmsOptions o;
  o.keyring_path = "keyring.json";
  EXPECT_THAT(LocalKms::Create(o, &clock_), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(LocalKmsTest, ProbeReportsAnUnreadableKeyringAsAnOutageAndKeepsServing) {
  auto kms = *Open();
  SecretBytes key = *RandomSecret(32);
  auto w = *kms->Wrap(key, Ctx());
  ASSERT_EQ(unlink(path_.c_str()), 0);
  EXPECT_THAT(kms->Probe(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(kms->Unwrap(w, Ctx())->ConstantTimeEquals(key));
}

}  // namespace
}  // namespace kmsplugin
