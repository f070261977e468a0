// End-to-end conformance of `kms-plugin serve` (issue 2, acceptance item 1): the real binary as
// a separate process on a temp socket with a fresh keyring, driven the way kube-apiserver drives
// a KMS v2 plugin (kmsv2-contract.md §1.3, §2.1–2.3), plus the process interface: the `status`
// subcommand, health HTTP endpoints, socket and keyring modes, listen address forms, stale and
// live sockets, signals, --help.
#include <signal.h>
#include <sys/stat.h>

#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "nlohmann/json.hpp"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs fn(i) for i in [0, n) on `threads` threads.
template <typename F>
void ParallelFor(size_t n, size_t threads, F fn) {
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = t; i < n; i += threads) fn(i);
    });
  }
  for (auto& th : pool) th.join();
}

bool IsUuidV4(const std::string& s) {
  static const std::regex kUuidV4(
      "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  return std::regex_match(s, kUuidV4);
}

std::string StripOneNewline(std::string s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

class PluginConformanceTest : public PluginTestBase {};

TEST_F(PluginConformanceTest, StatusReportsExactlyV2AndOkAndAValidKeyId) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  EXPECT_EQ(status.version(), "v2");
  EXPECT_EQ(status.healthz(), "ok");
  EXPECT_FALSE(status.key_id().empty());
  EXPECT_LE(status.key_id().size(), kApiserverMaxKeyIdSize);
  EXPECT_THAT(ValidateStatusResponse(status, "v2"), IsOk());
  // key_id is public (logged, stored in clear): it must not carry the KEK.
  EXPECT_THAT(SecretsScanner().Scan(status.key_id()), ::testing::IsEmpty());
  // Status is polled: repeated calls agree.
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse again, client.Status());
  EXPECT_EQ(again.SerializeAsString(), status.SerializeAsString());
}

// 1000 random 32-byte seeds, Status -> Encrypt -> Decrypt each, four apiserver threads sharing
// one connection; every reply validated as the apiserver does.
TEST_F(PluginConformanceTest, ThousandSeedsRoundTripAndPassApiserverValidation) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  constexpr size_t kSeeds = 1000;
  std::vector<std::string> seeds(kSeeds);
  for (auto& s : seeds) s = NewSeed();

  struct Result {
    std::string status_key_id;
    v2::EncryptResponse encrypted;
    std::string decrypt_uid;
    std::string error;  // Empty when everything passed.
  };
  std::vector<Result> results(kSeeds);
  ParallelFor(kSeeds, 4, [&](size_t i) {
    Result& r = results[i];
    ApiserverView view;  // Each Encrypt is checked against the Status just before it.
    auto status = client.Status();
    if (!status.ok()) {
      r.error = "Status: " + status.status().ToString();
      return;
    }
    if (absl::Status s = view.ObserveStatus(*status); !s.ok()) {
      r.error = "Status validation: " + s.ToString();
      return;
    }
    r.status_key_id = status->key_id();
    auto enc = client.Encrypt(seeds[i]);
    if (!enc.ok()) {
      r.error = "Encrypt: " + enc.status().ToString();
      return;
    }
    r.encrypted = *enc;
    if (absl::Status s = view.CheckEncrypt(*enc); !s.ok()) {
      r.error = "Encrypt validation: " + s.ToString();
      return;
    }
    if (enc->ciphertext().size() > kPromisedMaxCiphertextSize) {
      r.error = "ciphertext of " + std::to_string(enc->ciphertext().size()) + " bytes > 1023";
      return;
    }
    v2::DecryptRequest req = ApiserverKmsClient::DecryptRequestFor(*enc);
    r.decrypt_uid = NewUuid();
    req.set_uid(r.decrypt_uid);
    auto dec = client.Decrypt(req);
    if (!dec.ok()) {
      r.error = "Decrypt: " + dec.status().ToString();
      return;
    }
    if (dec->plaintext() != seeds[i]) {
      r.error = "Decrypt returned " + std::to_string(dec->plaintext().size()) +
                " bytes that differ from the seed";
    }
  });

  size_t failures = 0;
  for (size_t i = 0; i < kSeeds; ++i) {
    if (results[i].error.empty()) continue;
    if (++failures <= 5) ADD_FAILURE() << "seed " << i << ": " << results[i].error;
  }
  ASSERT_EQ(failures, 0u) << "of " << kSeeds << " round trips";

  std::set<std::string> ciphertexts, cache_keys, uids;
  for (const Result& r : results) {
    ciphertexts.insert(r.encrypted.ciphertext());
    cache_keys.insert(DekCacheKey(r.encrypted));
    EXPECT_TRUE(IsUuidV4(r.decrypt_uid)) << r.decrypt_uid;
    uids.insert(r.decrypt_uid);
    EXPECT_EQ(r.encrypted.key_id(), results[0].status_key_id);
  }
  EXPECT_EQ(ciphertexts.size(), kSeeds) << "ciphertexts are not all distinct";
  EXPECT_EQ(cache_keys.size(), kSeeds) << "(ciphertext, key_id, annotations) tuples collide";
  EXPECT_EQ(uids.size(), kSeeds);
}

