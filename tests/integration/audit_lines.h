// Reading an audit log (serve --audit-log) or a JSON-format log in end-to-end tests: the JSON
// objects among its lines, and those of one "type".
#ifndef KMSP_TESTS_INTEGRATION_AUDIT_LINES_H_
#define KMSP_TESTS_INTEGRATION_AUDIT_LINES_H_

#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/integration/plugin_process.h"

namespace kmsplugin::testing {

// The JSON objects among the lines of `text` (other lines, e.g. spdlog's, are skipped).
inline std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.front() != '{') continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

// The JSON lines of the file at `path` (none if it cannot be read).
inline std::vector<nlohmann::json> AuditLines(const std::string& path) {
  return JsonLines(ReadFile(path).value_or(""));
}

// The lines whose "type" is `type` ("kms_request", "admin").
inline std::vector<nlohmann::json> OfType(const std::vector<nlohmann::json>& lines,
                                          const std::string& type) {
  std::vector<nlohmann::json> out;
  for (const nlohmann::json& j : lines) {
    if (j.value("type", "") == type) out.push_back(j);
  }
  return out;
}

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_INTEGRATION_AUDIT_LINES_H_
