// The Azure backend's wire forms (kms/azure/azure_wire.h: base64url, vault URL and kid parsing,
// the 401 challenge and its scope check) and its Entra / IMDS credential sources
// (kms/azure/azure_credentials.h) against a FakeHttpClient. The key_id golden vector is here.
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/azure/azure_credentials.h"
#include "kms/azure/azure_kms.h"
#include "kms/azure/azure_wire.h"
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
using ::testing::Optional;

TEST(AzureWireTest, Base64UrlHasNoPaddingAndDecodingAcceptsIt) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlEncode("0123456789abcdef0123456789abcdef"),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY");  // remote-kms-apis.md §6.2.
  for (std::string_view text : {"-_8", "-_8="}) {
    absl::StatusOr<SecretBytes> d = Base64UrlDecodeSecret(text);
    ASSERT_THAT(d, IsOk());
    EXPECT_EQ(d->Reveal(), "\xfb\xff");
  }
  EXPECT_EQ(Base64UrlEncodeSecret(SecretBytes::CopyFrom("abcd")).Reveal(), "YWJjZA");
  EXPECT_THAT(Base64UrlDecodeSecret("ab+/"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Base64UrlDecodeSecret("abcde"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AzureWireTest, VaultUrlsTakeTheirCanonicalForm) {
  for (const auto& [in, base] : std::map<std::string, std::string>{
           {"https://MyVault.vault.azure.net", "https://myvault.vault.azure.net"},
           {"https://myvault.vault.azure.net/", "https://myvault.vault.azure.net"},
           {"https://myvault.vault.azure.net:443", "https://myvault.vault.azure.net"},
           {"https://127.0.0.1:8443/", "https://127.0.0.1:8443"}}) {
    absl::StatusOr<VaultUrl> url = ParseVaultUrl(in);
    ASSERT_THAT(url, IsOk()) << in;
    EXPECT_EQ(url->base, base);
  }
  for (std::string_view bad : {"http://myvault.vault.azure.net", "https://", "myvault",
                               "https://v.vault.azure.net/keys", "https://u@v.vault.azure.net",
                               "https://v.vault.azure.net:0", "https://v.vault.azure.net:99999"}) {
    EXPECT_THAT(ParseVaultUrl(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(AzureWireTest, KeyIdsAreVersionedKeyUrlsOnly) {
  std::optional<KeyId> id = ParseKeyId("https://V.vault.azure.net/keys/k8s-kek/0123abcd");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->vault.base, "https://v.vault.azure.net");
  EXPECT_EQ(id->name, "k8s-kek");
  EXPECT_EQ(id->version, "0123abcd");
  for (std::string_view bad :
       {"https://v.vault.azure.net/keys/k8s-kek", "https://v.vault.azure.net/keys/k8s-kek/",
        "https://v.vault.azure.net/keys/k8s-kek/v1/wrapkey", "http://v.vault.azure.net/keys/k/1",
        "https://v.vault.azure.net/secrets/k/1", "https://v.vault.azure.net/keys/k_8/1",
        "https://v.vault.azure.net/keys/k/1?x=y"}) {
    EXPECT_FALSE(ParseKeyId(bad).has_value()) << bad;
  }
}

// Issue 14 frozen format: key_id = "azure:" + the versioned key URL, host lower-cased and the
// default port left out, the same on every node.
TEST(AzureKeyIdGoldenTest, KeyIdIsAzureColonTheCanonicalVersionedKeyUrl) {
  EXPECT_THAT(
      AzureKms::KekIdOfKid(
          "https://MyVault.vault.azure.net:443/keys/k8s-kek/0123456789abcdef0123456789abcdef"),
      Optional(std::string("azure:https://myvault.vault.azure.net/keys/k8s-kek/"
                           "0123456789abcdef0123456789abcdef")));
  EXPECT_THAT(AzureKms::KekIdOfKid("https://hsm1.managedhsm.azure.net/keys/kek/9f8e7d6c"),
              Optional(std::string("azure:https://hsm1.managedhsm.azure.net/keys/kek/9f8e7d6c")));
  EXPECT_FALSE(AzureKms::KekIdOfKid("https://myvault.vault.azure.net/keys/k8s-kek").has_value());
}

TEST(AzureWireTest, ChallengeScopeIsTheScopeOrTheResourcePlusDefault) {
  EXPECT_THAT(ChallengeScope(R"(Bearer authorization="https://login.windows.net/72f988bf", )"
                             R"(resource="https://vault.azure.net")"),
              Optional(std::string("https://vault.azure.net/.default")));
  EXPECT_THAT(ChallengeScope(R"(Bearer authorization_uri="https://login.windows.net/t", )"
                             R"(scope="https://managedhsm.azure.net/.default")"),
              Optional(std::string("https://managedhsm.azure.net/.default")));
  EXPECT_THAT(ChallengeScope("Bearer resource=https://vault.azure.cn/"),
              Optional(std::string("https://vault.azure.cn/.default")));
  EXPECT_FALSE(ChallengeScope(R"(Basic realm="x")").has_value());
  EXPECT_FALSE(ChallengeScope(R"(Bearer authorization="https://login.windows.net/t")").has_value());
}

TEST(AzureWireTest, ChallengeScopeMustBeAKeyVaultAudienceOfTheVaultsHost) {
  EXPECT_TRUE(ChallengeScopeAllowed("https://vault.azure.net/.default", "myvault.vault.azure.net"));
  EXPECT_TRUE(
      ChallengeScopeAllowed("https://managedhsm.azure.net/.default", "hsm1.managedhsm.azure.net"));
  EXPECT_TRUE(ChallengeScopeAllowed("https://vault.azure.cn/.default", "v.vault.azure.cn"));
  EXPECT_TRUE(ChallengeScopeAllowed("https://managedhsm.azure.net/.default", "127.0.0.1"));
  // Another service's audience, or a Key Vault audience for a host that is not one of its vaults.
  EXPECT_FALSE(ChallengeScopeAllowed("https://management.azure.com/.default", "127.0.0.1"));
  EXPECT_FALSE(ChallengeScopeAllowed("https://vault.azure.net/.default", "evil.example.com"));
  EXPECT_FALSE(ChallengeScopeAllowed("https://vault.azure.net/.default", "vault.azure.net.evil"));
  EXPECT_FALSE(ChallengeScopeAllowed("http://vault.azure.net/.default", "v.vault.azure.net"));
  EXPECT_EQ(DefaultScopeFor("myvault.vault.azure.net"), "https://vault.azure.net/.default");
  EXPECT_EQ(DefaultScopeFor("hsm1.managedhsm.azure.net"), "https://managedhsm.azure.net/.default");
}

TEST(AzureWireTest, KeyOperationBodyIsJsonWithBase64UrlFields) {
  EXPECT_EQ(
      KeyOperationBody("RSA-OAEP-256", SecretBytes::CopyFrom("0123456789abcdef0123456789abcdef"))
          .Reveal(),
      R"({"alg":"RSA-OAEP-256","value":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"})");
  EXPECT_EQ(
      KeyOperationBody("A256GCM", SecretBytes::CopyFrom("ab"), "aXY", "dGFn", "YWFk").Reveal(),
      R"({"alg":"A256GCM","value":"YWI","iv":"aXY","tag":"dGFn","aad":"YWFk"})");
}

// --- credentials ------------------------------------------------------------------------------

constexpr char kTokenAnswer[] =
    R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"tok-1"})";

TokenEndpointOptions FastTokenOptions() {
  TokenEndpointOptions o;
  o.backend = "azure";
  o.retry.max_attempts = 2;
  o.retry.base_delay = absl::Milliseconds(1);
  o.retry.max_delay = absl::Milliseconds(2);
  return o;
}

AzureCredentialOptions Options(std::map<std::string, std::string> env,
                               const std::string& imds_flag = "",
                               const std::string& client_id_flag = "") {
  return AzureCredentialOptions::FromEnvironment(
      imds_flag, client_id_flag, [env = std::move(env)](const char* name) -> const char* {
        static thread_local std::string value;
        auto it = env.find(name);
        if (it == env.end()) return nullptr;
        value = it->second;
        return value.c_str();
      });
}

std::map<std::string, std::string> Form(const std::string& body) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    const size_t amp = std::min(body.find('&', pos), body.size());
    const std::string pair = body.substr(pos, amp - pos);
    const size_t eq = pair.find('=');
    out[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    pos = amp + 1;
  }
  return out;
}

class AzureCredentialsTest : public ::testing::Test {
 protected:
  AzureCredentialsTest()
      : http_([this](const RecordedRequest& r) { return answer_(r); }),
        scope_("https://vault.azure.net/.default") {}
  absl::StatusOr<AccessToken> Fetch(const AzureCredentialOptions& o) {
    std::unique_ptr<TokenSource> source =
        MakeAzureTokenSource(o, &scope_, &http_, &clock_, FastTokenOptions());
    return source->Fetch(CallContext::WithTimeout(absl::Seconds(5)));
  }
  std::string TokenFile(const std::string& content) {
    std::string path = ::testing::TempDir() + "/azure-token-" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(content.c_str(), f);
    std::fclose(f);
    return path;
  }
  // What the fake endpoint answers (a test may replace it before its first request).
  FakeHttpClient::Handler answer_ = [](const RecordedRequest&) {
    return MakeResponse(200, kTokenAnswer);
  };
  FakeHttpClient http_;
  FakeClock clock_;
  AzureScope scope_;
};

TEST_F(AzureCredentialsTest, ClientSecretComesFirstAndPostsToTheTenantsV2Endpoint) {
  absl::StatusOr<AccessToken> t =
      Fetch(Options({{"AZURE_TENANT_ID", "tenant-1"},
                     {"AZURE_CLIENT_ID", "app-1"},
                     {"AZURE_CLIENT_SECRET", "s3cr/t"},
                     {"AZURE_FEDERATED_TOKEN_FILE", "/nope"},
                     {"AZURE_AUTHORITY_HOST", "https://127.0.0.1:9443/"}}));
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->token.Reveal(), "tok-1");
  EXPECT_EQ(t->source, "client-secret");
  EXPECT_EQ(t->identity, "app-1");
  EXPECT_EQ(t->expiration, clock_.Now() + absl::Seconds(3599));
  ASSERT_EQ(http_.requests().size(), 1u);
  const RecordedRequest r = http_.requests()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://127.0.0.1:9443/tenant-1/oauth2/v2.0/token");
  const auto form = Form(r.body);
  EXPECT_EQ(form.at("grant_type"), "client_credentials");
  EXPECT_EQ(form.at("client_id"), "app-1");
  EXPECT_EQ(form.at("client_secret"), "s3cr%2Ft");
  EXPECT_EQ(form.at("scope"), "https%3A%2F%2Fvault.azure.net%2F.default");
  EXPECT_EQ(form.count("client_assertion"), 0u);
}

TEST_F(AzureCredentialsTest, WorkloadIdentityReReadsTheTokenFileOnEveryRefresh) {
  const std::string file = TokenFile("projected-1\n");
  AzureCredentialOptions o = Options({{"AZURE_TENANT_ID", "tenant-1"},
                                      {"AZURE_CLIENT_ID", "wi-app"},
                                      {"AZURE_FEDERATED_TOKEN_FILE", file}});
  std::unique_ptr<TokenSource> source =
      MakeWorkloadIdentitySource(o, &scope_, &http_, &clock_, FastTokenOptions());
  ASSERT_THAT(source->Fetch(CallContext::WithTimeout(absl::Seconds(5))), IsOk());
  TokenFile("projected-2");
  ASSERT_THAT(source->Fetch(CallContext::WithTimeout(absl::Seconds(5))), IsOk());
  ASSERT_EQ(http_.requests().size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const auto form = Form(http_.requests()[i].body);
    EXPECT_EQ(form.at("client_assertion"), i == 0 ? "projected-1" : "projected-2");
    EXPECT_EQ(form.at("client_assertion_type"),
              "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer");
    EXPECT_EQ(form.count("client_secret"), 0u);
  }
  EXPECT_EQ(http_.requests()[0].url,
            "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token");
  std::filesystem::remove(file);
  EXPECT_THAT(source->Fetch(CallContext::WithTimeout(absl::Seconds(5))),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot be read")));
}

TEST_F(AzureCredentialsTest, ImdsAsksForTheResourceWithTheMetadataHeader) {
  answer_ = [](const RecordedRequest&) {
    return MakeResponse(200,
                        R"({"access_token":"imds-tok","expires_in":"86399","expires_on":")" +
                            std::to_string(1700000000 + 86399) +
                            R"(","resource":"https://vault.azure.net","token_type":"Bearer"})");
  };
  absl::StatusOr<AccessToken> t = Fetch(Options({}, "http://127.0.0.1:8080/", "user-mi"));
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ(t->source, "managed-identity");
  EXPECT_EQ(t->identity, "user-mi");
  ASSERT_EQ(http_.requests().size(), 1u);
  const RecordedRequest r = http_.requests()[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.url,
            "http://127.0.0.1:8080/metadata/identity/oauth2/token?api-version=2018-02-01"
            "&resource=https%3A%2F%2Fvault.azure.net&client_id=user-mi");
  EXPECT_EQ(r.Header("metadata"), "true");
  // The scope follows a challenge: the next token is for the HSM resource.
  scope_.Set("https://managedhsm.azure.net/.default");
  ASSERT_THAT(Fetch(Options({}, "http://127.0.0.1:8080")), IsOk());
  EXPECT_THAT(http_.requests()[1].url, HasSubstr("&resource=https%3A%2F%2Fmanagedhsm.azure.net"));
  EXPECT_THAT(http_.requests()[1].url, Not(HasSubstr("client_id")));
}

TEST_F(AzureCredentialsTest, EnvironmentAndFlagsChooseTheImdsEndpointAndClientId) {
  AzureCredentialOptions o = Options(
      {{"AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://10.0.0.1"}, {"AZURE_CLIENT_ID", "from-env"}});
  EXPECT_EQ(o.imds_endpoint, "http://10.0.0.1");
  EXPECT_EQ(o.managed_identity_client_id, "from-env");
  o = Options({{"AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://10.0.0.1"}}, "http://10.0.0.2", "f");
  EXPECT_EQ(o.imds_endpoint, "http://10.0.0.2");
  EXPECT_EQ(o.managed_identity_client_id, "f");
  o = Options({});
  EXPECT_EQ(o.imds_endpoint, "http://169.254.169.254");
  EXPECT_EQ(o.authority_host, "https://login.microsoftonline.com");
  EXPECT_THAT(ValidateCredentialOptions(o), IsOk());
}

TEST_F(AzureCredentialsTest, RefusesAPlainHttpAuthorityABadImdsEndpointAndABadTenant) {
  EXPECT_THAT(ValidateCredentialOptions(Options({{"AZURE_AUTHORITY_HOST", "http://login.x"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("AZURE_AUTHORITY_HOST")));
  EXPECT_THAT(ValidateCredentialOptions(Options({}, "ftp://x")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("IMDS")));
  EXPECT_THAT(ValidateCredentialOptions(Options({{"AZURE_TENANT_ID", "a/b"}})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("AZURE_TENANT_ID")));
  EXPECT_THAT(ValidateCredentialOptions(Options({{"AZURE_AUTHORITY_HOST", "login.x.cn"}})),
              IsOk());  // A bare host means https, as in azure-identity.
}

TEST_F(AzureCredentialsTest, ARefusedClientSecretIsUnauthenticatedAndNotAnotherSource) {
  answer_ = [](const RecordedRequest&) {
    return MakeResponse(401, R"({"error":"invalid_client","error_description":"AADSTS7000215: )"
                             R"(Invalid client secret provided."})");
  };
  EXPECT_THAT(
      Fetch(Options(
          {{"AZURE_TENANT_ID", "t"}, {"AZURE_CLIENT_ID", "a"}, {"AZURE_CLIENT_SECRET", "wrong"}})),
      StatusIs(absl::StatusCode::kUnauthenticated, Not(HasSubstr("wrong"))));
  EXPECT_EQ(http_.requests().size(), 1u);  // No fall-through to IMDS.
}

}  // namespace
}  // namespace kmsplugin::azure
