// GcpKms (kms/gcp/gcp_kms.h) against a FakeHttpClient: the golden key_id and AAD format, the
// request fields (every CRC32C), the integrity checks and their one retry, kek_id checks without
// a remote call, error classification (revocation vs outage), Probe and RotateKek.
#include "kms/gcp/gcp_kms.h"

#include <memory>
#include <string>
#include <vector>

#include "crypto/crc32c.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_clock.h"
#include "tests/gcp/gcp_test_util.h"
#include "tests/matchers.h"

namespace kmsplugin::gcp {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeCloudKms;
using ::kmsplugin::testing::FakeHttpClient;
using ::kmsplugin::testing::GoogleError;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::kTestKey;
using ::kmsplugin::testing::MakeResponse;
using ::kmsplugin::testing::RecordedRequest;
using ::kmsplugin::testing::StaticTokenSource;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kV1 = std::string(kTestKey) + "/cryptoKeyVersions/1";

struct Harness {
  FakeClock clock;
  FakeHttpClient* http = nullptr;
  StaticTokenSource* tokens = nullptr;
  std::unique_ptr<GcpKms> kms;

  explicit Harness(FakeHttpClient::Handler handler, std::string key = kTestKey) {
    GcpKmsOptions o;
    o.key = std::move(key);
    o.endpoint = "https://kms.test/";
    auto http_owned = std::make_unique<FakeHttpClient>(std::move(handler));
    auto tokens_owned = std::make_unique<StaticTokenSource>();
    http = http_owned.get();
    tokens = tokens_owned.get();
    o.http = std::move(http_owned);
    o.tokens = std::move(tokens_owned);
    o.retry.base_delay = absl::Milliseconds(1);
    o.retry.max_delay = absl::Milliseconds(2);
    auto created = GcpKms::Create(std::move(o), &clock);
    EXPECT_THAT(created, IsOk());
    if (created.ok()) kms = *std::move(created);
  }
  CallContext Ctx() const { return CallContext::WithTimeout(absl::Seconds(10)); }
};

TEST(GcpKmsTest, KeyIdAndAssociatedDataHaveTheGoldenFormat) {
  EXPECT_EQ(GcpKms::MakeKekId(kV1),
            "gcp:projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1");
  EXPECT_EQ(GcpKms::AssociatedData(kTestKey),
            "kms-plugin/kubernetes-kms-v2:projects/p/locations/global/keyRings/r/cryptoKeys/k");
  FakeCloudKms fake;
  Harness h([&fake](const RecordedRequest& r) { return fake.Answer(r); });
  const SecretBytes dek = SecretBytes::CopyFrom(std::string(32, 'k'));
  auto wrapped = h.kms->Wrap(dek, h.Ctx());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->kek_id, "gcp:" + kV1);
  EXPECT_EQ(wrapped->blob, "CT:" + std::string(32, 'k'));
  ASSERT_EQ(h.http->requests().size(), 1U);
  const auto reqs = h.http->requests();
  const RecordedRequest& r = reqs[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://kms.test/v1/" + std::string(kTestKey) + ":encrypt");
  EXPECT_EQ(r.Header("authorization"), "Bearer ya29.static-0");
  // Golden body: base64 of the key and of the AAD, and the CRC32Cs as decimal strings.
  EXPECT_EQ(r.body,
            "{\"plaintext\":\"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=\","
            "\"plaintextCrc32c\":\"" +
                std::to_string(Crc32c(std::string(32, 'k'))) +
                "\","
                "\"additionalAuthenticatedData\":\"a21zLXBsdWdpbi9rdWJlcm5ldGVzLWttcy12Mjpwcm9qZWN0"
                "cy9wL2xvY2F0aW9ucy9nbG9iYWwva2V5UmluZ3Mvci9jcnlwdG9LZXlzL2s=\","
                "\"additionalAuthenticatedDataCrc32c\":\"" +
                std::to_string(Crc32c(GcpKms::AssociatedData(kTestKey))) + "\"}");
  auto back = h.kms->Unwrap(*wrapped, h.Ctx());
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->Reveal(), std::string(32, 'k'));
  const nlohmann::json dec = nlohmann::json::parse(h.http->requests()[1].body);
  EXPECT_EQ(h.http->requests()[1].url, "https://kms.test/v1/" + std::string(kTestKey) + ":decrypt");
  EXPECT_EQ(dec["ciphertextCrc32c"], std::to_string(Crc32c(wrapped->blob)));
  EXPECT_EQ(dec["additionalAuthenticatedData"], Base64Encode(GcpKms::AssociatedData(kTestKey)));
  EXPECT_EQ(dec["additionalAuthenticatedDataCrc32c"],
            std::to_string(Crc32c(GcpKms::AssociatedData(kTestKey))));
}

