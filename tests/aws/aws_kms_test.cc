// AwsKms against the python fake AWS server (tests/aws/fake_aws_server.py), which checks every
// request's SigV4 signature with botocore: wrap/unwrap, kek_id scheme and rotation, the error
// codes the plugin core relies on (outage versus revocation), retries through injected faults,
// each credential source of the default chain, and no secret in any log line.
#include "kms/aws/aws_kms.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/aws/aws_kms_fixture.h"
#include "tests/aws/fake_aws_server.h"
#include "tests/fakes/recording_observer.h"
#include "tests/matchers.h"

namespace kmsplugin::aws {
namespace {

using ::kmsplugin::testing::RecordedAttempt;
using ::kmsplugin::testing::RecordingObserver;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

TEST_F(AwsKmsTest, WrapThenUnwrapRoundTripsUnderTheKeyArnAndMaterial) {
  auto kms = Make();
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->kek_id, "aws:" + Arn() + "/" + Material());
  EXPECT_LE(wrapped->kek_id.size(), kMaxKekIdSize);
  absl::StatusOr<SecretBytes> key = kms->Unwrap(*wrapped, Ctx());
  ASSERT_THAT(key, IsOk());
  EXPECT_TRUE(key->ConstantTimeEquals(DataKey()));
}

TEST_F(AwsKmsTest, ProbeResolvesTheAliasAndAgreesWithWrap) {
  auto kms = Make();
  absl::StatusOr<KeyStatus> status = kms->Probe(Ctx());
  ASSERT_THAT(status, IsOk());
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(status->kek_id, wrapped->kek_id);
  EXPECT_THAT(status->kek_id,
              MatchesRegex("aws:arn:aws:kms:us-east-1:111122223333:key/[-0-9a-f]+/[0-9a-f]{64}"));
  EXPECT_THAT(status->description, HasSubstr(Arn()));
}

TEST_F(AwsKmsTest, KekIdIsTheSameForAliasKeyIdAndArnAndAcrossInstances) {
  std::string first;
  for (const std::string& id : {std::string("alias/k8s"), key_["key_id"].get<std::string>(), Arn(),
                                std::string("arn:aws:kms:us-east-1:111122223333:alias/k8s")}) {
    absl::StatusOr<KeyStatus> status = Make(Options(id))->Probe(Ctx());
    ASSERT_THAT(status, IsOk()) << id;
    if (first.empty()) first = status->kek_id;
    EXPECT_EQ(status->kek_id, first) << id;
  }
}

TEST_F(AwsKmsTest, OnDemandRotationGivesANewKekIdAndOldWrappedKeysStillUnwrap) {
  auto kms = Make();
  absl::StatusOr<WrappedKey> before = kms->Wrap(DataKey('a'), Ctx());
  ASSERT_THAT(before, IsOk());
  ASSERT_THAT(kms->RotateKek(Ctx()), IsOk());
  absl::StatusOr<KeyStatus> status = kms->Probe(Ctx());
  ASSERT_THAT(status, IsOk());
  EXPECT_NE(status->kek_id, before->kek_id);
  EXPECT_THAT(status->kek_id, StartsWith("aws:" + Arn() + "/"));
  absl::StatusOr<WrappedKey> after = kms->Wrap(DataKey('b'), Ctx());
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->kek_id, status->kek_id);
  absl::StatusOr<SecretBytes> old_key = kms->Unwrap(*before, Ctx());
  ASSERT_THAT(old_key, IsOk());
  EXPECT_TRUE(old_key->ConstantTimeEquals(DataKey('a')));
}

