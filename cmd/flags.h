// Small CLI11 helpers shared by the subcommands.
#ifndef KMSP_CMD_FLAGS_H_
#define KMSP_CMD_FLAGS_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"

namespace kmsplugin {

// A duration flag in Go syntax ("30s", "1m", "24h", "1h30m"), validated at parse time.
inline CLI::Option* AddDurationFlag(CLI::App* app, const std::string& name, absl::Duration* out,
                                    const std::string& help) {
  return app
      ->add_option_function<std::string>(
          name,
          [out, name](const std::string& text) {
            absl::Duration d;
            if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
              throw CLI::ValidationError(name, "not a duration like 30s, 5m or 24h: " + text);
            }
            *out = d;
          },
          help)
      ->default_str(absl::FormatDuration(*out));
}

}  // namespace kmsplugin

#endif  // KMSP_CMD_FLAGS_H_
