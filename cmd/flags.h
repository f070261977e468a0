// Small CLI11 helpers shared by the subcommands.
#ifndef KMSP_CMD_FLAGS_H_
#define KMSP_CMD_FLAGS_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"

namespace kmsplugin {

// A duration flag in Go syntax ("30s", "1m", "24h", "1h30m"), validated at parse time: text that
// is not a duration, or a value below `min`, is refused with a message naming the flag, e.g.
// "--key-poll-interval: must be at least 1s, got 0s". Every duration flag has a minimum (a zero
// poll interval spins, a zero timeout fails every call); ZeroDuration() only where 0 means "none".
inline CLI::Option* AddDurationFlag(CLI::App* app, const std::string& name, absl::Duration* out,
                                    absl::Duration min, const std::string& help) {
  return app
      ->add_option_function<std::string>(
          name,
          [out, name, min](const std::string& text) {
            absl::Duration d;
            if (!absl::ParseDuration(text, &d)) {
              throw CLI::ValidationError(name, "not a duration like 30s, 5m or 24h: " + text);
            }
            if (d < min) {
              throw CLI::ValidationError(name, "must be at least " + absl::FormatDuration(min) +
                                                   ", got " + absl::FormatDuration(d));
            }
            *out = d;
          },
          help + " (at least " + absl::FormatDuration(min) + ")")
      ->default_str(absl::FormatDuration(*out));
}

}  // namespace kmsplugin

#endif  // KMSP_CMD_FLAGS_H_
