// The rotator (tools/rotate/rotator.h) over in-process plugins: each "plugin" is an
// EnvelopeService behind a PluginClient that calls it directly, and the plugins of one test share
// one FakeKes backend as control-plane nodes share a KMS. Time is a FakeClock that the rotator's
// sleeper advances, so timeouts take no real time.
#include "tools/rotate/rotator.h"

#include <stdio.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "plugin/envelope_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kes.h"
#include "tests/matchers.h"
#include "tools/rotate/plugin_client.h"

namespace kmsplugin::rotate {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeKes;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::IsOkAndHolds;
using ::kmsplugin::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Eq;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// One node's view of the shared backend, with failures of its own (a node that cannot reach the
// KMS while the others can).
class NodeKes final : public KeyEncryptionService {
 public:
  explicit NodeKes(FakeKes* backend) : backend_(backend) {}
  std::string_view Name() const override { return "fake"; }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& ctx) override {
    if (absl::Status s = Failure(); !s.ok()) return s;
    return backend_->Wrap(key, ctx);
  }
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& wrapped, const CallContext& ctx) override {
    if (absl::Status s = Failure(); !s.ok()) return s;
    return backend_->Unwrap(wrapped, ctx);
  }
  absl::StatusOr<KeyStatus> Probe(const CallContext& ctx) override {
    if (absl::Status s = Failure(); !s.ok()) return s;
    return backend_->Probe(ctx);
  }
  absl::Status RotateKek(const CallContext& ctx) override {
    if (!rotate_error_.ok()) return rotate_error_;
    return backend_->RotateKek(ctx);
  }
  // Fails every call, or only the next `n` ones (n > 0).
  void FailWith(absl::Status s, int n = -1) {
    absl::MutexLock l(&mu_);
    fail_ = std::move(s);
    fail_left_ = n;
  }
  void FailRotateWith(absl::Status s) { rotate_error_ = std::move(s); }

 private:
  absl::Status Failure() {
    absl::MutexLock l(&mu_);
    if (fail_.ok()) return fail_;
    absl::Status s = fail_;
    if (fail_left_ > 0 && --fail_left_ == 0) fail_ = absl::OkStatus();
    return s;
  }
  FakeKes* const backend_;
  absl::Mutex mu_;
  absl::Status fail_;
  int fail_left_ = -1;
  absl::Status rotate_error_;
};

// A PluginClient calling an EnvelopeService directly, as the admin and KMS v2 adapters do.
class InProcessPlugin final : public PluginClient {
 public:
  explicit InProcessPlugin(EnvelopeService* svc) : svc_(svc) {}

  absl::StatusOr<PluginState> Report(absl::Duration) override {
    if (admin_down) return absl::UnavailableError("admin socket: connection refused");
    return State();
  }
  absl::StatusOr<PluginState> Refresh(absl::Duration) override {
    ++refreshes;
    return Admin(svc_->Refresh(Ctx(), /*force=*/true));
  }
  absl::StatusOr<PluginState> RotateDataKey(absl::Duration) override {
    ++data_key_rotations;
    return Admin(svc_->RotateDataKey(Ctx()));
  }
  absl::StatusOr<PluginState> RotateKek(absl::Duration) override {
    ++kek_rotations;
    return Admin(svc_->RotateKek(Ctx()));
  }
  absl::StatusOr<KmsStatus> Status(absl::Duration) override {
    if (down) return absl::UnavailableError("connection refused");
    PluginStatus s = svc_->Status();
    return KmsStatus{s.version, s.healthz, s.key_id};
  }
  absl::StatusOr<Ciphertext> Encrypt(std::string_view plaintext, std::string_view uid,
                                     absl::Duration) override {
    if (down) return absl::UnavailableError("connection refused");
    auto r = svc_->Encrypt(plaintext, Ctx());
    if (!r.ok()) return r.status();
    return Ciphertext{r->ciphertext, r->key_id, r->annotations};
  }
  absl::StatusOr<SecretBytes> Decrypt(const Ciphertext& c, std::string_view uid,
                                      absl::Duration) override {
    if (down) return absl::UnavailableError("connection refused");
    ++decrypts;
    return svc_->Decrypt(c.ciphertext, c.key_id, c.annotations, Ctx());
  }

