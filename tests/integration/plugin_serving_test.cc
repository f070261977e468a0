// The serving path of the real binary under the load kube-apiserver makes: many calls in flight
// on one connection, and a SIGTERM while they are.
#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/async_burst.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;

class PluginServingTest : public PluginTestBase {};

TEST_F(PluginServingTest, ThousandTwentyFourConcurrentCallsOfEachMethodOnOneChannelAllSucceed) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  auto stub = v2::KeyManagementService::NewStub(client.channel());
  constexpr int kCalls = 1024;

  AsyncBurst<v2::StatusRequest, v2::StatusResponse> status;
  ASSERT_TRUE(status.Run(std::vector<v2::StatusRequest>(kCalls),
                         [&](grpc::ClientContext* c, const v2::StatusRequest& r,
                             grpc::CompletionQueue* cq) { return stub->AsyncStatus(c, r, cq); }));
  std::string key_id;
  for (const auto& call : status.calls()) {
    ASSERT_TRUE(call->status.ok()) << call->status.error_code() << " " << call->status.error_message();
    ASSERT_THAT(ValidateStatusResponse(call->response, "v2"), IsOk());
    key_id = call->response.key_id();
  }

  std::vector<v2::EncryptRequest> encrypts(kCalls);
  std::vector<std::string> seeds;
  for (v2::EncryptRequest& r : encrypts) {
    seeds.push_back(NewSeed());
    r.set_plaintext(seeds.back());
    r.set_uid(NewUuid());
  }
  AsyncBurst<v2::EncryptRequest, v2::EncryptResponse> encrypt;
  ASSERT_TRUE(encrypt.Run(encrypts, [&](grpc::ClientContext* c, const v2::EncryptRequest& r,
                                        grpc::CompletionQueue* cq) {
    return stub->AsyncEncrypt(c, r, cq);
  }));
  std::vector<v2::DecryptRequest> decrypts;
  std::set<std::string> cache_keys;
  for (const auto& call : encrypt.calls()) {
    ASSERT_TRUE(call->status.ok()) << call->status.error_code() << " " << call->status.error_message();
    ASSERT_THAT(ValidateEncryptResponse(call->response, key_id), IsOk());
    cache_keys.insert(DekCacheKey(call->response));
    decrypts.push_back(ApiserverKmsClient::DecryptRequestFor(call->response));
    decrypts.back().set_uid(NewUuid());
  }
  EXPECT_EQ(cache_keys.size(), static_cast<size_t>(kCalls));

  AsyncBurst<v2::DecryptRequest, v2::DecryptResponse> decrypt;
  ASSERT_TRUE(decrypt.Run(decrypts, [&](grpc::ClientContext* c, const v2::DecryptRequest& r,
                                        grpc::CompletionQueue* cq) {
    return stub->AsyncDecrypt(c, r, cq);
  }));
  int ok = 0;
  for (size_t i = 0; i < decrypt.calls().size(); ++i) {
    const auto& call = decrypt.calls()[i];
    ASSERT_TRUE(call->status.ok()) << call->status.error_code() << " " << call->status.error_message();
    EXPECT_EQ(call->response.plaintext(), seeds[i]);
    ++ok;
  }
  EXPECT_EQ(ok, kCalls);
}

// Keeps `in_flight` Encrypt calls outstanding on one channel until the server goes away, and
// counts how each call ended.
class SteadyLoad {
 public:
  SteadyLoad(std::shared_ptr<grpc::Channel> channel, int in_flight)
      : stub_(v2::KeyManagementService::NewStub(std::move(channel))), in_flight_(in_flight) {}

  void Run() {
    for (int i = 0; i < in_flight_; ++i) StartOne();
    void* tag = nullptr;
    bool ok = false;
    while (outstanding_ > 0 && cq_.Next(&tag, &ok)) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      --outstanding_;
      if (call->status.ok()) {
        if (call->response.ciphertext().empty() || call->response.key_id().empty()) ++invalid_;
        ++completed_ok_;
      } else {
        ++failures_[call->status.error_code()];
      }
      // Keep the load up until the server has gone (then every new call fails at once).
      if (failures_.empty()) StartOne();
    }
    cq_.Shutdown();
    while (cq_.Next(&tag, &ok)) {
    }
  }

  int completed_ok() const { return completed_ok_.load(); }
  int invalid() const { return invalid_; }
  const std::map<grpc::StatusCode, int>& failures() const { return failures_; }

 private:
  struct Call {
    grpc::ClientContext context;
    v2::EncryptResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v2::EncryptResponse>> reader;
  };
  void StartOne() {
    auto* call = new Call();
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v2::EncryptRequest req;
    req.set_plaintext("seed-of-the-steady-load-" + std::to_string(started_++));
    req.set_uid("steady");
    call->reader = stub_->AsyncEncrypt(&call->context, req, &cq_);
    call->reader->Finish(&call->response, &call->status, call);
    ++outstanding_;
  }

  std::unique_ptr<v2::KeyManagementService::Stub> stub_;
  const int in_flight_;
  grpc::CompletionQueue cq_;
  int outstanding_ = 0;
  int started_ = 0;
  std::atomic<int> completed_ok_{0};
  int invalid_ = 0;
  std::map<grpc::StatusCode, int> failures_;
};

TEST_F(PluginServingTest, SigtermWithAHundredCallsInFlightAnswersEachCleanlyAndExitsZero) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  SteadyLoad load(client.channel(), 100);
  std::thread runner([&] { load.Run(); });
  // Signal while the load runs: after a few thousand calls, 100 are always outstanding.
  ASSERT_TRUE(PollUntil([&] { return load.completed_ok() >= 2000; }, absl::Seconds(60)));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->Terminate(SIGTERM));
  runner.join();
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString() << "\n" << plugin->Log();
  EXPECT_GE(load.completed_ok(), 2000);
  EXPECT_EQ(load.invalid(), 0);
  // Every call that did not complete failed the way a client retries: never INTERNAL, UNKNOWN or
  // RESOURCE_EXHAUSTED, never a hang (the 10 s deadline).
  for (const auto& [code, count] : load.failures()) {
    EXPECT_TRUE(code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::CANCELLED)
        << "code " << code << " x" << count;
  }
  EXPECT_THAT(plugin->Log(), HasSubstr("received signal"));
}

}  // namespace
}  // namespace kmsplugin::testing
