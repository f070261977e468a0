// Malformed input to `kms-plugin serve` (issue 2, acceptance item 5): each bad request gets a
// gRPC error (INVALID_ARGUMENT where the input is malformed) or a closed connection, the error
// message never echoes the bytes sent, and the process keeps serving afterwards.
#include <thread>

#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::AnyOf;
using ::testing::IsEmpty;
using ::testing::Not;

class PluginBadInputTest : public PluginTestBase {
 protected:
  void SetUp() override {
    PluginTestBase::SetUp();
    if (HasFatalFailure()) return;
    auto plugin = Start(Options());
    ASSERT_THAT(plugin, IsOk());
    plugin_ = std::move(*plugin);
    client_ = std::make_unique<ApiserverKmsClient>(plugin_->grpc_target());
    auto status = client_->Status();
    ASSERT_THAT(status, IsOk());
    key_id_ = status->key_id();
    auto enc = client_->Encrypt(NewSeed());
    ASSERT_THAT(enc, IsOk());
    good_ = *enc;
  }

  // Status ok and a round trip, on the test's connection and on a brand-new one.
  void ExpectStillServing() {
    ASSERT_TRUE(plugin_->Running()) << plugin_->Log();
    ExpectServes(*client_);
    ApiserverKmsClient fresh(plugin_->grpc_target());
    ExpectServes(fresh);
  }

  void ExpectServes(ApiserverKmsClient& client) {
    auto status = client.Status();
    ASSERT_THAT(status, IsOk());
    EXPECT_THAT(ValidateStatusResponse(*status, "v2"), IsOk());
    std::string seed = NewSeed();
    EXPECT_THAT(client.RoundTrip(seed), IsOkAndHolds(seed));
  }

  static void ExpectNoEcho(const absl::Status& status, std::string_view sent) {
    EXPECT_EQ(FindEcho(ToStd(status.message()), sent), "") << status;
  }

  std::unique_ptr<PluginProcess> plugin_;
  std::unique_ptr<ApiserverKmsClient> client_;
  std::string key_id_;
  v2::EncryptResponse good_;
};

TEST_F(PluginBadInputTest, EmptyPlaintextEncryptIsInvalidArgument) {
  auto enc = client_->Encrypt("");
  EXPECT_THAT(enc, StatusIs(absl::StatusCode::kInvalidArgument));
  ExpectStillServing();
}

TEST_F(PluginBadInputTest, OneMebibyteCiphertextDecryptIsRejected) {
  std::string huge = NewSeed();
  while (huge.size() < (1 << 20)) huge += RandomSeedBytes();
  huge.resize(1 << 20);
  v2::DecryptRequest req = ApiserverKmsClient::DecryptRequestFor(good_);
  req.set_ciphertext(huge);
  auto dec = client_->Decrypt(req);
  // INVALID_ARGUMENT from the plugin, or RESOURCE_EXHAUSTED if a message-size cap stops it first.
  EXPECT_THAT(dec, AnyOf(StatusIs(absl::StatusCode::kInvalidArgument),
                         StatusIs(absl::StatusCode::kResourceExhausted)));
  ExpectNoEcho(dec.status(), huge);
  ExpectStillServing();
}

TEST_F(PluginBadInputTest, TenThousandAnnotationsDecryptIsRejected) {
  v2::DecryptRequest req = ApiserverKmsClient::DecryptRequestFor(good_);
  std::string marker = NewSeed();
  for (int i = 0; i < 10000; ++i) {
    (*req.mutable_annotations())["a" + std::to_string(i) + ".example.com"] = marker;
  }
  auto dec = client_->Decrypt(req);
  EXPECT_THAT(dec, AnyOf(StatusIs(absl::StatusCode::kInvalidArgument),
                         StatusIs(absl::StatusCode::kResourceExhausted)));
  ExpectNoEcho(dec.status(), marker);
  ExpectStillServing();
}

TEST_F(PluginBadInputTest, EmptyKeyIdDecryptIsInvalidArgument) {
  v2::DecryptRequest req = ApiserverKmsClient::DecryptRequestFor(good_);
  req.clear_key_id();
  auto dec = client_->Decrypt(req);
  EXPECT_THAT(dec, StatusIs(absl::StatusCode::kInvalidArgument));
  ExpectNoEcho(dec.status(), req.ciphertext());
  ExpectStillServing();
}

TEST_F(PluginBadInputTest, UnknownKeyIdDecryptFails) {
  v2::DecryptRequest req = ApiserverKmsClient::DecryptRequestFor(good_);
  for (const std::string& id :
       {std::string("unknown-key"), std::string("local:") + std::string(32, '0') + ":v1",
        key_id_.substr(0, key_id_.size() - 1) + "9", std::string(1024, 'k'),
        std::string(1025, 'k')}) {
    req.set_key_id(id);
    auto dec = client_->Decrypt(req);
    // An unknown key_id is well-formed input the plugin does not own: FAILED_PRECONDITION
    // (docs/style.md); a key_id over 1024 bytes is malformed: INVALID_ARGUMENT.
    EXPECT_THAT(dec, AnyOf(StatusIs(absl::StatusCode::kFailedPrecondition),
                           StatusIs(absl::StatusCode::kInvalidArgument)))
        << id.substr(0, 60);
    ExpectNoEcho(dec.status(), req.ciphertext());
  }
  ExpectStillServing();
}