TEST(GcpKmsTest, CreateRefusesMalformedKeysAndEndpointsWithoutARemoteCall) {
  FakeClock clock;
  for (const std::string key :
       {"", "projects/p", "projects/p/locations/l/keyRings/r",
        "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
        "projects//locations/l/keyRings/r/cryptoKeys/k",
        "projects/p/locations/l/keyrings/r/cryptoKeys/k"}) {
    GcpKmsOptions o;
    o.key = key;
    o.http = std::make_unique<FakeHttpClient>([](const RecordedRequest&) {
      ADD_FAILURE() << "no remote call";
      return MakeResponse(500, "");
    });
    o.tokens = std::make_unique<StaticTokenSource>();
    EXPECT_THAT(GcpKms::Create(std::move(o), &clock),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--gcp-key")))
        << key;
  }
  for (const std::string endpoint : {"http://kms.test", "kms.test", "https://"}) {
    GcpKmsOptions o;
    o.key = kTestKey;
    o.endpoint = endpoint;
    o.tokens = std::make_unique<StaticTokenSource>();
    EXPECT_THAT(GcpKms::Create(std::move(o), &clock),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--gcp-endpoint")));
  }
  EXPECT_TRUE(
      GcpKms::ValidKeyName("projects/my-proj/locations/europe-west1/keyRings/k8s/"
                           "cryptoKeys/etcd_kek.1"));
}

// An encrypt answer spoiled by `spoil` (applied to the JSON).
HttpResponse SpoiledEncrypt(const FakeCloudKms& fake, const RecordedRequest& r,
                            const std::function<void(nlohmann::json&)>& spoil) {
  HttpResponse good = fake.Answer(r);
  nlohmann::json doc = nlohmann::json::parse(good.body.Reveal());
  spoil(doc);
  return MakeResponse(200, doc.dump());
}

TEST(GcpKmsTest, AnIntegrityMismatchIsRetriedOnceThenIsAnOutage) {
  const std::vector<std::function<void(nlohmann::json&)>> spoilers = {
      [](nlohmann::json& d) { d["ciphertextCrc32c"] = "1"; },
      [](nlohmann::json& d) { d.erase("verifiedPlaintextCrc32c"); },
      [](nlohmann::json& d) { d["verifiedAdditionalAuthenticatedDataCrc32c"] = false; },
      [](nlohmann::json& d) {
        d["name"] =
            "projects/p/locations/global/keyRings/r/cryptoKeys/"
            "other/cryptoKeyVersions/1";
      },
      [](nlohmann::json& d) { d["name"] = std::string(kTestKey); },
  };
  for (size_t i = 0; i < spoilers.size(); ++i) {
    FakeCloudKms fake;
    int calls = 0;
    Harness once([&](const RecordedRequest& r) {
      return ++calls == 1 ? SpoiledEncrypt(fake, r, spoilers[i]) : fake.Answer(r);
    });
    auto wrapped = once.kms->Wrap(SecretBytes::CopyFrom("dek"), once.Ctx());
    EXPECT_THAT(wrapped, IsOk()) << i;
    EXPECT_EQ(calls, 2) << i;

    calls = 0;
    Harness always([&](const RecordedRequest& r) {
      ++calls;
      return SpoiledEncrypt(fake, r, spoilers[i]);
    });
    EXPECT_THAT(always.kms->Wrap(SecretBytes::CopyFrom("dek"), always.Ctx()),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("integrity")))
        << i;
    EXPECT_EQ(calls, 2) << i;
  }
  // Decrypt: a plaintextCrc32c mismatch.
  FakeCloudKms fake;
  int calls = 0;
  Harness h([&](const RecordedRequest& r) {
    HttpResponse a = fake.Answer(r);
    if (r.url.find(":decrypt") == std::string::npos) return a;
    ++calls;
    nlohmann::json doc = nlohmann::json::parse(a.body.Reveal());
    doc["plaintextCrc32c"] = "7";
    return MakeResponse(200, doc.dump());
  });
  auto wrapped = h.kms->Wrap(SecretBytes::CopyFrom("dek"), h.Ctx());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_THAT(h.kms->Unwrap(*wrapped, h.Ctx()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("plaintextCrc32c")));
  EXPECT_EQ(calls, 2);
}

TEST(GcpKmsTest, UnwrapRefusesKekIdsOfOtherKeysWithoutARemoteCall) {
  Harness h([](const RecordedRequest&) {
    ADD_FAILURE() << "no remote call";
    return MakeResponse(500, "");
  });
  const std::vector<std::string> kek_ids = {
      std::string("gcp:") + kTestKey,
      "gcp:" + std::string(kTestKey) + "/cryptoKeyVersions/",
      "gcp:" + std::string(kTestKey) + "/cryptoKeyVersions/0",
      "gcp:" + std::string(kTestKey) + "/cryptoKeyVersions/1x",
      "gcp:" + std::string(kTestKey) + "2/cryptoKeyVersions/1",
      "aws:" + kV1,
      kV1,
      "gcp:projects/p/locations/global/keyRings/r/cryptoKeys/other/cryptoKeyVersions/1"};
  for (const std::string& kek_id : kek_ids) {
    EXPECT_THAT(h.kms->Unwrap({kek_id, "CT:x"}, h.Ctx()),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not one of")))
        << kek_id;
  }
}

TEST(GcpKmsTest, ErrorsAreRevocationsOrOutagesAsCloudKmsMeansThem) {
  struct Case {
    HttpResponse answer;
    absl::StatusCode code;
    int calls;  // With 3 attempts.
  };
  std::vector<Case> cases;
  cases.push_back({GoogleError(400, "FAILED_PRECONDITION", "version is not enabled"),
                   absl::StatusCode::kFailedPrecondition, 1});
  cases.push_back({GoogleError(403, "PERMISSION_DENIED", "Permission denied"),
                   absl::StatusCode::kPermissionDenied, 1});
  cases.push_back(
      {GoogleError(404, "NOT_FOUND", "CryptoKey not found"), absl::StatusCode::kNotFound, 1});
  cases.push_back({GoogleError(400, "INVALID_ARGUMENT", "Decryption failed"),
                   absl::StatusCode::kInvalidArgument, 1});
  cases.push_back({GoogleError(429, "RESOURCE_EXHAUSTED", "Quota exceeded"),
                   absl::StatusCode::kUnavailable, 3});
  cases.push_back(
      {GoogleError(503, "UNAVAILABLE", "try again"), absl::StatusCode::kUnavailable, 3});
  cases.push_back({GoogleError(500, "INTERNAL", "oops"), absl::StatusCode::kUnavailable, 3});
  cases.push_back({GoogleError(409, "ABORTED", "conflict"), absl::StatusCode::kUnavailable, 3});
  cases.push_back(
      {MakeResponse(502, "<html>bad gateway</html>"), absl::StatusCode::kUnavailable, 3});
  for (const Case& c : cases) {
    int calls = 0;
    Harness h([&](const RecordedRequest&) {
      ++calls;
      return MakeResponse(c.answer.status, c.answer.body.Reveal());
    });
    auto wrapped = h.kms->Wrap(SecretBytes::CopyFrom("dek"), h.Ctx());
    EXPECT_THAT(wrapped, StatusIs(c.code)) << c.answer.status;
    EXPECT_EQ(calls, c.calls) << c.answer.status;
    EXPECT_EQ(
        IsKeyRevokedError(wrapped.status()),
        c.code != absl::StatusCode::kUnavailable && c.code != absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(wrapped.status().message()), HasSubstr("Cloud KMS encrypt"));
  }
  // A network failure: retried, then an outage.
  int calls = 0;
  Harness down([&](const RecordedRequest&) -> absl::StatusOr<HttpResponse> {
    ++calls;
    return absl::UnavailableError("connection refused");
  });
  EXPECT_THAT(down.kms->Probe(down.Ctx()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(calls, 3);
  // 401: the token is replaced once and the call repeated with the new one.
  FakeCloudKms fake;
  calls = 0;
  Harness h([&](const RecordedRequest& r) {
    return ++calls == 1 ? GoogleError(401, "UNAUTHENTICATED", "expired") : fake.Answer(r);
  });
  EXPECT_THAT(h.kms->Wrap(SecretBytes::CopyFrom("dek"), h.Ctx()), IsOk());
  EXPECT_EQ(h.tokens->invalidations.load(), 1);
  EXPECT_EQ(h.http->requests()[1].Header("authorization"), "Bearer ya29.static-1");
}

TEST(GcpKmsTest, ProbeReadsThePrimaryVersionAndRefusesADisabledOne) {
  FakeCloudKms fake;
  fake.version = 4;
  Harness h([&fake](const RecordedRequest& r) { return fake.Answer(r); });
  auto status = h.kms->Probe(h.Ctx());
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(status->kek_id, "gcp:" + std::string(kTestKey) + "/cryptoKeyVersions/4");
  EXPECT_THAT(status->description, HasSubstr("primary version 4"));
  EXPECT_EQ(h.http->requests()[0].method, "GET");
  EXPECT_EQ(h.http->requests()[0].url, "https://kms.test/v1/" + std::string(kTestKey));
  fake.state = "DISABLED";
  EXPECT_THAT(h.kms->Probe(h.Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("DISABLED")));
}

TEST(GcpKmsTest, RotateKekCreatesAVersionAndMakesItPrimary) {
  Harness h([](const RecordedRequest& r) {
    if (r.url.find(":updatePrimaryVersion") != std::string::npos) {
      return MakeResponse(200, nlohmann::json{{"name", kTestKey}}.dump());
    }
    return MakeResponse(200,
                        nlohmann::json{{"name", std::string(kTestKey) + "/cryptoKeyVersions/7"},
                                       {"state", "ENABLED"}}
                            .dump());
  });
  ASSERT_THAT(h.kms->RotateKek(h.Ctx()), IsOk());
  const auto reqs = h.http->requests();
  ASSERT_EQ(reqs.size(), 2U);
  EXPECT_EQ(reqs[0].url, "https://kms.test/v1/" + std::string(kTestKey) + "/cryptoKeyVersions");
  EXPECT_EQ(reqs[1].url, "https://kms.test/v1/" + std::string(kTestKey) + ":updatePrimaryVersion");
  EXPECT_EQ(reqs[1].body, R"({"cryptoKeyVersionId":"7"})");
  // Refused: returned as it is, once (creating a version is not repeated on a refusal).
  int calls = 0;
  Harness denied([&](const RecordedRequest&) {
    ++calls;
    return GoogleError(403, "PERMISSION_DENIED", "cloudkms.cryptoKeyVersions.create");
  });
  EXPECT_THAT(denied.kms->RotateKek(denied.Ctx()),
              StatusIs(absl::StatusCode::kPermissionDenied, Not(HasSubstr("ya29"))));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace kmsplugin::gcp