// Whatever plaintext size Encrypt accepts, the reply passes the apiserver's checks and decrypts;
// what it refuses is refused with INVALID_ARGUMENT (or RESOURCE_EXHAUSTED from gRPC's own limit).
TEST_F(PluginConformanceTest, EveryAcceptedPlaintextSizeGivesAValidReply) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());
  size_t accepted = 0;
  for (size_t size :
       {1, 16, 31, 32, 33, 64, 100, 512, 900, 990, 994, 995, 1000, 1023, 1024, 2048, 65536}) {
    std::string plaintext = RandomSeedBytes();
    while (plaintext.size() < size) plaintext += RandomSeedBytes();
    plaintext.resize(size);
    RecordSecret(plaintext);
    auto enc = client.Encrypt(plaintext);
    if (!enc.ok()) {
      EXPECT_THAT(enc.status(), AnyOf(StatusIs(absl::StatusCode::kInvalidArgument),
                                      StatusIs(absl::StatusCode::kResourceExhausted)))
          << size << " bytes";
      EXPECT_GT(size, 32u) << "the apiserver's 32-byte seeds must be accepted";
      continue;
    }
    ++accepted;
    EXPECT_THAT(ValidateEncryptResponse(*enc, status.key_id()), IsOk()) << size << " bytes";
    EXPECT_LE(enc->ciphertext().size(), kPromisedMaxCiphertextSize) << size << " bytes";
    auto dec = client.Decrypt(ApiserverKmsClient::DecryptRequestFor(*enc));
    ASSERT_THAT(dec, IsOk()) << size << " bytes";
    EXPECT_EQ(dec->plaintext(), plaintext) << size << " bytes";
  }
  EXPECT_GE(accepted, 4u);
}

TEST_F(PluginConformanceTest, StatusSubcommandPrintsOneJsonLineAndExitsZeroWhenHealthy) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse status, client.Status());

  ProcessOptions p;
  p.binary = PluginBinary();
  p.args = {"status", "--socket", plugin->options().listen, "--timeout", "3s"};
  p.stdout_path = dir_->File("status.out");
  p.stderr_path = dir_->File("status.err");
  log_paths_.push_back(p.stdout_path);
  log_paths_.push_back(p.stderr_path);
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, Subprocess::Run(p, absl::Seconds(20)));
  ITEST_ASSIGN_OR_FAIL(std::string out, ReadFile(p.stdout_path));
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString() << "\nstdout: " << out;

  std::string line = StripOneNewline(out);
  ASSERT_EQ(line.find('\n'), std::string::npos) << "more than one line: " << out;
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << "not JSON: " << out;
  ASSERT_TRUE(j.is_object());
  ASSERT_TRUE(j.contains("version") && j["version"].is_string()) << line;
  ASSERT_TRUE(j.contains("healthz") && j["healthz"].is_string()) << line;
  ASSERT_TRUE(j.contains("key_id") && j["key_id"].is_string()) << line;
  EXPECT_EQ(j["version"].get<std::string>(), "v2");
  EXPECT_EQ(j["healthz"].get<std::string>(), "ok");
  EXPECT_EQ(j["key_id"].get<std::string>(), status.key_id());
}

TEST_F(PluginConformanceTest, StatusSubcommandExitsNonZeroWhenNothingListens) {
  ProcessOptions p;
  p.binary = PluginBinary();
  p.args = {"status", "--socket", "unix://" + dir_->File("nobody.sock"), "--timeout", "1s"};
  p.stdout_path = dir_->File("status.out");
  p.stderr_path = dir_->File("status.err");
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, Subprocess::Run(p, absl::Seconds(20)));
  EXPECT_TRUE(exit.exited) << exit.ToString();
  EXPECT_NE(exit.code, 0);
  // If it printed a status line, it must not claim health.
  ITEST_ASSIGN_OR_FAIL(std::string out, ReadFile(p.stdout_path));
  nlohmann::json j = nlohmann::json::parse(StripOneNewline(out), nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("healthz")) {
    EXPECT_NE(j["healthz"], "ok") << out;
  }
}

