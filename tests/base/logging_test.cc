// The json log format: the fields of a record, JSON escaping of any message bytes (invalid UTF-8
// replaced), and uid / key_id present inside a ScopedLogContext and absent outside it.
#include "base/logging.h"

#include <chrono>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kmsplugin {
namespace {

using internal::AppendJsonString;
using internal::JsonLogRecord;
using ::testing::HasSubstr;

// 2026-12-02T11:21:38.000042Z
const std::chrono::system_clock::time_point kTime =
    std::chrono::system_clock::time_point(std::chrono::seconds(1796210498)) +
    std::chrono::microseconds(42);

std::string Json(std::string_view bytes) {
  std::string out;
  AppendJsonString(&out, bytes);
  return out;
}

nlohmann::json Parse(const std::string& line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << line;
  return j;
}

TEST(JsonLogTest, RecordHasTimeLevelAndMessageInThatOrder) {
  std::string line = JsonLogRecord(kTime, "warn", "KMS probe failed");
  EXPECT_EQ(line,
            R"({"time":"2026-12-02T11:21:38.000042Z","level":"warn","msg":"KMS probe failed"})");
  nlohmann::json j = Parse(line);
  EXPECT_EQ(j.size(), 3u);
}

TEST(JsonLogTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(Json("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(Json("l1\nl2\r\t"), R"("l1\nl2\r\t")");
  EXPECT_EQ(Json(std::string("\0\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  // Every byte value in a message still gives one parseable line that round-trips the ASCII.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string line = JsonLogRecord(kTime, "info", all);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  nlohmann::json j = Parse(line);
  std::string msg = j["msg"].get<std::string>();
  EXPECT_EQ(msg.substr(0, 128), all.substr(0, 128));
  EXPECT_THAT(msg, HasSubstr("\xef\xbf\xbd"));  // U+FFFD for the lone high bytes.
}

TEST(JsonLogTest, KeepsValidUtf8AndReplacesInvalidSequences) {
  EXPECT_EQ(Json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"");
  EXPECT_EQ(Json("\xc3"), R"("\ufffd")");                                // Truncated.
  EXPECT_EQ(Json("\xc0\xaf"), R"("\ufffd\ufffd")");                      // Overlong '/'.
  EXPECT_EQ(Json("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // A surrogate, U+D800.
  EXPECT_EQ(Json("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // Above U+10FFFF.
  EXPECT_EQ(Json("\xe2\x82x"), R"("\ufffdx")");  // Cut short by an ASCII byte.
  EXPECT_EQ(Json("\xff\xfe"), R"("\ufffd\ufffd")");
}

TEST(JsonLogTest, UidAndKeyIdAppearInsideARequestScopeOnly) {
  EXPECT_EQ(Parse(JsonLogRecord(kTime, "info", "before")).count("uid"), 0u);
  {
    ScopedLogContext request("0f8e7c1a-0000-4000-8000-000000000000", "");
    nlohmann::json j = Parse(JsonLogRecord(kTime, "info", "in request"));
    EXPECT_EQ(j["uid"], "0f8e7c1a-0000-4000-8000-000000000000");
    EXPECT_EQ(j.count("key_id"), 0u);  // Not known yet.
    {
      ScopedLogContext answered("0f8e7c1a-0000-4000-8000-000000000000", "local:v3");
      nlohmann::json k = Parse(JsonLogRecord(kTime, "debug", "answered"));
      EXPECT_EQ(k["uid"], "0f8e7c1a-0000-4000-8000-000000000000");
      EXPECT_EQ(k["key_id"], "local:v3");
    }
    EXPECT_EQ(Parse(JsonLogRecord(kTime, "info", "back")).count("key_id"), 0u);
    // Another thread is outside the scope.
    std::string other;
    std::thread([&other] { other = JsonLogRecord(kTime, "info", "other thread"); }).join();
    EXPECT_EQ(Parse(other).count("uid"), 0u);
  }
  nlohmann::json after = Parse(JsonLogRecord(kTime, "info", "after"));
  EXPECT_EQ(after.count("uid"), 0u);
  EXPECT_EQ(after.count("key_id"), 0u);
}

TEST(JsonLogTest, ScopeValuesAreCopiedSanitisedAndCut) {
  std::string uid = "uid\"with\nbytes\xff";
  std::string long_key(300, 'k');
  ScopedLogContext scope(uid, long_key);
  uid.assign(uid.size(), 'X');  // The scope kept its own copy.
  nlohmann::json j = Parse(JsonLogRecord(kTime, "info", "m"));
  EXPECT_EQ(j["uid"], "uid?with?bytes?");
  EXPECT_EQ(j["key_id"], std::string(256, 'k') + "...(300 bytes)");
}

TEST(JsonLogTest, LogFormatNamesParse) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("JSON").ok());
  EXPECT_TRUE(InitLogging("info", LogFormat::kJson).ok());
  EXPECT_TRUE(InitLogging("info").ok());
}

}  // namespace
}  // namespace kmsplugin
