// AwsKms guards from the security review, against the python fake AWS server: Unwrap lends the
// plugin's role only to the configured key (no Decrypt call for any other key_id); transient key
// states are an outage and only owner-chosen ones a revocation; a plain-http endpoint needs the
// tests-only option; client and remote text reaches messages only printable and bounded; a
// missing credential source is an outage.
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aws/aws_kms_fixture.h"
#include "tests/fakes/fake_http_client.h"

namespace kmsplugin::aws {
namespace {

using ::testing::HasSubstr;

class AwsKmsGuardTest : public AwsKmsTest {
 protected:
  // Requests of `op` in the server's log since the last clear, refused ones included.
  int Calls(const std::string& op) {
    absl::StatusOr<nlohmann::json> log = server_->Requests();
    EXPECT_THAT(log, IsOk());
    int n = 0;
    for (const auto& r : *log) n += r["op"] == op ? 1 : 0;
    return n;
  }
  std::string KeyId() const { return key_["key_id"].get<std::string>(); }
  void SetState(const std::string& state) {
    ASSERT_THAT(server_->Admin("/admin/keys/" + KeyId() + "/state", {{"state", state}}), IsOk());
  }
};

TEST_F(AwsKmsGuardTest, KekIdsNamingAnotherAccountPartitionKeyOrAliasAreRefusedWithoutADecrypt) {
  ASSERT_THAT(server_->Admin("/admin/keys", {{"alias", "other"}}), IsOk());
  absl::StatusOr<WrappedKey> theirs = Make(Options("alias/other"))->Wrap(DataKey('o'), Ctx());
  ASSERT_THAT(theirs, IsOk());
  auto kms = Make();  // alias/k8s, not resolved yet.
  absl::StatusOr<WrappedKey> mine = kms->Wrap(DataKey(), Ctx());
  ASSERT_THAT(mine, IsOk());
  ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());

  const std::string arn = Arn();  // arn:aws:kms:us-east-1:111122223333:key/<id>
  std::string other_account = arn;
  other_account.replace(other_account.find("111122223333"), 12, "444455556666");
  const std::string other_partition = "arn:aws-us-gov" + arn.substr(std::string("arn:aws").size());
  const std::map<std::string, std::string> refused = {
      {"another key id", theirs->kek_id},
      {"another account", "aws:" + other_account + "/" + Material()},
      {"another partition", "aws:" + other_partition},
      {"not a KMS key ARN", "aws:arn:aws:kms:us-east-1:111122223333:alias/other"},
  };
  for (const auto& [why, kek_id] : refused) {
    for (const std::string& blob : {theirs->blob, mine->blob}) {
      EXPECT_THAT(kms->Unwrap(WrappedKey{kek_id, blob}, Ctx()),
                  StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(why)))
          << kek_id;
    }
  }
  EXPECT_EQ(Calls("Decrypt"), 0);
  ASSERT_THAT(kms->Unwrap(*mine, Ctx()), IsOk());
  EXPECT_EQ(Calls("Decrypt"), 1);
}

TEST_F(AwsKmsGuardTest, TheConfiguredKeyIsResolvedOnceAndAKeyArnNeedsNoResolving) {
  absl::StatusOr<WrappedKey> wrapped = Make()->Wrap(DataKey(), Ctx());
  ASSERT_THAT(wrapped, IsOk());
  ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());
  auto by_alias = Make();
  ASSERT_THAT(by_alias->Unwrap(*wrapped, Ctx()), IsOk());
  ASSERT_THAT(by_alias->Unwrap(*wrapped, Ctx()), IsOk());
  EXPECT_EQ(Calls("DescribeKey"), 1);
  ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());
  auto by_arn = Make(Options(Arn()));
  EXPECT_THAT(by_arn->Unwrap(WrappedKey{"aws:" + Arn() + "0", wrapped->blob}, Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(by_arn->Unwrap(*wrapped, Ctx()), IsOk());
  EXPECT_EQ(Calls("DescribeKey"), 0);
  EXPECT_EQ(Calls("Decrypt"), 1);
}

TEST_F(AwsKmsGuardTest, TransientKeyStatesAreAnOutageAndOwnerChosenStatesARevocation) {
  auto kms = Make();
  for (const std::string state : {"Unavailable", "Updating", "Creating"}) {
    SetState(state);
    absl::Status probe = kms->Probe(Ctx()).status();
    EXPECT_THAT(probe, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(state))) << state;
    EXPECT_FALSE(IsKeyRevokedError(probe)) << state;
  }
  for (const std::string state : {"Disabled", "PendingDeletion", "PendingImport"}) {
    SetState(state);
    absl::Status probe = kms->Probe(Ctx()).status();
    EXPECT_THAT(probe, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(state)))
        << state;
    EXPECT_TRUE(IsKeyRevokedError(probe)) << state;
  }
  SetState("Enabled");
  EXPECT_THAT(kms->Probe(Ctx()), IsOk());
}

