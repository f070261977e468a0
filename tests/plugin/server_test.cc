// The serving core (GrpcServer with the KMS v2, admin and health services) on real unix
// sockets: concurrency on one connection, the slow-backend path, admin isolation, health, drain.
#include "plugin/server.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "crypto/random.h"
#include "gtest/gtest.h"
#include "grpcpp/generic/generic_stub.h"
#include "plugin/channel.h"
#include "proto/admin/admin.grpc.pb.h"
#include "proto/grpc_health/v1/health.grpc.pb.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kes.h"
#include "tests/integration/apiserver_validation.h"
#include "tests/integration/async_burst.h"

namespace kmsplugin {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeKes;

constexpr auto kDeadline = std::chrono::seconds(20);

template <typename Request, typename Response>
using Burst = testing::AsyncBurst<Request, Response>;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(EnvelopeOptions{}); }

  void StartServer(EnvelopeOptions options) {
    auto kes = std::make_unique<FakeKes>();
    kes_ = kes.get();
    auto svc = EnvelopeService::Create(options, std::move(kes), &clock_);
    ASSERT_TRUE(svc.ok());
    envelope_ = std::move(*svc);
    ASSERT_TRUE(envelope_->Refresh(CallContext::WithTimeout(absl::Seconds(3))).ok());
    kms_ = std::make_unique<KmsV2GrpcService>(envelope_.get(), &metrics_, &pool_);
    admin_ = std::make_unique<AdminGrpcService>(envelope_.get(), &pool_, absl::Seconds(3));
    char tmpl[] = "/tmp/kmsp-server-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    kms_address_ = *ParseListenAddress("unix://" + dir_ + "/kms.sock");
    admin_address_ = *ParseListenAddress("unix://" + dir_ + "/kms.sock.admin");
    EnvelopeService* env = envelope_.get();
    auto server = GrpcServer::Start(kms_address_, kms_.get(), &admin_address_, admin_.get(),
                                    &pool_, [env] { return env->Status().healthz == "ok"; },
                                    ServerOptions{});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = *DialUnixSocket(kms_address_.display);
    stub_ = v2::KeyManagementService::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
    rmdir(dir_.c_str());
  }

  v2::EncryptResponse MustEncrypt(const std::string& plaintext) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v2::EncryptRequest req;
    req.set_plaintext(plaintext);
    req.set_uid("uid");
    v2::EncryptResponse resp;
    grpc::Status s = stub_->Encrypt(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // Restarts the server with a data-key cache of one, encrypts `seed`, then rotates the data key:
  // the returned object's data key is then no longer cached, and decrypting it needs an unwrap.
  v2::EncryptResponse EncryptUnderAKeyThatIsNotCached(const std::string& seed) {
    server_->Shutdown(absl::ZeroDuration());
    server_.reset();
    rmdir(dir_.c_str());
    EnvelopeOptions options;
    options.dek_cache_size = 1;
    StartServer(options);
    v2::EncryptResponse object = MustEncrypt(seed);
    EXPECT_TRUE(envelope_->RotateDataKey(CallContext::WithTimeout(absl::Seconds(3))).ok());
    return object;
  }

  static v2::DecryptRequest DecryptRequestFor(const v2::EncryptResponse& e) {
    v2::DecryptRequest r;
    r.set_ciphertext(e.ciphertext());
    r.set_key_id(e.key_id());
    *r.mutable_annotations() = e.annotations();
    r.set_uid("uid");
    return r;
  }

  FakeClock clock_;
  PluginMetrics metrics_;
  BlockingPool pool_{16};
  FakeKes* kes_ = nullptr;
  std::unique_ptr<EnvelopeService> envelope_;
  std::unique_ptr<KmsV2GrpcService> kms_;
  std::unique_ptr<AdminGrpcService> admin_;
  std::string dir_;
  ListenAddress kms_address_;
  ListenAddress admin_address_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v2::KeyManagementService::Stub> stub_;
};

TEST_F(ServerTest, ThousandTwentyFourConcurrentStatusCallsOnOneChannelAllSucceed) {
  Burst<v2::StatusRequest, v2::StatusResponse> burst;
  ASSERT_TRUE(burst.Run(std::vector<v2::StatusRequest>(1024), [&](grpc::ClientContext* c,
                                                     const v2::StatusRequest& r,
                                                     grpc::CompletionQueue* cq) {
    return stub_->AsyncStatus(c, r, cq);
  }));
  ASSERT_EQ(burst.calls().size(), 1024u);
  int ok = 0;
  for (const auto& call : burst.calls()) {
    ASSERT_TRUE(call->status.ok()) << call->status.error_code() << " " << call->status.error_message();
    ASSERT_TRUE(testing::ValidateStatusResponse(call->response, "v2").ok());
    ++ok;
  }
  EXPECT_EQ(ok, 1024);
}