TEST_F(AwsKmsTest, AutomaticRotationIsSeenByWrapBeforeTheNextProbe) {
  auto kms = Make();
  absl::StatusOr<KeyStatus> status = kms->Probe(Ctx());
  ASSERT_THAT(status, IsOk());
  absl::StatusOr<nlohmann::json> rotated =
      server_->Admin("/admin/keys/" + key_["key_id"].get<std::string>() + "/rotate");
  ASSERT_THAT(rotated, IsOk());
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->kek_id, "aws:" + Arn() + "/" + (*rotated)["material_id"].get<std::string>());
  absl::StatusOr<KeyStatus> next = kms->Probe(Ctx());
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->kek_id, wrapped->kek_id);
}

TEST_F(AwsKmsTest, KeyWithoutMaterialIdsGetsAKekIdOfTheArnAlone) {
  absl::StatusOr<nlohmann::json> key =
      server_->Admin("/admin/keys", {{"alias", "old"}, {"report_material_ids", false}});
  ASSERT_THAT(key, IsOk());
  auto kms = Make(Options("alias/old"));
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->kek_id, "aws:" + (*key)["arn"].get<std::string>());
  absl::StatusOr<KeyStatus> status = kms->Probe(Ctx());
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(status->kek_id, wrapped->kek_id);
  EXPECT_THAT(kms->Unwrap(*wrapped, Ctx()), IsOk());
}

TEST_F(AwsKmsTest, EveryCallCarriesThePluginAndUserEncryptionContext) {
  AwsKmsOptions o = Options();
  o.encryption_context = {{"cluster", "prod-eu"}};
  auto kms = Make(std::move(o));
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(kms->Unwrap(*wrapped, Ctx()), IsOk());
  absl::StatusOr<nlohmann::json> log = server_->Requests();
  ASSERT_THAT(log, IsOk());
  int crypto_calls = 0;
  for (const auto& r : *log) {
    if (r["op"] != "Encrypt" && r["op"] != "Decrypt") continue;
    ++crypto_calls;
    EXPECT_EQ(r["context"],
              nlohmann::json({{"kms-plugin", "kubernetes-kms-v2"}, {"cluster", "prod-eu"}}));
    EXPECT_EQ(r["signed_headers"],
              nlohmann::json({"content-type", "host", "x-amz-date", "x-amz-target"}));
  }
  EXPECT_EQ(crypto_calls, 3);  // Encrypt, the check Decrypt, Unwrap's Decrypt.
}

TEST_F(AwsKmsTest, SequentialCallsReuseOneConnection) {
  auto kms = Make();
  for (int i = 0; i < 4; ++i) ASSERT_THAT(kms->Probe(Ctx()), IsOk());
  absl::StatusOr<nlohmann::json> log = server_->Requests();
  ASSERT_THAT(log, IsOk());
  std::set<int> ports;
  for (const auto& r : *log) {
    if (r["op"] == "DescribeKey") ports.insert(r["peer_port"].get<int>());
  }
  EXPECT_EQ(ports.size(), 1u);  // One TLS connection (same client port) for all four calls.
}

TEST_F(AwsKmsTest, ChangingTheEncryptionContextMakesOldBlobsInvalidArgument) {
  absl::StatusOr<WrappedKey> wrapped = Make()->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  AwsKmsOptions o = Options();
  o.encryption_context = {{"cluster", "other"}};
  EXPECT_THAT(Make(std::move(o))->Unwrap(*wrapped, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("InvalidCiphertext")));
}

