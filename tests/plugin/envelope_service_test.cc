#include "plugin/envelope_service.h"

#include <set>
#include <thread>
#include <vector>

#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_kes.h"
#include "tests/matchers.h"
#include "tests/plugin/envelope_service_fixture.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::EnvelopeServiceFixture;
using ::kmsplugin::testing::FakeKes;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::Not;

class EnvelopeServiceTest : public EnvelopeServiceFixture {
 protected:
  CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(3), "test"); }

  std::string Seed() { return *RandomBytes(32); }
};

TEST_F(EnvelopeServiceTest, StatusIsUnhealthyBeforeTheFirstRefreshAndOkAfter) {
  EXPECT_NE(svc_->Status().healthz, "ok");
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  PluginStatus s = svc_->Status();
  EXPECT_EQ(s.version, "v2");
  EXPECT_EQ(s.healthz, "ok");
  EXPECT_EQ(s.key_id, kes_->KekId(1));
}

TEST_F(EnvelopeServiceTest, StatusMakesNoBackendCall) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  int probes = kes_->probes, wraps = kes_->wraps, unwraps = kes_->unwraps;
  for (int i = 0; i < 1000; ++i) svc_->Status();
  EXPECT_EQ(kes_->probes, probes);
  EXPECT_EQ(kes_->wraps, wraps);
  EXPECT_EQ(kes_->unwraps, unwraps);
}

TEST_F(EnvelopeServiceTest, EncryptThenDecryptReturnsThePlaintext) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::string seed = Seed();
  auto enc = svc_->Encrypt(seed, Ctx());
  ASSERT_THAT(enc, IsOk());
  EXPECT_LE(enc->ciphertext.size(), kMaxCiphertextSize);
  EXPECT_EQ(enc->key_id, svc_->Status().key_id);
  ASSERT_EQ(enc->annotations.size(), 1u);
  EXPECT_THAT(ValidateAnnotations(enc->annotations), IsOk());
  auto dec = svc_->Decrypt(enc->ciphertext, enc->key_id, enc->annotations, Ctx());
  ASSERT_THAT(dec, IsOk());
  EXPECT_EQ(dec->Reveal(), seed);
}

TEST_F(EnvelopeServiceTest, HundredThousandEncryptsCostOneWrap) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::string seed = Seed();
  for (int i = 0; i < 100000; ++i) {
    auto enc = svc_->Encrypt(seed, Ctx());
    ASSERT_TRUE(enc.ok()) << enc.status();
  }
  EXPECT_EQ(kes_->wraps, 1);
  EXPECT_EQ(kes_->unwraps, 0);
  EXPECT_EQ(svc_->Report().data_key_uses, 100000u);
}

TEST_F(EnvelopeServiceTest, SixtyFourConcurrentDecryptsOfOneUncachedWrappedKeyCostOneUnwrap) {
  // Encrypt under one service, decrypt under a fresh one (empty cache) sharing the same KEKs:
  // a restart, as far as the cache is concerned.
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::vector<std::string> seeds;
  std::vector<EncryptResult> encs;
  for (int i = 0; i < 64; ++i) {
    seeds.push_back(Seed());
    encs.push_back(*svc_->Encrypt(seeds.back(), Ctx()));
  }
  // The same FakeKes instance, moved behind a second service through a forwarding wrapper.
  class Forward final : public KeyEncryptionService {
   public:
    explicit Forward(KeyEncryptionService* k) : k_(k) {}
    std::string_view Name() const override { return k_->Name(); }
    absl::StatusOr<WrappedKey> Wrap(const SecretBytes& key, const CallContext& c) override {
      return k_->Wrap(key, c);
    }
    absl::StatusOr<SecretBytes> Unwrap(const WrappedKey& w, const CallContext& c) override {
      return k_->Unwrap(w, c);
    }
    absl::StatusOr<KeyStatus> Probe(const CallContext& c) override { return k_->Probe(c); }

   private:
    KeyEncryptionService* k_;
  };
  auto fresh = EnvelopeService::Create(EnvelopeOptions{}, std::make_unique<Forward>(kes_), &clock_);
  ASSERT_THAT(fresh, IsOk());
  // Hold every unwrap until all 64 requests are in flight.
  absl::Notification release;
  kes_->BlockUnwrapUntil(&release);
  int unwraps_before = kes_->unwraps;
  std::vector<std::thread> threads;
  threads.reserve(64);
  std::vector<std::string> results(64);
  std::atomic<int> started{0};
  for (int i = 0; i < 64; ++i) {
    threads.emplace_back([&, i] {
      ++started;
      auto dec = (*fresh)->Decrypt(encs[i].ciphertext, encs[i].key_id, encs[i].annotations, Ctx());
      results[i] = dec.ok() ? std::string(dec->Reveal()) : "error: " + dec.status().ToString();
    });
  }
  // Wait until the first unwrap has started (the leader) and every thread has been started.
  while (kes_->unwraps == unwraps_before || started < 64) std::this_thread::yield();
  release.Notify();
  for (auto& t : threads) t.join();
  kes_->BlockUnwrapUntil(nullptr);
  EXPECT_EQ(kes_->unwraps - unwraps_before, 1);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(results[i], seeds[i]) << "request " << i;
}

