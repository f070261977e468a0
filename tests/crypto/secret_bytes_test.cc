// SecretBytes: ownership (move-only, explicit Clone), wiping (moves, TakeFrom, Clear),
// constant-time comparison, and, at compile time, that it cannot be copied, streamed or formatted.
#include "crypto/secret_bytes.h"

#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "fmt/format.h"
#include "fmt/ostream.h"
#include "fmt/ranges.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kmsplugin {
namespace {

// ---- Compile-time contract -----------------------------------------------------------------

// Detection idiom: true when `os << value` compiles for a const T&.
template <typename T, typename = void>
struct IsStreamable : std::false_type {};
template <typename T>
struct IsStreamable<
    T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
    : std::true_type {};

// The detectors themselves work (otherwise the negative checks below prove nothing).
static_assert(IsStreamable<std::string>::value);
static_assert(IsStreamable<int>::value);
static_assert(fmt::is_formattable<std::string>::value);
static_assert(fmt::is_formattable<int>::value);

static_assert(!std::is_copy_constructible_v<SecretBytes>, "SecretBytes must not be copyable");
static_assert(!std::is_copy_assignable_v<SecretBytes>, "SecretBytes must not be copyable");
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);
static_assert(std::is_nothrow_move_assignable_v<SecretBytes>);

static_assert(!IsStreamable<SecretBytes>::value, "SecretBytes must have no operator<<");
// fmt/ostream.h and fmt/ranges.h are included above, so neither an ostream fallback nor range
// formatting can make it formattable (and so loggable through spdlog).
static_assert(!fmt::is_formattable<SecretBytes>::value, "SecretBytes must not be formattable");
static_assert(!fmt::is_formattable<SecretBytes, wchar_t>::value);

// No implicit way out of the wrapper.
static_assert(!std::is_convertible_v<const SecretBytes&, std::string>);
static_assert(!std::is_convertible_v<const SecretBytes&, std::string_view>);
static_assert(!std::is_convertible_v<const SecretBytes&, const char*>);
static_assert(!std::is_convertible_v<const SecretBytes&, const uint8_t*>);
static_assert(!std::is_convertible_v<const SecretBytes&, bool>);
// And no implicit way in: a size or a string does not silently become a secret.
static_assert(!std::is_convertible_v<size_t, SecretBytes>);
static_assert(!std::is_convertible_v<std::string, SecretBytes>);

// ---- Runtime behaviour ---------------------------------------------------------------------

class SecretBytesTest : public ::testing::Test {};

TEST_F(SecretBytesTest, DefaultConstructedIsEmpty) {
  SecretBytes s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.Reveal(), "");
}

TEST_F(SecretBytesTest, SizeConstructorZeroFills) {
  SecretBytes s(40);
  EXPECT_EQ(s.size(), 40u);
  EXPECT_EQ(s.Reveal(), std::string(40, '\0'));
}

TEST_F(SecretBytesTest, CopyFromKeepsEveryByteIncludingNul) {
  const std::string bytes("k\0e\xffy", 5);
  SecretBytes s = SecretBytes::CopyFrom(bytes);
  EXPECT_EQ(s.size(), 5u);
  EXPECT_EQ(s.Reveal(), bytes);
  EXPECT_NE(static_cast<const void*>(s.Reveal().data()), static_cast<const void*>(bytes.data()));
}

TEST_F(SecretBytesTest, RevealMutableWritesThroughToReveal) {
  SecretBytes s(3);
  s.RevealMutable()[0] = 'a';
  s.RevealMutable()[2] = 'c';
  EXPECT_EQ(s.Reveal(), std::string("a\0c", 3));
}

TEST_F(SecretBytesTest, MoveConstructionLeavesTheSourceEmpty) {
  SecretBytes source = SecretBytes::CopyFrom("key material");
  const char* buffer = source.Reveal().data();
  SecretBytes target(std::move(source));
  EXPECT_EQ(target.Reveal(), "key material");
  EXPECT_EQ(target.Reveal().data(), buffer);  // Moved, not copied.
  EXPECT_TRUE(source.empty());       // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(source.size(), 0u);
  EXPECT_EQ(source.Reveal().data(), nullptr);
  EXPECT_EQ(source.Reveal(), "");
}

TEST_F(SecretBytesTest, MoveAssignmentLeavesTheSourceEmptyAndReplacesTheTarget) {
  SecretBytes source = SecretBytes::CopyFrom("new key");
  SecretBytes target = SecretBytes::CopyFrom("old key, longer");
  target = std::move(source);
  EXPECT_EQ(target.Reveal(), "new key");
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(source.Reveal().data(), nullptr);
}

