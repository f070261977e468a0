// Google credentials (kms/gcp/gcp_credentials.h) against a FakeHttpClient: the service-account
// JWT and its exchange at token_uri, external_account (STS, then impersonation; the subject token
// file re-read every time), the metadata server and the environment, and the refusals of broken
// files (no key bytes in messages; a missing token file is an outage, not a revocation).
#include "kms/gcp/gcp_credentials.h"

#include <stdlib.h>

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/crypto/rsa_test_keys.h"
#include "tests/fakes/fake_clock.h"
#include "tests/gcp/gcp_test_util.h"
#include "tests/matchers.h"

namespace kmsplugin::gcp {
namespace {

using ::kmsplugin::testing::Base64UrlDecode;
using ::kmsplugin::testing::FakeClock;
using ::kmsplugin::testing::FakeHttpClient;
using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::MakeResponse;
using ::kmsplugin::testing::ParseForm;
using ::kmsplugin::testing::ReadFileOrEmpty;
using ::kmsplugin::testing::RecordedRequest;
using ::kmsplugin::testing::ScratchDir;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSaKeyPem[] = KMSP_SOURCE_DIR "/tests/gcp/testdata/sa_test_key.pem";
constexpr char kEmail[] = "plugin@p.iam.gserviceaccount.com";
constexpr char kAudience[] =
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/k8s/providers/c";
constexpr char kImpersonation[] =
    "https://iam.test/v1/projects/-/serviceAccounts/kms@p.iam.gserviceaccount.com:"
    "generateAccessToken";

std::string ServiceAccountJson() {
  return nlohmann::json{{"type", "service_account"}, {"project_id", "p"},
                        {"private_key_id", "kid-1"}, {"private_key", ReadFileOrEmpty(kSaKeyPem)},
                        {"client_email", kEmail},    {"token_uri", "https://oauth.test/token"}}
      .dump();
}

nlohmann::json ExternalAccount(const std::string& token_file, bool impersonate) {
  nlohmann::json doc = {
      {"type", "external_account"},
      {"audience", kAudience},
      {"subject_token_type", "urn:ietf:params:oauth:token-type:jwt"},
      {"token_url", "https://sts.test/v1/token"},
      {"credential_source", {{"file", token_file}, {"format", {{"type", "text"}}}}}};
  if (impersonate) {
    doc["service_account_impersonation_url"] = kImpersonation;
    doc["service_account_impersonation"] = {{"token_lifetime_seconds", 1800}};
  }
  return doc;
}

HttpResponse TokenAnswer(const std::string& token, int expires_in = 3599) {
  return MakeResponse(200, nlohmann::json{{"access_token", token},
                                          {"expires_in", std::to_string(expires_in)},
                                          {"token_type", "Bearer"}}
                               .dump());
}

GcpCredentialsOptions Options(const std::string& file) {
  GcpCredentialsOptions o;
  o.credentials_file = file;
  o.metadata_host = "md.test:8080";
  o.endpoint.retry.base_delay = absl::Milliseconds(1);
  return o;
}

TEST(GcpCredentialsTest, ServiceAccountKeySignsAJwtAndExchangesItAtItsTokenUri) {
  ScratchDir dir;
  const std::string file = dir.Write("sa.json", ServiceAccountJson());
  FakeClock clock;
  FakeHttpClient http([](const RecordedRequest&) { return TokenAnswer("ya29.from-sa"); });
  auto source = NewGcpTokenSource(Options(file), &http, &clock);
  ASSERT_THAT(source, IsOk());
  auto token = (*source)->Fetch(CallContext::WithTimeout(absl::Seconds(5)));
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(token->token.Reveal(), "ya29.from-sa");
  EXPECT_EQ(token->expiration, clock.Now() + absl::Seconds(3599));
  EXPECT_EQ(token->identity, kEmail);
  EXPECT_EQ(token->source, "service-account-file");
  // Cached: a second Fetch makes no request.
  ASSERT_THAT((*source)->Fetch(CallContext::WithTimeout(absl::Seconds(5))), IsOk());
  ASSERT_EQ(http.requests().size(), 1U);
  const auto reqs = http.requests();
  const RecordedRequest& r = reqs[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://oauth.test/token");
  EXPECT_EQ(r.Header("content-type"), "application/x-www-form-urlencoded");
  auto form = ParseForm(r.body);
  EXPECT_EQ(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
  const std::string jwt = form["assertion"];
  const size_t dot1 = jwt.find('.');
  const size_t dot2 = jwt.find('.', dot1 + 1);
  ASSERT_NE(dot2, std::string::npos);
  EXPECT_EQ(jwt.find('='), std::string::npos);  // Unpadded segments.
  const auto header = nlohmann::json::parse(Base64UrlDecode(jwt.substr(0, dot1)));
  const auto claims = nlohmann::json::parse(Base64UrlDecode(jwt.substr(dot1 + 1, dot2 - dot1 - 1)));
  EXPECT_EQ(header, (nlohmann::json{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "kid-1"}}));
  EXPECT_EQ(claims["iss"], kEmail);
  EXPECT_EQ(claims["aud"], "https://oauth.test/token");
  EXPECT_EQ(claims["scope"], "https://www.googleapis.com/auth/cloud-platform");
  EXPECT_EQ(claims["iat"].get<int64_t>(), absl::ToUnixSeconds(clock.Now()));
  EXPECT_EQ(claims["exp"].get<int64_t>() - claims["iat"].get<int64_t>(), 3600);
  EXPECT_EQ(Base64UrlDecode(jwt.substr(dot2 + 1)).size(), 256U);  // RSA-2048 signature.
}

TEST(GcpCredentialsTest, ARefusedJwtIsUnauthenticatedAndNamesNoSecret) {
  ScratchDir dir;
  const std::string file = dir.Write("sa.json", ServiceAccountJson());
  FakeClock clock;
  FakeHttpClient http([](const RecordedRequest&) {
    return MakeResponse(
        400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})");
  });
  auto source = NewGcpTokenSource(Options(file), &http, &clock);
  ASSERT_THAT(source, IsOk());
  auto token = (*source)->Fetch(CallContext::WithTimeout(absl::Seconds(5)));
  EXPECT_THAT(token, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("invalid_grant")));
  EXPECT_THAT(std::string(token.status().message()), Not(HasSubstr("PRIVATE KEY")));
  EXPECT_EQ(http.requests().size(), 1U);
}

TEST(GcpCredentialsTest, ExternalAccountExchangesTheTokenFileAtStsThenImpersonates) {
  ScratchDir dir;
  const std::string token_file = dir.Write("k8s-token", "eyJ.first.sig\n");
  const std::string file = dir.Write("wif.json", ExternalAccount(token_file, true).dump());
  FakeClock clock;
  int sts = 0;
  FakeHttpClient http([&](const RecordedRequest& r) {
    if (r.url == "https://sts.test/v1/token") return TokenAnswer("sts-" + std::to_string(++sts));
    return MakeResponse(
        200, R"({"accessToken":"ya29.impersonated","expireTime":"2023-11-14T23:13:20Z"})");
  });
  auto source = NewCredentialsFileSource(Options(file), &http, &clock);
  auto token = source->Fetch(CallContext::WithTimeout(absl::Seconds(5)));
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(token->token.Reveal(), "ya29.impersonated");
  EXPECT_EQ(token->identity, "kms@p.iam.gserviceaccount.com");
  EXPECT_EQ(token->expiration, absl::FromUnixSeconds(1700003600));
  // The token file is read again on the next refresh.
  dir.Write("k8s-token", "eyJ.second.sig");
  ASSERT_THAT(source->Fetch(CallContext::WithTimeout(absl::Seconds(5))), IsOk());
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 4U);
  auto form = ParseForm(reqs[0].body);
  EXPECT_EQ(form["grant_type"], "urn:ietf:params:oauth:grant-type:token-exchange");
  EXPECT_EQ(form["audience"], kAudience);
  EXPECT_EQ(form["scope"], "https://www.googleapis.com/auth/cloud-platform");
  EXPECT_EQ(form["requested_token_type"], "urn:ietf:params:oauth:token-type:access_token");
  EXPECT_EQ(form["subject_token_type"], "urn:ietf:params:oauth:token-type:jwt");
  EXPECT_EQ(form["subject_token"], "eyJ.first.sig");
  EXPECT_EQ(ParseForm(reqs[2].body)["subject_token"], "eyJ.second.sig");
  EXPECT_EQ(reqs[1].url, kImpersonation);
  EXPECT_EQ(reqs[1].Header("authorization"), "Bearer sts-1");
  EXPECT_EQ(reqs[3].Header("authorization"), "Bearer sts-2");
  EXPECT_EQ(nlohmann::json::parse(reqs[1].body),
            (nlohmann::json{{"scope", {"https://www.googleapis.com/auth/cloud-platform"}},
                            {"lifetime", "1800s"},
                            {"delegates", nlohmann::json::array()}}));
}