TEST_F(EnvelopeServiceTest, CiphertextsOfOnePlaintextAreAllDistinct) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::string seed = Seed();
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(svc_->Encrypt(seed, Ctx())->ciphertext);
  EXPECT_EQ(seen.size(), 2000u);
}

TEST_F(EnvelopeServiceTest, EncryptRejectsEmptyAndOversizedPlaintext) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_THAT(svc_->Encrypt("", Ctx()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(svc_->Encrypt(std::string(kMaxPlaintextSize + 1, 'x'), Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto max = svc_->Encrypt(std::string(kMaxPlaintextSize, 'x'), Ctx());
  ASSERT_THAT(max, IsOk());
  EXPECT_EQ(max->ciphertext.size(), kMaxCiphertextSize);
}

TEST_F(EnvelopeServiceTest, EverySingleBitFlipOfCiphertextOrAnnotationFailsAuthentication) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::string seed = Seed();
  auto enc = svc_->Encrypt(seed, Ctx());
  ASSERT_THAT(enc, IsOk());
  for (size_t bit = 0; bit < enc->ciphertext.size() * 8; ++bit) {
    std::string ct = enc->ciphertext;
    ct[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    EXPECT_THAT(svc_->Decrypt(ct, enc->key_id, enc->annotations, Ctx()), Not(IsOk())) << bit;
  }
  const std::string& wrapped = enc->annotations.begin()->second;
  for (size_t bit = 0; bit < wrapped.size() * 8; ++bit) {
    Annotations a = enc->annotations;
    a.begin()->second[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    EXPECT_THAT(svc_->Decrypt(enc->ciphertext, enc->key_id, a, Ctx()), Not(IsOk())) << bit;
  }
  // The original still decrypts.
  EXPECT_THAT(svc_->Decrypt(enc->ciphertext, enc->key_id, enc->annotations, Ctx()), IsOk());
}

TEST_F(EnvelopeServiceTest, SwappedAnnotationOrKeyIdFailsAuthentication) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  auto a = *svc_->Encrypt(Seed(), Ctx());
  ASSERT_THAT(svc_->RotateDataKey(Ctx()), IsOk());
  auto b = *svc_->Encrypt(Seed(), Ctx());
  ASSERT_NE(a.annotations, b.annotations);
  EXPECT_THAT(svc_->Decrypt(a.ciphertext, a.key_id, b.annotations, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("authentication")));
  kes_->AddVersion();
  ASSERT_THAT(svc_->Refresh(Ctx(), /*force=*/true), IsOk());
  auto c = *svc_->Encrypt(Seed(), Ctx());
  ASSERT_NE(c.key_id, a.key_id);
  EXPECT_THAT(svc_->Decrypt(a.ciphertext, c.key_id, a.annotations, Ctx()), Not(IsOk()));
}

TEST_F(EnvelopeServiceTest, DecryptRejectsMalformedRequestsWithInvalidArgument) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  auto enc = *svc_->Encrypt(Seed(), Ctx());
  EXPECT_THAT(svc_->Decrypt(enc.ciphertext, "", enc.annotations, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(svc_->Decrypt(enc.ciphertext, std::string(1025, 'k'), enc.annotations, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(svc_->Decrypt(std::string(1 << 20, 'c'), enc.key_id, enc.annotations, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(svc_->Decrypt("", enc.key_id, enc.annotations, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(svc_->Decrypt(enc.ciphertext, enc.key_id, Annotations{}, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  Annotations extra = enc.annotations;
  extra["other.example.com"] = "x";
  EXPECT_THAT(svc_->Decrypt(enc.ciphertext, enc.key_id, extra, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(EnvelopeServiceTest, DecryptOfAnUnknownKeyIdFailsWithFailedPrecondition) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  auto enc = *svc_->Encrypt(Seed(), Ctx());
  EXPECT_THAT(svc_->Decrypt(enc.ciphertext, "someone-else:v1", enc.annotations, Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(EnvelopeServiceTest, DataKeyIsReplacedAfterMaxUses) {
  EnvelopeOptions options;
  options.dek_max_uses = 10;
  Make(options);
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::set<std::string> wrapped;
  std::vector<std::pair<std::string, EncryptResult>> all;
  for (int i = 0; i < 35; ++i) {
    std::string seed = Seed();
    auto enc = svc_->Encrypt(seed, Ctx());
    ASSERT_THAT(enc, IsOk());
    wrapped.insert(enc->annotations.begin()->second);
    all.emplace_back(seed, *enc);
  }
  EXPECT_EQ(wrapped.size(), 4u);  // 10 + 10 + 10 + 5.
  EXPECT_EQ(kes_->wraps, 4);
  for (auto& [seed, enc] : all) {
    EXPECT_EQ(svc_->Decrypt(enc.ciphertext, enc.key_id, enc.annotations, Ctx())->Reveal(), seed);
  }
}

TEST_F(EnvelopeServiceTest, DataKeyIsReplacedAfterMaxAgeOnTheNextRefresh) {
  EnvelopeOptions options;
  options.dek_max_age = absl::Hours(1);
  Make(options);
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  auto before = *svc_->Encrypt(Seed(), Ctx());
  clock_.Advance(absl::Minutes(59));
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(kes_->wraps, 1);
  clock_.Advance(absl::Minutes(2));
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(kes_->wraps, 2);
  auto after = *svc_->Encrypt(Seed(), Ctx());
  EXPECT_NE(before.annotations, after.annotations);
  EXPECT_EQ(before.key_id, after.key_id);  // Same KEK version: key_id does not change.
}

TEST_F(EnvelopeServiceTest, EncryptAndCachedDecryptKeepWorkingThroughAnOutageWithinTheWindow) {
  EnvelopeOptions options;
  options.outage_window = absl::Minutes(30);
  Make(options);
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::string seed = Seed();
  auto enc = *svc_->Encrypt(seed, Ctx());
  kes_->FailWith(absl::UnavailableError("kms down"));
  clock_.Advance(absl::Minutes(10));
  EXPECT_THAT(svc_->Refresh(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(svc_->Status().healthz, "ok");
  EXPECT_THAT(svc_->Encrypt(Seed(), Ctx()), IsOk());
  EXPECT_EQ(svc_->Decrypt(enc.ciphertext, enc.key_id, enc.annotations, Ctx())->Reveal(), seed);
  // Past the window: unhealthy, Encrypt refuses, key_id unchanged.
  std::string key_id = svc_->Status().key_id;
  clock_.Advance(absl::Minutes(25));
  EXPECT_THAT(svc_->Refresh(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_NE(svc_->Status().healthz, "ok");
  EXPECT_EQ(svc_->Status().key_id, key_id);
  EXPECT_THAT(svc_->Encrypt(Seed(), Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  // Back: healthy again, same key_id.
  kes_->Heal();
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(svc_->Status().healthz, "ok");
  EXPECT_EQ(svc_->Status().key_id, key_id);
}

// The report behind kms_plugin_outage_window_*, _data_key_age_seconds and _rotations_total.
TEST_F(EnvelopeServiceTest, ReportShowsTheOutageWindowTheDataKeyAgeAndRotationCounts) {
  EnvelopeOptions options;
  options.outage_window = absl::Minutes(30);
  Make(options);
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EnvelopeReport r = svc_->Report();
  EXPECT_FALSE(r.outage_window_active);
  EXPECT_EQ(r.outage_window_seconds_left, 0);
  EXPECT_EQ(r.data_key_age_seconds, 0);
  EXPECT_EQ(r.data_keys_made, 1u);
  EXPECT_EQ(r.key_id_changes, 0u);
  EXPECT_EQ(r.kek_rotations, 0u);
  clock_.Advance(absl::Minutes(10));
  EXPECT_EQ(svc_->Report().data_key_age_seconds, 600);
  // A transient failure 15 minutes after the last good probe: 15 of the 30 minutes are left.
  kes_->FailWith(absl::UnavailableError("kms down"));
  clock_.Advance(absl::Minutes(5));
  EXPECT_THAT(svc_->Refresh(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  r = svc_->Report();
  EXPECT_TRUE(r.outage_window_active);
  EXPECT_EQ(r.outage_window_seconds_left, 15 * 60);
  clock_.Advance(absl::Minutes(20));  // Past the window: no longer coasting (unhealthy).
  r = svc_->Report();
  EXPECT_FALSE(r.outage_window_active);
  EXPECT_EQ(r.outage_window_seconds_left, 0);
  kes_->Heal();
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_FALSE(svc_->Report().outage_window_active);
  // A KEK rotation: one by this plugin, a key_id change, a second data key (age 0).
  ASSERT_THAT(svc_->RotateKek(Ctx()), IsOk());
  r = svc_->Report();
  EXPECT_EQ(r.kek_rotations, 1u);
  EXPECT_EQ(r.key_id_changes, 1u);
  EXPECT_EQ(r.data_keys_made, 2u);
  EXPECT_EQ(r.data_key_age_seconds, 0);
  ASSERT_THAT(svc_->RotateDataKey(Ctx()), IsOk());
  r = svc_->Report();
  EXPECT_EQ(r.data_keys_made, 3u);
  EXPECT_EQ(r.key_id_changes, 1u);
  // A refusal is not an outage: the plugin stops serving at once.
  kes_->FailWith(absl::PermissionDeniedError("AccessDeniedException"));
  EXPECT_THAT(svc_->Refresh(Ctx()), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_FALSE(svc_->Report().outage_window_active);
}

TEST_F(EnvelopeServiceTest, RevokedKekMakesStatusUnhealthyAndPurgesCachedKeys) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::string seed = Seed();
  auto enc = *svc_->Encrypt(seed, Ctx());
  ASSERT_GE(svc_->Report().cache_size, 1u);
  kes_->FailWith(absl::PermissionDeniedError("AccessDeniedException"));
  EXPECT_THAT(svc_->Refresh(Ctx()), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_NE(svc_->Status().healthz, "ok");
  EXPECT_EQ(svc_->Report().cache_size, 0u);
  EXPECT_THAT(svc_->Encrypt(seed, Ctx()), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(svc_->Decrypt(enc.ciphertext, enc.key_id, enc.annotations, Ctx()), Not(IsOk()));
  // Re-enabled: a new data key, and old data decrypts again through the KMS.
  kes_->Heal();
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(svc_->Status().healthz, "ok");
  EXPECT_EQ(svc_->Decrypt(enc.ciphertext, enc.key_id, enc.annotations, Ctx())->Reveal(), seed);
}

TEST_F(EnvelopeServiceTest, NewKekVersionSwitchesKeyIdAfterTheConfiguredConfirmations) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  std::string old_id = svc_->Status().key_id;
  auto old_enc = *svc_->Encrypt("old seed", Ctx());
  kes_->AddVersion();
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(svc_->Status().key_id, old_id);  // One sighting is not enough (default 2).
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  EXPECT_EQ(svc_->Status().key_id, kes_->KekId(2));
  auto enc = *svc_->Encrypt("new seed", Ctx());
  EXPECT_EQ(enc.key_id, kes_->KekId(2));
  EXPECT_EQ(svc_->Decrypt(old_enc.ciphertext, old_enc.key_id, old_enc.annotations, Ctx())->Reveal(),
            "old seed");
}

TEST_F(EnvelopeServiceTest, RotateKekSwitchesKeyIdAtOnce) {
  ASSERT_THAT(svc_->Refresh(Ctx()), IsOk());
  ASSERT_THAT(svc_->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(svc_->Status().key_id, kes_->KekId(2));
  EXPECT_EQ(svc_->Encrypt("x", Ctx())->key_id, kes_->KekId(2));
}

TEST_F(EnvelopeServiceTest, CreateRejectsBadOptions) {
  EnvelopeOptions o;
  o.dek_max_uses = 0;
  EXPECT_THAT(EnvelopeService::Create(o, std::make_unique<FakeKes>(), &clock_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  o = EnvelopeOptions{};
  o.dek_cache_size = 0;
  EXPECT_THAT(EnvelopeService::Create(o, std::make_unique<FakeKes>(), &clock_),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EnvelopeService::Create(EnvelopeOptions{}, nullptr, &clock_),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin
