// AzureKms (kms/azure/azure_kms.h) against a FakeHttpClient playing Key Vault: the algorithm
// follows the key type, Unwrap names the version of the kek_id and refuses other keys without a
// call, the current version is followed (or pinned), rotate, the 401 challenge's scope, and the
// error classification (revocation vs outage).
#include "kms/azure/azure_kms.h"

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_http_client.h"
#include "tests/matchers.h"

namespace kmsplugin::azure {
namespace {

using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeHttpClient;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::MakeResponse;
using ::kmsplugin::testing::RecordedRequest;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kVault[] = "https://myvault.vault.azure.net";
constexpr char kV1[] = "11111111111111111111111111111111";
constexpr char kV2[] = "22222222222222222222222222222222";

// A token source that counts fetches and invalidations.
class CountingTokens final : public TokenSource {
 public:
  std::string_view Name() const override { return "test"; }
  absl::StatusOr<AccessToken> Fetch(const CallContext&) override {
    absl::MutexLock lock(&mu_);
    ++fetches;
    return AccessToken{SecretBytes::CopyFrom("tok-" + std::to_string(fetches)),
                       absl::InfiniteFuture(), "test", ""};
  }
  void Invalidate() override {
    absl::MutexLock lock(&mu_);
    ++invalidations;
  }
  absl::Mutex mu_;
  int fetches ABSL_GUARDED_BY(mu_) = 0;
  int invalidations ABSL_GUARDED_BY(mu_) = 0;
};

// Key Vault as far as these tests need it: one key, its current version, its type.
struct FakeVault {
  absl::Mutex mu;
  std::string version ABSL_GUARDED_BY(mu) = kV1;
  std::string kty ABSL_GUARDED_BY(mu) = "RSA";
  bool enabled ABSL_GUARDED_BY(mu) = true;
  std::string host ABSL_GUARDED_BY(mu) = kVault;
  // A non-empty status answers every crypto call with it (and this body/headers).
  int fail_status ABSL_GUARDED_BY(mu) = 0;
  std::string fail_body ABSL_GUARDED_BY(mu);
  std::vector<HttpHeader> fail_headers ABSL_GUARDED_BY(mu);
  int fail_count ABSL_GUARDED_BY(mu) = 0;

  absl::StatusOr<HttpResponse> Answer(const RecordedRequest& r) {
    absl::MutexLock lock(&mu);
    const std::string path = r.url.substr(0, r.url.find('?'));
    const std::string keys = host + "/keys/kek";
    if (fail_count != 0) {
      if (fail_count > 0) --fail_count;
      return MakeResponse(fail_status, fail_body, fail_headers);
    }
    auto bundle = [this](const std::string& v) {
      return nlohmann::json{{"key",
                             {{"kid", host + "/keys/kek/" + v},
                              {"kty", kty},
                              {"key_ops", {"wrapKey", "unwrapKey", "encrypt", "decrypt"}}}},
                            {"attributes", {{"enabled", enabled}}}}
          .dump();
    };
    if (r.method == "GET" && path == keys) return MakeResponse(200, bundle(version));
    if (r.method == "GET" && path.rfind(keys + "/", 0) == 0) {
      return MakeResponse(200, bundle(path.substr(keys.size() + 1)));
    }
    if (r.method == "POST" && path == keys + "/rotate") {
      version = kV2;
      return MakeResponse(200, bundle(version));
    }
    const size_t op = path.rfind('/');
    const std::string v = path.substr(keys.size() + 1, op - keys.size() - 1);
    const nlohmann::json req = nlohmann::json::parse(r.body);
    nlohmann::json out = {{"kid", host + "/keys/kek/" + v}};
    const std::string name = path.substr(op + 1);
    if (name == "wrapkey" || name == "encrypt") {
      out["value"] = "W" + req["value"].get<std::string>();  // Reversible, visibly "wrapped".
      if (name == "encrypt") out.update({{"iv", "aXYxMjM0NTY3ODkw"}, {"tag", "dGFn"}});
    } else {
      out["value"] = req["value"].get<std::string>().substr(1);
    }
    return MakeResponse(200, out.dump(), {{"x-ms-request-id", "req-1"}});
  }
};

class AzureKmsTest : public ::testing::Test {
 protected:
  std::unique_ptr<AzureKms> Make(const std::string& version = "", const std::string& oct = "A256KW",
                                 const std::string& url = kVault) {
    AzureKmsOptions o;
    o.vault_url = url;
    o.key_name = "kek";
    o.key_version = version;
    o.oct_algorithm = oct;
    o.retry.max_attempts = 3;
    o.retry.base_delay = absl::Milliseconds(1);
    o.retry.max_delay = absl::Milliseconds(2);
    auto http = std::make_unique<FakeHttpClient>(
        [this](const RecordedRequest& r) { return vault_.Answer(r); });
    http_ = http.get();
    o.http = std::move(http);
    auto tokens = std::make_unique<CountingTokens>();
    tokens_ = tokens.get();
    o.tokens = std::move(tokens);
    absl::StatusOr<std::unique_ptr<AzureKms>> kms = AzureKms::Create(std::move(o), &clock_);
    EXPECT_THAT(kms, IsOk());
    return kms.ok() ? std::move(*kms) : nullptr;
  }
  static CallContext Ctx() { return CallContext::WithTimeout(absl::Seconds(5)); }
  std::vector<std::string> Urls() {
    std::vector<std::string> out;
    for (const RecordedRequest& r : http_->requests()) out.push_back(r.method + " " + r.url);
    return out;
  }