TEST(GcpCredentialsTest, ExternalAccountWithoutImpersonationUsesTheFederatedToken) {
  ScratchDir dir;
  const std::string token_file = dir.Write("t.json", R"({"access_token":"eyJ.json.sig"})");
  nlohmann::json doc = ExternalAccount(token_file, false);
  doc["credential_source"]["format"] = {{"type", "json"},
                                        {"subject_token_field_name", "access_token"}};
  const std::string file = dir.Write("wif.json", doc.dump());
  FakeClock clock;
  FakeHttpClient http([](const RecordedRequest&) { return TokenAnswer("federated"); });
  auto token = NewCredentialsFileSource(Options(file), &http, &clock)
                   ->Fetch(CallContext::WithTimeout(absl::Seconds(5)));
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(token->token.Reveal(), "federated");
  ASSERT_EQ(http.requests().size(), 1U);
  EXPECT_EQ(ParseForm(http.requests()[0].body)["subject_token"], "eyJ.json.sig");
}

TEST(GcpCredentialsTest, AMissingOrEmptySubjectTokenFileIsAnOutageWithoutARequest) {
  ScratchDir dir;
  const std::string file = dir.Write("wif.json", ExternalAccount(dir.Path("absent"), true).dump());
  FakeClock clock;
  FakeHttpClient http([](const RecordedRequest&) { return TokenAnswer("x"); });
  auto source = NewGcpTokenSource(Options(file), &http, &clock);
  ASSERT_THAT(source, IsOk());  // Only read at a refresh: it may appear later.
  auto token = (*source)->Fetch(CallContext::WithTimeout(absl::Seconds(5)));
  EXPECT_THAT(token, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("subject token file")));
  EXPECT_FALSE(IsKeyRevokedError(token.status()));
  dir.Write("absent", "\n");
  EXPECT_THAT((*source)->Fetch(CallContext::WithTimeout(absl::Seconds(5))),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("holds no token")));
  EXPECT_EQ(http.requests().size(), 0U);
}

