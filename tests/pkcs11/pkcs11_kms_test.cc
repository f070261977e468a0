// Pkcs11Kms against a real SoftHSM2 token made per test (tests/pkcs11/softhsm_fixture.h): key
// creation and operator keys, attribute checks, wrap/unwrap with GCM and KEY_WRAP_PAD, kek_ids
// that are not ours, rotation and the probe, PIN problems (a wrong PIN for real; a locked PIN
// through a function list with C_Login / C_GetTokenInfo replaced, SoftHSM having no lockout), a
// missing token, recovery from lost sessions and a finalised module, and the reconnect backoff
// through a removed token (its directory renamed away) on a FakeClock. HSM calls are counted
// through a copy of SoftHSM's function list (tests/pkcs11/pkcs11_test_util.h).
#include "kms/pkcs11/pkcs11_kms.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/recording_observer.h"
#include "tests/matchers.h"
#include "tests/pkcs11/pkcs11_test_util.h"

namespace kmsplugin::pkcs11 {
namespace {

using ::kmsplugin::testing::Counters;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::SoftHsmToken;
using ::kmsplugin::testing::StatusIs;
using ::kmsplugin::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class Pkcs11KmsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Counters().Reset();
    auto dir = TempDir::Create("kmsp-pkcs11");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    auto token = SoftHsmToken::Create(dir_->path());
    ASSERT_TRUE(token.ok()) << token.status();
    token_.emplace(std::move(*token));
    token_->SetProcessEnv();
    auto serial = token_->Serial();
    ASSERT_TRUE(serial.ok()) << serial.status();
    serial_ = *serial;
  }

  // The backend on the counting function list, key label "kek".
  static Pkcs11KmsOptions Options() {
    Pkcs11KmsOptions o;
    o.module =
        Pkcs11Module::FromFunctionList(testing::CountingFunctions(), testing::kSoftHsmModule);
    o.token_label = "kms-test";
    o.key_label = "kek";
    o.pin = SecretBytes::CopyFrom(SoftHsmToken::kDefaultPin);
    return o;
  }
  static std::unique_ptr<Pkcs11Kms> MustCreate(Pkcs11KmsOptions o = Options()) {
    auto kms = Pkcs11Kms::Create(std::move(o));
    EXPECT_TRUE(kms.ok()) << kms.status();
    return kms.ok() ? std::move(*kms) : nullptr;
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(30)); }
  static SecretBytes NewKey() { return std::move(RandomSecret(32)).value(); }
  std::string KekId(int version) const {
    return "pkcs11:" + serial_ + "/kek/v" + std::to_string(version);
  }
  std::vector<std::string> Ids() const {
    return token_->KeyIds("kek").value_or(std::vector<std::string>{"error"});
  }

  // Wraps and unwraps a fresh key; its kek_id.
  static std::string RoundTrip(Pkcs11Kms& kms) {
    SecretBytes key = NewKey();
    auto wrapped = kms.Wrap(key, Ctx());
    EXPECT_TRUE(wrapped.ok()) << wrapped.status();
    if (!wrapped.ok()) return "";
    auto back = kms.Unwrap(*wrapped, Ctx());
    EXPECT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(back.ok() && back->ConstantTimeEquals(key));
    return wrapped->kek_id;
  }

  std::optional<TempDir> dir_;
  std::optional<SoftHsmToken> token_;
  std::string serial_;
};

TEST_F(Pkcs11KmsTest, CreatesVersionOneSensitiveAndNotExtractableWhenNoKeyHasTheLabel) {
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  EXPECT_THAT(Ids(), ElementsAre("01"));
  auto listing = token_->Tool({"--list-objects", "--type", "secrkey"});
  ASSERT_TRUE(listing.ok()) << listing.status();
  EXPECT_THAT(*listing, HasSubstr("never extractable"));
  EXPECT_THAT(*listing, HasSubstr("always sensitive"));
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
  EXPECT_EQ(kms->mechanism(), Mechanism::kAesGcm);
  // Start-up: one self-test wrap and unwrap (2 Init calls); the round trip: 2 more.
  EXPECT_EQ(Counters().crypto.load(), 4);
  EXPECT_EQ(Counters().logins.load(), 1);
}