TEST_F(AwsKmsGuardTest, APlainHttpEndpointIsRefusedUnlessAllowedForTests) {
  AwsKmsOptions o = Options();
  o.endpoint = server_->http_base();
  EXPECT_THAT(AwsKms::Create(std::move(o), RealClock::Get()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--aws-insecure-http-for-tests")));
  AwsKmsOptions allowed = Options();
  allowed.endpoint = server_->http_base();
  allowed.allow_insecure_http = true;
  EXPECT_THAT(AwsKms::Create(std::move(allowed), RealClock::Get()), IsOk());
}

TEST_F(AwsKmsGuardTest, ClientKekIdsReachErrorsOnlyPrintableAndBounded) {
  auto kms = Make();
  const std::string tail = "\n\x1b[31m\"\\\xff" + std::string(5000, 'A');
  for (const std::string& kek_id :
       {"aws:arn:aws:kms:us-east-1:111122223333:key/" + tail, "local:" + tail, "aws:" + tail}) {
    for (const std::string& blob : {std::string(), std::string("blob")}) {
      absl::Status s = kms->Unwrap(WrappedKey{kek_id, blob}, Ctx()).status();
      ASSERT_FALSE(s.ok());
      EXPECT_TRUE(PrintableAscii(std::string(s.message()))) << s.message();
      EXPECT_LT(s.message().size(), 1024u);
    }
  }
}

TEST_F(AwsKmsGuardTest, RemoteTextInAwsAnswersReachesErrorsOnlyPrintableAndBounded) {
  const std::string hostile = "x\n\x1b[2J\xc3\xbf" + std::string(3000, 'y');  // Valid UTF-8.
  auto describe = [&](const RecordedRequest&) {
    nlohmann::json meta = {{"Arn", "arn:aws:kms:us-east-1:111122223333:key/k"},
                           {"KeyState", hostile},
                           {"KeyUsage", "ENCRYPT_DECRYPT"}};
    return MakeResponse(200, nlohmann::json({{"KeyMetadata", meta}}).dump());
  };
  auto error = [&](const RecordedRequest&) {
    return MakeResponse(400, nlohmann::json({{"__type", hostile}, {"message", hostile}}).dump(),
                        {{"x-amzn-requestid", hostile + "\xff"}});
  };
  for (const FakeHttpClient::Handler& handler : {FakeHttpClient::Handler(describe),
                                          FakeHttpClient::Handler(error)}) {
    AwsKmsOptions o = Options();
    o.endpoint = "https://kms.us-east-1.amazonaws.com";
    o.http = std::make_unique<FakeHttpClient>(handler);
    o.retry.max_attempts = 1;
    absl::Status s = Make(std::move(o))->Probe(Ctx()).status();
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(PrintableAscii(std::string(s.message()))) << s.message();
    EXPECT_LT(s.message().size(), 1024u);
  }
}

TEST_F(AwsKmsGuardTest, AMissingWebIdentityTokenFileIsAnOutageWithoutAnStsCall) {
  env_.erase("AWS_ACCESS_KEY_ID");
  env_.erase("AWS_SECRET_ACCESS_KEY");
  env_["AWS_ROLE_ARN"] = "arn:aws:iam::111122223333:role/kms-plugin";
  env_["AWS_WEB_IDENTITY_TOKEN_FILE"] = "/nonexistent/kmsp-token";
  env_["AWS_ENDPOINT_URL_STS"] = server_->kms_endpoint();
  ASSERT_THAT(server_->Admin("/admin/requests/clear"), IsOk());
  absl::Status probe = Make()->Probe(Ctx()).status();
  EXPECT_THAT(probe, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("token file")));
  EXPECT_FALSE(IsKeyRevokedError(probe));
  EXPECT_EQ(Calls("sts") + Calls("AssumeRoleWithWebIdentity"), 0);
}

}  // namespace
}  // namespace kmsplugin::aws