  std::atomic<bool> down{false};
  std::atomic<bool> admin_down{false};
  std::atomic<int> refreshes{0}, data_key_rotations{0}, kek_rotations{0}, decrypts{0};

 private:
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(5), "rotator-test"); }
  PluginState State() {
    EnvelopeReport r = svc_->Report();
    PluginState s;
    s.healthz = r.status.healthz;
    s.key_id = r.status.key_id;
    s.backend = r.backend;
    s.data_key_created = r.data_key_created;
    s.kek_ids_seen = r.kek_ids_seen;
    return s;
  }
  absl::StatusOr<PluginState> Admin(const absl::Status& s) {
    if (admin_down) return absl::UnavailableError("admin socket: connection refused");
    if (!s.ok()) return s;
    return State();
  }
  EnvelopeService* const svc_;
};

class RotatorTest : public ::testing::Test {
 protected:
  struct Node {
    std::string socket;
    NodeKes* kes = nullptr;
    std::unique_ptr<EnvelopeService> svc;
    InProcessPlugin* client = nullptr;
    std::unique_ptr<InProcessPlugin> owned;
  };

  // A node on `backend` (default: the shared one).
  Node& AddNode(FakeKes* backend = nullptr) {
    auto node = std::make_unique<Node>();
    node->socket =
        "unix:///run/node-" + std::string(1, static_cast<char>('a' + nodes_.size())) + "/kms.sock";
    auto kes = std::make_unique<NodeKes>(backend != nullptr ? backend : &backend_);
    node->kes = kes.get();
    node->svc = *EnvelopeService::Create(EnvelopeOptions{}, std::move(kes), &clock_);
    EXPECT_THAT(node->svc->Refresh(CallContext::WithTimeout(absl::Seconds(5))), IsOk());
    node->owned = std::make_unique<InProcessPlugin>(node->svc.get());
    node->client = node->owned.get();
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  RotateResult Run(RotateOptions options) {
    std::vector<RotatorPlugin> plugins;
    for (auto& n : nodes_) {
      plugins.push_back(RotatorPlugin{{n->socket, n->socket + ".admin"}, std::move(n->owned)});
    }
    // Kept by the fixture: it owns the clients, which the tests inspect afterwards.
    rotator_ = std::make_unique<Rotator>(
        std::move(plugins), options, &clock_,
        [this](const Progress& p) {
          progress_.push_back(p);
          if (on_progress_) on_progress_(p);
        },
        [this](absl::Duration d) {
          ++sleeps_;
          clock_.Advance(d);
        });
    return rotator_->Run();
  }

  std::string KeyIdOf(const Node& n) { return n.svc->Status().key_id; }

  FakeClock clock_;
  FakeKes backend_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Progress> progress_;
  std::function<void(const Progress&)> on_progress_;  // Called after recording each Progress.
  int sleeps_ = 0;
  std::unique_ptr<Rotator> rotator_;
};

TEST_F(RotatorTest, KekRotationRotatesTheBackendOnceAndEveryPluginConvergesOnTheNewKeyId) {
  Node& a = AddNode();
  Node& b = AddNode();
  Node& c = AddNode();
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  ASSERT_THAT(r.status, IsOk());
  EXPECT_EQ(backend_.rotations, 1);  // Once at the shared backend, not once per plugin.
  EXPECT_TRUE(r.kek_rotated);
  EXPECT_EQ(r.old_key_id, backend_.KekId(1));
  EXPECT_EQ(r.new_key_id, backend_.KekId(2));
  for (Node* n : {&a, &b, &c}) EXPECT_EQ(KeyIdOf(*n), backend_.KekId(2));
  ASSERT_THAT(r.plugins, SizeIs(3));
  for (const PluginOutcome& p : r.plugins) {
    EXPECT_EQ(p.old_key_id, backend_.KekId(1));
    EXPECT_EQ(p.key_id, backend_.KekId(2));
    EXPECT_EQ(p.healthz, "ok");
    EXPECT_TRUE(p.converged);
    EXPECT_EQ(p.canary, "ok");
  }
  EXPECT_EQ(a.client->kek_rotations, 1);
  EXPECT_EQ(b.client->kek_rotations, 0);
  // Converged in the first round: no waiting, although no plugin polls by itself here.
  EXPECT_EQ(sleeps_, 0);
  // Each canary was decrypted through all three plugins.
  for (Node* n : {&a, &b, &c}) EXPECT_EQ(n->client->decrypts, 3);
}

TEST_F(RotatorTest, DataKeyRotationGivesEveryPluginANewDataKeyUnderTheSameKeyId) {
  Node& a = AddNode();
  Node& b = AddNode();
  auto before_a = *a.svc->Encrypt("x", CallContext{});
  auto before_b = *b.svc->Encrypt("x", CallContext{});
  RotateResult r = Run(RotateOptions{});
  ASSERT_THAT(r.status, IsOk());
  EXPECT_FALSE(r.kek_rotated);
  EXPECT_EQ(backend_.rotations, 0);
  EXPECT_EQ(r.old_key_id, backend_.KekId(1));
  EXPECT_EQ(r.new_key_id, backend_.KekId(1));
  EXPECT_EQ(a.client->data_key_rotations, 1);
  EXPECT_EQ(b.client->data_key_rotations, 1);
  EXPECT_NE(a.svc->Encrypt("x", CallContext{})->annotations, before_a.annotations);
  EXPECT_NE(b.svc->Encrypt("x", CallContext{})->annotations, before_b.annotations);
  EXPECT_THAT(NextStepAdvice(r), HasSubstr("nothing to re-encrypt"));
}

TEST_F(RotatorTest, AnUnreachablePluginStopsTheRotationBeforeAnythingChanges) {
  AddNode();
  Node& b = AddNode();
  b.client->down = true;
  const int wraps = backend_.wraps;
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 AllOf(HasSubstr(b.socket), HasSubstr("nothing was rotated"))));
  EXPECT_EQ(backend_.rotations, 0);
  EXPECT_EQ(backend_.wraps, wraps);
  EXPECT_TRUE(r.new_key_id.empty());
}

