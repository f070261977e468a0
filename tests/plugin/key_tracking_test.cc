// Key rotation behaviour of EnvelopeService (issue 4): how key_id follows the KEK version through
// transient errors, a flapping backend, forced refreshes and rotations, and that Status and
// Encrypt never disagree while key_id changes under concurrent callers.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/local/local_kms.h"
#include "plugin/envelope_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_kes.h"
#include "tests/matchers.h"
#include "tests/plugin/envelope_service_fixture.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::EnvelopeServiceFixture;
using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Not;

// The shared fixture, with the service refreshed once (key_id = KEK version 1) by every Make().
class KeyTrackingTest : public EnvelopeServiceFixture {
 protected:
  void Make(const EnvelopeOptions& options) override {
    EnvelopeServiceFixture::Make(options);
    if (HasFatalFailure()) return;
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
    ASSERT_EQ(svc_->Status().key_id, kes_->KekId(1));
  }

  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(5), "test"); }

  std::string KeyId() { return svc_->Status().key_id; }

  // Encrypts a fresh seed and checks it decrypts; returns the key_id Encrypt named.
  std::string EncryptedKeyId() {
    std::string seed = *RandomBytes(32);
    auto enc = svc_->Encrypt(seed, Ctx());
    EXPECT_THAT(enc, IsOk());
    if (!enc.ok()) return "";
    auto dec = svc_->Decrypt(enc->ciphertext, enc->key_id, enc->annotations, Ctx());
    EXPECT_THAT(dec, IsOk());
    if (dec.ok()) {
      EXPECT_EQ(dec->Reveal(), seed);
    }
    return enc->key_id;
  }
};

TEST_F(KeyTrackingTest, TransientProbeErrorsNeverChangeKeyId) {
  const std::string v1 = kes_->KekId(1);
  kes_->AddVersion();  // v2 exists at the backend, but the probes fail.
  const absl::Status transient[] = {
      absl::UnavailableError("connection refused"), absl::DeadlineExceededError("timeout"),
      absl::InternalError("HTTP 500"), absl::ResourceExhaustedError("ThrottlingException")};
  for (const absl::Status& error : transient) {
    kes_->FailWith(error);
    for (int i = 0; i < 5; ++i) {
      EXPECT_THAT(svc_->Refresh(Ctx()), StatusIs(error.code()));
      clock_.Advance(absl::Minutes(1));
      EXPECT_EQ(KeyId(), v1);
      EXPECT_EQ(svc_->Status().healthz, "ok");  // Coasting within the outage window.
      EXPECT_EQ(EncryptedKeyId(), v1);
    }
  }
  // Healed: one sighting of v2 is still not enough (default 2 confirmations) ...
  kes_->Heal();
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(KeyId(), v1);
  // ... the second is.
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(KeyId(), kes_->KekId(2));
}

TEST_F(KeyTrackingTest, ErrorsBetweenSightingsOfANewVersionNeverSwitchByThemselves) {
  const std::string v1 = kes_->KekId(1);
  kes_->AddVersion();
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());  // First sighting of v2.
  kes_->FailWith(absl::UnavailableError("down"));
  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(svc_->Refresh(Ctx()), Not(IsOk()));
    EXPECT_EQ(KeyId(), v1);
  }
  // A forced refresh while the backend is down changes nothing either.
  EXPECT_THAT(svc_->Refresh(Ctx(), /*force=*/true), Not(IsOk()));
  EXPECT_EQ(KeyId(), v1);
  EXPECT_EQ(EncryptedKeyId(), v1);
}