TEST_F(PluginConformanceTest, HealthEndpointsReportOkLivenessAndPrometheusMetrics) {
  ITEST_ASSIGN_OR_FAIL(int port, PickUnusedLoopbackPort());
  PluginOptions o = Options();
  o.args.push_back("--health-addr");
  o.args.push_back("127.0.0.1:" + std::to_string(port));
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());
  ASSERT_THAT(client.RoundTrip(NewSeed()), IsOk());  // Some traffic for the metrics.

  ITEST_ASSIGN_OR_FAIL(HttpResponse livez, HttpGetWhenUp(port, "/livez", absl::Seconds(10)));
  EXPECT_EQ(livez.status, 200);
  for (const char* path : {"/healthz", "/readyz"}) {
    ITEST_ASSIGN_OR_FAIL(HttpResponse r, HttpGet(port, path));
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(StripOneNewline(r.body), "ok") << path;  // Body "ok" (a final newline tolerated).
  }
  ITEST_ASSIGN_OR_FAIL(HttpResponse metrics, HttpGet(port, "/metrics"));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.headers, HasSubstr("text/plain"));
  // Prometheus text exposition format: comments, blank lines and `name{labels} value [ts]`.
  static const std::regex kSample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+]?([0-9.eE+-]+|NaN|[+-]?Inf)( -?[0-9]+)?$)");
  size_t samples = 0;
  size_t start = 0;
  while (start < metrics.body.size()) {
    size_t end = metrics.body.find('\n', start);
    if (end == std::string::npos) end = metrics.body.size();
    std::string line = metrics.body.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(std::regex_match(line, kSample)) << "not a Prometheus sample: " << line;
    ++samples;
  }
  EXPECT_GT(samples, 0u);
}