TEST_F(SecretBytesTest, SelfMoveAssignmentKeepsTheBytes) {
  SecretBytes s = SecretBytes::CopyFrom("self");
  SecretBytes& alias = s;
  s = std::move(alias);
  EXPECT_EQ(s.Reveal(), "self");
}

TEST_F(SecretBytesTest, MovedFromObjectCanBeReused) {
  SecretBytes a = SecretBytes::CopyFrom("first");
  SecretBytes b(std::move(a));
  a = SecretBytes::CopyFrom("second");  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.Reveal(), "second");
  EXPECT_EQ(b.Reveal(), "first");
}

TEST_F(SecretBytesTest, CloneCopiesIntoAnIndependentBuffer) {
  SecretBytes original = SecretBytes::CopyFrom("original");
  SecretBytes clone = original.Clone();
  EXPECT_EQ(clone.Reveal(), "original");
  EXPECT_NE(clone.Reveal().data(), original.Reveal().data());
  clone.RevealMutable()[0] = 'X';
  EXPECT_EQ(clone.Reveal(), "Xriginal");
  EXPECT_EQ(original.Reveal(), "original");
  clone.Clear();
  EXPECT_EQ(original.Reveal(), "original");
}

TEST_F(SecretBytesTest, CloneOfEmptyIsEmpty) {
  SecretBytes empty;
  EXPECT_TRUE(empty.Clone().empty());
}

TEST_F(SecretBytesTest, ConstantTimeEqualsComparesSizeAndEveryByte) {
  const SecretBytes a = SecretBytes::CopyFrom("0123456789abcdef");
  EXPECT_TRUE(a.ConstantTimeEquals(a));
  EXPECT_TRUE(a.ConstantTimeEquals(SecretBytes::CopyFrom("0123456789abcdef")));
  EXPECT_FALSE(a.ConstantTimeEquals(SecretBytes::CopyFrom("X123456789abcdef")));
  EXPECT_FALSE(a.ConstantTimeEquals(SecretBytes::CopyFrom("0123456789abcdeX")));
  EXPECT_FALSE(a.ConstantTimeEquals(SecretBytes::CopyFrom("0123456789abcde")));
  EXPECT_FALSE(a.ConstantTimeEquals(SecretBytes::CopyFrom("0123456789abcdef0")));
  EXPECT_FALSE(a.ConstantTimeEquals(SecretBytes()));
  EXPECT_FALSE(SecretBytes().ConstantTimeEquals(a));
  EXPECT_TRUE(SecretBytes().ConstantTimeEquals(SecretBytes()));
  EXPECT_TRUE(SecretBytes().ConstantTimeEquals(SecretBytes(0)));
}

// The test reads the string's buffer through a pointer taken before the call: std::string::clear
// keeps the allocation, so the bytes that held the secret are still there to inspect.
void ExpectTakeFromWipes(std::string secret) {
  const std::string expected = secret;
  const char* buffer = secret.data();
  const size_t capacity = secret.capacity();
  SecretBytes taken = SecretBytes::TakeFrom(secret);
  EXPECT_EQ(taken.Reveal(), expected);
  EXPECT_TRUE(secret.empty());
  ASSERT_EQ(secret.data(), buffer) << "the string was reallocated; cannot inspect the old buffer";
  for (size_t i = 0; i < capacity; ++i) {
    EXPECT_EQ(buffer[i], '\0') << "byte " << i << " of " << capacity << " was not wiped";
  }
}

TEST_F(SecretBytesTest, TakeFromWipesAHeapAllocatedSourceString) {
  std::string secret(100, 's');
  secret.reserve(200);  // Capacity beyond size must be wiped too.
  secret.resize(50);    // Bytes 50..99 still hold 's' in the buffer.
  ExpectTakeFromWipes(std::move(secret));
}

TEST_F(SecretBytesTest, TakeFromWipesAShortInlineSourceString) { ExpectTakeFromWipes("pin1234"); }

TEST_F(SecretBytesTest, WipeStringZeroesTheWholeBufferAndEmptiesTheString) {
  std::string s(64, 't');
  const char* buffer = s.data();
  const size_t capacity = s.capacity();
  WipeString(s);
  EXPECT_TRUE(s.empty());
  ASSERT_EQ(s.data(), buffer);
  for (size_t i = 0; i < capacity; ++i) EXPECT_EQ(buffer[i], '\0') << "byte " << i;
}

TEST_F(SecretBytesTest, ClearReleasesTheBytes) {
  SecretBytes s = SecretBytes::CopyFrom("to be cleared");
  s.Clear();
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.Reveal().data(), nullptr);
  EXPECT_EQ(s.Reveal(), "");
  s.Clear();  // Idempotent.
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace kmsplugin
