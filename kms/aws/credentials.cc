#include "kms/aws/credentials.h"

#include <cstdlib>

#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"

namespace kmsplugin::aws {

EnvLookup ProcessEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::optional<std::string> NonEmptyEnv(const EnvLookup& env, std::string_view name) {
  std::optional<std::string> v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

absl::StatusOr<absl::Time> ParseAwsTime(std::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, ToAbsl(text), &t, &err)) {
    return absl::InvalidArgumentError(
        fmt::format("time '{}' is not ISO 8601 (e.g. 2024-01-01T12:00:00Z)", Printable(text)));
  }
  return t;
}

}  // namespace kmsplugin::aws
