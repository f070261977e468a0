// Scraping the /metrics of a plugin started with `--health-addr 127.0.0.1:0` in end-to-end tests:
// the port it chose (from its start-up line) and the parsed Prometheus text.
#ifndef KMSP_TESTS_INTEGRATION_METRICS_SCRAPE_H_
#define KMSP_TESTS_INTEGRATION_METRICS_SCRAPE_H_

#include <regex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "tests/integration/itest_util.h"
#include "tests/integration/plugin_process.h"
#include "tests/prometheus_text.h"

namespace kmsplugin::testing {

// The port of `--health-addr 127.0.0.1:0`, from the start-up line (written once serving).
inline absl::StatusOr<int> HealthPort(PluginProcess& plugin) {
  static const std::regex kHealth(R"(health http://127\.0\.0\.1:([0-9]+))");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  int port = 0;
  for (std::smatch m; port == 0 && absl::Now() < deadline;) {
    const std::string log = plugin.Log();
    if (std::regex_search(log, m, kHealth)) {
      port = std::stoi(m[1].str());
    } else {
      absl::SleepFor(absl::Milliseconds(20));  // Polling the log, as PluginTestBase::PollUntil.
    }
  }
  if (port <= 0) return absl::NotFoundError("no health address in the log:\n" + plugin.Log());
  return port;
}

// GET /metrics on 127.0.0.1:`port`, parsed.
inline absl::StatusOr<PromText> Scrape(int port) {
  auto r = HttpGet(port, "/metrics");
  if (!r.ok()) return r.status();
  if (r->status != 200) return absl::InternalError("GET /metrics: " + std::to_string(r->status));
  return ParsePromText(r->body);
}

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_INTEGRATION_METRICS_SCRAPE_H_