TEST_F(RotatorTest, AnUnreachableAdminSocketStopsTheRotationBeforeAnythingChanges) {
  AddNode();
  Node& b = AddNode();
  b.client->admin_down = true;
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  EXPECT_THAT(r.status,
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(b.socket + ".admin"), HasSubstr("--admin-socket"))));
  EXPECT_EQ(backend_.rotations, 0);
}

TEST_F(RotatorTest, APluginThatCannotReachTheBackendFailsWithDeadlineExceededAfterTheTimeout) {
  Node& a = AddNode();
  Node& b = AddNode();
  b.kes->FailWith(absl::UnavailableError("KMS unreachable from node b"));
  RotateOptions o;
  o.rotate_kek = true;
  o.timeout = absl::Seconds(30);
  const absl::Time start = clock_.Now();
  RotateResult r = Run(o);
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                                 AllOf(HasSubstr("did not converge within 30s"),
                                       HasSubstr(b.socket), HasSubstr(backend_.KekId(1)))));
  EXPECT_GE(clock_.Now() - start, absl::Seconds(30));
  EXPECT_GT(sleeps_, 3);       // Several rounds, with a growing interval.
  EXPECT_TRUE(r.kek_rotated);  // Through node a, which reached the backend.
  EXPECT_TRUE(r.new_key_id.empty());
  EXPECT_EQ(KeyIdOf(a), backend_.KekId(2));
  EXPECT_EQ(KeyIdOf(b), backend_.KekId(1));  // B keeps serving under its old key_id.
  EXPECT_GT(b.client->refreshes, 3);         // Nudged every round.
  const std::string advice = NextStepAdvice(r);
  EXPECT_THAT(advice, HasSubstr("did not complete"));
  EXPECT_THAT(advice, HasSubstr("do not start re-encryption"));
  EXPECT_THAT(advice, HasSubstr("WITHOUT --kek"));
  nlohmann::json j = nlohmann::json::parse(r.ToJson());
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["new_key_id"], "");
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("did not converge"));
}

