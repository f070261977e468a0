// A parser of the Prometheus text exposition format (version 0.0.4) for tests: the # TYPE of
// each family and every sample with its labels, so that a test can check a family's type and a
// series' value. Refuses what does not parse (a test of /metrics must fail on a malformed line).
#ifndef KMSP_TESTS_PROMETHEUS_TEXT_H_
#define KMSP_TESTS_PROMETHEUS_TEXT_H_

#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kmsplugin::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromText {
  std::map<std::string, std::string> types;  // Family name -> counter, gauge, histogram, ...
  std::vector<PromSample> samples;
  std::vector<std::string> errors;  // Lines that did not parse.

  // The family a sample belongs to: histograms' _bucket, _sum and _count go to their family.
  std::string FamilyOf(const std::string& sample_name) const {
    if (types.count(sample_name) > 0) return sample_name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string_view n(sample_name);
      std::string_view s(suffix);
      if (n.size() > s.size() && n.substr(n.size() - s.size()) == s) {
        std::string base(n.substr(0, n.size() - s.size()));
        if (types.count(base) > 0) return base;
      }
    }
    return "";
  }

  // The value of the one sample `name` whose labels include `labels`; nullopt if there is none
  // or more than one.
  std::optional<double> Value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const {
    std::optional<double> found;
    int n = 0;
    for (const PromSample& s : samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        if (it == s.labels.end() || it->second != v) match = false;
      }
      if (match) {
        found = s.value;
        ++n;
      }
    }
    return n == 1 ? found : std::nullopt;
  }

  // The samples of `name` (any labels).
  std::vector<PromSample> Samples(const std::string& name) const {
    std::vector<PromSample> out;
    for (const PromSample& s : samples) {
      if (s.name == name) out.push_back(s);
    }
    return out;
  }
};

inline bool ParsePromSample(std::string_view line, PromSample* out) {
  size_t i = 0;
  auto is_name = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
  };
  while (i < line.size() && is_name(line[i], i == 0)) ++i;
  if (i == 0) return false;
  out->name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t k = i;
      while (i < line.size() && is_name(line[i], i == k)) ++i;
      if (i == k || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return false;
      std::string key(line.substr(k, i - k));
      i += 2;
      std::string value;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\' && i + 1 < line.size()) {
          ++i;
          value.push_back(line[i] == 'n' ? '\n' : line[i]);
        } else {
          value.push_back(line[i]);
        }
        ++i;
      }
      if (i >= line.size()) return false;
      ++i;  // Closing quote.
      out->labels[key] = value;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  std::string rest(line.substr(i + 1));
  size_t space = rest.find(' ');  // An optional timestamp follows.
  std::string number = rest.substr(0, space);
  if (number == "+Inf" || number == "-Inf" || number == "NaN") {
    const double inf = std::numeric_limits<double>::infinity();
    out->value = number == "NaN" ? std::numeric_limits<double>::quiet_NaN()
                                 : (number[0] == '-' ? -inf : inf);
    return true;
  }
  char* end = nullptr;
  out->value = std::strtod(number.c_str(), &end);
  return !number.empty() && end == number.c_str() + number.size();
}

inline PromText ParsePromText(std::string_view text) {
  PromText out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (line.substr(0, 7) == "# TYPE ") {
      std::string_view rest = line.substr(7);
      size_t sp = rest.find(' ');
      if (sp == std::string_view::npos) {
        out.errors.emplace_back(line);
        continue;
      }
      out.types[std::string(rest.substr(0, sp))] = std::string(rest.substr(sp + 1));
      continue;
    }
    if (line[0] == '#') continue;
    PromSample s;
    if (ParsePromSample(line, &s)) {
      out.samples.push_back(std::move(s));
    } else {
      out.errors.emplace_back(line);
    }
  }
  return out;
}

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_PROMETHEUS_TEXT_H_
