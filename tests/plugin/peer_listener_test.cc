// The KMS socket on an abstract address (issue 9, item 4): connections are admitted only from the
// uids in ServerOptions::allowed_uids (SO_PEERCRED), and admitted connections are served at full
// speed. Tests run as root; other uids come from a forked child that drops to them with setresuid.
#include "plugin/peer_listener.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "crypto/random.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "plugin/audit_log.h"
#include "plugin/channel.h"
#include "plugin/server.h"
#include "proto/admin/admin.grpc.pb.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kes.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeKes;

constexpr uid_t kNobody = 65534;

class AbstractSocketTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<uid_t> allowed_uids, const ListenAddress* admin_address = nullptr) {
    auto svc = EnvelopeService::Create(EnvelopeOptions{}, std::make_unique<FakeKes>(), &clock_);
    ASSERT_TRUE(svc.ok());
    envelope_ = std::move(*svc);
    ASSERT_TRUE(envelope_->Refresh(CallContext::WithTimeout(absl::Seconds(3))).ok());
    kms_ = std::make_unique<KmsV2GrpcService>(envelope_.get(), &metrics_, &pool_);
    admin_ =
        std::make_unique<AdminGrpcService>(envelope_.get(), &pool_, absl::Seconds(3), audit_.get());
    name_ = "kmsp-peer-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter_);
    address_ = *ParseListenAddress("unix:///@" + name_);
    ServerOptions options;
    options.allowed_uids = std::move(allowed_uids);
    auto server = GrpcServer::Start(address_, kms_.get(), admin_address,
                                    admin_address != nullptr ? admin_.get() : nullptr, &pool_,
                                    [] { return true; }, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  }

  // `n` sequential Status calls on one fresh channel, each with a 2 s deadline; how many succeed.
  int SequentialStatusCalls(int n) {
    auto channel = DialUnixSocket("unix:///@" + name_);
    EXPECT_TRUE(channel.ok());
    auto stub = v2::KeyManagementService::NewStub(*channel);
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v2::StatusResponse response;
      if (stub->Status(&ctx, v2::StatusRequest(), &response).ok() && response.version() == "v2") {
        ++ok;
      }
    }
    return ok;
  }

  // In a forked child running as `uid`: connects to `target` (default: the abstract KMS socket), sends the HTTP/2 preface and an empty SETTINGS
  // frame, and waits up to 5 s for bytes. Exit 0: the server answered; 1: it closed the
  // connection unanswered; 2: something else went wrong. Only system calls in the child.
  int ChildHandshakeAs(uid_t uid, const ListenAddress* target = nullptr) {
    if (target == nullptr) target = &address_;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len = sizeof(addr);
    if (!target->abstract_name.empty()) {
      std::memcpy(addr.sun_path + 1, target->abstract_name.data(), target->abstract_name.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                   target->abstract_name.size());
    } else {
      std::memcpy(addr.sun_path, target->path.data(), target->path.size());
    }
    pid_t pid = fork();
    if (pid == 0) {
      if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) _exit(2);
      int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) _exit(2);
      static const char kHello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
      (void)!send(fd, kHello, sizeof(kHello) - 1, MSG_NOSIGNAL);
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 5000) != 1) _exit(2);
      char buf[64];
      ssize_t got = read(fd, buf, sizeof(buf));
      _exit(got > 0 ? 0 : (got == 0 || errno == ECONNRESET) ? 1 : 2);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }

  static inline int counter_ = 0;
  FakeClock clock_;
  std::unique_ptr<AuditLog> audit_;  // Handed to the admin service when set before StartServer.
  PluginMetrics metrics_;
  BlockingPool pool_{4};
  std::unique_ptr<EnvelopeService> envelope_;
  std::unique_ptr<KmsV2GrpcService> kms_;
  std::unique_ptr<AdminGrpcService> admin_;
  std::string name_;
  ListenAddress address_;
  std::unique_ptr<GrpcServer> server_;
};

TEST_F(AbstractSocketTest, RootIsRefusedWhenOnlyAnotherUidIsAllowed) {
  StartServer({12345});
  EXPECT_EQ(SequentialStatusCalls(3), 0);
}

