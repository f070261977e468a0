#include "base/printable.h"

#include <string>

#include "gtest/gtest.h"

namespace kmsplugin {
namespace {

TEST(PrintableTest, KeepsPrintableAsciiAsItIs) {
  EXPECT_EQ(Printable("aws:arn:aws:kms:eu-west-1:1/k"), "aws:arn:aws:kms:eu-west-1:1/k");
}

TEST(PrintableTest, ReplacesControlBytesQuotesBackslashesAndNonAscii) {
  EXPECT_EQ(Printable(std::string("a\nb\0c\"d\\e\x7f\xff", 11)), "a?b?c?d?e??");
}

TEST(PrintableTest, CutsLongInputAndSaysHowLongItWas) {
  std::string long_input(1000, 'x');
  std::string out = Printable(long_input, 8);
  EXPECT_EQ(out, "xxxxxxxx...(1000 bytes)");
}

TEST(PrintableTest, EmptyStaysEmpty) { EXPECT_EQ(Printable(""), ""); }

}  // namespace
}  // namespace kmsplugin
