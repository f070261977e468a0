// The gRPC <-> absl status conversions of kmsp_transport.
#include "plugin/grpc_status.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(GrpcStatusTest, FromGrpcStatusIsTheInverseOfToGrpcStatus) {
  const std::string raw("bad \"key\" \x01\xff", 12);
  absl::Status back = FromGrpcStatus(ToGrpcStatus(absl::PermissionDeniedError(raw)));
  EXPECT_EQ(back.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(back.message()), raw);
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "late")),
              StatusIs(absl::StatusCode::kDeadlineExceeded, "late"));
}

TEST(GrpcStatusTest, AnnotatePeerErrorPutsTheContextFirstAndSanitisesThePeersMessage) {
  absl::Status s = AnnotatePeerError(absl::UnavailableError("no \"route\"\n"), "etcd a:1 Range");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, "etcd a:1 Range: no ?route??"));
  absl::Status long_one = AnnotatePeerError(absl::InternalError(std::string(2000, 'x')), "c");
  EXPECT_LT(long_one.message().size(), 600u);
  EXPECT_THAT(long_one, StatusIs(absl::StatusCode::kInternal, HasSubstr("...")));
  EXPECT_TRUE(AnnotatePeerError(absl::OkStatus(), "c").ok());
  EXPECT_THAT(AnnotatePeerError(absl::NotFoundError("a\x01"), "c"),
              StatusIs(absl::StatusCode::kNotFound, Not(HasSubstr("\x01"))));
}

}  // namespace
}  // namespace kmsplugin
