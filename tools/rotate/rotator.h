// Rotator: the whole key-rotation loop of `kms-plugin rotate`, over every plugin that shares one
// KMS backend (one per control-plane node).
//
//   1. check    every plugin answers Status (KMS v2) and Report (admin); their key_ids are the
//               old ones. Nothing is changed if one does not answer.
//   2. rotate   with rotate_kek: RotateKek through the first plugin (a new KEK version at the
//               shared backend; that plugin switches at once). Without: RotateDataKey on every
//               plugin (each plugin has its own data key; key_id stays that of the KEK version).
//   3. converge every plugin is told to Refresh (forced: a new KEK version switches key_id at
//               once, without waiting for its poll interval), again each round for those not
//               there yet, until all report healthz "ok" and the same key_id through Status —
//               a key_id none of them had before when rotate_kek — or `timeout` passes.
//   4. canary   through each plugin: Status and Encrypt must name the new key_id, and the
//               ciphertext must Decrypt through every plugin (any node reads any node's writes).
//
// Progress goes to a callback; the outcome is a RotateResult (ToJson() is the final line the
// command prints). Time comes from a Clock and waits between rounds from a Sleeper, so tests
// drive both with a FakeClock.
//
// Thread-compatible: one Run() at a time.
#ifndef KMSP_TOOLS_ROTATE_ROTATOR_H_
#define KMSP_TOOLS_ROTATE_ROTATOR_H_

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "tools/rotate/plugin_client.h"

namespace kmsplugin::rotate {

struct RotateOptions {
  bool rotate_kek = false;
  // Bounds steps 1–3 (from the start until every plugin reports the new key_id).
  absl::Duration timeout = absl::Seconds(30);
  // Bounds each call (also capped by what is left of `timeout` in steps 1–3).
  absl::Duration call_timeout = absl::Seconds(10);
  // Wait between convergence rounds: starts here, doubles each round, at most max_poll_interval.
  absl::Duration poll_interval = absl::Milliseconds(100);
  absl::Duration max_poll_interval = absl::Seconds(2);
};

enum class Stage { kCheck, kRotate, kConverge, kCanary, kDone };
std::string_view StageName(Stage stage);

struct Progress {
  Stage stage = Stage::kCheck;
  std::string message;   // One line of public text.
  size_t done = 0;       // Plugins finished with this stage so far.
  size_t total = 0;      // Plugins.
  bool warning = false;  // Something the operator should read even if all ends well.
};

struct PluginOutcome {
  std::string socket;
  std::string admin_socket;
  std::string old_key_id;  // Status key_id before the rotation.
  std::string key_id;      // Status key_id last seen.
  std::string healthz;     // Last seen.
  bool converged = false;
  // When this plugin first reported the final key_id, counted from the start of the run.
  absl::Duration converged_after = absl::ZeroDuration();
  std::string canary;      // "ok", the canary's failure, or "" when not run.
  std::string last_error;  // The last failed call, "" if none.
};

struct RotateResult {
  absl::Status status;  // OK when every plugin converged and every canary passed.
  bool kek_rotated = false;
  std::string old_key_id;  // The first plugin's key_id before the rotation.
  std::string new_key_id;  // The key_id all plugins agree on; "" when they did not converge.
  std::vector<PluginOutcome> plugins;
  absl::Time started;
  absl::Time finished;
  // kube-apiserver keeps writing with its cached seed for up to 3 min after its last successful
  // Status check and polls Status every minute (kmsv2-contract.md §2.5): re-encryption may start
  // once every apiserver has switched, finished + 3 min + 1 min + a 5 min buffer.
  absl::Time reencrypt_not_before;

  // The final line: {"old_key_id":…,"new_key_id":…,"plugins":[…],"kek_rotated":…,"ok":…,
  // "elapsed_ms":…,"reencrypt_not_before":…,"error":…}. One line, no key material.
  std::string ToJson() const;
};

inline constexpr absl::Duration kApiserverSeedTtl = absl::Minutes(3);
inline constexpr absl::Duration kApiserverStatusPoll = absl::Minutes(1);
inline constexpr absl::Duration kReencryptBuffer = absl::Minutes(5);

// The closing advice: the next step (`kms-plugin reencrypt …`) and the earliest safe time to start
// it as a UTC timestamp, or what to do after a failure. Several lines, each ending in '\n'.
std::string NextStepAdvice(const RotateResult& result);

struct RotatorPlugin {
  PluginAddress address;
  std::unique_ptr<PluginClient> client;  // Owned.
};

class Rotator {
 public:
  using ProgressCallback = std::function<void(const Progress&)>;
  using Sleeper = std::function<void(absl::Duration)>;

  // `clock` must outlive the rotator; `progress` may be empty; `sleep` empty: absl::SleepFor.
  // REQUIRES: !plugins.empty().
  Rotator(std::vector<RotatorPlugin> plugins, RotateOptions options, const Clock* clock,
          ProgressCallback progress = nullptr, Sleeper sleep = nullptr);

  // Runs the four steps. When the canary meets a key_id newer than the agreed one (another
  // rotation ran at the same time), steps 3 and 4 are repeated for it (at most 3 times, each
  // convergence within a fresh `timeout`), with a warning: the result then names the newer key_id.
  // The result's status is FAILED_PRECONDITION when a plugin could not be reached before anything
  // was changed (nothing was rotated) or the backend cannot rotate (or, OUT_OF_RANGE, cannot add
  // a version),
  // DEADLINE_EXCEEDED when the plugins did not converge in time, ABORTED when a canary failed,
  // or the rotation call's own error.
  RotateResult Run();

 private:
  struct Tracked;

  void Emit(Stage stage, std::string message, size_t done, bool warning = false);
  absl::Duration CallTimeout(absl::Time deadline) const;
  absl::Status Check(std::vector<Tracked>& tracked, RotateResult& result, absl::Time deadline);
  absl::Status Converge(std::vector<Tracked>& tracked, RotateResult& result, absl::Time deadline,
                        const std::string& expected, const absl::Status& rotate_error);
  // `*superseded`: some plugin already reports a key_id newer than result.new_key_id.
  absl::Status Canary(std::vector<Tracked>& tracked, RotateResult& result, bool* superseded);

  std::vector<RotatorPlugin> plugins_;
  const RotateOptions options_;
  const Clock* const clock_;
  ProgressCallback progress_;
  Sleeper sleep_;
};

// Renders Progress on `out` (not owned; must outlive it): on a terminal one live line redrawn in
// place (finished with a newline by Finish()), otherwise one plain line per distinct message.
class ProgressPrinter {
 public:
  ProgressPrinter(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}
  void operator()(const Progress& p);
  // Ends a live line; call before printing anything else to `out`.
  void Finish();
  // "[converge 1/2] message".
  static std::string Format(const Progress& p);

 private:
  std::FILE* out_;
  bool terminal_;
  bool line_open_ = false;
  std::string last_;
};

}  // namespace kmsplugin::rotate

#endif  // KMSP_TOOLS_ROTATE_ROTATOR_H_