TEST_F(KeyTrackingTest, FailedRotationsKeepTheOldKeyIdAndDataKey) {
  const std::string v1 = kes_->KekId(1);
  auto before = *svc_->Encrypt("seed", Ctx());
  kes_->FailWith(absl::UnavailableError("KMS down"));
  EXPECT_THAT(svc_->RotateDataKey(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(svc_->RotateKek(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(KeyId(), v1);
  auto after = *svc_->Encrypt("seed", Ctx());
  EXPECT_EQ(after.key_id, v1);
  EXPECT_EQ(after.annotations, before.annotations);  // Still the same data key.
}

TEST_F(KeyTrackingTest, FlappingProbeNeverChangesKeyId) {
  const std::string v1 = kes_->KekId(1);
  kes_->AddVersion();  // The backend has rotated, but its answers alternate between replicas.
  for (int i = 0; i < 40; ++i) {
    kes_->ReportVersion(i % 2 == 0 ? 2 : 1);
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
    EXPECT_EQ(KeyId(), v1) << "after probe " << i;
    EXPECT_EQ(EncryptedKeyId(), v1);
  }
  // An answer naming a version the backend does not have flaps as well, and is never adopted.
  for (int i = 0; i < 10; ++i) {
    kes_->ReportVersion(i % 2 == 0 ? 7 : 1);
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
    EXPECT_EQ(KeyId(), v1);
  }
}

TEST_F(KeyTrackingTest, FlappingProbeNeverReturnsToARetiredKeyId) {
  const std::string v1 = kes_->KekId(1);
  kes_->AddVersion();
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  const std::string v2 = kes_->KekId(2);
  ASSERT_EQ(KeyId(), v2);
  // A lagging replica keeps reporting v1, many times in a row, even to forced refreshes.
  kes_->ReportVersion(1);
  for (int i = 0; i < 10; ++i) {
    ASSERT_THAT(svc_->Refresh(Ctx(), /*force=*/i % 2 == 1), IsOk());
    EXPECT_EQ(KeyId(), v2) << "after probe " << i;
    EXPECT_EQ(EncryptedKeyId(), v2);
  }
  // Alternating again: still v2.
  for (int i = 0; i < 10; ++i) {
    kes_->ReportVersion(i % 2 == 0 ? 1 : 2);
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
    EXPECT_EQ(KeyId(), v2);
  }
  EXPECT_THAT(svc_->Report().kek_ids_seen, ElementsAre(v1, v2));
}

TEST_F(KeyTrackingTest, ForcedRefreshSwitchesAtOnce) {
  kes_->AddVersion();
  ASSERT_THAT(svc_->Refresh(Ctx(), /*force=*/true), IsOk());
  EXPECT_EQ(KeyId(), kes_->KekId(2));
  EXPECT_EQ(EncryptedKeyId(), kes_->KekId(2));
  EXPECT_EQ(kes_->probes, 2);  // The first data key's probe and this one: no confirmation round.
}

TEST_F(KeyTrackingTest, HigherConfirmationCountNeedsThatManyConsecutiveSightings) {
  EnvelopeOptions o;
  o.key_change_confirmations = 4;
  Make(o);
  kes_->AddVersion();
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
    EXPECT_EQ(KeyId(), kes_->KekId(1));
  }
  // A sighting of the current version in between starts the count again.
  kes_->ReportVersion(1);
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  kes_->ReportVersion(std::nullopt);
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
    EXPECT_EQ(KeyId(), kes_->KekId(1));
  }
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(KeyId(), kes_->KekId(2));
}

TEST_F(KeyTrackingTest, DataKeyRotationKeepsKeyIdAndOldCiphertextsDecrypt) {
  std::string seed = *RandomBytes(32);
  auto before = *svc_->Encrypt(seed, Ctx());
  ASSERT_THAT(svc_->RotateDataKey(Ctx()), IsOk());
  auto after = *svc_->Encrypt(seed, Ctx());
  EXPECT_EQ(after.key_id, before.key_id);
  EXPECT_NE(after.annotations, before.annotations);  // Another wrapped data key.
  EXPECT_EQ(svc_->Decrypt(before.ciphertext, before.key_id, before.annotations, Ctx())->Reveal(),
            seed);
  EXPECT_EQ(svc_->Decrypt(after.ciphertext, after.key_id, after.annotations, Ctx())->Reveal(),
            seed);
}

TEST_F(KeyTrackingTest, KeyIdIsNeverReusedForADifferentKekVersion) {
  // Through rotations, flaps, errors and data-key rotations, each key_id Status ever reported
  // names exactly one KEK version, and a key_id once left never comes back.
  std::vector<std::string> history = {KeyId()};
  struct Sample {
    EncryptResult enc;
    std::string seed;
  };
  std::vector<Sample> samples;
  auto observe = [&] {
    std::string id = KeyId();
    if (id != history.back()) history.push_back(id);
    std::string seed = *RandomBytes(32);
    auto enc = svc_->Encrypt(seed, Ctx());
    ASSERT_THAT(enc, IsOk());
    EXPECT_EQ(enc->key_id, id);
    samples.push_back({*enc, seed});
  };
  for (int round = 0; round < 5; ++round) {
    ASSERT_THAT(svc_->RotateKek(Ctx()), IsOk());
    observe();
    kes_->ReportVersion(kes_->primary() - 1);  // A lagging replica.
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
    observe();
    kes_->ReportVersion(std::nullopt);
    kes_->FailWith(absl::UnavailableError("blip"));
    EXPECT_THAT(svc_->Refresh(Ctx()), Not(IsOk()));
    kes_->Heal();
    observe();
    ASSERT_THAT(svc_->RotateDataKey(Ctx()), IsOk());
    observe();
  }
  std::set<std::string> distinct(history.begin(), history.end());
  EXPECT_EQ(distinct.size(), history.size()) << "a key_id came back";
  ASSERT_EQ(history.size(), 6u);
  for (uint32_t v = 1; v <= 6; ++v) EXPECT_EQ(history[v - 1], kes_->KekId(v));
  // Every ciphertext decrypts, and only under the key_id it was produced with.
  for (const Sample& s : samples) {
    auto dec = svc_->Decrypt(s.enc.ciphertext, s.enc.key_id, s.enc.annotations, Ctx());
    ASSERT_THAT(dec, IsOk());
    EXPECT_EQ(dec->Reveal(), s.seed);
    for (const std::string& other : history) {
      if (other == s.enc.key_id) continue;
      EXPECT_THAT(svc_->Decrypt(s.enc.ciphertext, other, s.enc.annotations, Ctx()), Not(IsOk()));
    }
  }
}

// The invariant kube-apiserver relies on (kmsv2-contract.md §2.2): an Encrypt's key_id is the
// one Status reports. With concurrent rotations a key_id change may fall between the calls, so a
// checker brackets each Encrypt with two Status calls: if both say K, Encrypt must say K, and in
// any case it must name a version between them; and the ciphertext must decrypt under the key_id
// it names.
TEST_F(KeyTrackingTest, StatusAndEncryptNeverDisagreeUnderConcurrentRotation) {
  constexpr int kCheckers = 4;
  constexpr int kRotations = 30;
  constexpr int kChecksBetweenRotations = 20;  // Per rotation, over all checkers.

  absl::Mutex mu;
  int64_t checks = 0;  // Guarded by mu.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> disagreements{0}, bad_decrypts{0}, same_status_pairs{0}, encrypt_errors{0};
  absl::Mutex seen_mu;
  std::set<std::string> key_ids_seen;
  std::vector<std::string> notes;  // Guarded by seen_mu.
  auto Version = [this](const std::string& key_id) -> uint32_t {
    for (uint32_t v = 1; v <= 64; ++v) {
      if (key_id == kes_->KekId(v)) return v;
    }
    return 0;
  };

  auto checker = [&] {
    std::string seed = *RandomBytes(32);
    while (!stop.load()) {
      PluginStatus s1 = svc_->Status();
      auto enc = svc_->Encrypt(seed, Ctx());
      PluginStatus s2 = svc_->Status();
      if (!enc.ok()) {
        ++encrypt_errors;
      } else {
        // FakeKes key_ids are "fake:v<N>" and N only grows: Encrypt's version must lie between
        // the two Status versions (equal to both when no change fell between the calls; several
        // changes may fall between them when this thread is descheduled).
        const uint32_t v1 = Version(s1.key_id), ve = Version(enc->key_id), v2 = Version(s2.key_id);
        if (!(v1 <= ve && ve <= v2) || v1 == 0) {
          ++disagreements;
          absl::MutexLock l(&seen_mu);
          if (notes.size() < 5) {
            notes.push_back(s1.key_id + " / " + enc->key_id + " / " + s2.key_id);
          }
        }
        if (s1.key_id == s2.key_id) ++same_status_pairs;
        auto dec = svc_->Decrypt(enc->ciphertext, enc->key_id, enc->annotations, Ctx());
        if (!dec.ok() || dec->Reveal() != seed) ++bad_decrypts;
        absl::MutexLock l(&seen_mu);
        key_ids_seen.insert(enc->key_id);
      }
      absl::MutexLock l(&mu);
      ++checks;
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(kCheckers);
  for (int i = 0; i < kCheckers; ++i) threads.emplace_back(checker);

  for (int r = 0; r < kRotations; ++r) {
    {
      // Let the checkers run between rotations (no sleeping: wait on their progress).
      absl::MutexLock l(&mu);
      const int64_t target = checks + kChecksBetweenRotations;
      auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return checks >= target; };
      mu.Await(absl::Condition(&enough));
    }
    switch (r % 3) {
      case 0:
        ASSERT_THAT(svc_->RotateKek(Ctx()), IsOk());
        break;
      case 1:
        ASSERT_THAT(svc_->RotateDataKey(Ctx()), IsOk());
        break;
      case 2:
        kes_->AddVersion();  // Noticed by two probes in a row.
        ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
        ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
        break;
    }
  }
  {
    absl::MutexLock l(&mu);
    const int64_t target = checks + kChecksBetweenRotations;
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return checks >= target; };
    mu.Await(absl::Condition(&enough));
  }
  stop = true;
  for (auto& t : threads) t.join();

  EXPECT_EQ(disagreements.load(), 0) << ::testing::PrintToString(notes);
  EXPECT_EQ(bad_decrypts.load(), 0);
  EXPECT_EQ(encrypt_errors.load(), 0);
  EXPECT_GT(same_status_pairs.load(), 0);
  // 20 KEK versions (10 RotateKek + 10 AddVersion) besides the first: the checkers saw them.
  EXPECT_EQ(KeyId(), kes_->KekId(21));
  absl::MutexLock l(&seen_mu);
  EXPECT_GE(key_ids_seen.size(), 2u);
  EXPECT_TRUE(key_ids_seen.count(kes_->KekId(21)) == 1);
}

// A backend behind replicas that lag: probes and wraps can each be answered as of an older KEK
// version (eventually consistent KMS replication). The FakeKes always wraps under its primary, so
// this one exists to test that even the wrap path never takes key_id back.
class LaggingReplicaKes final : public KeyEncryptionService {
 public:
  LaggingReplicaKes() { Rotate(); }
  std::string_view Name() const override { return "lagging"; }
  absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext&) override {
    absl::MutexLock l(&mu_);
    ++wraps;
    uint32_t v = wrap_as_of_ != 0 ? wrap_as_of_ : primary_;
    std::string id = Id(v);
    auto blob = keks_.at(v)->Seal(key.Reveal(), id);
    if (!blob.ok()) return blob.status();
    return WrappedKey{id, *blob};
  }
  absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& w, const CallContext&) override {
    absl::MutexLock l(&mu_);
    for (const auto& [v, kek] : keks_) {
      if (Id(v) == w.kek_id) return kek->Open(w.blob, w.kek_id);
    }
    return absl::FailedPreconditionError("unknown kek_id");
  }
  absl::StatusOr<KeyStatus> Probe(const CallContext&) override {
    absl::MutexLock l(&mu_);
    return KeyStatus{Id(probe_as_of_ != 0 ? probe_as_of_ : primary_), "lagging"};
  }
  absl::Status RotateKek(const CallContext&) override {
    Rotate();
    return absl::OkStatus();
  }
  // 0: the primary.
  void AnswerAsOf(uint32_t probe_version, uint32_t wrap_version) {
    absl::MutexLock l(&mu_);
    probe_as_of_ = probe_version;
    wrap_as_of_ = wrap_version;
  }
  static std::string Id(uint32_t v) { return "lagging:v" + std::to_string(v); }
  std::atomic<int> wraps{0};

 private:
  void Rotate() {
    absl::MutexLock l(&mu_);
    ++primary_;
    keks_[primary_] = *AesGcm::Create(*RandomSecret(32));
  }
  absl::Mutex mu_;
  std::map<uint32_t, std::unique_ptr<AesGcm>> keks_;
  uint32_t primary_ = 0;
  uint32_t probe_as_of_ = 0;
  uint32_t wrap_as_of_ = 0;
};

class LaggingReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EnvelopeOptions o;
    o.dek_max_uses = 4;  // So that Encrypt itself replaces the data key, through Wrap.
    auto kes = std::make_unique<LaggingReplicaKes>();
    kes_ = kes.get();
    svc_ = *EnvelopeService::Create(o, std::move(kes), &clock_);
    ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
    ASSERT_THAT(svc_->RotateKek(Ctx()), IsOk());
    ASSERT_EQ(svc_->Status().key_id, LaggingReplicaKes::Id(2));
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(5), "test"); }
  FakeClock clock_;
  LaggingReplicaKes* kes_ = nullptr;
  std::unique_ptr<EnvelopeService> svc_;
};

TEST_F(LaggingReplicaTest, AProbeNamingARetiredVersionCausesNoWrapAndNoError) {
  kes_->AnswerAsOf(/*probe_version=*/1, /*wrap_version=*/0);
  const int wraps = kes_->wraps;
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(svc_->Refresh(Ctx(), /*force=*/i % 2 == 0), IsOk());
    EXPECT_EQ(svc_->Status().key_id, LaggingReplicaKes::Id(2));
  }
  EXPECT_EQ(kes_->wraps, wraps);
}

TEST_F(LaggingReplicaTest, AWrapUnderARetiredVersionNeverTakesKeyIdBack) {
  kes_->AnswerAsOf(/*probe_version=*/1, /*wrap_version=*/1);
  for (int i = 0; i < 5; ++i) {
    (void)svc_->Refresh(Ctx(), /*force=*/true);
    (void)svc_->RotateDataKey(Ctx());
    EXPECT_EQ(svc_->Status().key_id, LaggingReplicaKes::Id(2));
  }
  // Encrypts past dek_max_uses ask for a new data key through Wrap; none may come back as v1.
  for (int i = 0; i < 10; ++i) {
    auto enc = svc_->Encrypt("seed", Ctx());
    if (enc.ok()) {
      EXPECT_EQ(enc->key_id, LaggingReplicaKes::Id(2));
    } else {
      EXPECT_THAT(enc, StatusIs(absl::StatusCode::kUnavailable));  // Used up, none to replace it.
    }
    EXPECT_EQ(svc_->Status().key_id, LaggingReplicaKes::Id(2));
  }
  EXPECT_GT(kes_->wraps, 5);
  // The replicas catch up: the next rotation goes ahead as usual.
  kes_->AnswerAsOf(0, 0);
  ASSERT_THAT(svc_->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(svc_->Status().key_id, LaggingReplicaKes::Id(3));
}

// Two EnvelopeServices over one local keyring file: two control-plane nodes sharing a backend.
class SharedKeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kmsp-keytrack-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    for (auto* svc : {&a_, &b_}) {
      auto kms = LocalKms::Create(LocalKmsOptions{dir_ + "/keyring.json"}, &clock_);
      ASSERT_TRUE(kms.ok()) << kms.status();
      auto s = EnvelopeService::Create(EnvelopeOptions{}, std::move(*kms), &clock_);
      ASSERT_TRUE(s.ok()) << s.status();
      *svc = std::move(*s);
      ASSERT_THAT((*svc)->Refresh(Ctx()), IsOk());
    }
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(5), "test"); }

  FakeClock clock_;
  std::string dir_;
  std::unique_ptr<EnvelopeService> a_, b_;
};