  FakeVault vault_;
  FakeClock clock_;
  FakeHttpClient* http_ = nullptr;
  CountingTokens* tokens_ = nullptr;
  const SecretBytes dek_ = SecretBytes::CopyFrom("0123456789abcdef0123456789abcdef");
};

TEST_F(AzureKmsTest, WrapReadsTheKeyOnceAndWrapsWithRsaOaep256OnItsCurrentVersion) {
  auto kms = Make();
  absl::StatusOr<WrappedKey> w1 = kms->Wrap(dek_, Ctx());
  ASSERT_THAT(w1, IsOk());
  ASSERT_THAT(kms->Wrap(dek_, Ctx()), IsOk());
  EXPECT_EQ(w1->kek_id, std::string("azure:") + kVault + "/keys/kek/" + kV1);
  EXPECT_EQ(w1->blob, "RSA-OAEP-256:WMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY");
  const std::string base = std::string(kVault) + "/keys/kek";
  EXPECT_EQ(Urls(),
            (std::vector<std::string>{"GET " + base + "?api-version=7.4",
                                      "POST " + base + "/" + kV1 + "/wrapkey?api-version=7.4",
                                      "POST " + base + "/" + kV1 + "/wrapkey?api-version=7.4"}));
  EXPECT_EQ(http_->requests()[1].body,
            R"({"alg":"RSA-OAEP-256","value":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"})");
  EXPECT_THAT(http_->requests()[1].Header("authorization"), ::testing::StartsWith("Bearer tok-"));
  absl::StatusOr<SecretBytes> back = kms->Unwrap(*w1, Ctx());
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->Reveal(), dek_.Reveal());
}

TEST_F(AzureKmsTest, UnwrapNamesTheKekIdsVersionAndRefusesOtherKeysWithoutACall) {
  auto kms = Make();
  const std::string old = std::string("azure:") + kVault + "/keys/kek/" + kV2;
  ASSERT_THAT(kms->Unwrap({old, "RSA-OAEP-256:WYWJjZA"}, Ctx()), IsOk());
  EXPECT_EQ(Urls().back(),
            std::string("POST ") + kVault + "/keys/kek/" + kV2 + "/unwrapkey?api-version=7.4");
  const size_t calls = http_->requests().size();
  for (const std::string& other :
       {std::string("azure:https://other.vault.azure.net/keys/kek/") + kV1,
        std::string("azure:") + kVault + "/keys/other/" + kV1, std::string("aws:") + kV1,
        std::string("azure:") + kVault + "/keys/kek", std::string("azure:http://x/keys/kek/1")}) {
    EXPECT_THAT(kms->Unwrap({other, "RSA-OAEP-256:WYWJjZA"}, Ctx()),
                StatusIs(absl::StatusCode::kFailedPrecondition))
        << other;
  }
  for (const std::string& blob :
       {"RSA-OAEP-256", "RSA1_5:YWJj", "A256GCM:YWJj", "RSA-OAEP-256:!"}) {
    EXPECT_THAT(kms->Unwrap({old, blob}, Ctx()), StatusIs(absl::StatusCode::kInvalidArgument))
        << blob;
  }
  EXPECT_EQ(http_->requests().size(), calls);
  // A differently spelled host of the same vault is the same key.
  EXPECT_THAT(kms->Unwrap({"azure:https://myvault.vault.azure.net:443/keys/KEK/" + std::string(kV1),
                           "RSA-OAEP-256:WYWJjZA"},
                          Ctx()),
              IsOk());
}