TEST_F(AwsKmsTest, DisabledKeyIsFailedPreconditionForProbeWrapAndUnwrap) {
  auto kms = Make();
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(server_->Admin("/admin/keys/" + key_["key_id"].get<std::string>() + "/disable"),
              IsOk());
  absl::Status probe = kms->Probe(Ctx()).status();
  EXPECT_THAT(probe, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Disabled")));
  EXPECT_TRUE(IsKeyRevokedError(probe));
  EXPECT_THAT(kms->Wrap(DataKey(), Ctx()), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(kms->Unwrap(*wrapped, Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("DisabledException")));
}

TEST_F(AwsKmsTest, PendingDeletionAndUnknownKeysAreFailedPrecondition) {
  EXPECT_THAT(Make(Options("alias/missing"))->Probe(Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("NotFoundException")));
  auto kms = Make();
  ASSERT_THAT(
      server_->Admin("/admin/keys/" + key_["key_id"].get<std::string>() + "/schedule-deletion"),
      IsOk());
  EXPECT_THAT(kms->Probe(Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("PendingDeletion")));
  EXPECT_THAT(kms->Wrap(DataKey(), Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("KMSInvalidState")));
}

TEST_F(AwsKmsTest, DeniedDecryptIsPermissionDenied) {
  auto kms = Make();
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(server_->Admin("/admin/deny", {{"ops", {"Decrypt"}}}), IsOk());
  EXPECT_THAT(kms->Unwrap(*wrapped, Ctx()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("AccessDenied")));
  // Wrap checks that the blob opens, so it is refused too.
  EXPECT_THAT(kms->Wrap(DataKey(), Ctx()), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(AwsKmsTest, WrongSecretOrUnknownAccessKeyIsUnauthenticated) {
  env_["AWS_SECRET_ACCESS_KEY"] = "wrong-secret";
  EXPECT_THAT(Make()->Probe(Ctx()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("InvalidSignature")));
  env_["AWS_ACCESS_KEY_ID"] = "AKIDUNKNOWN";
  EXPECT_THAT(Make()->Probe(Ctx()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("UnrecognizedClient")));
}

TEST_F(AwsKmsTest, NoCredentialsAnywhereIsAnOutageNotARevocation) {
  env_.erase("AWS_ACCESS_KEY_ID");
  env_.erase("AWS_SECRET_ACCESS_KEY");
  absl::Status probe = Make()->Probe(Ctx()).status();
  EXPECT_THAT(probe, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no AWS credentials")));
  EXPECT_FALSE(IsKeyRevokedError(probe));
}

TEST_F(AwsKmsTest, TamperedBlobIsInvalidArgument) {
  auto kms = Make();
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  wrapped->blob.back() ^= 1;
  EXPECT_THAT(kms->Unwrap(*wrapped, Ctx()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("InvalidCiphertext")));
}

TEST_F(AwsKmsTest, KekIdsOfOtherBackendsOrRegionsAreFailedPreconditionWithoutARemoteCall) {
  auto kms = Make();
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());
  for (const std::string& id : {std::string("local:keyring/3"), std::string("aws:not-an-arn"),
                                std::string("aws:arn:aws:kms:eu-west-1:111122223333:key/abc"),
                                std::string("aws:arn:aws:s3:us-east-1:111122223333:key/abc"),
                                std::string("aws:arn:aws:kms:us-east-1:\xff:key/abc")}) {
    EXPECT_THAT(kms->Unwrap(WrappedKey{id, wrapped->blob}, Ctx()),
                StatusIs(absl::StatusCode::kFailedPrecondition))
        << id;
  }
  absl::StatusOr<nlohmann::json> log = server_->Requests();
  ASSERT_THAT(log, IsOk());
  EXPECT_TRUE(log->empty());
}

TEST_F(AwsKmsTest, BlobUnderTheKeyAnotherAliasPointsToIsRefusedWithoutADecryptCall) {
  absl::StatusOr<nlohmann::json> other = server_->Admin("/admin/keys", {{"alias", "before"}});
  ASSERT_THAT(other, IsOk());
  absl::StatusOr<WrappedKey> wrapped = Make(Options("alias/before"))->Wrap(DataKey('o'), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());
  // The plugin points at alias/k8s: it must not lend its role to another key of the account.
  EXPECT_THAT(Make()->Unwrap(*wrapped, Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("another key id")));
  absl::StatusOr<nlohmann::json> log = server_->Requests();
  ASSERT_THAT(log, IsOk());
  int decrypts = 0;
  for (const auto& r : *log) decrypts += r["op"] == "Decrypt" ? 1 : 0;
  EXPECT_EQ(decrypts, 0);
}

TEST_F(AwsKmsTest, ThrottlingAndServerErrorsAreRetriedUntilTheyPass) {
  auto kms = Make();
  Fault("throttle", 1, "DescribeKey");
  Fault("internal", 1, "DescribeKey");
  EXPECT_THAT(kms->Probe(Ctx()), IsOk());
  Fault("http500", 2, "Encrypt");
  EXPECT_THAT(kms->Wrap(DataKey(), Ctx()), IsOk());
  Fault("dependency-timeout", 1, "Decrypt");
  Fault("drop", 1, "Decrypt");
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
}

// Audit (issue 13): every HTTP attempt is reported, retries included, each with the request id
// the server sent (x-amzn-RequestId), so an audit line matches one CloudTrail event.
TEST_F(AwsKmsTest, AThrottledThenAnsweredCallReportsTwoAttemptsWithTheServersRequestIds) {
  RecordingObserver observer;
  AwsKmsOptions o = Options();
  o.observer = &observer;
  o.encryption_context = {{"team", "a"}};
  auto kms = Make(std::move(o));
  ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());
  Fault("throttle", 1, "DescribeKey");
  ASSERT_THAT(kms->Probe(Ctx()), IsOk());
  const std::vector<RecordedAttempt> attempts = observer.attempts();
  ASSERT_EQ(attempts.size(), 2u);
  absl::StatusOr<nlohmann::json> log = server_->Requests();
  ASSERT_THAT(log, IsOk());
  std::vector<std::string> sent_ids;
  for (const auto& r : *log) {
    if (r["op"] == "DescribeKey") sent_ids.push_back(r["request_id"].get<std::string>());
  }
  ASSERT_EQ(sent_ids.size(), 2u);
  EXPECT_NE(sent_ids[0], sent_ids[1]);
  for (int i = 0; i < 2; ++i) {
    const RecordedAttempt& a = attempts[i];
    EXPECT_EQ(a.backend, "aws");
    EXPECT_EQ(a.operation, "DescribeKey");
    EXPECT_EQ(a.key, "alias/k8s");
    EXPECT_EQ(a.encryption_context, "kms-plugin=kubernetes-kms-v2,team=a");
    EXPECT_EQ(a.attempt, i + 1);
    EXPECT_EQ(a.request_id, sent_ids[i]);
    EXPECT_EQ(a.uid, "test-uid");
  }
  EXPECT_EQ(attempts[0].code, absl::StatusCode::kUnavailable);
  EXPECT_EQ(attempts[0].error_class, "throttled");
  EXPECT_EQ(attempts[0].http_status, 400);
  EXPECT_TRUE(attempts[0].will_retry);
  EXPECT_EQ(attempts[1].code, absl::StatusCode::kOk);
  EXPECT_EQ(attempts[1].error_class, "ok");
  EXPECT_EQ(attempts[1].http_status, 200);
  EXPECT_FALSE(attempts[1].will_retry);
}

TEST_F(AwsKmsTest, WrapAndUnwrapReportTheirAttemptsWithTheKekId) {
  RecordingObserver observer;
  AwsKmsOptions o = Options();
  o.observer = &observer;
  auto kms = Make(std::move(o));
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  // Wrap: AWS's Encrypt answer does not say which key material it used, so that line has no
  // key_id; the Decrypt that checks the fresh blob reads it from its answer's KeyMaterialId.
  const std::vector<RecordedAttempt> wrap = observer.attempts();
  ASSERT_EQ(wrap.size(), 2u);
  EXPECT_EQ(wrap[0].operation, "Encrypt");
  EXPECT_EQ(wrap[0].key_id, "");
  EXPECT_EQ(wrap[1].operation, "Decrypt");
  EXPECT_EQ(wrap[1].key_id, wrapped->kek_id);
  // The alias is resolved (DescribeKey) before the first Unwrap: count the Decrypts only.
  ASSERT_THAT(kms->Probe(Ctx()), IsOk());
  observer.Clear();
  ASSERT_THAT(kms->Unwrap(*wrapped, Ctx()), IsOk());
  const std::vector<RecordedAttempt> attempts = observer.attempts();
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].operation, "Decrypt");
  EXPECT_EQ(attempts[0].key_id, wrapped->kek_id);
  EXPECT_EQ(attempts[0].encryption_context, "kms-plugin=kubernetes-kms-v2");
  EXPECT_FALSE(attempts[0].request_id.empty());
  // A persistent failure: max_attempts lines, the last one not retried.
  observer.Clear();
  Fault("http500", -1, "Decrypt");
  EXPECT_FALSE(kms->Unwrap(*wrapped, Ctx()).ok());
  const std::vector<RecordedAttempt> failed = observer.attempts();
  ASSERT_EQ(failed.size(), 3u);
  EXPECT_TRUE(failed[0].will_retry);
  EXPECT_TRUE(failed[1].will_retry);
  EXPECT_FALSE(failed[2].will_retry);
  EXPECT_EQ(failed[2].error_class, "unavailable");
  EXPECT_EQ(failed[2].http_status, 500);
}

TEST_F(AwsKmsTest, PersistentThrottlingIsUnavailableAnOutageNotARevocation) {
  auto kms = Make();
  Fault("throttle", -1);
  absl::Status s = kms->Probe(Ctx()).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("ThrottlingException")));
  EXPECT_FALSE(IsKeyRevokedError(s));
}