TEST_F(PluginBadInputTest, GarbageCiphertextDecryptIsInvalidArgument) {
  std::vector<std::string> garbage = {std::string(1, '\x01'), std::string(16, '\0'), NewSeed(),
                                      NewSeed() + NewSeed() + NewSeed(), std::string(1023, '\xff')};
  std::string with_version = NewSeed() + NewSeed();
  with_version[0] = '\x01';  // Right format byte, random rest.
  garbage.push_back(with_version);
  for (const std::string& g : garbage) {
    v2::DecryptRequest req = ApiserverKmsClient::DecryptRequestFor(good_);
    req.set_ciphertext(g);
    auto dec = client_->Decrypt(req);
    EXPECT_THAT(dec, StatusIs(absl::StatusCode::kInvalidArgument)) << g.size() << " bytes";
    ExpectNoEcho(dec.status(), g);
  }
  v2::DecryptRequest empty = ApiserverKmsClient::DecryptRequestFor(good_);
  empty.clear_ciphertext();
  EXPECT_THAT(client_->Decrypt(empty), StatusIs(absl::StatusCode::kInvalidArgument));
  ExpectStillServing();
}

TEST_F(PluginBadInputTest, InvalidAnnotationKeysDecryptIsInvalidArgument) {
  for (const char* key : {"kms.kubernetes.io/local-kek", "Upper.example.com", "single", ""}) {
    v2::DecryptRequest req = ApiserverKmsClient::DecryptRequestFor(good_);
    (*req.mutable_annotations())[key] = "v";
    EXPECT_THAT(client_->Decrypt(req), StatusIs(absl::StatusCode::kInvalidArgument)) << key;
  }
  ExpectStillServing();
}

// Bytes that are not a valid protobuf message, sent as the body of each RPC.
TEST_F(PluginBadInputTest, NonProtobufRequestBodiesGetAnError) {
  const std::vector<std::pair<std::string, std::string>> bodies = {
      {"over-long varint", std::string(11, '\xff')},
      {"wire type 7", std::string("\x0f\x01\x02\x03", 4)},
      {"truncated length-delimited field", std::string("\x0a\x40short", 7)},
      {"invalid UTF-8 in the uid string", std::string("\x12\x02\xc3\x28", 4)},
      {"end-group without start", std::string("\x0c", 1)},
  };
  for (std::string_view method : {kEncryptMethod, kDecryptMethod, kStatusMethod}) {
    for (const auto& [what, body] : bodies) {
      if (method == kStatusMethod && what == "invalid UTF-8 in the uid string") continue;
      auto reply = client_->CallRaw(method, body);
      // The gRPC library rejects an unparsable request before our handler runs (INTERNAL in
      // gRPC C++); any error is acceptable, success is not.
      EXPECT_THAT(reply, Not(IsOk())) << method << ": " << what;
      ExpectNoEcho(reply.status(), body);
    }
  }
  // An unknown method on the service.
  EXPECT_THAT(client_->CallRaw("/v2.KeyManagementService/Nope", ""),
              StatusIs(absl::StatusCode::kUnimplemented));
  ExpectStillServing();
}

// Raw bytes on the unix socket: not HTTP/2 at all, an HTTP/1.1 request, and a valid preface
// followed by garbage frames. The server closes each connection; others are unaffected.
TEST_F(PluginBadInputTest, NonHttp2StreamsOnTheSocketAreClosedAndServingContinues) {
  const std::string socket_path = dir_->File("kms.sock");
  std::string random_junk = NewSeed() + NewSeed() + NewSeed() + NewSeed();
  const std::vector<std::pair<std::string, std::string>> streams = {
      {"random bytes", random_junk},
      {"HTTP/1.1 request", "GET /v2.KeyManagementService/Status HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"preface then garbage frames",
       std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string(9, '\xff') + random_junk},
      {"zero bytes", std::string(4096, '\0')},
  };
  for (const auto& [what, bytes] : streams) {
    ITEST_ASSIGN_OR_FAIL(UnixConnection conn, UnixConnection::Connect(socket_path));
    (void)conn.WriteAll(bytes);  // The server may close before reading it all.
    auto reply = conn.ReadUntilClosed(absl::Seconds(10));
    EXPECT_THAT(reply, IsOk()) << what << ": the server kept the connection open";
    if (reply.ok()) {
      EXPECT_EQ(FindEcho(*reply, bytes), "") << what;
    }
  }
  // A half-open connection that never completes the preface does not block other clients.
  ITEST_ASSIGN_OR_FAIL(UnixConnection idle, UnixConnection::Connect(socket_path));
  ASSERT_THAT(idle.WriteAll("PRI * HTTP/2.0\r\n"), IsOk());
  ExpectStillServing();
}

// Many bad requests in a row, interleaved with good ones, from several threads.
TEST_F(PluginBadInputTest, InterleavedBadAndGoodRequestsFromManyThreads) {
  std::atomic<int> bad_accepted{0}, good_failed{0};
  std::vector<std::string> seeds(200);
  for (auto& s : seeds) s = NewSeed();
  std::vector<std::thread> pool;
  pool.reserve(4);
  for (int t = 0; t < 4; ++t) {
    pool.emplace_back([&, t] {
      for (int i = t; i < 200; i += 4) {
        v2::DecryptRequest bad = ApiserverKmsClient::DecryptRequestFor(good_);
        bad.set_ciphertext(std::string(static_cast<size_t>(i % 40), '\x01'));
        if (client_->Decrypt(bad).ok()) ++bad_accepted;
        if (client_->Encrypt("").ok()) ++bad_accepted;
        auto rt = client_->RoundTrip(seeds[static_cast<size_t>(i)]);
        if (!rt.ok() || *rt != seeds[static_cast<size_t>(i)]) ++good_failed;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(bad_accepted.load(), 0);
  EXPECT_EQ(good_failed.load(), 0);
  ExpectStillServing();
}

}  // namespace
}  // namespace kmsplugin::testing