TEST_F(ServerTest, ThousandTwentyFourConcurrentEncryptsAndDecryptsOnOneChannelAllSucceed) {
  const std::string key_id = envelope_->Status().key_id;
  std::vector<v2::EncryptRequest> requests(1024);
  std::vector<std::string> seeds;
  for (auto& r : requests) {
    seeds.push_back(*RandomBytes(32));
    r.set_plaintext(seeds.back());
    r.set_uid("uid");
  }
  Burst<v2::EncryptRequest, v2::EncryptResponse> enc;
  ASSERT_TRUE(enc.Run(requests, [&](grpc::ClientContext* c, const v2::EncryptRequest& r,
                        grpc::CompletionQueue* cq) { return stub_->AsyncEncrypt(c, r, cq); }));
  std::vector<v2::DecryptRequest> decrypts;
  std::set<std::string> ciphertexts;
  for (const auto& call : enc.calls()) {
    ASSERT_TRUE(call->status.ok()) << call->status.error_message();
    ASSERT_TRUE(testing::ValidateEncryptResponse(call->response, key_id).ok());
    ciphertexts.insert(call->response.ciphertext());
    decrypts.push_back(DecryptRequestFor(call->response));
  }
  EXPECT_EQ(ciphertexts.size(), 1024u);
  Burst<v2::DecryptRequest, v2::DecryptResponse> dec;
  ASSERT_TRUE(dec.Run(decrypts, [&](grpc::ClientContext* c, const v2::DecryptRequest& r,
                        grpc::CompletionQueue* cq) { return stub_->AsyncDecrypt(c, r, cq); }));
  ASSERT_EQ(dec.calls().size(), 1024u);
  for (size_t i = 0; i < dec.calls().size(); ++i) {
    ASSERT_TRUE(dec.calls()[i]->status.ok()) << dec.calls()[i]->status.error_message();
    EXPECT_EQ(dec.calls()[i]->response.plaintext(), seeds[i]);
  }
  EXPECT_EQ(kes_->wraps.load(), 1);    // The first data key only.
  EXPECT_EQ(kes_->unwraps.load(), 0);  // Every Decrypt under the cached current key.
}

TEST_F(ServerTest, SixtyFourDecryptsOfOneUncachedKeyCostOneUnwrapAndOtherCallsGoOnMeanwhile) {
  const std::string seed = *RandomBytes(32);
  v2::EncryptResponse old_object;
  ASSERT_NO_FATAL_FAILURE(old_object = EncryptUnderAKeyThatIsNotCached(seed));
  const std::string other_seed = *RandomBytes(32);
  v2::EncryptResponse current_object = MustEncrypt(other_seed);
  ASSERT_EQ(kes_->unwraps.load(), 0);

  absl::Notification release;
  kes_->BlockUnwrapUntil(&release);
  std::vector<v2::DecryptRequest> requests(64, DecryptRequestFor(old_object));
  Burst<v2::DecryptRequest, v2::DecryptResponse> burst;
  std::thread cold([&] {
    ASSERT_TRUE(burst.Run(requests, [&](grpc::ClientContext* c, const v2::DecryptRequest& r,
                            grpc::CompletionQueue* cq) { return stub_->AsyncDecrypt(c, r, cq); }));
  });
  while (kes_->unwraps.load() == 0) std::this_thread::yield();  // The unwrap is now stuck.

  // Meanwhile every other kind of call is answered, on the same connection.
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v2::StatusResponse status;
    ASSERT_TRUE(stub_->Status(&ctx, v2::StatusRequest(), &status).ok());
    v2::EncryptResponse e = MustEncrypt("seed-" + std::to_string(i));
    EXPECT_FALSE(e.ciphertext().empty());
    grpc::ClientContext dctx;
    dctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    v2::DecryptResponse d;
    ASSERT_TRUE(stub_->Decrypt(&dctx, DecryptRequestFor(current_object), &d).ok());
    EXPECT_EQ(d.plaintext(), other_seed);
  }
  EXPECT_EQ(kes_->unwraps.load(), 1);
  release.Notify();
  cold.join();
  ASSERT_EQ(burst.calls().size(), 64u);
  for (const auto& call : burst.calls()) {
    ASSERT_TRUE(call->status.ok()) << call->status.error_message();
    EXPECT_EQ(call->response.plaintext(), seed);
  }
  EXPECT_EQ(kes_->unwraps.load(), 1);
  kes_->BlockUnwrapUntil(nullptr);
}

TEST_F(ServerTest, AdminMethodsAreNotReachableThroughTheKmsSocket) {
  using kmsplugin::admin::v1::Admin;
  auto on_kms = Admin::NewStub(channel_);
  for (int method = 0; method < 4; ++method) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    kmsplugin::admin::v1::ReportResponse r;
    grpc::Status s;
    switch (method) {
      case 0: s = on_kms->Report(&ctx, {}, &r); break;
      case 1: s = on_kms->Refresh(&ctx, {}, &r); break;
      case 2: s = on_kms->RotateDataKey(&ctx, {}, &r); break;
      case 3: s = on_kms->RotateKek(&ctx, {}, &r); break;
    }
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }
  EXPECT_EQ(kes_->rotations.load(), 0);
  EXPECT_EQ(kes_->wraps.load(), 1);
  // The same methods on the admin socket work.
  auto on_admin = Admin::NewStub(*DialUnixSocket(admin_address_.display));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  kmsplugin::admin::v1::ReportResponse r;
  ASSERT_TRUE(on_admin->RotateDataKey(&ctx, {}, &r).ok());
  EXPECT_EQ(kes_->wraps.load(), 2);
  EXPECT_EQ(r.healthz(), "ok");
}

