#include "plugin/envelope_format.h"

#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin {
namespace {

using ::kmsplugin::testing::IsOk;
using ::kmsplugin::testing::StatusIs;

TEST(EnvelopeFormatTest, FqdnRuleAcceptsTheContractsValidExamples) {
  for (const char* k : {"local-kek.kms.kubernetes.io", "version.encryption.remote.io",
                        "dek.kms-plugin.io", "a.b", "a.b.", "0a.9z"}) {
    EXPECT_TRUE(IsFullyQualifiedDomainName(k)) << k;
  }
}

TEST(EnvelopeFormatTest, FqdnRuleRejectsTheContractsInvalidExamples) {
  for (const char* k : {"kms.kubernetes.io/local-kek", "LocalKEK.example.com", "kek", "", ".",
                        "a..b", "-a.b", "a-.b", "a_b.c", "a.b:1", "a.b..", ".a.b"}) {
    EXPECT_FALSE(IsFullyQualifiedDomainName(k)) << k;
  }
  EXPECT_FALSE(IsFullyQualifiedDomainName(std::string(64, 'a') + ".b"));
  EXPECT_TRUE(IsFullyQualifiedDomainName(std::string(63, 'a') + ".b"));
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefghi.";
  long_name += "z";
  EXPECT_FALSE(IsFullyQualifiedDomainName(long_name));
}

TEST(EnvelopeFormatTest, ValidateAnnotationsEnforcesTheSizeLimit) {
  Annotations a{{"a.example.com", std::string(32 * 1024 - 13, 'x')}};
  EXPECT_THAT(ValidateAnnotations(a), IsOk());
  a.begin()->second.push_back('x');
  EXPECT_THAT(ValidateAnnotations(a), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(EnvelopeFormatTest, ParseEnvelopeRejectsWrongVersionAndSizes) {
  std::string ok = SerializeEnvelope(std::string(12, 'n'), std::string(48, 'c'));
  EXPECT_THAT(ParseEnvelope(ok), IsOk());
  std::string bad = ok;
  bad[0] = 2;
  EXPECT_THAT(ParseEnvelope(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEnvelope(ok.substr(0, kEnvelopeOverhead - 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEnvelope(std::string(1024, '\x01')), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(EnvelopeFormatTest, AadBindsKeyIdAndEveryAnnotation) {
  Annotations a{{"dek.kms-plugin.io", "blob"}};
  std::string base = EnvelopeAad("k1", a);
  EXPECT_NE(base, EnvelopeAad("k2", a));
  EXPECT_NE(base, EnvelopeAad("k1", Annotations{{"dek.kms-plugin.io", "blob2"}}));
  EXPECT_NE(base, EnvelopeAad("k1", Annotations{{"dek.kms-plugin.io", "blob"}, {"x.y", ""}}));
  // Length prefixes: moving bytes between fields changes the AAD.
  EXPECT_NE(EnvelopeAad("ab", Annotations{{"c.d", "e"}}), EnvelopeAad("a", Annotations{{"bc.d", "e"}}));
}

}  // namespace
}  // namespace kmsplugin
