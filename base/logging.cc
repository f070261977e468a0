// InitLogging, the json log format and the per-thread log context (see logging.h).
#include "base/logging.h"

#include <algorithm>
#include <ctime>
#include <memory>

#include "base/printable.h"
#include "fmt/format.h"
#include "spdlog/formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {
namespace {

// The innermost ScopedLogContext of this thread.
thread_local const ScopedLogContext* t_context = nullptr;

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "info";
  }
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = internal::JsonLogRecord(
        msg.time, LevelName(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
    line.push_back('\n');
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// The length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 with *bad set to the length of the invalid prefix to
// replace by one U+FFFD (at least 1: Unicode's "maximal subpart" practice).
size_t Utf8Sequence(std::string_view s, size_t* bad) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  size_t need;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (b0 < 0x80) return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    need = 1;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 2;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 3;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    *bad = 1;
    return 0;
  }
  for (size_t i = 1; i <= need; ++i) {
    const auto c = i < s.size() ? static_cast<unsigned char>(s[i]) : 0;
    const unsigned char min = i == 1 ? lo : 0x80;
    const unsigned char max = i == 1 ? hi : 0xbf;
    if (i >= s.size() || c < min || c > max) {
      *bad = i;
      return 0;
    }
  }
  return need + 1;
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError("unknown log format (want text or json)");
}

absl::Status InitLogging(std::string_view level, LogFormat format) {
  spdlog::level::level_enum lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        "unknown log level (want trace, debug, info, warn, error or off)");
  }
  auto logger = std::make_shared<spdlog::logger>("kms-plugin",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %L %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

void ScopedLogContext::Value::Set(std::string_view v, size_t max) {
  size = v.size();
  kept = std::min(v.size(), max);
  v.copy(bytes, kept);
}

std::string ScopedLogContext::Value::Sanitised(size_t max) const {
  std::string out = Printable(std::string_view(bytes, kept), max);
  if (size > kept) out += fmt::format("...({} bytes)", size);
  return out;
}

ScopedLogContext::ScopedLogContext(std::string_view uid, std::string_view key_id)
    : previous_(t_context) {
  uid_.Set(uid, kMaxUid);
  key_id_.Set(key_id, kMaxKeyId);
  t_context = this;
}

ScopedLogContext::~ScopedLogContext() { t_context = previous_; }

std::string ScopedLogContext::CurrentUid() {
  return t_context == nullptr ? std::string() : t_context->uid_.Sanitised(kMaxUid);
}

std::string ScopedLogContext::CurrentKeyId() {
  return t_context == nullptr ? std::string() : t_context->key_id_.Sanitised(kMaxKeyId);
}

namespace internal {

void AppendJsonString(std::string* out, std::string_view bytes) {
  out->push_back('"');
  size_t i = 0;
  while (i < bytes.size()) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out->append(fmt::format("\\u{:04x}", c));
        } else if (c < 0x80) {
          out->push_back(static_cast<char>(c));
        } else {
          size_t bad = 0;
          const size_t n = Utf8Sequence(bytes.substr(i), &bad);
          if (n == 0) {
            out->append("\\ufffd");
            i += bad;
            continue;
          }
          out->append(bytes.substr(i, n));
          i += n;
          continue;
        }
    }
    ++i;
  }
  out->push_back('"');
}

std::string JsonLogRecord(std::chrono::system_clock::time_point time, std::string_view level,
                          std::string_view msg) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  long frac = static_cast<long>(micros % 1000000);
  if (frac < 0) {  // Before 1970: floor, not truncate.
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::string out = fmt::format(R"({{"time":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z","level":)",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                tm.tm_sec, frac);
  AppendJsonString(&out, level);
  out.append(",\"msg\":");
  AppendJsonString(&out, msg);
  if (std::string uid = ScopedLogContext::CurrentUid(); !uid.empty()) {
    out.append(",\"uid\":");
    AppendJsonString(&out, uid);
  }
  if (std::string key_id = ScopedLogContext::CurrentKeyId(); !key_id.empty()) {
    out.append(",\"key_id\":");
    AppendJsonString(&out, key_id);
  }
  out.push_back('}');
  return out;
}

}  // namespace internal
}  // namespace kmsplugin