TEST_F(ServerTest, AnUnknownMethodGetsUnimplementedOnBothSockets) {
  for (const ListenAddress* address : {&kms_address_, &admin_address_}) {
    grpc::GenericStub stub(*DialUnixSocket(address->display));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    grpc::CompletionQueue cq;
    grpc::Slice empty;
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    auto call = stub.PrepareUnaryCall(&ctx, "/no.such.Service/Method", request, &cq);
    call->StartCall();
    call->Finish(&response, &status, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << address->display;
  }
}

HealthCheckResponse::ServingStatus Check(grpc::health::v1::Health::Stub* stub,
                                         const std::string& service, grpc::Status* status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  *status = stub->Check(&ctx, req, &resp);
  return resp.status();
}

TEST_F(ServerTest, HealthServiceFollowsHealthzOnBothSockets) {
  auto kms_health = grpc::health::v1::Health::NewStub(channel_);
  auto admin_health =
      grpc::health::v1::Health::NewStub(*DialUnixSocket(admin_address_.display));
  grpc::Status s;
  EXPECT_EQ(Check(admin_health.get(), "kmsplugin.admin.v1.Admin", &s), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(kms_health.get(), "", &s), HealthCheckResponse::SERVING);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(Check(kms_health.get(), "v2.KeyManagementService", &s), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(admin_health.get(), "", &s), HealthCheckResponse::SERVING);
  Check(kms_health.get(), "no.such.Service", &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);

  // Watch sends the status at once.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
    auto reader = kms_health->Watch(&ctx, HealthCheckRequest());
    HealthCheckResponse first;
    ASSERT_TRUE(reader->Read(&first));
    EXPECT_EQ(first.status(), HealthCheckResponse::SERVING);
    ctx.TryCancel();
  }

  // The KMS refuses the key: healthz is no longer ok, and neither is grpc.health.v1.
  kes_->FailWith(absl::PermissionDeniedError("key disabled"));
  (void)envelope_->Refresh(CallContext::WithTimeout(absl::Seconds(3)));
  ASSERT_NE(envelope_->Status().healthz, "ok");
  EXPECT_EQ(Check(kms_health.get(), "", &s), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Check(kms_health.get(), "v2.KeyManagementService", &s),
            HealthCheckResponse::NOT_SERVING);
  kes_->Heal();
  ASSERT_TRUE(envelope_->Refresh(CallContext::WithTimeout(absl::Seconds(3))).ok());
  EXPECT_EQ(Check(kms_health.get(), "", &s), HealthCheckResponse::SERVING);
  // A drain says NOT_SERVING at once.
  server_->SetNotServing();
  EXPECT_EQ(Check(kms_health.get(), "", &s), HealthCheckResponse::NOT_SERVING);
}

TEST_F(ServerTest, ShutdownWithAHundredCallsInFlightAnswersEachOneCleanly) {
  v2::EncryptResponse old_object;
  ASSERT_NO_FATAL_FAILURE(old_object = EncryptUnderAKeyThatIsNotCached("old-seed"));
  absl::Notification release;
  kes_->BlockUnwrapUntil(&release);
  std::vector<v2::DecryptRequest> requests(100, DecryptRequestFor(old_object));
  Burst<v2::DecryptRequest, v2::DecryptResponse> burst;
  std::thread client([&] {
    ASSERT_TRUE(burst.Run(requests, [&](grpc::ClientContext* c, const v2::DecryptRequest& r,
                            grpc::CompletionQueue* cq) { return stub_->AsyncDecrypt(c, r, cq); }));
  });
  while (kms_->in_flight() < 100) std::this_thread::yield();  // All 100 reached the server.
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(30)); });
  release.Notify();
  stopper.join();
  client.join();
  ASSERT_EQ(burst.calls().size(), 100u);
  int ok = 0;
  for (const auto& call : burst.calls()) {
    if (call->status.ok()) {
      EXPECT_EQ(call->response.plaintext(), "old-seed");
      ++ok;
    } else {
      EXPECT_TRUE(call->status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                  call->status.error_code() == grpc::StatusCode::CANCELLED)
          << call->status.error_code();
    }
  }
  EXPECT_EQ(ok, 100);  // The grace was long enough for every call to finish.
  EXPECT_EQ(kms_->in_flight(), 0);
  kes_->BlockUnwrapUntil(nullptr);
}

}  // namespace
}  // namespace kmsplugin