TEST_F(AbstractSocketTest, AUidNotInTheListIsClosedUnansweredAndAListedOneIsAnswered) {
  StartServer({0});
  EXPECT_EQ(ChildHandshakeAs(kNobody), 1);
  EXPECT_EQ(ChildHandshakeAs(0), 0);
}

TEST_F(AbstractSocketTest, AnotherUidIsAnsweredOnceListed) {
  StartServer({0, kNobody});
  EXPECT_EQ(ChildHandshakeAs(kNobody), 0);
}

// Each call on a fresh, fd-handed-over connection completes well within its 2 s deadline (an
// earlier experiment had the first call stall ~1.5 s when the serving thread sat in cq->Next).
TEST_F(AbstractSocketTest, HundredSequentialStatusCallsOnAFreshConnectionAllSucceed) {
  StartServer({0});
  EXPECT_EQ(SequentialStatusCalls(100), 100);
  EXPECT_EQ(SequentialStatusCalls(100), 100);  // A second connection, as fresh.
}

// Connections handed over from the abstract socket are plain KMS connections: admin calls on
// them are refused, while the admin socket file still serves them.
TEST_F(AbstractSocketTest, AdminMethodsAreRefusedOnTheAbstractSocketAndServedOnTheAdminSocket) {
  char tmpl[] = "/tmp/kmsp-peer-test.XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ListenAddress admin_address = *ParseListenAddress("unix://" + dir + "/admin.sock");
  StartServer({0}, &admin_address);
  for (const std::string& target : {"unix:///@" + name_, admin_address.display}) {
    auto stub = admin::v1::Admin::NewStub(*DialUnixSocket(target));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    admin::v1::ReportResponse r;
    grpc::Status s = stub->Report(&ctx, {}, &r);
    EXPECT_EQ(s.error_code(), target == admin_address.display ? grpc::StatusCode::OK
                                                              : grpc::StatusCode::UNIMPLEMENTED)
        << target;
  }
  server_->Shutdown(absl::ZeroDuration());
  rmdir(dir.c_str());
}

TEST(ParseAllowedUids, AcceptsACommaSeparatedListAndRefusesAnythingElse) {
  EXPECT_EQ(*ParseAllowedUids("0"), std::vector<uid_t>{0});
  EXPECT_EQ(*ParseAllowedUids("0,1000"), (std::vector<uid_t>{0, 1000}));
  EXPECT_FALSE(ParseAllowedUids("").ok());
  EXPECT_FALSE(ParseAllowedUids("root").ok());
  EXPECT_FALSE(ParseAllowedUids("0,").ok());
  EXPECT_FALSE(ParseAllowedUids("-1").ok());
}

// The admin socket gets the same peer check (issue 9, item 4): its file mode admits only the
// owner and root, and even where the file is opened up (here: chmod 0666 and a 0711 directory,
// as a careless umask or volume could leave it), a uid that is neither allowed nor the plugin's
// own is closed unanswered.
class AdminSocketPeerTest : public AbstractSocketTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kmsp-admin-peer.XXXXXX";
    dir_ = mkdtemp(tmpl);
    ASSERT_EQ(chmod(dir_.c_str(), 0711), 0);
    admin_address_ = *ParseListenAddress("unix://" + dir_ + "/admin.sock");
  }
  void TearDown() override {
    AbstractSocketTest::TearDown();
    rmdir(dir_.c_str());
  }
  void OpenUpTheAdminSocketFile() {
    ASSERT_EQ(chmod(admin_address_.path.c_str(), 0666), 0);
  }

  std::string dir_;
  ListenAddress admin_address_;
};

TEST_F(AdminSocketPeerTest, AUidNeitherAllowedNorTheOwnerIsClosedUnansweredEvenIfTheFileIsOpen) {
  StartServer({0}, &admin_address_);
  OpenUpTheAdminSocketFile();
  EXPECT_EQ(ChildHandshakeAs(kNobody, &admin_address_), 1);
  EXPECT_EQ(ChildHandshakeAs(0, &admin_address_), 0);
}

TEST_F(AdminSocketPeerTest, AnAllowedUidIsAnsweredOnTheAdminSocket) {
  StartServer({0, kNobody}, &admin_address_);
  OpenUpTheAdminSocketFile();
  EXPECT_EQ(ChildHandshakeAs(kNobody, &admin_address_), 0);
}

