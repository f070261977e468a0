// RouteGrpcLogsToSpdlog: gRPC core's log records reach the default spdlog logger at the matching
// level, sanitised, instead of stderr.
#include "plugin/grpc_log_bridge.h"

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "grpc/support/log.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class GrpcLogBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    logger->set_pattern("%l %v");
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_DEBUG);
    RouteGrpcLogsToSpdlog();
  }
  void TearDown() override {
    // The bridge stays installed (gRPC 1.51 exports no default to restore): it logs to
    // whichever logger is the default, which is restored here.
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
    spdlog::set_default_logger(previous_);
  }

  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(GrpcLogBridgeTest, EachGrpcSeverityLandsAtItsSpdlogLevelWithTheSourceLine) {
  gpr_log("/src/grpc/core/chttp2_transport.cc", 42, GPR_LOG_SEVERITY_ERROR, "%s",
          "keepalive watchdog timeout");
  gpr_log("/src/grpc/core/server.cc", 7, GPR_LOG_SEVERITY_INFO, "%s", "server started");
  gpr_log("/src/grpc/core/tcp.cc", 9, GPR_LOG_SEVERITY_DEBUG, "%s", "read 10 bytes");
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("error grpc: keepalive watchdog timeout (chttp2_transport.cc:42)\n"));
  EXPECT_THAT(out, HasSubstr("info grpc: server started (server.cc:7)\n"));
  EXPECT_THAT(out, HasSubstr("debug grpc: read 10 bytes (tcp.cc:9)\n"));
  EXPECT_THAT(out, Not(HasSubstr("/src/grpc")));  // The base name only.
}

TEST_F(GrpcLogBridgeTest, AMessageWithControlBytesStaysOnOneSanitisedLine) {
  gpr_log("x.cc", 1, GPR_LOG_SEVERITY_ERROR, "%s", "peer sent \"bad\"\nnext\x01line");
  const std::string out = out_.str();
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_THAT(out, HasSubstr("grpc: peer sent"));
  EXPECT_THAT(out, Not(HasSubstr("\x01")));
}

}  // namespace
}  // namespace kmsplugin