TEST_F(RotatorTest, APluginThatRecoversConvergesOnALaterRound) {
  AddNode();
  Node& b = AddNode();
  b.kes->FailWith(absl::UnavailableError("blip"), /*n=*/3);
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  ASSERT_THAT(r.status, IsOk());
  EXPECT_EQ(r.new_key_id, backend_.KekId(2));
  EXPECT_GE(sleeps_, 1);
  EXPECT_TRUE(r.plugins[1].converged);
  EXPECT_GT(r.plugins[1].converged_after, r.plugins[0].converged_after);
}

TEST_F(RotatorTest, ABackendThatCannotRotateFailsWithFailedPreconditionAndChangesNothing) {
  Node& a = AddNode();
  AddNode();
  a.kes->FailRotateWith(absl::UnimplementedError("this KMS backend cannot rotate its KEK"));
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  EXPECT_THAT(r.status,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot rotate")));
  EXPECT_EQ(backend_.primary(), 1u);
  EXPECT_EQ(sleeps_, 0);
}

TEST_F(RotatorTest, AFailedRotateCallIsReportedWhenThePluginsDoNotConverge) {
  Node& a = AddNode();
  AddNode();
  a.kes->FailRotateWith(absl::UnavailableError("KMS 503"));
  RotateOptions o;
  o.rotate_kek = true;
  o.timeout = absl::Seconds(5);
  RotateResult r = Run(o);
  EXPECT_THAT(r.status,
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       AllOf(HasSubstr("still reports the old key_id"),
                             HasSubstr("the rotation call had failed"), HasSubstr("KMS 503"))));
  EXPECT_FALSE(r.kek_rotated);
}

TEST_F(RotatorTest, AKekRotatedAgainDuringTheCanaryIsFollowedAndNotReportedAsAFailure) {
  // Two `kms-plugin rotate --kek` at once (issue 19): the other run rotates the KEK again through
  // node a just after this run converged, so this run's canary meets a newer key_id.
  Node& a = AddNode();
  Node& b = AddNode();
  int concurrent_rotations = 0;
  on_progress_ = [&](const Progress& p) {
    if (p.stage == Stage::kCanary && concurrent_rotations == 0) {
      ++concurrent_rotations;
      ASSERT_THAT(a.svc->RotateKek(CallContext::WithTimeout(absl::Seconds(5))), IsOk());
    }
  };
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  EXPECT_EQ(concurrent_rotations, 1);
  EXPECT_EQ(backend_.rotations, 2);
  ASSERT_THAT(r.status, IsOk());
  EXPECT_TRUE(r.kek_rotated);
  EXPECT_EQ(r.old_key_id, backend_.KekId(1));
  EXPECT_EQ(r.new_key_id, backend_.KekId(3));
  for (Node* n : {&a, &b}) EXPECT_EQ(KeyIdOf(*n), backend_.KekId(3));
  for (const PluginOutcome& p : r.plugins) {
    EXPECT_TRUE(p.converged);
    EXPECT_EQ(p.canary, "ok");
  }
  EXPECT_THAT(progress_, Contains(AllOf(Field(&Progress::warning, true),
                                        Field(&Progress::message, HasSubstr("rotated again")))));
}