// The unhealthy side: when the KMS becomes unusable (the keyring file turns unreadable and the
// outage window, shortened here with the serve flags, runs out) Status healthz is no longer "ok",
// /healthz and /readyz answer 503, /livez stays 200, and `status` exits non-zero. Restoring the
// keyring makes it healthy again.
TEST_F(PluginConformanceTest, ReportsUnhealthyWhenTheKmsIsUnusableAndRecovers) {
  ITEST_ASSIGN_OR_FAIL(int port, PickUnusedLoopbackPort());
  PluginOptions o = Options();
  o.args.insert(o.args.end(), {"--health-addr", "127.0.0.1:" + std::to_string(port),
                               "--key-poll-interval", "100ms", "--kms-outage-window", "1s"});
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  ApiserverKmsClient client(plugin->grpc_target());
  ITEST_ASSIGN_OR_FAIL(HttpResponse healthy, HttpGetWhenUp(port, "/healthz", absl::Seconds(10)));
  ASSERT_EQ(healthy.status, 200);

  ITEST_ASSIGN_OR_FAIL(std::string keyring, ReadFile(keyring_path_));
  ASSERT_THAT(WriteFile(keyring_path_, "{ this is not a keyring }\n"), IsOk());
  std::string healthz = "ok";
  EXPECT_TRUE(PollUntil(
      [&] {
        auto s = client.Status();
        if (s.ok()) healthz = s->healthz();
        return s.ok() && s->healthz() != "ok";
      },
      absl::Seconds(20)))
      << "Status stayed healthy with an unusable keyring";
  ITEST_ASSIGN_OR_FAIL(v2::StatusResponse sick, client.Status());
  EXPECT_EQ(sick.version(), "v2");
  EXPECT_THAT(ValidateStatusResponse(sick, "v2"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(SecretsScanner().Scan(sick.healthz()), ::testing::IsEmpty());
  for (const char* path : {"/healthz", "/readyz"}) {
    int code = 0;
    EXPECT_TRUE(PollUntil(
        [&] {
          auto r = HttpGet(port, path);
          code = r.ok() ? r->status : -1;
          return code == 503;
        },
        absl::Seconds(10)))
        << path << " answered " << code;
  }
  ITEST_ASSIGN_OR_FAIL(HttpResponse livez, HttpGet(port, "/livez"));
  EXPECT_EQ(livez.status, 200);

  ProcessOptions p;
  p.binary = PluginBinary();
  p.args = {"status", "--socket", o.listen, "--timeout", "3s"};
  p.stdout_path = dir_->File("status.out");
  p.stderr_path = dir_->File("status.err");
  log_paths_.push_back(p.stdout_path);
  log_paths_.push_back(p.stderr_path);
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, Subprocess::Run(p, absl::Seconds(20)));
  EXPECT_TRUE(exit.exited) << exit.ToString();
  EXPECT_NE(exit.code, 0) << "status must exit non-zero when healthz is not ok";
  ITEST_ASSIGN_OR_FAIL(std::string out, ReadFile(p.stdout_path));
  nlohmann::json j = nlohmann::json::parse(StripOneNewline(out), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "not JSON: " << out;
  EXPECT_NE(j.value("healthz", std::string("ok")), "ok") << out;

  // Recovery.
  ASSERT_THAT(WriteFile(keyring_path_, keyring), IsOk());
  EXPECT_TRUE(PollUntil(
      [&] {
        auto s = client.Status();
        return s.ok() && s->healthz() == "ok";
      },
      absl::Seconds(20)));
  EXPECT_TRUE(PollUntil(
      [&] {
        auto r = HttpGet(port, "/healthz");
        return r.ok() && r->status == 200;
      },
      absl::Seconds(10)));
  std::string seed = NewSeed();
  EXPECT_THAT(client.RoundTrip(seed), IsOkAndHolds(seed));
}

TEST_F(PluginConformanceTest, GrpcHealthServiceReportsServing) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message; the reply
  // HealthCheckResponse{status: SERVING (1)} is the two bytes 08 01.
  ITEST_ASSIGN_OR_FAIL(std::string reply, client.CallRaw(kHealthCheckMethod, ""));
  EXPECT_EQ(HexLower(reply), "0801");
}

TEST_F(PluginConformanceTest, SocketAndNewKeyringFileHaveMode0600) {
  ASSERT_EQ(ModeOf(keyring_path_), -1) << "the keyring must not exist before the first start";
  PluginOptions o = Options();
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  const std::string socket_path = dir_->File("kms.sock");
  EXPECT_TRUE(IsSocket(socket_path));
  EXPECT_EQ(ModeOf(socket_path), 0600);
  EXPECT_EQ(ModeOf(keyring_path_), 0600);
  ITEST_ASSIGN_OR_FAIL(auto materials, KeyringMaterials(keyring_path_));
  ASSERT_EQ(materials.size(), 1u);
  EXPECT_EQ(materials[0].size(), 32u);
  // Nothing the plugin created (sockets incl. any admin socket, lock files) is open to group or
  // others. (The test's own log files are created 0600 too.)
  for (const auto& [name, entry] : DirEntries()) {
    EXPECT_EQ(entry.mode & 077, 0) << name << " has mode " << std::oct << entry.mode;
    if (entry.socket) {
      EXPECT_EQ(entry.mode, 0600) << name;
    }
  }
}

TEST_F(PluginConformanceTest, ListensOnAPlainSocketPath) {
  PluginOptions o = Options("plain");
  o.listen = dir_->File("plain.sock");  // No unix:// scheme.
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  EXPECT_TRUE(IsSocket(dir_->File("plain.sock")));
  EXPECT_EQ(ModeOf(dir_->File("plain.sock")), 0600);
  ApiserverKmsClient client("unix://" + dir_->File("plain.sock"));
  std::string seed = NewSeed();
  EXPECT_THAT(client.RoundTrip(seed), IsOkAndHolds(seed));
}

TEST_F(PluginConformanceTest, ListensOnALinuxAbstractSocket) {
  const std::string name =
      "kmsp-e2e-" + std::to_string(getpid()) + "-" + HexLower(RandomSeedBytes().substr(0, 6));
  PluginOptions o = Options("abstract");
  o.listen = "unix:///@" + name;
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(o));
  EXPECT_EQ(plugin->grpc_target(), "unix-abstract:" + name);
  ApiserverKmsClient client("unix-abstract:" + name);
  std::string seed = NewSeed();
  EXPECT_THAT(client.RoundTrip(seed), IsOkAndHolds(seed));
  // The kernel name is exactly "\0<name>" (what Go dials for unix:///@name).
  EXPECT_THAT(UnixConnection::Connect("@" + name), IsOk());
  // `status` reaches it through the same address form.
  ProcessOptions p;
  p.binary = PluginBinary();
  p.args = {"status", "--socket", "unix:///@" + name, "--timeout", "3s"};
  p.stdout_path = dir_->File("status.out");
  p.stderr_path = dir_->File("status.err");
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, Subprocess::Run(p, absl::Seconds(20)));
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString();
  ITEST_ASSIGN_OR_FAIL(std::string out, ReadFile(p.stdout_path));
  nlohmann::json j = nlohmann::json::parse(StripOneNewline(out), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j.value("healthz", std::string()), "ok") << out;
  // No file was created for it, neither relative to the working dir nor at the root.
  // No file was created for it (nor for anything derived from its name), neither relative to the
  // working dir nor at the root.
  for (const auto& [entry, info] : DirEntries()) {
    EXPECT_EQ(entry.find(name), std::string::npos) << "file " << entry << " in the working dir";
  }
  for (const std::string& root_entry : {"/@" + name, "/@" + name + ".admin", "/" + name}) {
    EXPECT_EQ(ModeOf(root_entry), -1) << root_entry;
  }
}

