// VaultKms (kms/vault) against the python fake Vault server (tests/vault/fake_vault_server.py):
// the wire format, key_id and associated data, rotation and min_decryption_version, the three
// logins with renewal and re-login, outage versus revocation, and the http:// refusal. Plus the
// pure parsers (CiphertextVersion, ClassifyVaultError). Token lifetimes are driven by a FakeClock
// (the server's real TTLs are long), so nothing sleeps.
#include "kms/vault/vault_kms.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/vault/vault_api.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/recording_observer.h"
#include "tests/matchers.h"
#include "tests/vault/fake_vault_server.h"

namespace kmsplugin::vault {
namespace {

using ::kmsplugin::testing::RecordedAttempt;
using ::kmsplugin::testing::RecordingObserver;

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeVaultServer;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kKek1[] = "vault:root/transit/k8s/v1";

TEST(CiphertextVersion, ParsesOnlyAWellFormedVaultPrefix) {
  EXPECT_EQ(CiphertextVersion("vault:v1:QUJD"), 1);
  EXPECT_EQ(CiphertextVersion("vault:v42:QUJD+/=="), 42);
  for (const char* bad :
       {"", "vault:v1:", "vault:v0:QUJD", "vault:v01:QUJD", "vault:vx:QUJD", "vault:1:QUJD",
        "vault:v1", "vault:v99999999999:QUJD", "v1:QUJD", "vault:v1:QU JD", "vault:v-1:QUJD"}) {
    EXPECT_FALSE(CiphertextVersion(bad).has_value()) << bad;
  }
}

TEST(ClassifyVaultError, MapsVaultStatusesToOutagesAndRevocations) {
  EXPECT_THAT(ClassifyVaultError("op", 503, R"({"errors":["Vault is sealed"]})").status,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Vault is sealed")));
  for (int s : {307, 412, 429, 500, 502, 503}) {
    const VaultError e = ClassifyVaultError("op", s, "{}");
    EXPECT_TRUE(e.retryable) << s;
    EXPECT_EQ(e.status.code(), absl::StatusCode::kUnavailable) << s;
  }
  EXPECT_EQ(ClassifyVaultError("op", 403, "").status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ClassifyVaultError("op", 404, R"({"errors":[]})").status.code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ClassifyVaultError("op", 400, R"({"errors":["cipher: message authentication failed"]})")
                .status.code(),
            absl::StatusCode::kInvalidArgument);
  constexpr char kTooOld[] =
      R"j({"errors":["ciphertext or signature version is disallowed by policy (too old)"]})j";
  EXPECT_THAT(ClassifyVaultError("op", 400, kTooOld).status,
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("min_decryption_version")));
  // Remote text is made printable.
  EXPECT_THAT(ClassifyVaultError("op", 400, "{\"errors\":[\"a\\u0007b\"]}").status.message(),
              HasSubstr("a?b"));
}

class VaultKmsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = FakeVaultServer::Start();
    ASSERT_THAT(server.status(), IsOk());
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_THAT(server_->Admin("/admin/reset").status(), IsOk());
    ASSERT_THAT(server_->Admin("/admin/keys", {{"name", "k8s"}}).status(), IsOk());
    char tmpl[] = "/tmp/kmsp-vault-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteSecret(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::trunc) << content << "\n";
    return path;
  }

  VaultKmsOptions Options(VaultAuthOptions auth) {
    VaultKmsOptions o;
    o.addr = server_->addr();
    o.key = "k8s";
    o.ca_file = server_->ca_file();
    o.auth = std::move(auth);
    o.retry.base_delay = absl::Milliseconds(1);
    o.retry.max_delay = absl::Milliseconds(5);
    return o;
  }
  VaultAuthOptions TokenAuth(const std::string& token) {
    VaultAuthOptions a;
    a.method = LoginMethod::kToken;
    a.token_file = WriteSecret("token", token);
    return a;
  }
  std::unique_ptr<VaultKms> Make(VaultKmsOptions options) {
    auto kms = VaultKms::Create(std::move(options), &clock_);
    EXPECT_THAT(kms.status(), IsOk());
    return kms.ok() ? std::move(*kms) : nullptr;
  }
  std::unique_ptr<VaultKms> WithToken(int ttl = 0, bool rotate = false) {
    auto token = server_->NewToken("k8s", ttl, rotate);
    EXPECT_THAT(token.status(), IsOk());
    return Make(Options(TokenAuth(*token)));
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(20)); }
  static SecretBytes Dek() { return SecretBytes::CopyFrom(std::string(32, '\x5a')); }

  inline static FakeVaultServer* server_ = nullptr;
  std::string dir_;
  FakeClock clock_;
};

