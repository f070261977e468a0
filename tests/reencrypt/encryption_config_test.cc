// encryption_config: parsing kube-apiserver's EncryptionConfiguration and resolving resources.
#include "tools/reencrypt/encryption_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin::reencrypt {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;
using ::testing::HasSubstr;

// 32 bytes "0123456789abcdef0123456789abcdef" in base64.
constexpr char kKey32[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

std::string Doc(const std::string& resources) {
  return "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n" +
         resources;
}

class EncryptionConfigTest : public ::testing::Test {};

TEST_F(EncryptionConfigTest, ParsesEveryProviderType) {
  auto config = ParseEncryptionConfig(Doc(std::string(R"(
  - resources: [secrets, configmaps]
    providers:
      - kms:
          apiVersion: v2
          name: kms-plugin
          endpoint: unix:///var/run/kms.sock
          timeout: 1500ms
      - kms:
          name: old-v1
          endpoint: unix:///var/run/v1.sock
          cachesize: 100
      - aescbc:
          keys:
            - name: key1
              secret: )") + kKey32 + R"(
            - name: key0
              secret: MDEyMzQ1Njc4OWFiY2RlZg==
      - aesgcm:
          keys: [{name: g1, secret: )" + kKey32 +
                                          R"(}]
      - secretbox:
          keys: [{name: s1, secret: )" + kKey32 +
                                          R"(}]
      - identity: {}
)"));
  ASSERT_THAT(config, IsOk());
  ASSERT_EQ(config->rules.size(), 1u);
  const auto& p = config->rules[0].providers;
  ASSERT_EQ(p.size(), 6u);
  EXPECT_EQ(p[0].kind, ProviderKind::kKmsV2);
  EXPECT_EQ(p[0].name, "kms-plugin");
  EXPECT_EQ(p[0].endpoint, "unix:///var/run/kms.sock");
  EXPECT_EQ(p[0].timeout, absl::Milliseconds(1500));
  EXPECT_EQ(p[1].kind, ProviderKind::kKmsV1) << "kms without apiVersion is v1";
  EXPECT_EQ(p[1].timeout, absl::Seconds(3));
  EXPECT_EQ(p[2].kind, ProviderKind::kAesCbc);
  ASSERT_EQ(p[2].keys.size(), 2u);
  EXPECT_EQ(p[2].keys[0].name, "key1");
  EXPECT_EQ(p[2].keys[0].secret.Reveal(), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(p[2].keys[1].secret.size(), 16u);
  EXPECT_EQ(p[3].kind, ProviderKind::kAesGcm);
  EXPECT_EQ(p[4].kind, ProviderKind::kSecretbox);
  EXPECT_EQ(p[5].kind, ProviderKind::kIdentity);
}

TEST_F(EncryptionConfigTest, AcceptsLegacyEncryptionConfigKind) {
  auto config = ParseEncryptionConfig(
      "kind: EncryptionConfig\napiVersion: v1\nresources:\n- resources: [secrets]\n"
      "  providers: [{identity: {}}]\n");
  EXPECT_THAT(config, IsOk());
}

TEST_F(EncryptionConfigTest, FindRuleAppliesExactNamesThenGroupWildcardsThenStarStar) {
  auto config = ParseEncryptionConfig(Doc(R"(
  - resources: [secrets, widgets.example.com]
    providers: [{identity: {}}]
  - resources: ["*.apps"]
    providers: [{identity: {}}]
  - resources: ["*."]
    providers: [{identity: {}}]
  - resources: ["*.*"]
    providers: [{identity: {}}]
)"));
  ASSERT_THAT(config, IsOk());
  const auto& r = config->rules;
  EXPECT_EQ(config->FindRule(GroupResource::Parse("secrets")), &r[0]);
  EXPECT_EQ(config->FindRule(GroupResource::Parse("widgets.example.com")), &r[0]);
  EXPECT_EQ(config->FindRule(GroupResource::Parse("deployments.apps")), &r[1]);
  EXPECT_EQ(config->FindRule(GroupResource::Parse("configmaps")), &r[2]);
  EXPECT_EQ(config->FindRule(GroupResource::Parse("roles.rbac.authorization.k8s.io")), &r[3]);
  EXPECT_TRUE(config->HasWildcards());
  ASSERT_EQ(config->ExplicitResources().size(), 2u);
  EXPECT_EQ(config->ExplicitResources()[1].group, "example.com");
}

TEST_F(EncryptionConfigTest, UnlistedResourceHasNoRule) {
  auto config =
      ParseEncryptionConfig(Doc("  - resources: [secrets]\n    providers: [{identity: {}}]\n"));
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->FindRule(GroupResource::Parse("configmaps")), nullptr);
}

TEST_F(EncryptionConfigTest, RejectsWhatKubeApiserverRejects) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::string kms = "{kms: {apiVersion: v2, name: a, endpoint: unix:///a.sock}}";
  const Case cases[] = {
      {"  - resources: ['*']\n    providers: [{identity: {}}]\n", "'*.*'"},
      {"  - resources: [Secrets]\n    providers: [{identity: {}}]\n", "lower case"},
      {"  - resources: [secrets, secrets]\n    providers: [{identity: {}}]\n", "twice"},
      {"  - resources: ['*.*']\n    providers: [{identity: {}}]\n  - resources: [secrets]\n"
       "    providers: [{identity: {}}]\n",
       "masked"},
      {"  - resources: [deployments.extensions]\n    providers: [{identity: {}}]\n", "extensions"},
      {"  - resources: [secrets]\n    providers: [{kms: {apiVersion: v2, name: 'a:b', endpoint: "
       "unix:///a.sock}}]\n",
       "':'"},
      {"  - resources: [secrets]\n    providers: [{kms: {apiVersion: v2, name: a, endpoint: "
       "unix:///a.sock, cachesize: 10}}]\n",
       "cachesize"},
      {"  - resources: [secrets]\n    providers: [{kms: {apiVersion: v2, name: a, endpoint: "
       "unix:///a.sock, timeout: 0s}}]\n",
       "timeout"},
      {"  - resources: [secrets]\n    providers: [" + kms +
           ", {kms: {apiVersion: v2, name: a, "
           "endpoint: unix:///other.sock}}]\n",
       "two providers"},
      {"  - resources: [secrets]\n    providers: [{aescbc: {keys: [{name: k, secret: AAAA}]}}]\n",
       "16, 24 or 32"},
      {"  - resources: [secrets]\n    providers: [{aescbc: {keys: [{name: k, secret: '!!'}]}}]\n",
       "base64"},
      {"  - resources: [secrets]\n    providers: [{secretbox: {keys: [{name: k, secret: "
       "MDEyMzQ1Njc4OWFiY2RlZg==}]}}]\n",
       "32"},
      {"  - resources: [secrets]\n    providers: [{identity: {}, aescbc: {keys: []}}]\n",
       "exactly one"},
      {"  - resources: [secrets]\n    providers: [{rot13: {}}]\n", "unknown provider"},
      {"  - resources: [secrets]\n    providers: []\n", "providers"},
      {"  - resources: [secrets\n", "YAML"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseEncryptionConfig(Doc(c.yaml)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.yaml;
  }
  EXPECT_THAT(ParseEncryptionConfig("kind: Pod\napiVersion: v1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unsupported kind")));
}

TEST_F(EncryptionConfigTest, ErrorsNeverContainKeyMaterial) {
  // A 20-byte key: the message names the size, not the bytes.
  auto config = ParseEncryptionConfig(
      Doc("  - resources: [secrets]\n    providers: [{aesgcm: {keys: [{name: k, secret: "
          "c2VjcmV0LWtleS1ieXRlcy0yMDA=}]}}]\n"));
  ASSERT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(config.status().message()), ::testing::Not(HasSubstr("c2VjcmV0")));
  EXPECT_THAT(std::string(config.status().message()), ::testing::Not(HasSubstr("secret-key")));
}

TEST_F(EncryptionConfigTest, LoadReportsMissingFile) {
  EXPECT_THAT(LoadEncryptionConfigFile("/nonexistent/encryption.yaml"),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace kmsplugin::reencrypt