TEST_F(PluginConformanceTest, ReplacesAStaleSocketFile) {
  const std::string socket_path = dir_->File("kms.sock");
  ASSERT_THAT(CreateStaleSocketFile(socket_path), IsOk());
  ASSERT_TRUE(IsSocket(socket_path));
  ASSERT_THAT(UnixConnection::Connect(socket_path), Not(IsOk())) << "the stale socket is live";
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  std::string seed = NewSeed();
  EXPECT_THAT(client.RoundTrip(seed), IsOkAndHolds(seed));
  EXPECT_EQ(ModeOf(socket_path), 0600);
}

// Only a stale *socket* may be replaced: a regular file at the listen path (a mistyped flag) is
// left alone and serve exits non-zero, naming the path.
TEST_F(PluginConformanceTest, RefusesToReplaceANonSocketFileAtTheListenPath) {
  const std::string path = dir_->File("kms.sock");
  ASSERT_THAT(WriteFile(path, "precious"), IsOk());
  ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(Options()));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->process().Wait(absl::Seconds(15)));
  EXPECT_TRUE(exit.exited) << exit.ToString();
  EXPECT_NE(exit.code, 0);
  EXPECT_THAT(plugin->Log(), HasSubstr(path));
  EXPECT_THAT(ReadFile(path), IsOkAndHolds(std::string("precious")));
}

// The keyring holds the KEKs: a keyring readable by group or others is refused, not served.
TEST_F(PluginConformanceTest, RefusesAKeyringReadableByOthers) {
  {
    ITEST_ASSIGN_OR_FAIL(auto first, Start(Options()));  // Creates the keyring.
    ITEST_ASSIGN_OR_FAIL(ExitInfo exit, first->Terminate());
    ASSERT_TRUE(exit.exited && exit.code == 0) << exit.ToString();
  }
  ASSERT_EQ(chmod(keyring_path_.c_str(), 0644), 0);
  PluginOptions o = Options("second");
  ITEST_ASSIGN_OR_FAIL(auto plugin, StartNoWait(o));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->process().Wait(absl::Seconds(15)));
  EXPECT_TRUE(exit.exited) << exit.ToString();
  EXPECT_NE(exit.code, 0);
  EXPECT_THAT(plugin->Log(), HasSubstr(keyring_path_));
  EXPECT_EQ(ModeOf(keyring_path_), 0644) << "the plugin should not silently chmod the keyring";
}

TEST_F(PluginConformanceTest, SecondServeOnALiveSocketExitsNonZeroAndLeavesTheFirstServing) {
  ITEST_ASSIGN_OR_FAIL(auto first, Start(Options()));
  std::vector<std::string> sockets_before;
  for (const auto& [name, entry] : DirEntries()) {
    if (entry.socket) sockets_before.push_back(name);
  }
  ASSERT_FALSE(sockets_before.empty());
  PluginOptions second_opts = Options();
  second_opts.log_path = dir_->File("second.log");
  ITEST_ASSIGN_OR_FAIL(auto second, StartNoWait(second_opts));
  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, second->process().Wait(absl::Seconds(15)));
  EXPECT_TRUE(exit.exited) << exit.ToString();
  EXPECT_NE(exit.code, 0);
  std::string log = second->Log();
  EXPECT_THAT(log, HasSubstr(dir_->File("kms.sock"))) << "the refusal should name the socket";

  // The first one still owns its socket files (the KMS socket and any other it made): each still
  // accepts a brand-new connection.
  EXPECT_TRUE(first->Running());
  for (const std::string& name : sockets_before) {
    EXPECT_TRUE(IsSocket(dir_->File(name))) << name;
    EXPECT_THAT(UnixConnection::Connect(dir_->File(name)), IsOk()) << name;
  }
  ApiserverKmsClient fresh(first->grpc_target());
  std::string seed = NewSeed();
  EXPECT_THAT(fresh.RoundTrip(seed), IsOkAndHolds(seed));
}