TEST_F(AzureKmsTest, OctHsmKeysWrapWithA256KwOrEncryptWithA256GcmAndTheAssociatedData) {
  {
    absl::MutexLock lock(&vault_.mu);
    vault_.kty = "oct-HSM";
  }
  auto kw = Make();
  absl::StatusOr<WrappedKey> w = kw->Wrap(dek_, Ctx());
  ASSERT_THAT(w, IsOk());
  EXPECT_THAT(w->blob, ::testing::StartsWith("A256KW:"));
  EXPECT_THAT(Urls().back(), HasSubstr("/wrapkey?"));
  auto gcm = Make("", "A256GCM");
  w = gcm->Wrap(dek_, Ctx());
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->blob, "A256GCM:WMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY:aXYxMjM0NTY3ODkw:dGFn");
  const nlohmann::json sent = nlohmann::json::parse(http_->requests().back().body);
  EXPECT_EQ(sent["alg"], "A256GCM");
  EXPECT_EQ(sent["aad"], Base64UrlEncode(std::string("kms-plugin/kubernetes-kms-v2:azure:") +
                                         kVault + "/keys/kek"));
  ASSERT_THAT(gcm->Unwrap(*w, Ctx()), IsOk());
  const nlohmann::json back = nlohmann::json::parse(http_->requests().back().body);
  EXPECT_THAT(Urls().back(), HasSubstr("/decrypt?"));
  EXPECT_EQ(back["iv"], "aXYxMjM0NTY3ODkw");
  EXPECT_EQ(back["tag"], "dGFn");
  EXPECT_EQ(back["aad"], sent["aad"]);
}

TEST_F(AzureKmsTest, ProbeFollowsTheCurrentVersionAndRotateMakesANewOne) {
  auto kms = Make();
  absl::StatusOr<KeyStatus> s = kms->Probe(Ctx());
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->kek_id, std::string("azure:") + kVault + "/keys/kek/" + kV1);
  EXPECT_THAT(s->description, HasSubstr("RSA-OAEP-256"));
  ASSERT_THAT(kms->RotateKek(Ctx()), IsOk());
  EXPECT_EQ(Urls().back(), std::string("POST ") + kVault + "/keys/kek/rotate?api-version=7.4");
  absl::StatusOr<WrappedKey> w = kms->Wrap(dek_, Ctx());  // No GET: rotate's answer named it.
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->kek_id, std::string("azure:") + kVault + "/keys/kek/" + kV2);
  EXPECT_EQ(http_->requests().size(), 3u);
  {
    absl::MutexLock lock(&vault_.mu);
    vault_.enabled = false;
  }
  EXPECT_THAT(kms->Probe(Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("disabled")));
}

TEST_F(AzureKmsTest, APinnedVersionIsReadByVersionAndRotateIsRefused) {
  auto kms = Make(kV1);
  {
    absl::MutexLock lock(&vault_.mu);
    vault_.version = kV2;  // The current version moved on; the pin holds.
  }
  absl::StatusOr<KeyStatus> s = kms->Probe(Ctx());
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->kek_id, std::string("azure:") + kVault + "/keys/kek/" + kV1);
  EXPECT_EQ(Urls().back(), std::string("GET ") + kVault + "/keys/kek/" + kV1 + "?api-version=7.4");
  const size_t calls = http_->requests().size();
  EXPECT_THAT(kms->RotateKek(Ctx()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--azure-key-version")));
  EXPECT_EQ(http_->requests().size(), calls);
}

TEST_F(AzureKmsTest, AChallengeForAnotherKeyVaultAudienceChangesTheScopeOnce) {
  auto kms = Make("", "A256KW", "https://hsm1.managedhsm.azure.net");
  EXPECT_EQ(kms->TokenScope(), "https://managedhsm.azure.net/.default");
  {
    absl::MutexLock lock(&vault_.mu);
    vault_.host = "https://hsm1.managedhsm.azure.net";
    vault_.fail_status = 401;
    vault_.fail_count = 1;
    vault_.fail_body =
        R"({"error":{"code":"Unauthorized","message":"AKV10022: Invalid audience"}})";
    vault_.fail_headers = {{"www-authenticate",
                            R"(Bearer authorization="https://login.microsoftonline.com/t", )"
                            R"(resource="https://managedhsm.azure.net")"}};
  }
  ASSERT_THAT(kms->Probe(Ctx()), IsOk());
  absl::MutexLock lock(&tokens_->mu_);
  EXPECT_EQ(tokens_->invalidations, 1);
  EXPECT_EQ(tokens_->fetches, 2);
}

TEST_F(AzureKmsTest, AChallengeForAnotherServiceIsNotFollowed) {
  auto kms = Make();
  {
    absl::MutexLock lock(&vault_.mu);
    vault_.fail_status = 401;
    vault_.fail_count = -1;
    vault_.fail_headers = {{"www-authenticate", R"(Bearer authorization="https://x/t", )"
                                                R"(resource="https://management.azure.com")"}};
  }
  EXPECT_THAT(kms->Wrap(dek_, Ctx()), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(kms->TokenScope(), "https://vault.azure.net/.default");
  EXPECT_EQ(http_->requests().size(), 2u);  // One fresh token, then the second 401 is the error.
}

TEST_F(AzureKmsTest, ErrorsAreRevocationsOrOutagesAsKeyVaultMeansThem) {
  struct Case {
    int status;
    std::string body;
    absl::StatusCode code;
    bool retryable;
  };
  const std::vector<Case> cases = {
      {403,
       R"({"error":{"code":"Forbidden","message":"Caller is not authorized",)"
       R"("innererror":{"code":"ForbiddenByRbac"}}})",
       absl::StatusCode::kPermissionDenied, false},
      {403,
       R"({"error":{"code":"Forbidden","message":"Operation is not allowed on a disabled )"
       R"(key.","innererror":{"code":"KeyDisabled"}}})",
       absl::StatusCode::kFailedPrecondition, false},
      {404,
       R"({"error":{"code":"KeyNotFound","message":"A key with (name/id) kek was not found"}})",
       absl::StatusCode::kNotFound, false},
      {400, R"({"error":{"code":"BadParameter","message":"Bad Request"}})",
       absl::StatusCode::kInvalidArgument, false},
      {429, R"({"error":{"code":"Throttled","message":"too many requests"}})",
       absl::StatusCode::kUnavailable, true},
      {500, "not json", absl::StatusCode::kUnavailable, true},
      {503, "", absl::StatusCode::kUnavailable, true},
  };
  for (const Case& c : cases) {
    RestError e = AzureKms::Classify("wrapkey", MakeResponse(c.status, c.body));
    EXPECT_EQ(e.status.code(), c.code) << c.status << " " << c.body;
    EXPECT_EQ(e.retryable, c.retryable) << c.status;
    EXPECT_THAT(std::string(e.status.message()),
                HasSubstr("Azure Key Vault wrapkey: HTTP " + std::to_string(c.status)));
    EXPECT_TRUE(IsKeyRevokedError(e.status) == (c.status == 403 || c.status == 404)) << c.status;
  }
  RestError rbac = AzureKms::Classify("wrapkey", MakeResponse(403, cases[0].body));
  EXPECT_THAT(std::string(rbac.status.message()), HasSubstr("Forbidden/ForbiddenByRbac"));
  EXPECT_TRUE(AzureKms::Classify("get key", MakeResponse(401, "")).refresh_token);
  EXPECT_TRUE(AzureKms::Classify("wrapkey", MakeResponse(429, "")).throttled);
  // Through the backend: a 429 then success is one call; 5xx until the end is an outage.
  auto kms = Make();
  ASSERT_THAT(kms->Probe(Ctx()), IsOk());
  {
    absl::MutexLock lock(&vault_.mu);
    vault_.fail_status = 429;
    vault_.fail_count = 1;
    vault_.fail_headers = {{"retry-after", "0"}};
  }
  EXPECT_THAT(kms->Wrap(dek_, Ctx()), IsOk());
  {
    absl::MutexLock lock(&vault_.mu);
    vault_.fail_status = 503;
    vault_.fail_count = -1;
    vault_.fail_headers = {};
  }
  EXPECT_THAT(kms->Wrap(dek_, Ctx()),
              StatusIs(absl::StatusCode::kUnavailable, Not(HasSubstr("tok"))));
}

TEST_F(AzureKmsTest, CreateRefusesBadOptionsWithoutACall) {
  for (const auto& [url, name, version] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"http://v.vault.azure.net", "kek", ""},
           {kVault, "", ""},
           {kVault, "k/e", ""},
           {kVault, "kek", "v-1"}}) {
    AzureKmsOptions o;
    o.vault_url = url;
    o.key_name = name;
    o.key_version = version;
    o.tokens = std::make_unique<CountingTokens>();
    o.http = std::make_unique<FakeHttpClient>(
        [](const RecordedRequest&) { return MakeResponse(500, ""); });
    EXPECT_THAT(AzureKms::Create(std::move(o), &clock_),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << url << " " << name << " " << version;
  }
  AzureKmsOptions o;
  o.vault_url = kVault;
  o.key_name = "kek";
  o.oct_algorithm = "A128KW";
  EXPECT_THAT(AzureKms::Create(std::move(o), &clock_),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kmsplugin::azure