TEST_F(AwsKmsTest, DroppedConnectionsAreUnavailable) {
  auto kms = Make();
  Fault("drop", -1);
  EXPECT_THAT(kms->Probe(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(AwsKmsTest, SlowAnswerPastTheDeadlineIsDeadlineExceeded) {
  auto kms = Make();
  Fault("latency", 1, "DescribeKey", /*delay_ms=*/3000);
  const absl::Time start = absl::Now();
  EXPECT_THAT(kms->Probe(Ctx(absl::Milliseconds(300))),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(AwsKmsTest, UnreachableEndpointIsUnavailable) {
  AwsKmsOptions o = Options();
  o.endpoint = "https://127.0.0.1:1";
  EXPECT_THAT(Make(std::move(o))->Probe(Ctx()), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(AwsKmsTest, ServerCertificateIsVerifiedAgainstTheCaFile) {
  AwsKmsOptions o = Options();
  o.ca_file.clear();  // The system bundle does not know the test CA.
  EXPECT_THAT(Make(std::move(o))->Probe(Ctx()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("certificate")));
  AwsKmsOptions missing = Options();
  missing.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(AwsKms::Create(std::move(missing), RealClock::Get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(AwsKmsTest, CreateValidatesRegionKeyAndEncryptionContext) {
  AwsKmsOptions no_key = Options("");
  EXPECT_THAT(AwsKms::Create(std::move(no_key), RealClock::Get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  AwsKmsOptions bad_region = Options();
  bad_region.region = "Mars";
  EXPECT_THAT(AwsKms::Create(std::move(bad_region), RealClock::Get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  AwsKmsOptions reserved = Options();
  reserved.encryption_context = {{"kms-plugin", "x"}};
  EXPECT_THAT(AwsKms::Create(std::move(reserved), RealClock::Get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  AwsKmsOptions not_utf8 = Options();
  not_utf8.encryption_context = {{"cluster", "\xff\xfe"}};
  EXPECT_THAT(AwsKms::Create(std::move(not_utf8), RealClock::Get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEncryptionContext("a=1,b=x=y"),
              kmsplugin::testing::IsOkAndHolds(
                  ::testing::ElementsAre(std::pair<std::string, std::string>("a", "1"),
                                         std::pair<std::string, std::string>("b", "x=y"))));
  EXPECT_THAT(ParseEncryptionContext("a=1,a=2"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEncryptionContext("novalue"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(DefaultKmsEndpoint("eu-west-1", false), "https://kms.eu-west-1.amazonaws.com");
  EXPECT_EQ(DefaultKmsEndpoint("us-west-2", true), "https://kms-fips.us-west-2.amazonaws.com");
  EXPECT_EQ(DefaultKmsEndpoint("cn-north-1", false), "https://kms.cn-north-1.amazonaws.com.cn");
}

// --- Each credential source of the default chain, against the server's endpoints -------------

class AwsKmsCredentialSourceTest : public AwsKmsTest {
 protected:
  void SetUp() override {
    AwsKmsTest::SetUp();
    env_.erase("AWS_ACCESS_KEY_ID");
    env_.erase("AWS_SECRET_ACCESS_KEY");
    char tmpl[] = "/tmp/kmsp-aws-src-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& content) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }
  // Issued temporary access keys, from the server's log.
  std::string LastKmsAccessKey() {
    absl::StatusOr<nlohmann::json> log = server_->Requests();
    EXPECT_THAT(log, IsOk());
    std::string akid;
    for (const auto& r : *log) {
      if (r["service"] == "kms" && r.contains("access_key")) akid = r["access_key"];
    }
    return akid;
  }
  std::string dir_;
};

TEST_F(AwsKmsCredentialSourceTest, SharedCredentialsFileProfile) {
  env_["AWS_SHARED_CREDENTIALS_FILE"] = Write(
      "credentials", fmt::format("[ops]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                                 FakeAwsServer::kAccessKey, FakeAwsServer::kSecretKey));
  env_["AWS_PROFILE"] = "ops";
  EXPECT_THAT(Make()->Probe(Ctx()), IsOk());
  EXPECT_EQ(LastKmsAccessKey(), FakeAwsServer::kAccessKey);
}

TEST_F(AwsKmsCredentialSourceTest, WebIdentityAssumesTheRoleAtStsAndSignsWithTheSessionToken) {
  const std::string role = "arn:aws:iam::111122223333:role/kms-plugin";
  ASSERT_THAT(server_->Admin("/admin/sts", {{"role_arn", role}, {"token", "jwt-abc"}}), IsOk());
  env_["AWS_ROLE_ARN"] = role;
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = Write("token", "jwt-abc");
  env_["AWS_ENDPOINT_URL_STS"] = server_->kms_endpoint();  // Same HTTPS port, same CA.
  auto kms = Make();
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(kms->Unwrap(*wrapped, Ctx()), IsOk());
  absl::StatusOr<nlohmann::json> log = server_->Requests();
  ASSERT_THAT(log, IsOk());
  int sts_calls = 0;
  std::string issued;
  for (const auto& r : *log) {
    if (r["service"] == "sts") {
      ++sts_calls;
      issued = r["issued"];
    }
  }
  EXPECT_EQ(sts_calls, 1);  // Cached across the three KMS calls.
  EXPECT_EQ(LastKmsAccessKey(), issued);
  EXPECT_THAT(issued, StartsWith("ASIA"));
}

TEST_F(AwsKmsCredentialSourceTest, WebIdentityWithARejectedTokenIsUnauthenticated) {
  const std::string role = "arn:aws:iam::111122223333:role/kms-plugin";
  ASSERT_THAT(server_->Admin("/admin/sts", {{"role_arn", role}, {"token", "jwt-abc"}}), IsOk());
  env_["AWS_ROLE_ARN"] = role;
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = Write("token", "stolen");
  env_["AWS_ENDPOINT_URL_STS"] = server_->kms_endpoint();
  EXPECT_THAT(Make()->Probe(Ctx()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("InvalidIdentityToken")));
}

TEST_F(AwsKmsCredentialSourceTest, ExpiredSessionCredentialsAreRefreshedOnceAndTheCallSucceeds) {
  const std::string role = "arn:aws:iam::111122223333:role/kms-plugin";
  ASSERT_THAT(server_->Admin("/admin/sts", {{"role_arn", role}, {"token", "jwt-abc"}}), IsOk());
  env_["AWS_ROLE_ARN"] = role;
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = Write("token", "jwt-abc");
  env_["AWS_ENDPOINT_URL_STS"] = server_->kms_endpoint();
  auto kms = Make();
  ASSERT_THAT(kms->Probe(Ctx()), IsOk());
  const std::string first = LastKmsAccessKey();
  ASSERT_THAT(server_->Admin("/admin/credentials/expire", {{"access_key", first}}), IsOk());
  ASSERT_THAT(kms->Probe(Ctx()), IsOk());
  EXPECT_NE(LastKmsAccessKey(), first);
}

TEST_F(AwsKmsCredentialSourceTest, ContainerCredentialsWithTheAuthorizationTokenFile) {
  ASSERT_THAT(server_->Admin("/admin/container",
                             {{"path", "/v1/credentials"}, {"token", "pod-identity-token"}}),
              IsOk());
  env_["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server_->http_base() + "/v1/credentials";
  env_["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = Write("pod-token", "pod-identity-token\n");
  EXPECT_THAT(Make()->Probe(Ctx()), IsOk());
  EXPECT_THAT(LastKmsAccessKey(), StartsWith("ASIA"));
}

TEST_F(AwsKmsCredentialSourceTest, ImdsV2InstanceRole) {
  env_.erase("AWS_EC2_METADATA_DISABLED");
  env_["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server_->http_base();
  ASSERT_THAT(server_->Admin("/admin/imds", {{"role", "node-role"}}), IsOk());
  EXPECT_THAT(Make()->Probe(Ctx()), IsOk());
  EXPECT_THAT(LastKmsAccessKey(), StartsWith("ASIA"));
}

// --- Secrets never reach the log --------------------------------------------------------------

TEST_F(AwsKmsCredentialSourceTest, NoSecretTokenOrPlaintextInAnyLogLine) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  const std::string role = "arn:aws:iam::111122223333:role/kms-plugin";
  ASSERT_THAT(server_->Admin("/admin/sts", {{"role_arn", role}, {"token", "jwt-SECRET-TOKEN"}}),
              IsOk());
  env_["AWS_ROLE_ARN"] = role;
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = Write("token", "jwt-SECRET-TOKEN");
  env_["AWS_ENDPOINT_URL_STS"] = server_->kms_endpoint();
  auto kms = Make();
  const SecretBytes plaintext = SecretBytes::CopyFrom("PLAINTEXT-DATA-KEY-0123456789abc");
  absl::StatusOr<WrappedKey> wrapped = kms->Wrap(plaintext, Ctx());
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(kms->Unwrap(*wrapped, Ctx()), IsOk());
  Fault("throttle", 1);
  ASSERT_THAT(kms->Probe(Ctx()), IsOk());
  ASSERT_THAT(server_->Admin("/admin/deny", {{"ops", {"Decrypt"}}}), IsOk());
  EXPECT_THAT(kms->Unwrap(*wrapped, Ctx()), Not(IsOk()));
  spdlog::set_default_logger(previous);

  const std::string log = captured.str();
  EXPECT_THAT(log, HasSubstr("AWS credentials from"));  // The capture did see our lines.
  for (const std::string& secret :
       {std::string("jwt-SECRET-TOKEN"), std::string("PLAINTEXT-DATA-KEY"),
        Base64Encode("PLAINTEXT-DATA-KEY-0123456789abc").substr(0, 20), std::string("FQoG"),
        std::string("Authorization"), std::string("Signature="),
        std::string(FakeAwsServer::kSecretKey)}) {
    EXPECT_THAT(log, Not(HasSubstr(secret))) << secret;
  }
}

}  // namespace
}  // namespace kmsplugin::aws
