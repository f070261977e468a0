// Frozen format: the AWS backend's key_id (kek_id), as kms/aws/aws_kms.h documents it:
//     aws:<key ARN>[/<KeyMaterialId>]
// The apiserver stores it next to every value and compares it on Status; the plugin parses it back
// on Decrypt. Golden strings for each AWS partition (aws, aws-cn, aws-us-gov), with and without a
// key material id (a 64-hex-digit id as AWS reports for AWS_KMS and EXTERNAL key material), and a
// multi-Region key. Written down by hand from the documented form; never edit them.
#include <string>

#include "gtest/gtest.h"
#include "kms/aws/aws_kms.h"

namespace kmsplugin::aws {
namespace {

constexpr char kMaterialId[] = "6f0ce2a4b1d3c5e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcde";

struct GoldenKeyId {
  const char* arn;
  const char* material_id;  // "" when AWS reports none.
  const char* key_id;       // What the plugin must say.
};

constexpr GoldenKeyId kGolden[] = {
    {"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "",
     "aws:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", kMaterialId,
     "aws:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab/"
     "6f0ce2a4b1d3c5e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcde"},
    {"arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "",
     "aws:arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", kMaterialId,
     "aws:arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab/"
     "6f0ce2a4b1d3c5e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcde"},
    {"arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "",
     "aws:arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
    {"arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
     kMaterialId,
     "aws:arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab/"
     "6f0ce2a4b1d3c5e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcde"},
    // A multi-Region key (key id "mrk-" + 32 hex digits).
    {"arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", kMaterialId,
     "aws:arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab/"
     "6f0ce2a4b1d3c5e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678abcde"},
};

TEST(AwsKeyIdGoldenTest, MakeKekIdGivesTheGoldenStringInEveryPartitionWithAndWithoutMaterial) {
  int checked = 0;
  for (const GoldenKeyId& g : kGolden) {
    EXPECT_EQ(AwsKms::MakeKekId(g.arn, g.material_id), g.key_id) << g.arn;
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

TEST(AwsKeyIdGoldenTest, TheKeyIdIsThePrefixTheArnAndOneSlashBeforeTheMaterialId) {
  for (const GoldenKeyId& g : kGolden) {
    const std::string expected = std::string("aws:") + g.arn +
                                 (*g.material_id != '\0' ? std::string("/") + g.material_id : "");
    EXPECT_EQ(AwsKms::MakeKekId(g.arn, g.material_id), expected);
  }
}

TEST(AwsKeyIdGoldenTest, EveryGoldenKeyIdFitsTheApiserverLimitOf1024Bytes) {
  for (const GoldenKeyId& g : kGolden) {
    const std::string id = AwsKms::MakeKekId(g.arn, g.material_id);
    EXPECT_LE(id.size(), 1024u) << id;
    EXPECT_FALSE(id.empty());
  }
  // The longest region and partition of today with a material id stays far below the limit.
  const std::string longest = AwsKms::MakeKekId(
      "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
      kMaterialId);
  EXPECT_EQ(longest.size(), 155u);
}

TEST(AwsKeyIdGoldenTest, EveryGoldenKeyIdIsPrintableAscii) {
  for (const GoldenKeyId& g : kGolden) {
    for (char c : std::string(g.key_id)) {
      EXPECT_TRUE(c > 0x20 && c < 0x7f) << g.key_id;
    }
  }
}

}  // namespace
}  // namespace kmsplugin::aws