TEST_F(RotatorTest, AKekRotatedAgainWhileConvergingMovesTheTargetForEveryPlugin) {
  // Issue 19, the other interleaving: node a converged first (counted at the target and no longer
  // polled), then the other run rotated through a, and node b, late, refreshed onto the newer
  // key_id. Waiting for b to come back to a's stale key_id would never end.
  Node& a = AddNode();
  Node& b = AddNode();
  int concurrent_rotations = 0;
  on_progress_ = [&](const Progress& p) {
    // From the rotation on, b's Status fails: b is not at the target after the first round.
    if (p.stage == Stage::kRotate) b.client->down = true;
    if (p.stage == Stage::kConverge && concurrent_rotations == 0 &&
        p.message.find("does not answer Status") != std::string::npos) {
      ++concurrent_rotations;
      ASSERT_THAT(a.svc->RotateKek(CallContext::WithTimeout(absl::Seconds(5))), IsOk());
      b.client->down = false;
    }
  };
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  EXPECT_EQ(concurrent_rotations, 1);
  ASSERT_THAT(r.status, IsOk());
  EXPECT_EQ(r.new_key_id, backend_.KekId(3));
  for (Node* n : {&a, &b}) EXPECT_EQ(KeyIdOf(*n), backend_.KekId(3));
  for (const PluginOutcome& p : r.plugins) EXPECT_EQ(p.canary, "ok");
  EXPECT_THAT(progress_, Contains(AllOf(Field(&Progress::warning, true),
                                        Field(&Progress::message, HasSubstr("rotated again")))));
}

TEST_F(RotatorTest, TheCanaryCatchesPluginsThatShareKeyIdsButNotTheBackend) {
  // Two backends whose key_ids collide: every plugin reports the same key_id, but a ciphertext
  // written through one node cannot be read through the other.
  FakeKes other_backend;
  AddNode();
  Node& b = AddNode(&other_backend);
  RotateResult r = Run(RotateOptions{});
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kAborted, HasSubstr("canary")));
  EXPECT_THAT(r.plugins[0].canary, HasSubstr("Decrypt through " + b.socket));
  EXPECT_NE(r.plugins[1].canary, "ok");
  EXPECT_TRUE(r.new_key_id.empty());
}

TEST_F(RotatorTest, ProgressCoversEveryStageAndTheJsonLineHasTheContractFields) {
  AddNode();
  AddNode();
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  ASSERT_THAT(r.status, IsOk());
  for (Stage s : {Stage::kCheck, Stage::kRotate, Stage::kConverge, Stage::kCanary, Stage::kDone}) {
    EXPECT_THAT(progress_, Contains(Field(&Progress::stage, Eq(s)))) << StageName(s);
  }
  EXPECT_EQ(progress_.back().stage, Stage::kDone);
  EXPECT_EQ(progress_.back().done, 2u);
  EXPECT_EQ(progress_.back().total, 2u);

  const std::string line = r.ToJson();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
  EXPECT_EQ(j.begin().key(), "old_key_id");  // The contract's order: old, new, plugins.
  EXPECT_EQ(j["old_key_id"], backend_.KekId(1));
  EXPECT_EQ(j["new_key_id"], backend_.KekId(2));
  ASSERT_EQ(j["plugins"].size(), 2u);
  EXPECT_EQ(j["plugins"][0]["socket"], nodes_[0]->socket);
  EXPECT_EQ(j["plugins"][0]["admin_socket"], nodes_[0]->socket + ".admin");
  EXPECT_EQ(j["plugins"][1]["key_id"], backend_.KekId(2));
  EXPECT_EQ(j["plugins"][1]["canary"], "ok");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["kek_rotated"], true);
  // FakeClock starts at 2023-11-14T22:13:20Z and no time passed: + 3 + 1 + 5 minutes.
  EXPECT_EQ(j["reencrypt_not_before"], "2023-11-14T22:22:20Z");
}