TEST_F(Pkcs11KmsTest, UsesAPkcs11ToolKeyAsIsAndTheHighestCkaIdIsCurrent) {
  ASSERT_THAT(token_->KeyGen("kek", "01"), IsOk());
  ASSERT_THAT(token_->KeyGen("kek", "0100"), IsOk());
  ASSERT_THAT(token_->KeyGen("other", "0200"), IsOk());
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  EXPECT_THAT(Ids(), UnorderedElementsAre("01", "0100"));  // Nothing created.
  EXPECT_EQ(RoundTrip(*kms), KekId(256));
  auto probe = kms->Probe(Ctx());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->kek_id, KekId(256));
}

TEST_F(Pkcs11KmsTest, RefusesAnExtractableOrNonSensitiveKeyNamingTheAttribute) {
  ASSERT_THAT(token_->KeyGen("kek", "01", {"--extractable"}), IsOk());
  EXPECT_THAT(Pkcs11Kms::Create(Options()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CKA_EXTRACTABLE true")));
  ASSERT_THAT(token_->KeyGen("plain", "01", {}, /*sensitive=*/false), IsOk());
  Pkcs11KmsOptions o = Options();
  o.key_label = "plain";
  EXPECT_THAT(Pkcs11Kms::Create(std::move(o)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CKA_SENSITIVE false")));
}

TEST_F(Pkcs11KmsTest, KeyWrapPadWrapsInTheTokenWhenChosen) {
  Pkcs11KmsOptions o = Options();
  o.mechanism = Pkcs11KmsOptions::MechanismChoice::kKeyWrapPad;
  auto kms = MustCreate(std::move(o));
  ASSERT_NE(kms, nullptr);
  EXPECT_EQ(kms->mechanism(), Mechanism::kAesKeyWrapPad);
  auto wrapped = kms->Wrap(NewKey(), Ctx());
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  EXPECT_EQ(wrapped->blob.size(), 2U + 40U);
  EXPECT_EQ(wrapped->blob[1], '\x02');
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
  std::string tampered = wrapped->blob;
  tampered[10] = static_cast<char>(tampered[10] ^ 0x40);
  EXPECT_THAT(kms->Unwrap({wrapped->kek_id, tampered}, Ctx()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(Pkcs11KmsTest, ATokenWithoutGcmFallsBackToKeyWrapPad) {
  Counters().no_gcm = true;
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  EXPECT_EQ(kms->mechanism(), Mechanism::kAesKeyWrapPad);
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
  auto listing = token_->Tool({"--list-objects", "--type", "secrkey"});
  ASSERT_TRUE(listing.ok()) << listing.status();
  EXPECT_THAT(*listing, HasSubstr("wrap, unwrap"));  // The created key is a wrapping key.
}

TEST_F(Pkcs11KmsTest, KekIdsOfAnotherTokenOrLabelFailWithoutAnHsmCall) {
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  auto wrapped = kms->Wrap(NewKey(), Ctx());
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  const int crypto = Counters().crypto.load();
  const int finds = Counters().finds.load();
  for (const std::string& other : std::vector<std::string>{
           "pkcs11:0000000000000000/kek/v1", "pkcs11:" + serial_ + "/kek2/v1",
           "pkcs11:" + serial_ + "/kek/v01", "aws:arn/kek/v1", std::string()}) {
    EXPECT_THAT(kms->Unwrap({other, wrapped->blob}, Ctx()).status(),
                StatusIs(absl::StatusCode::kFailedPrecondition))
        << other;
  }
  EXPECT_EQ(Counters().crypto.load(), crypto);
  EXPECT_EQ(Counters().finds.load(), finds);
  // A version of our label that the token does not hold: looked up, not decrypted.
  EXPECT_THAT(kms->Unwrap({KekId(9), wrapped->blob}, Ctx()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not in the token")));
  EXPECT_EQ(Counters().crypto.load(), crypto);
  // A malformed blob never reaches the token.
  EXPECT_THAT(kms->Unwrap({KekId(1), "\x01\x01short"}, Ctx()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Counters().crypto.load(), crypto);
}

// Audit (issue 13): each operation on the token is reported once, named by its PKCS#11 call,
// with the token and key labels and the kek_id involved.
TEST_F(Pkcs11KmsTest, EachTokenOperationIsReportedWithTheLabelsAndKekId) {
  ::kmsplugin::testing::RecordingObserver observer;
  Pkcs11KmsOptions o = Options();
  o.observer = &observer;
  auto kms = MustCreate(std::move(o));
  ASSERT_NE(kms, nullptr);
  // Start-up on a token without the key: creating version 1 is reported once, as the start-up's.
  int generated = 0;
  for (const auto& a : observer.attempts()) {
    if (a.operation != "C_GenerateKey") continue;
    ++generated;
    EXPECT_EQ(a.key_id, KekId(1));
    EXPECT_EQ(a.uid, "startup");
  }
  EXPECT_EQ(generated, 1);
  observer.Clear();  // The key search, generation and self-test.
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
  ASSERT_THAT(kms->RotateKek(Ctx()), IsOk());
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  const auto attempts = observer.attempts();
  ASSERT_EQ(attempts.size(), 4u);
  EXPECT_EQ(attempts[0].operation, "C_Encrypt");
  EXPECT_EQ(attempts[0].key_id, KekId(1));
  EXPECT_EQ(attempts[1].operation, "C_Decrypt");
  EXPECT_EQ(attempts[1].key_id, KekId(1));
  EXPECT_EQ(attempts[2].operation, "C_GenerateKey");
  EXPECT_EQ(attempts[2].key_id, KekId(2));
  EXPECT_EQ(attempts[3].operation, "C_FindObjects");
  for (const auto& a : attempts) {
    EXPECT_EQ(a.backend, "pkcs11");
    EXPECT_EQ(a.key, "token=kms-test key=kek");
    EXPECT_EQ(a.code, absl::StatusCode::kOk);
    EXPECT_EQ(a.request_id, "");
  }
}

TEST_F(Pkcs11KmsTest, RotateCreatesTheNextKeyObjectAndOldBlobsStillUnwrap) {
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  SecretBytes old_key = NewKey();
  auto old_wrapped = kms->Wrap(old_key, Ctx());
  ASSERT_TRUE(old_wrapped.ok()) << old_wrapped.status();
  ASSERT_THAT(kms->RotateKek(Ctx()), IsOk());
  EXPECT_THAT(Ids(), UnorderedElementsAre("01", "02"));
  auto probe = kms->Probe(Ctx());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->kek_id, KekId(2));
  EXPECT_EQ(RoundTrip(*kms), KekId(2));
  auto old_back = kms->Unwrap(*old_wrapped, Ctx());
  ASSERT_TRUE(old_back.ok()) << old_back.status();
  EXPECT_TRUE(old_back->ConstantTimeEquals(old_key));
  // A v1 blob presented as v2 does not authenticate (the AAD names the version).
  EXPECT_THAT(kms->Unwrap({KekId(2), old_wrapped->blob}, Ctx()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(Pkcs11KmsTest, ProbeFindsAnotherNodesVersionWithoutACryptoCallAndADeletedOneRevokes) {
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  const int crypto = Counters().crypto.load();
  ASSERT_THAT(token_->KeyGen("kek", "02"), IsOk());  // Another node's rotation.
  for (int i = 0; i < 10; ++i) {
    auto probe = kms->Probe(Ctx());
    ASSERT_TRUE(probe.ok()) << probe.status();
    EXPECT_EQ(probe->kek_id, KekId(2));
  }
  EXPECT_EQ(Counters().crypto.load(), crypto);
  EXPECT_EQ(RoundTrip(*kms), KekId(2));
  ASSERT_THAT(token_->DeleteKey("02"), IsOk());
  auto probe = kms->Probe(Ctx());
  EXPECT_THAT(probe.status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("gone from the token")));
  EXPECT_TRUE(IsKeyRevokedError(probe.status()));
}

TEST_F(Pkcs11KmsTest, AWrongPinIsUnauthenticatedAfterExactlyOneLogin) {
  Pkcs11KmsOptions o = Options();
  o.pin = SecretBytes::CopyFrom("9999");
  auto kms = Pkcs11Kms::Create(std::move(o));
  EXPECT_THAT(kms.status(), StatusIs(absl::StatusCode::kUnauthenticated,
                                     HasSubstr("PIN of PKCS#11 token 'kms-test' is wrong")));
  EXPECT_THAT(kms.status().message(), ::testing::Not(HasSubstr("9999")));
  EXPECT_TRUE(IsKeyRevokedError(kms.status()));
  EXPECT_EQ(Counters().logins.load(), 1);
}

TEST_F(Pkcs11KmsTest, APinRefusedWhileServingIsLatchedAndNeverTriedAgain) {
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  Counters().login_rv = CKR_PIN_INCORRECT;  // E.g. the PIN was changed under the plugin.
  struct ck_function_list* f = testing::SoftHsmFunctions();
  ck_slot_id_t slots[8];
  unsigned long n = 8;
  ASSERT_EQ(f->C_GetSlotList(1, slots, &n), CKR_OK);
  for (unsigned long i = 0; i < n; ++i) f->C_CloseAllSessions(slots[i]);  // Logs out.
  const int logins = Counters().logins.load();
  for (int i = 0; i < 5; ++i) {
    auto wrapped = kms->Wrap(NewKey(), Ctx());
    EXPECT_THAT(wrapped.status(), StatusIs(absl::StatusCode::kUnauthenticated)) << i;
    EXPECT_TRUE(IsKeyRevokedError(wrapped.status()));
    EXPECT_THAT(kms->Probe(Ctx()).status(), StatusIs(absl::StatusCode::kUnauthenticated)) << i;
  }
  EXPECT_EQ(Counters().logins.load(), logins + 1);
}

TEST_F(Pkcs11KmsTest, ALockedPinIsPermissionDeniedFromTheFlagWithoutALoginOrFromCkrPinLocked) {
  Counters().pin_locked_flag = true;
  EXPECT_THAT(Pkcs11Kms::Create(Options()).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("is locked")));
  EXPECT_EQ(Counters().logins.load(), 0);
  Counters().Reset();
  Counters().login_rv = CKR_PIN_LOCKED;
  EXPECT_THAT(Pkcs11Kms::Create(Options()).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("CKR_PIN_LOCKED (0xa4)")));
  EXPECT_EQ(Counters().logins.load(), 1);
}

TEST_F(Pkcs11KmsTest, AMissingTokenIsUnavailableAndListsTheLabelsFound) {
  ASSERT_THAT(token_->InitToken("second", "4321"), IsOk());
  Pkcs11KmsOptions o = Options();
  o.token_label = "nope";
  EXPECT_THAT(Pkcs11Kms::Create(std::move(o)).status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("no PKCS#11 token labelled 'nope' in module "
                                       "/usr/lib/softhsm/libsofthsm2.so (tokens found: "),
                             HasSubstr("'kms-test'"), HasSubstr("'second'"))));
}

TEST_F(Pkcs11KmsTest, ClosedSessionsAreReopenedAndTheNextCallSucceeds) {
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  SecretBytes key = NewKey();
  auto wrapped = kms->Wrap(key, Ctx());
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  struct ck_function_list* f = testing::SoftHsmFunctions();
  ck_slot_id_t slots[8];
  unsigned long n = 8;
  ASSERT_EQ(f->C_GetSlotList(1, slots, &n), CKR_OK);
  for (unsigned long i = 0; i < n; ++i) f->C_CloseAllSessions(slots[i]);  // Also logs out.
  auto back = kms->Unwrap(*wrapped, Ctx());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->ConstantTimeEquals(key));
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
  EXPECT_EQ(Counters().logins.load(), 2);  // The first one, and one for the new connection.
}

TEST_F(Pkcs11KmsTest, AFinalizedModuleIsReinitialisedAndTheNextCallSucceeds) {
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  SecretBytes key = NewKey();
  auto wrapped = kms->Wrap(key, Ctx());
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  ASSERT_EQ(testing::SoftHsmFunctions()->C_Finalize(nullptr), CKR_OK);  // Every handle dies.
  auto back = kms->Unwrap(*wrapped, Ctx());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->ConstantTimeEquals(key));
  EXPECT_EQ(kms->reconnects(), 1U);
  auto probe = kms->Probe(Ctx());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->kek_id, KekId(1));
}

// The token is removed (its directory renamed away; SoftHSM then has no token, see the e2e test)
// for a long outage: one reconnection per backoff interval, every other call fails fast without a
// PKCS#11 call; a successful reconnection resets the interval.
TEST_F(Pkcs11KmsTest, ALongTokenOutageReconnectsOncePerIntervalAndCallsInBetweenFailFast) {
  testing::FakeClock clock;
  Pkcs11KmsOptions o = Options();
  o.clock = &clock;
  auto kms = MustCreate(std::move(o));
  ASSERT_NE(kms, nullptr);
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
  std::string token_dir;
  for (const auto& entry : std::filesystem::directory_iterator(dir_->path() + "/tokens")) {
    token_dir = entry.path().string();
  }
  const std::string removed = dir_->path() + "/removed-token";
  auto fail_fast_calls = [&](int calls) {
    int fast = 0;
    for (int i = 0; i < calls; ++i) {
      auto wrapped = kms->Wrap(NewKey(), Ctx());
      EXPECT_THAT(wrapped.status(), StatusIs(absl::StatusCode::kUnavailable));
      if (absl::StrContains(wrapped.status().message(), "; next reconnect in ")) ++fast;
    }
    return fast;
  };

  std::filesystem::rename(token_dir, removed);
  const int crypto_before = Counters().crypto.load();
  EXPECT_EQ(fail_fast_calls(100), 99);  // The first one reconnects, and fails.
  EXPECT_EQ(kms->reconnects(), 1U);
  EXPECT_EQ(Counters().crypto.load() - crypto_before, 1);  // The call that saw the stale handle.
  clock.Advance(SessionPool::kMinReconnectInterval);       // Past the first wait, in (0, 1 s].
  EXPECT_EQ(fail_fast_calls(100), 99);
  EXPECT_EQ(kms->reconnects(), 2U);

  std::filesystem::rename(removed, token_dir);
  EXPECT_EQ(fail_fast_calls(1), 1);                       // Back, but the wait is not over.
  clock.Advance(2 * SessionPool::kMinReconnectInterval);  // Past the second wait, in (0, 2 s].
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
  EXPECT_EQ(kms->reconnects(), 3U);

  // The success reset the backoff: a new outage reconnects at once, without a wait.
  std::filesystem::rename(token_dir, removed);
  EXPECT_EQ(fail_fast_calls(1), 0);
  EXPECT_EQ(kms->reconnects(), 4U);
  std::filesystem::rename(removed, token_dir);
  clock.Advance(SessionPool::kMinReconnectInterval);
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
  EXPECT_EQ(kms->reconnects(), 5U);
}

TEST_F(Pkcs11KmsTest, AModuleAlreadyInitialisedInTheProcessIsUsedAndLeftInitialised) {
  struct ck_function_list* f = testing::SoftHsmFunctions();
  struct ck_c_initialize_args args = {};
  args.flags = CKF_OS_LOCKING_OK;
  ASSERT_EQ(f->C_Initialize(&args), CKR_OK);  // Someone else in the process owns the module.
  {
    auto kms = MustCreate();
    ASSERT_NE(kms, nullptr);
    EXPECT_EQ(RoundTrip(*kms), KekId(1));
  }
  EXPECT_EQ(f->C_Finalize(nullptr), CKR_OK);  // Still initialised: the backend did not finalise it.
}

TEST_F(Pkcs11KmsTest, ManyThreadsShareABoundedPoolOfSessions) {
  Pkcs11KmsOptions o = Options();
  o.max_sessions = 2;
  auto kms = MustCreate(std::move(o));
  ASSERT_NE(kms, nullptr);
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        SecretBytes key = NewKey();
        auto wrapped = kms->Wrap(key, Ctx());
        if (!wrapped.ok()) continue;
        auto back = kms->Unwrap(*wrapped, Ctx());
        if (back.ok() && back->ConstantTimeEquals(key)) ++ok;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
}

TEST_F(Pkcs11KmsTest, APassedDeadlineStartsNoCall) {
  auto kms = MustCreate();
  ASSERT_NE(kms, nullptr);
  const int crypto = Counters().crypto.load();
  CallContext late{absl::Now() - absl::Seconds(1), "late"};
  EXPECT_THAT(kms->Wrap(NewKey(), late).status(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(Counters().crypto.load(), crypto);
}

TEST_F(Pkcs11KmsTest, ThePinFileIsReadWithItsTrailingNewlineTrimmed) {
  auto pin_file = token_->WritePinFile("pin", SoftHsmToken::kDefaultPin);
  ASSERT_TRUE(pin_file.ok()) << pin_file.status();
  Pkcs11KmsOptions o = Options();
  o.pin = SecretBytes();
  o.pin_file = *pin_file;
  auto kms = MustCreate(std::move(o));
  ASSERT_NE(kms, nullptr);
  EXPECT_EQ(RoundTrip(*kms), KekId(1));
}

}  // namespace
}  // namespace kmsplugin::pkcs11