// Sets (or, with nullptr, unsets) an environment variable. The test runs no other thread while
// it changes the environment, hence the NOLINT for setenv/unsetenv's thread-unsafety.
void SetEnv(const char* name, const char* value) {
  if (value == nullptr) {
    ::unsetenv(name);  // NOLINT(concurrency-mt-unsafe)
  } else {
    ::setenv(name, value, 1);  // NOLINT(concurrency-mt-unsafe)
  }
}

TEST(GcpCredentialsTest, TheMetadataServerServesWhenNoFileIsConfigured) {
  SetEnv("GCE_METADATA_HOST", "127.0.0.9:8181");
  SetEnv("GOOGLE_APPLICATION_CREDENTIALS", nullptr);
  GcpCredentialsOptions o;
  o.FromEnvironment();
  SetEnv("GCE_METADATA_HOST", nullptr);
  EXPECT_EQ(o.metadata_host, "127.0.0.9:8181");
  EXPECT_EQ(o.credentials_file, "");
  FakeClock clock;
  FakeHttpClient http([](const RecordedRequest&) { return TokenAnswer("ya29.md", 100); });
  auto source = NewGcpTokenSource(o, &http, &clock);
  ASSERT_THAT(source, IsOk());
  auto token = (*source)->Fetch(CallContext::WithTimeout(absl::Seconds(5)));
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(token->token.Reveal(), "ya29.md");
  EXPECT_EQ(token->source, "metadata-server");
  ASSERT_EQ(http.requests().size(), 1U);
  EXPECT_EQ(http.requests()[0].method, "GET");
  EXPECT_EQ(http.requests()[0].url,
            "http://127.0.0.9:8181/computeMetadata/v1/instance/service-accounts/default/token"
            "?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform");
  EXPECT_EQ(http.requests()[0].Header("metadata-flavor"), "Google");
  // GOOGLE_APPLICATION_CREDENTIALS names the file when no flag does; the flag wins.
  SetEnv("GOOGLE_APPLICATION_CREDENTIALS", "/env/creds.json");
  GcpCredentialsOptions from_env;
  from_env.FromEnvironment();
  GcpCredentialsOptions from_flag;
  from_flag.credentials_file = "/flag/creds.json";
  from_flag.FromEnvironment();
  SetEnv("GOOGLE_APPLICATION_CREDENTIALS", nullptr);
  EXPECT_EQ(from_env.credentials_file, "/env/creds.json");
  EXPECT_EQ(from_flag.credentials_file, "/flag/creds.json");
  EXPECT_EQ(from_env.metadata_host, "metadata.google.internal");
}

TEST(GcpCredentialsTest, BrokenCredentialsFilesAreRefusedAtStartWithoutEchoingTheKey) {
  ScratchDir dir;
  nlohmann::json no_email = nlohmann::json::parse(ServiceAccountJson());
  no_email.erase("client_email");
  nlohmann::json url_source = ExternalAccount("/x", false);
  url_source["credential_source"] = {{"url", "http://169.254.169.254/token"}};
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir.Path("absent.json"), "cannot be read"},
      {dir.Write("text", "not json -----BEGIN PRIVATE KEY-----"), "not a JSON object"},
      {dir.Write("user.json", R"({"type":"authorized_user","refresh_token":"1//secret"})"),
       "authorized_user"},
      {dir.Write("no_email.json", no_email.dump()), "client_email"},
      {dir.Write("url.json", url_source.dump()), "credential_source.file"},
  };
  for (const auto& [path, why] : cases) {
    absl::Status s = ValidateCredentialsFile(path);
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why))) << path;
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("PRIVATE KEY")));
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("1//secret")));
  }
  EXPECT_THAT(ValidateCredentialsFile(dir.Write("sa.json", ServiceAccountJson())), IsOk());
  EXPECT_THAT(ValidateCredentialsFile(""), IsOk());
}

}  // namespace
}  // namespace kmsplugin::gcp
