#include "plugin/listen_address.h"

#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::StatusIs;

TEST(ListenAddressTest, ParseListenAddressAcceptsTheThreeForms) {
  auto a = ParseListenAddress("unix:///var/run/kms.sock");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->path, "/var/run/kms.sock");
  EXPECT_EQ(a->grpc_uri, "unix:/var/run/kms.sock");
  auto b = ParseListenAddress("/var/run/kms.sock");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->grpc_uri, "unix:/var/run/kms.sock");
  auto c = ParseListenAddress("unix:///@kms-plugin");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->path, "");
  EXPECT_EQ(c->grpc_uri, "unix-abstract:kms-plugin");
}

TEST(ListenAddressTest, ParseListenAddressRejectsRelativePathsAndOtherSchemes) {
  EXPECT_THAT(ParseListenAddress("kms.sock"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseListenAddress("unix://kms.sock"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseListenAddress("tcp://127.0.0.1:1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseListenAddress("unix:///@"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseListenAddress(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ListenAddressTest, DefaultAdminAddressIsDerivedFromListen) {
  EXPECT_EQ(DefaultAdminAddress(*ParseListenAddress("unix:///a/kms.sock")), "unix:///a/kms.sock.admin");
  // An abstract socket has no permissions: no default admin socket for an abstract --listen.
  EXPECT_EQ(DefaultAdminAddress(*ParseListenAddress("unix:///@k")), "");
  EXPECT_THAT(ValidateAdminAddress(*ParseListenAddress("unix:///@k.admin")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(ValidateAdminAddress(*ParseListenAddress("unix:///a/kms.sock.admin")).ok());
}

}  // namespace
}  // namespace kmsplugin