TEST_F(VaultKmsTest, WrapReturnsVaultsCiphertextUnderAKekIdNamingTheKeyVersion) {
  auto kms = WithToken();
  auto wrapped = kms->Wrap(Dek(), Ctx());
  ASSERT_THAT(wrapped.status(), IsOk());
  EXPECT_EQ(wrapped->kek_id, kKek1);
  EXPECT_THAT(wrapped->blob, StartsWith("vault:v1:"));
  auto back = kms->Unwrap(*wrapped, Ctx());
  ASSERT_THAT(back.status(), IsOk());
  EXPECT_TRUE(back->ConstantTimeEquals(Dek()));
  auto log = server_->Requests();
  ASSERT_THAT(log.status(), IsOk());
  int transit = 0;
  for (const auto& r : *log) {
    EXPECT_TRUE(r["vault_request"].get<bool>());  // X-Vault-Request: true on every call.
    if (r["op"] == "encrypt" || r["op"] == "decrypt") {
      ++transit;
      EXPECT_EQ(r["aad"], "kms-plugin/kubernetes-kms-v2:transit/k8s");
    }
  }
  EXPECT_EQ(transit, 2);
}

TEST_F(VaultKmsTest, ProbeFollowsRotationAndOldVersionsStillDecrypt) {
  auto kms = WithToken(0, /*rotate=*/true);
  auto old = kms->Wrap(Dek(), Ctx());
  ASSERT_THAT(old.status(), IsOk());
  auto first = kms->Probe(Ctx());
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_EQ(first->kek_id, kKek1);
  ASSERT_THAT(kms->RotateKek(Ctx()), IsOk());
  ASSERT_THAT(server_->Admin("/admin/keys/rotate", {{"name", "k8s"}}).status(), IsOk());
  auto probe = kms->Probe(Ctx());
  ASSERT_THAT(probe.status(), IsOk());
  EXPECT_EQ(probe->kek_id, "vault:root/transit/k8s/v3");
  EXPECT_THAT(probe->description, HasSubstr("version 3"));
  auto fresh = kms->Wrap(Dek(), Ctx());
  ASSERT_THAT(fresh.status(), IsOk());
  EXPECT_EQ(fresh->kek_id, "vault:root/transit/k8s/v3");
  EXPECT_THAT(kms->Unwrap(*old, Ctx()).status(), IsOk());
  EXPECT_EQ(server_->Count("rotate"), 1);
}

TEST_F(VaultKmsTest, UnwrapRefusesAnotherKeyOrAMismatchedVersionWithoutCallingVault) {
  auto kms = WithToken();
  auto wrapped = kms->Wrap(Dek(), Ctx());
  ASSERT_THAT(wrapped.status(), IsOk());
  for (const char* kek :
       {"vault:root/transit/other/v1", "vault:ns1/transit/k8s/v1", "vault:root/transit2/k8s/v1",
        "vault:root/transit/k8s/v2", "vault:root/transit/k8s/v01", "aws:arn", ""}) {
    EXPECT_THAT(kms->Unwrap(WrappedKey{kek, wrapped->blob}, Ctx()).status(),
                StatusIs(absl::StatusCode::kFailedPrecondition))
        << kek;
  }
  EXPECT_EQ(server_->Count("decrypt"), 0);
}