TEST_F(AdminSocketPeerTest, ThePluginsOwnUidIsAlwaysAdmittedOnTheAdminSocket) {
  StartServer({12345}, &admin_address_);  // The test runs as root: not in the list, but the owner.
  auto stub = admin::v1::Admin::NewStub(*DialUnixSocket(admin_address_.display));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  admin::v1::ReportResponse r;
  EXPECT_TRUE(stub->Report(&ctx, {}, &r).ok());
}

// A connection number that served the admin socket and is then reused by a KMS connection (the
// kernel hands out the lowest free fd) is a KMS connection: admin calls on it are refused.
TEST_F(AdminSocketPeerTest, AnFdNumberReusedByAKmsConnectionIsNotAdmin) {
  StartServer({0}, &admin_address_);
  for (int round = 0; round < 5; ++round) {
    for (const ListenAddress* target : {&admin_address_, &address_}) {
      auto stub = admin::v1::Admin::NewStub(*DialUnixSocket(target->display));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      admin::v1::ReportResponse r;
      grpc::Status s = stub->Report(&ctx, {}, &r);
      EXPECT_EQ(s.error_code(), target == &admin_address_ ? grpc::StatusCode::OK
                                                          : grpc::StatusCode::UNIMPLEMENTED)
          << target->display << " round " << round;
    }
  }
}

// Each admin call writes one audit line naming the caller by SO_PEERCRED: here the test process
// itself is the client, so its uid and pid.
TEST_F(AdminSocketPeerTest, EachAdminCallWritesOneAuditLineWithTheCallersUidAndPid) {
  const std::string path = dir_ + "/audit.log";
  auto log = AuditLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  audit_ = std::move(*log);
  StartServer({0}, &admin_address_);
  auto stub = admin::v1::Admin::NewStub(*DialUnixSocket(admin_address_.display));
  const std::string before = envelope_->Status().key_id;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    admin::v1::ReportResponse r;
    ASSERT_TRUE(stub->RotateDataKey(&ctx, {}, &r).ok());
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    admin::v1::ReportResponse r;
    ASSERT_TRUE(stub->Refresh(&ctx, {}, &r).ok());
  }
  server_->Shutdown(absl::ZeroDuration());
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["action"], "rotate_data_key");
  EXPECT_EQ(lines[1]["action"], "refresh");
  for (const nlohmann::json& j : lines) {
    EXPECT_EQ(j["type"], "admin");
    EXPECT_EQ(j["peer_uid"], static_cast<int64_t>(getuid()));
    EXPECT_EQ(j["peer_pid"], static_cast<int64_t>(getpid()));
    EXPECT_EQ(j["result"], "OK");
    EXPECT_EQ(j["key_id_before"], before);  // A data key rotation keeps the KEK's key_id.
    EXPECT_EQ(j["key_id_after"], before);
  }
  unlink(path.c_str());
}

TEST(AdminConnections, KeepsThePeersCredentialsOfAnAdminConnection) {
  AdminConnections c;
  c.Record(9, /*admin=*/true, PeerCred{1234, 5678});
  std::optional<PeerCred> peer = c.AdminPeer("fd:9");
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->uid, 1234u);
  EXPECT_EQ(peer->pid, 5678);
  EXPECT_FALSE(c.AdminPeer("fd:10").has_value());
  c.Record(9, /*admin=*/false);
  EXPECT_FALSE(c.AdminPeer("fd:9").has_value());
}

TEST(AdminConnections, OnlyRecordedAdminFdPeersAreAdmin) {
  AdminConnections c;
  c.Record(7, /*admin=*/true);
  EXPECT_TRUE(c.IsAdmin("fd:7"));
  EXPECT_FALSE(c.IsAdmin("fd:8"));
  EXPECT_FALSE(c.IsAdmin("unix:/run/kms.sock"));
  EXPECT_FALSE(c.IsAdmin("fd:7x"));
  EXPECT_FALSE(c.IsAdmin(""));
  c.Record(7, /*admin=*/false);  // Number 7 now serves a KMS connection.
  EXPECT_FALSE(c.IsAdmin("fd:7"));
}

}  // namespace
}  // namespace kmsplugin
