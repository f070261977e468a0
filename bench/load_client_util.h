// Small helpers of load_client: the record file, percentiles, gRPC code names, durations.
//
// Record file (written by `--record` during an Encrypt run, read by `--replay`): one line per
// Encrypt response, tab-separated hex fields:
//   hex(plaintext) \t hex(ciphertext) \t hex(key_id) \t hex(k1)=hex(v1),hex(k2)=hex(v2)...
// The plaintexts are the benchmark's own random bytes, never real data.
#ifndef KMSP_BENCH_LOAD_CLIENT_UTIL_H_
#define KMSP_BENCH_LOAD_CLIENT_UTIL_H_

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"

namespace bench {

struct Record {
  std::string plaintext;  // empty when unknown
  std::string ciphertext;
  std::string key_id;
  std::map<std::string, std::string> annotations;
};

inline std::string Hex(const std::string& in) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(in.size() * 2);
  for (unsigned char c : in) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

inline bool Unhex(const std::string& in, std::string* out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (in.size() % 2 != 0) return false;
  out->clear();
  out->reserve(in.size() / 2);
  for (size_t i = 0; i < in.size(); i += 2) {
    const int hi = nibble(in[i]), lo = nibble(in[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

inline std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

inline bool WriteRecords(const std::string& path, const std::vector<Record>& records,
                         std::string* error) {
  std::ofstream f(path, std::ios::trunc);
  if (!f) {
    *error = "cannot write " + path;
    return false;
  }
  for (const Record& r : records) {
    f << Hex(r.plaintext) << '\t' << Hex(r.ciphertext) << '\t' << Hex(r.key_id) << '\t';
    bool first = true;
    for (const auto& [k, v] : r.annotations) {
      f << (first ? "" : ",") << Hex(k) << '=' << Hex(v);
      first = false;
    }
    f << '\n';
  }
  f.close();
  if (!f) *error = "cannot write " + path;
  return static_cast<bool>(f);
}

inline bool ReadRecords(const std::string& path, std::vector<Record>* records, std::string* error) {
  std::ifstream f(path);
  if (!f) {
    *error = "cannot read " + path;
    return false;
  }
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty()) continue;
    const std::vector<std::string> fields = Split(line, '\t');
    Record r;
    bool ok = fields.size() == 4 && Unhex(fields[0], &r.plaintext) &&
              Unhex(fields[1], &r.ciphertext) && Unhex(fields[2], &r.key_id);
    if (ok && !fields[3].empty()) {
      for (const std::string& kv : Split(fields[3], ',')) {
        const std::vector<std::string> pair = Split(kv, '=');
        std::string k, v;
        if (pair.size() != 2 || !Unhex(pair[0], &k) || !Unhex(pair[1], &v)) {
          ok = false;
          break;
        }
        r.annotations[k] = v;
      }
    }
    if (!ok) {
      *error = path + ":" + std::to_string(lineno) + ": not a record line";
      return false;
    }
    records->push_back(std::move(r));
  }
  return true;
}

// Nearest-rank percentile of sorted values (0 when empty).
inline double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  if (rank < 1) rank = 1;
  return sorted[rank - 1];
}

inline std::string CodeName(grpc::StatusCode code) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "CODE_" + std::to_string(i);
}

// "3s", "250ms", "1.5s", "100us" -> seconds.
inline double ParseDuration(const std::string& s) {
  size_t used = 0;
  const double v = std::stod(s, &used);
  const std::string unit = s.substr(used);
  if (unit == "s" || unit.empty()) return v;
  if (unit == "ms") return v / 1e3;
  if (unit == "us") return v / 1e6;
  if (unit == "m") return v * 60;
  throw std::invalid_argument("bad duration " + s);
}

}  // namespace bench

#endif  // KMSP_BENCH_LOAD_CLIENT_UTIL_H_