TEST_F(VaultKmsTest, BelowMinDecryptionVersionTheErrorSaysSoAndATamperedBlobIsInvalid) {
  auto kms = WithToken(0, true);
  auto old = kms->Wrap(Dek(), Ctx());
  ASSERT_THAT(old.status(), IsOk());
  std::string tampered = old->blob;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_THAT(kms->Unwrap(WrappedKey{old->kek_id, tampered}, Ctx()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_THAT(kms->RotateKek(Ctx()), IsOk());
  ASSERT_THAT(server_->Admin("/admin/keys/config", {{"name", "k8s"}, {"min_decryption_version", 2}})
                  .status(),
              IsOk());
  EXPECT_THAT(kms->Unwrap(*old, Ctx()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("min_decryption_version")));
  EXPECT_THAT(kms->Probe(Ctx()).status(), IsOk());
}

TEST_F(VaultKmsTest, SealedStandbyAndThrottledVaultsAreRetriedOutages) {
  auto kms = WithToken();
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  ASSERT_THAT(server_->Admin("/admin/requests/clear").status(), IsOk());
  ASSERT_THAT(server_->Admin("/admin/seal", {{"sealed", true}}).status(), IsOk());
  EXPECT_THAT(kms->Probe(Ctx()).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Vault is sealed")));
  EXPECT_EQ(server_->Requests()->size(), 3u);  // max_attempts.
  ASSERT_THAT(server_->Admin("/admin/seal", {{"sealed", false}}).status(), IsOk());
  for (const char* kind : {"429", "500", "412", "standby", "no-active", "drop"}) {
    ASSERT_THAT(server_->Admin("/admin/faults", {{"kind", kind}, {"count", 1}}).status(), IsOk());
    EXPECT_THAT(kms->Wrap(Dek(), Ctx()).status(), IsOk()) << kind;  // Healed by one retry.
  }
  ASSERT_THAT(server_->Admin("/admin/faults", {{"kind", "standby"}, {"count", -1}}).status(),
              IsOk());
  EXPECT_THAT(kms->Probe(Ctx()).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("not followed")));
  ASSERT_THAT(server_->Admin("/admin/faults/clear").status(), IsOk());
  // A rotation (not idempotent) is not resent after a 500: Vault may have acted.
  auto rotator = WithToken(0, true);
  ASSERT_THAT(server_
                  ->Admin("/admin/faults",
                          {{"kind", "500"}, {"count", 1}, {"path", "transit/keys/k8s/rotate"}})
                  .status(),
              IsOk());
  EXPECT_THAT(rotator->RotateKek(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_THAT(server_
                  ->Admin("/admin/faults",
                          {{"kind", "429"}, {"count", 1}, {"path", "transit/keys/k8s/rotate"}})
                  .status(),
              IsOk());
  EXPECT_THAT(rotator->RotateKek(Ctx()), IsOk());  // A 429 proves Vault did not act: resent.
  EXPECT_EQ(server_->Count("rotate"), 1);
}

TEST_F(VaultKmsTest, ADisabledDeletedOrForeignKeyIsARevocation) {
  auto kms = WithToken();
  ASSERT_THAT(server_->Admin("/admin/keys/disable", {{"name", "k8s"}}).status(), IsOk());
  absl::Status s = kms->Probe(Ctx()).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_TRUE(IsKeyRevokedError(s));
  ASSERT_THAT(
      server_->Admin("/admin/keys/disable", {{"name", "k8s"}, {"disabled", false}}).status(),
      IsOk());
  ASSERT_THAT(server_->Admin("/admin/keys/config", {{"name", "k8s"}, {"min_decryption_version", 5}})
                  .status(),
              IsOk());
  EXPECT_THAT(kms->Probe(Ctx()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("disabled")));
  ASSERT_THAT(server_->Admin("/admin/keys/delete", {{"name", "k8s"}}).status(), IsOk());
  EXPECT_THAT(kms->Probe(Ctx()).status(), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(server_->Admin("/admin/keys", {{"name", "k8s"}}).status(), IsOk());
  auto foreign = server_->NewToken("other");
  ASSERT_THAT(foreign.status(), IsOk());
  EXPECT_THAT(Make(Options(TokenAuth(*foreign)))->Wrap(Dek(), Ctx()).status(),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(VaultKmsTest, TheTokenFileIsReReadOnA403AndARevokedTokenIsRefused) {
  auto first = server_->NewToken("k8s");
  ASSERT_THAT(first.status(), IsOk());
  VaultKmsOptions options = Options(TokenAuth(*first));
  const std::string token_file = options.auth.token_file;
  auto kms = Make(std::move(options));
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  ASSERT_THAT(server_->Admin("/admin/tokens/revoke", {{"token", *first}}).status(), IsOk());
  auto second = server_->NewToken("k8s");
  WriteSecret("token", *second);
  EXPECT_THAT(kms->Probe(Ctx()).status(), IsOk());  // 403, re-read, retried once.
  EXPECT_EQ(server_->Count("lookup-self"), 2);
  ASSERT_THAT(server_->Admin("/admin/tokens/revoke", {{"token", *second}}).status(), IsOk());
  EXPECT_THAT(kms->Probe(Ctx()).status(), StatusIs(absl::StatusCode::kPermissionDenied));
  // A token file that cannot be read is a local outage, not a revocation.
  ASSERT_EQ(unlink(token_file.c_str()), 0);
  EXPECT_THAT(kms->Probe(Ctx()).status(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(VaultKmsTest, AShortTtlTokenIsRenewedAtTwoThirdsOfItsTtl) {
  auto kms = WithToken(/*ttl=*/300);
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  clock_.Advance(absl::Seconds(150));  // Half: no renewal yet.
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  EXPECT_EQ(server_->Count("renew-self"), 0);
  clock_.Advance(absl::Seconds(60));  // Past two thirds.
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  EXPECT_EQ(server_->Count("renew-self"), 1);
  auto log = server_->Requests();
  for (const auto& r : *log) {
    if (r["op"] == "renew-self") {
      EXPECT_EQ(r["granted"], 300);  // Asked for its TTL again.
    }
  }
}

TEST_F(VaultKmsTest, AppRoleLogsInRenewsAndLogsInAgainWhenTheTokenIsRevoked) {
  ASSERT_THAT(server_
                  ->Admin("/admin/approle", {{"role_id", "rid"},
                                             {"secret_id", "sid-1234"},
                                             {"keys", {"transit/k8s"}},
                                             {"ttl", 600}})
                  .status(),
              IsOk());
  VaultAuthOptions auth;
  auth.method = LoginMethod::kAppRole;
  auth.approle_role_id = "rid";
  auth.approle_secret_id_file = WriteSecret("secret-id", "sid-1234");
  auto kms = Make(Options(auth));
  ASSERT_THAT(kms->Wrap(Dek(), Ctx()).status(), IsOk());
  EXPECT_EQ(server_->Count("login-approle"), 1);
  clock_.Advance(absl::Seconds(500));
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  EXPECT_EQ(server_->Count("renew-self"), 1);
  clock_.Advance(absl::Seconds(700));  // Expired by our clock: log in again.
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  EXPECT_EQ(server_->Count("login-approle"), 2);
  WriteSecret("secret-id", "wrong");
  ASSERT_THAT(server_->Admin("/admin/requests/clear").status(), IsOk());
  clock_.Advance(absl::Seconds(700));
  EXPECT_THAT(kms->Probe(Ctx()).status(), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(VaultKmsTest, KubernetesLoginReReadsTheJwtAtEachLoginAndLogsInAgainOnA403) {
  ASSERT_THAT(
      server_->Admin("/admin/k8s", {{"role", "kms"}, {"jwt", "eyJ.one"}, {"keys", {"*"}}}).status(),
      IsOk());
  VaultAuthOptions auth;
  auth.method = LoginMethod::kKubernetes;
  auth.k8s_role = "kms";
  auth.k8s_token_file = WriteSecret("sa-token", "eyJ.one");
  auto kms = Make(Options(auth));
  ASSERT_THAT(kms->Probe(Ctx()).status(), IsOk());
  // kubelet rotates the projected token; the old Vault token gets revoked.
  ASSERT_THAT(
      server_->Admin("/admin/k8s", {{"role", "kms"}, {"jwt", "eyJ.two"}, {"keys", {"*"}}}).status(),
      IsOk());
  WriteSecret("sa-token", "eyJ.two");
  ASSERT_THAT(server_->Admin("/admin/reset").status(), IsOk());  // Revokes every issued token.
  ASSERT_THAT(server_->Admin("/admin/keys", {{"name", "k8s"}}).status(), IsOk());
  ASSERT_THAT(
      server_->Admin("/admin/k8s", {{"role", "kms"}, {"jwt", "eyJ.two"}, {"keys", {"*"}}}).status(),
      IsOk());
  EXPECT_THAT(kms->Probe(Ctx()).status(), IsOk());
  EXPECT_EQ(server_->Count("login-kubernetes"), 1);  // Since the reset: the re-login.
}

// Audit (issue 13): each Vault request attempt is reported with the key's path (namespace
// included), the kek_id when known and Vault's request_id.
TEST_F(VaultKmsTest, EachAttemptIsReportedWithTheKeyPathKekIdAndVaultsRequestId) {
  ASSERT_THAT(server_->Admin("/admin/keys", {{"name", "k8s"}, {"namespace", "team-a/c1"}}).status(),
              IsOk());
  auto token = server_->NewToken("k8s");
  RecordingObserver observer;
  VaultKmsOptions o = Options(TokenAuth(*token));
  o.namespace_ = "team-a/c1";
  o.observer = &observer;
  auto kms = Make(std::move(o));
  auto wrapped = kms->Wrap(Dek(), Ctx());
  ASSERT_THAT(wrapped.status(), IsOk());
  auto back = kms->Unwrap(*wrapped, Ctx());
  ASSERT_THAT(back.status(), IsOk());
  std::vector<RecordedAttempt> transit;
  for (const RecordedAttempt& a : observer.attempts()) {
    if (a.operation == "transit encrypt" || a.operation == "transit decrypt") transit.push_back(a);
  }
  ASSERT_EQ(transit.size(), 2u);
  EXPECT_EQ(transit[0].operation, "transit encrypt");
  EXPECT_EQ(transit[0].key_id, wrapped->kek_id);  // Read from the answer's vault:v1: ciphertext.
  EXPECT_EQ(transit[1].operation, "transit decrypt");
  EXPECT_EQ(transit[1].key_id, wrapped->kek_id);
  for (const RecordedAttempt& a : transit) {
    EXPECT_EQ(a.backend, "vault");
    EXPECT_EQ(a.key, "team-a/c1/transit/keys/k8s");
    EXPECT_EQ(a.code, absl::StatusCode::kOk);
    EXPECT_EQ(a.http_status, 200);
    EXPECT_EQ(a.attempt, 1);
    EXPECT_FALSE(a.will_retry);
    EXPECT_EQ(a.request_id.size(), 36u);  // A UUID, as the server sent.
  }
  EXPECT_NE(transit[0].request_id, transit[1].request_id);
}

TEST_F(VaultKmsTest, NamespaceGoesInTheHeaderAndTheKekId) {
  ASSERT_THAT(server_->Admin("/admin/keys", {{"name", "k8s"}, {"namespace", "team-a/c1"}}).status(),
              IsOk());
  auto token = server_->NewToken("k8s");
  VaultKmsOptions o = Options(TokenAuth(*token));
  o.namespace_ = "/team-a/c1/";
  auto kms = Make(std::move(o));
  auto wrapped = kms->Wrap(Dek(), Ctx());
  ASSERT_THAT(wrapped.status(), IsOk());
  EXPECT_EQ(wrapped->kek_id, "vault:team-a/c1/transit/k8s/v1");
  EXPECT_THAT(kms->Unwrap(*wrapped, Ctx()).status(), IsOk());
}

TEST_F(VaultKmsTest, AClientCertificateIsPresentedForMutualTlsWhenConfigured) {
  auto token = server_->NewToken("k8s");
  VaultKmsOptions o = Options(TokenAuth(*token));
  o.client_cert_file = server_->client_cert();
  o.client_key_file = server_->client_key();
  ASSERT_THAT(Make(std::move(o))->Probe(Ctx()).status(), IsOk());
  auto log = server_->Requests();
  ASSERT_THAT(log.status(), IsOk());
  ASSERT_FALSE(log->empty());
  for (const auto& r : *log) EXPECT_EQ(r["client_cn"], "kms-plugin");
  VaultKmsOptions half = Options(TokenAuth(*token));
  half.client_cert_file = server_->client_cert();
  EXPECT_THAT(VaultKms::Create(std::move(half), &clock_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("both")));
}

TEST_F(VaultKmsTest, PlainHttpIsRefusedUnlessTheTestsOnlyFlagIsSet) {
  auto token = server_->NewToken("k8s");
  VaultKmsOptions o = Options(TokenAuth(*token));
  o.addr = server_->http_addr();
  EXPECT_THAT(
      VaultKms::Create(std::move(o), &clock_).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--vault-insecure-http-for-tests")));
  VaultKmsOptions insecure = Options(TokenAuth(*token));
  insecure.addr = server_->http_addr();
  insecure.allow_insecure_http = true;
  EXPECT_THAT(Make(std::move(insecure))->Wrap(Dek(), Ctx()).status(), IsOk());
  VaultKmsOptions bad = Options(TokenAuth(*token));
  bad.key = "a/b";
  EXPECT_THAT(VaultKms::Create(std::move(bad), &clock_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--vault-key")));
}

}  // namespace
}  // namespace kmsplugin::vault
