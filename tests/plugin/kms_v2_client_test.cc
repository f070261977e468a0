// KmsV2Client without a server: its argument checks, and the codes it passes back. The calls
// against a serving plugin are covered by tests/integration (ApiserverKmsClient is built on it).
#include "plugin/kms_v2_client.h"

#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::StatusIs;

TEST(KmsV2ClientTest, DialRejectsABadAddressOrANonPositiveTimeout) {
  EXPECT_THAT(KmsV2Client::Dial("relative.sock"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(KmsV2Client::Dial("tcp://127.0.0.1:1"), StatusIs(absl::StatusCode::kInvalidArgument));
  KmsV2ClientOptions zero;
  zero.timeout = absl::ZeroDuration();
  EXPECT_THAT(KmsV2Client::Dial("unix:///tmp/kms.sock", zero),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(KmsV2ClientTest, WithoutWaitForReadyEveryCallIsUnavailableWhenNothingListens) {
  KmsV2ClientOptions options;
  options.wait_for_ready = false;
  auto client = KmsV2Client::Dial("unix:///@kmsp-test-nobody-listens-here", options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_THAT((*client)->Status(), StatusIs(absl::StatusCode::kUnavailable));
  v2::EncryptRequest encrypt;
  encrypt.set_plaintext("p");
  EXPECT_THAT((*client)->Encrypt(encrypt), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT((*client)->Decrypt(v2::DecryptRequest()), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace kmsplugin