TEST_F(RotatorTest, AdviceNamesReencryptAndTheEarliestSafeUtcTime) {
  AddNode();
  RotateOptions o;
  o.rotate_kek = true;
  RotateResult r = Run(o);
  ASSERT_THAT(r.status, IsOk());
  EXPECT_EQ(r.reencrypt_not_before - r.finished, absl::Minutes(9));
  const std::string advice = NextStepAdvice(r);
  EXPECT_THAT(advice, HasSubstr("kms-plugin reencrypt --encryption-config"));
  EXPECT_THAT(advice, HasSubstr("no earlier than 2023-11-14T22:22:20Z (UTC)"));
  EXPECT_THAT(advice, HasSubstr(r.old_key_id));
  EXPECT_THAT(advice, HasSubstr(r.new_key_id));
}

TEST(ResolvePluginAddressTest, AdminSocketDefaultsLikeServe) {
  EXPECT_THAT(ResolvePluginAddress("unix:///tmp/x/kms.sock", ""),
              IsOkAndHolds(Field(&PluginAddress::admin_socket, "unix:///tmp/x/kms.sock.admin")));
  EXPECT_THAT(ResolvePluginAddress("/tmp/x/kms.sock", ""),
              IsOkAndHolds(Field(&PluginAddress::admin_socket, "unix:///tmp/x/kms.sock.admin")));
  // Abstract sockets have no permissions: the admin socket must be a named file.
  EXPECT_THAT(ResolvePluginAddress("unix:///@kms", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolvePluginAddress("unix:///@kms", "unix:///@kms.admin"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolvePluginAddress("unix:///@kms", "unix:///run/kms.admin"),
              IsOkAndHolds(Field(&PluginAddress::admin_socket, "unix:///run/kms.admin")));
  EXPECT_THAT(ResolvePluginAddress("unix:///tmp/x/kms.sock", "unix:///run/admin.sock"),
              IsOkAndHolds(Field(&PluginAddress::admin_socket, "unix:///run/admin.sock")));
  EXPECT_THAT(ResolvePluginAddress("relative.sock", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ResolvePluginAddress("unix:///tmp/x/kms.sock", "tcp://127.0.0.1:1"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

std::string Render(bool terminal, const std::vector<Progress>& events) {
  char* buf = nullptr;
  size_t size = 0;
  FILE* f = open_memstream(&buf, &size);
  {
    ProgressPrinter printer(f, terminal);
    for (const Progress& p : events) printer(p);
    printer.Finish();
  }
  fclose(f);
  std::string out(buf, size);
  free(buf);
  return out;
}

TEST(ProgressPrinterTest, PlainOutputHasOneLinePerDistinctMessage) {
  std::vector<Progress> events = {{Stage::kCheck, "a", 0, 2, false},
                                  {Stage::kConverge, "waiting", 1, 2, false},
                                  {Stage::kConverge, "waiting", 1, 2, false},
                                  {Stage::kDone, "done", 2, 2, false}};
  EXPECT_EQ(Render(false, events),
            "kms-plugin rotate: [check 0/2] a\n"
            "kms-plugin rotate: [converge 1/2] waiting\n"
            "kms-plugin rotate: [done 2/2] done\n");
}

TEST(ProgressPrinterTest, TerminalOutputRedrawsOneLineAndKeepsWarnings) {
  std::vector<Progress> events = {{Stage::kCheck, "a", 0, 1, false},
                                  {Stage::kRotate, "careful", 0, 1, true},
                                  {Stage::kConverge, "b", 1, 1, false}};
  EXPECT_EQ(Render(true, events),
            "\r\033[2Kkms-plugin rotate: [check 0/1] a"
            "\r\033[2Kkms-plugin rotate: [rotate 0/1] careful\n"
            "\r\033[2Kkms-plugin rotate: [converge 1/1] b\n");
}

}  // namespace
}  // namespace kmsplugin::rotate
