// Unit test of the apiserver checks in apiserver_validation.h, on the examples of
// kmsv2-contract.md §2.1–2.2 and the apimachinery IsFullyQualifiedDomainName rules.
#include "tests/integration/apiserver_validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/matchers.h"

namespace kmsplugin::testing {
namespace {

using ::testing::HasSubstr;

class ApiserverValidationTest : public ::testing::Test {
 protected:
  static v2::EncryptResponse ValidEncryptResponse() {
    v2::EncryptResponse r;
    r.set_ciphertext("c");
    r.set_key_id("key-1");
    (*r.mutable_annotations())["local-kek.kms.kubernetes.io"] = "x";
    return r;
  }
};

TEST_F(ApiserverValidationTest, AcceptsTheFqdnExamplesOfTheContract) {
  for (const char* key : {"local-kek.kms.kubernetes.io", "version.encryption.remote.io",
                          "encrypted-kek.reference.encryption.k8s.io", "dek.kms-plugin.io", "a.b",
                          "1.2", "a-b.c-d", "x.y.", "0a.b0"}) {
    EXPECT_THAT(ValidateAnnotationKey(key), IsOk()) << key;
  }
}

TEST_F(ApiserverValidationTest, RejectsTheInvalidFqdnExamplesOfTheContract) {
  for (const char* key :
       {"kms.kubernetes.io/local-kek", "LocalKEK.example.com", "kek", "", ".", "kek.", "a..b",
        ".a.b", "a.b..", "-a.b", "a-.b", "a.-b", "a_b.c", "a:b.c", "a b.c", "a.B", "é.com"}) {
    EXPECT_THAT(ValidateAnnotationKey(key), StatusIs(absl::StatusCode::kInvalidArgument))
        << "'" << key << "'";
  }
}

TEST_F(ApiserverValidationTest, EnforcesLabelAndNameLengthLimits) {
  const std::string label63(63, 'a');
  const std::string label64(64, 'a');
  EXPECT_THAT(ValidateAnnotationKey(label63 + ".io"), IsOk());
  EXPECT_THAT(ValidateAnnotationKey(label64 + ".io"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label")));
  // 253 characters: 63 + 1 + 63 + 1 + 63 + 1 + 61.
  const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253u);
  EXPECT_THAT(ValidateAnnotationKey(name253), IsOk());
  EXPECT_THAT(ValidateAnnotationKey(name253 + "."), IsOk());  // One trailing dot is dropped.
  EXPECT_THAT(ValidateAnnotationKey(name253 + "b"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ApiserverValidationTest, LimitsTheSumOfAnnotationKeysAndValuesTo32KiB) {
  const std::string key = "a.io";
  AnnotationMap at_limit = {{key, std::string(32768 - key.size(), 'v')}};
  EXPECT_THAT(ValidateAnnotations(at_limit), IsOk());
  AnnotationMap over = {{key, std::string(32769 - key.size(), 'v')}};
  EXPECT_THAT(ValidateAnnotations(over),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("32768")));
  AnnotationMap bad_key = {{"a.io", "v"}, {"Bad.io", "v"}};
  EXPECT_THAT(ValidateAnnotations(bad_key), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ApiserverValidationTest, StatusNeedsExactlyOkAndAV2VersionAndABoundedKeyId) {
  v2::StatusResponse r;
  r.set_version("v2");
  r.set_healthz("ok");
  r.set_key_id("k");
  EXPECT_THAT(ValidateStatusResponse(r), IsOk());
  r.set_version("v2beta1");
  EXPECT_THAT(ValidateStatusResponse(r), IsOk());
  r.set_version("v1beta1");
  EXPECT_THAT(ValidateStatusResponse(r), StatusIs(absl::StatusCode::kFailedPrecondition));
  r.set_version("v2");
  for (const char* healthz : {"OK", "healthy", "ok ", ""}) {
    r.set_healthz(healthz);
    EXPECT_THAT(ValidateStatusResponse(r), StatusIs(absl::StatusCode::kFailedPrecondition))
        << healthz;
  }
  r.set_healthz("ok");
  r.set_key_id("");
  EXPECT_THAT(ValidateStatusResponse(r), StatusIs(absl::StatusCode::kInvalidArgument));
  r.set_key_id(std::string(1024, 'k'));
  EXPECT_THAT(ValidateStatusResponse(r), IsOk());
  r.set_key_id(std::string(1025, 'k'));
  EXPECT_THAT(ValidateStatusResponse(r), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ApiserverValidationTest, ApiserverViewRejectsAVersionChange) {
  ApiserverView view;
  v2::StatusResponse r;
  r.set_version("v2");
  r.set_healthz("ok");
  r.set_key_id("k");
  EXPECT_THAT(view.ObserveStatus(r), IsOk());
  r.set_version("v2beta1");
  EXPECT_THAT(view.ObserveStatus(r),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("differs")));
}

TEST_F(ApiserverValidationTest, EncryptResponseChecksCiphertextKeyIdAndAnnotations) {
  EXPECT_THAT(ValidateEncryptResponse(ValidEncryptResponse(), "key-1"), IsOk());

  v2::EncryptResponse r = ValidEncryptResponse();
  r.set_ciphertext("");
  EXPECT_THAT(ValidateEncryptResponse(r, "key-1"), StatusIs(absl::StatusCode::kInvalidArgument));
  r.set_ciphertext(std::string(1024, 'c'));
  EXPECT_THAT(ValidateEncryptResponse(r, "key-1"), IsOk());
  r.set_ciphertext(std::string(1025, 'c'));
  EXPECT_THAT(ValidateEncryptResponse(r, "key-1"), StatusIs(absl::StatusCode::kInvalidArgument));

  r = ValidEncryptResponse();
  r.set_key_id("");
  EXPECT_THAT(ValidateEncryptResponse(r, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  r.set_key_id(std::string(1025, 'k'));
  EXPECT_THAT(ValidateEncryptResponse(r, r.key_id()), StatusIs(absl::StatusCode::kInvalidArgument));

  r = ValidEncryptResponse();
  EXPECT_THAT(ValidateEncryptResponse(r, "key-2"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("preceding Status")));

  r = ValidEncryptResponse();
  (*r.mutable_annotations())["kms.kubernetes.io/local-kek"] = "x";
  EXPECT_THAT(ValidateEncryptResponse(r, "key-1"), StatusIs(absl::StatusCode::kInvalidArgument));

  r = ValidEncryptResponse();
  r.clear_annotations();  // Annotations are optional.
  EXPECT_THAT(ValidateEncryptResponse(r, "key-1"), IsOk());
}

TEST_F(ApiserverValidationTest, ApiserverViewNeedsAStatusBeforeEncrypt) {
  ApiserverView view;
  EXPECT_THAT(view.CheckEncrypt(ValidEncryptResponse()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  v2::StatusResponse s;
  s.set_version("v2");
  s.set_healthz("ok");
  s.set_key_id("key-1");
  ASSERT_THAT(view.ObserveStatus(s), IsOk());
  EXPECT_THAT(view.CheckEncrypt(ValidEncryptResponse()), IsOk());
}

TEST_F(ApiserverValidationTest, DekCacheKeyDistinguishesEveryField) {
  AnnotationMap a = {{"a.io", "bc"}};
  AnnotationMap b = {{"a.io", "b"}};
  AnnotationMap none;
  const std::string base = DekCacheKey("ct", "k", a);
  EXPECT_NE(base, DekCacheKey("ct", "k", b));
  EXPECT_NE(base, DekCacheKey("ct", "k", none));
  EXPECT_NE(base, DekCacheKey("ct2", "k", a));
  EXPECT_NE(base, DekCacheKey("ct", "k2", a));
  // Length prefixes keep field boundaries apart.
  EXPECT_NE(DekCacheKey("ab", "c", none), DekCacheKey("a", "bc", none));
  EXPECT_EQ(base, DekCacheKey("ct", "k", AnnotationMap{{"a.io", "bc"}}));
}

}  // namespace
}  // namespace kmsplugin::testing