TEST_F(SharedKeyringTest, RotationThroughOneNodeAndAForcedRefreshOfTheOtherAgreeOnKeyId) {
  const std::string v1 = a_->Status().key_id;
  ASSERT_EQ(b_->Status().key_id, v1);
  std::vector<std::pair<EncryptResult, std::string>> written;
  for (int round = 0; round < 3; ++round) {
    ASSERT_THAT(a_->RotateKek(Ctx()), IsOk());
    const std::string now = a_->Status().key_id;
    EXPECT_NE(now, b_->Status().key_id);  // B has not probed yet.
    ASSERT_THAT(b_->Refresh(Ctx(), /*force=*/true), IsOk());
    EXPECT_EQ(b_->Status().key_id, now);
    for (auto* svc : {a_.get(), b_.get()}) {
      std::string seed = *RandomBytes(32);
      auto enc = svc->Encrypt(seed, Ctx());
      ASSERT_THAT(enc, IsOk());
      EXPECT_EQ(enc->key_id, now);
      written.emplace_back(*enc, seed);
    }
  }
  EXPECT_THAT(a_->Report().kek_ids_seen, ::testing::SizeIs(4));
  // Every node reads every node's writes, under every version.
  for (const auto& [enc, seed] : written) {
    for (auto* svc : {a_.get(), b_.get()}) {
      auto dec = svc->Decrypt(enc.ciphertext, enc.key_id, enc.annotations, Ctx());
      ASSERT_THAT(dec, IsOk());
      EXPECT_EQ(dec->Reveal(), seed);
    }
  }
}

TEST_F(SharedKeyringTest, UnforcedRefreshOfTheOtherNodeNeedsTheConfirmations) {
  ASSERT_THAT(a_->RotateKek(Ctx()), IsOk());
  const std::string old_id = b_->Status().key_id;
  ASSERT_THAT(b_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(b_->Status().key_id, old_id);
  ASSERT_THAT(b_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(b_->Status().key_id, a_->Status().key_id);
}

}  // namespace
}  // namespace kmsplugin
