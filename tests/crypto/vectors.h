// Helpers for the crypto tests: read a file under KMSP_SHARED_TESTDATA and pull hex fields out of
// nlohmann::json objects without exceptions (a missing or malformed field is a Status, so a test
// reports it as a failure instead of passing over it).
#ifndef KMSP_TESTS_CRYPTO_VECTORS_H_
#define KMSP_TESTS_CRYPTO_VECTORS_H_

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::testing {

// Contents of KMSP_SHARED_TESTDATA/<relative>. NOT_FOUND if the file cannot be opened.
inline absl::StatusOr<std::string> ReadTestdata(std::string_view relative) {
  std::string path = fmt::format("{}/{}", KMSP_SHARED_TESTDATA, relative);
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(fmt::format("cannot open {}", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// Parses `text` as JSON without throwing. INVALID_ARGUMENT if it does not parse.
inline absl::StatusOr<nlohmann::json> ParseJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("JSON does not parse");
  return j;
}

// The string member `name` of `obj`. INVALID_ARGUMENT if absent or not a string.
inline absl::StatusOr<std::string> StringField(const nlohmann::json& obj, std::string_view name) {
  if (!obj.is_object()) return absl::InvalidArgumentError("not a JSON object");
  auto it = obj.find(std::string(name));
  if (it == obj.end() || !it->is_string()) {
    return absl::InvalidArgumentError(fmt::format("missing string field '{}'", name));
  }
  return it->get<std::string>();
}

// The hex-encoded member `name` of `obj`, decoded to bytes.
inline absl::StatusOr<std::string> HexField(const nlohmann::json& obj, std::string_view name) {
  auto hex = StringField(obj, name);
  if (!hex.ok()) return hex.status();
  return HexDecode(*hex);
}

// `hex` (a literal typed into a test, or a golden file's field) decoded to bytes; a typo fails
// the calling test and gives "".
inline std::string Unhex(const std::string& hex) {
  absl::StatusOr<std::string> bytes = HexDecode(hex);
  EXPECT_TRUE(bytes.ok()) << bytes.status() << ": " << hex;
  return bytes.ok() ? *bytes : std::string();
}

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_CRYPTO_VECTORS_H_