class PluginSignalTest : public PluginTestBase, public ::testing::WithParamInterface<int> {};

TEST_P(PluginSignalTest, DrainsAndExitsZeroKeepingTheKeyringAndOtherFiles) {
  ITEST_ASSIGN_OR_FAIL(auto plugin, Start(Options()));
  ApiserverKmsClient client(plugin->grpc_target());
  std::string seed = NewSeed();
  ITEST_ASSIGN_OR_FAIL(v2::EncryptResponse enc, client.Encrypt(seed));
  ASSERT_THAT(WriteFile(dir_->File("bystander.txt"), "keep me"), IsOk());
  ITEST_ASSIGN_OR_FAIL(std::string keyring_before, ReadFile(keyring_path_));
  auto entries_before = DirEntries();

  ITEST_ASSIGN_OR_FAIL(ExitInfo exit, plugin->Terminate(GetParam()));
  EXPECT_TRUE(exit.exited && exit.code == 0) << exit.ToString() << "\n" << plugin->Log();

  ITEST_ASSIGN_OR_FAIL(std::string keyring_after, ReadFile(keyring_path_));
  EXPECT_EQ(keyring_after, keyring_before);
  EXPECT_EQ(ModeOf(keyring_path_), 0600);
  EXPECT_THAT(ReadFile(dir_->File("bystander.txt")), IsOkAndHolds(std::string("keep me")));
  EXPECT_NE(ModeOf(dir_->path()), -1);  // The directory itself is still there.
  // Every file that is not a socket is still there, with its mode.
  auto entries_after = DirEntries();
  for (const auto& [name, entry] : entries_before) {
    if (entry.socket) continue;
    ASSERT_EQ(entries_after.count(name), 1u) << name << " was removed";
    EXPECT_EQ(entries_after[name].mode, entry.mode) << name;
  }

  // What it encrypted before the signal still decrypts after a restart on the same keyring.
  ITEST_ASSIGN_OR_FAIL(auto again, Start(Options()));
  ApiserverKmsClient client2(again->grpc_target());
  auto dec = client2.Decrypt(ApiserverKmsClient::DecryptRequestFor(enc));
  ASSERT_THAT(dec, IsOk());
  EXPECT_EQ(dec->plaintext(), seed);
}

INSTANTIATE_TEST_SUITE_P(TermAndInt, PluginSignalTest, ::testing::Values(SIGTERM, SIGINT, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == SIGTERM ? std::string("Sigterm") : info.param == SIGHUP ? std::string("Sighup")
                                                        : std::string("Sigint");
                         });

TEST_F(PluginConformanceTest, EverySubcommandHelpListsItsFlags) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> flags;
  };
  const std::vector<Case> cases = {
      {{"serve", "--help"},
       {"--listen", "--kms", "--local-keyring", "--health-addr", "--log-level"}},
      {{"status", "--help"}, {"--socket", "--timeout", "3s"}},
  };
  for (const Case& c : cases) {
    ProcessOptions p;
    p.binary = PluginBinary();
    p.args = c.args;
    p.stdout_path = dir_->File("help.out");
    p.stderr_path = p.stdout_path;
    (void)WriteFile(p.stdout_path, "");
    ITEST_ASSIGN_OR_FAIL(ExitInfo exit, Subprocess::Run(p, absl::Seconds(20)));
    ITEST_ASSIGN_OR_FAIL(std::string out, ReadFile(p.stdout_path));
    EXPECT_TRUE(exit.exited && exit.code == 0) << c.args[0] << ": " << exit.ToString();
    for (const std::string& flag : c.flags) {
      EXPECT_THAT(out, HasSubstr(flag)) << c.args[0] << " --help";
    }
  }
}

}  // namespace
}  // namespace kmsplugin::testing
