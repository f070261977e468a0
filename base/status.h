// Return macros over absl::Status / absl::StatusOr (abseil 20220623 has none of its own).
//
//   KMSP_RETURN_IF_ERROR(DoThing());
//   KMSP_ASSIGN_OR_RETURN(auto value, MaybeValue());
//
// Our code never throws: every fallible internal API returns absl::Status or absl::StatusOr<T>,
// whose codes are gRPC's codes (docs/style.md, "Errors").
#ifndef KMSP_BASE_STATUS_H_
#define KMSP_BASE_STATUS_H_

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define KMSP_STATUS_CONCAT_INNER_(a, b) a##b
#define KMSP_STATUS_CONCAT_(a, b) KMSP_STATUS_CONCAT_INNER_(a, b)

#define KMSP_RETURN_IF_ERROR(expr)                          \
  do {                                                      \
    ::absl::Status kmsp_status_ = (expr);                   \
    if (!kmsp_status_.ok()) return kmsp_status_;            \
  } while (0)

// `tmp` is an identifier and `lhs` may be a declaration ("auto x"): neither can be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define KMSP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

#define KMSP_ASSIGN_OR_RETURN(lhs, expr) \
  KMSP_ASSIGN_OR_RETURN_IMPL_(KMSP_STATUS_CONCAT_(kmsp_statusor_, __LINE__), lhs, expr)

namespace kmsplugin {

// absl's constructors take absl::string_view, which on Debian is not std::string_view.
inline absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view ToStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// Returns `status` with `context: ` put before its message; the code is kept.
inline absl::Status Annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  std::string msg(context);
  msg += ": ";
  msg += std::string(ToStd(status.message()));
  return absl::Status(status.code(), msg);
}

}  // namespace kmsplugin

#endif  // KMSP_BASE_STATUS_H_
