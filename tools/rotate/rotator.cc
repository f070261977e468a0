#include "tools/rotate/rotator.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "base/status.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::rotate {
namespace {

constexpr size_t kCanarySize = 32;  // What kube-apiserver encrypts: a 32-byte seed.

std::string Message(const absl::Status& s) { return std::string(ToStd(s.message())); }

std::string ShortStatus(const absl::Status& s) {
  return fmt::format("{}: {}", absl::StatusCodeToString(s.code()), Message(s));
}

}  // namespace

std::string_view StageName(Stage stage) {
  switch (stage) {
    case Stage::kCheck:
      return "check";
    case Stage::kRotate:
      return "rotate";
    case Stage::kConverge:
      return "converge";
    case Stage::kCanary:
      return "canary";
    case Stage::kDone:
      return "done";
  }
  return "?";
}

// Per-plugin bookkeeping of one run.
struct Rotator::Tracked {
  PluginClient* client = nullptr;
  PluginOutcome* outcome = nullptr;
  bool status_ok = false;         // The last Status call succeeded.
  bool data_key_rotated = false;  // RotateDataKey succeeded (data-key rotation only).
  bool at_target = false;         // Converged as of the last round.
  std::map<std::string, absl::Time> first_seen;  // key_id -> first time Status reported it.
};

Rotator::Rotator(std::vector<RotatorPlugin> plugins, RotateOptions options, const Clock* clock,
                 ProgressCallback progress, Sleeper sleep)
    : plugins_(std::move(plugins)),
      options_(options),
      clock_(clock),
      progress_(std::move(progress)),
      sleep_(sleep ? std::move(sleep) : Sleeper([](absl::Duration d) { absl::SleepFor(d); })) {}

void Rotator::Emit(Stage stage, std::string message, size_t done, bool warning) {
  if (!progress_) return;
  Progress p;
  p.stage = stage;
  p.message = std::move(message);
  p.done = done;
  p.total = plugins_.size();
  p.warning = warning;
  progress_(p);
}

absl::Duration Rotator::CallTimeout(absl::Time deadline) const {
  absl::Duration left = deadline - clock_->Now();
  return std::max(std::min(options_.call_timeout, left), absl::Milliseconds(1));
}

absl::Status Rotator::Check(std::vector<Tracked>& tracked, RotateResult& result,
                            absl::Time deadline) {
  size_t done = 0;
  for (Tracked& t : tracked) {
    PluginOutcome& o = *t.outcome;
    Emit(Stage::kCheck, fmt::format("asking {} for its key_id", o.socket), done);
    absl::StatusOr<KmsStatus> st = t.client->Status(CallTimeout(deadline));
    if (!st.ok()) {
      o.last_error = Message(st.status());
      return absl::FailedPreconditionError(
          fmt::format("plugin {} does not answer ({}); nothing was rotated", o.socket,
                      ShortStatus(st.status())));
    }
    absl::StatusOr<PluginState> report = t.client->Report(CallTimeout(deadline));
    if (!report.ok()) {
      o.last_error = Message(report.status());
      return absl::FailedPreconditionError(fmt::format(
          "plugin {} does not answer on its admin socket {} ({}); nothing was rotated. Is "
          "--admin-socket right?",
          o.socket, o.admin_socket, ShortStatus(report.status())));
    }
    o.old_key_id = st->key_id;
    o.key_id = st->key_id;
    o.healthz = st->healthz;
    t.status_ok = true;
    t.first_seen.emplace(st->key_id, clock_->Now());
    if (st->healthz != "ok") {
      Emit(Stage::kCheck,
           fmt::format("{} is not healthy before the rotation: {}", o.socket, st->healthz), done,
           /*warning=*/true);
    }
    ++done;
    Emit(Stage::kCheck,
         fmt::format("{}: key_id {} ({} backend{}{})", o.socket, st->key_id, report->backend,
                     report->kek_description.empty() ? "" : ", ", report->kek_description),
         done);
  }
  result.old_key_id = tracked.front().outcome->old_key_id;
  for (const Tracked& t : tracked) {
    if (t.outcome->old_key_id != result.old_key_id) {
      Emit(Stage::kCheck,
           fmt::format("the plugins disagree before the rotation ({} has {}, {} has {}); they "
                       "will be brought to one key_id",
                       tracked.front().outcome->socket, result.old_key_id, t.outcome->socket,
                       t.outcome->old_key_id),
           done, /*warning=*/true);
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status Rotator::Converge(std::vector<Tracked>& tracked, RotateResult& result,
                               absl::Time deadline, const std::string& expected,
                               const absl::Status& rotate_error) {
  std::set<std::string> old_ids;
  for (const Tracked& t : tracked) old_ids.insert(t.outcome->old_key_id);
  absl::Duration wait = options_.poll_interval;
  bool nudge_all = true;
  while (true) {
    // Nudge every plugin not there yet (all of them in the first round, and after the target
    // moved on).
    for (Tracked& t : tracked) {
      if (!nudge_all && t.at_target) continue;
      PluginOutcome& o = *t.outcome;
      if (!options_.rotate_kek && !t.data_key_rotated) {
        absl::StatusOr<PluginState> r = t.client->RotateDataKey(CallTimeout(deadline));
        if (r.ok()) {
          t.data_key_rotated = true;
        } else {
          o.last_error = Message(r.status());
        }
      }
      absl::StatusOr<PluginState> refreshed = t.client->Refresh(CallTimeout(deadline));
      if (!refreshed.ok()) o.last_error = Message(refreshed.status());
      absl::StatusOr<KmsStatus> st = t.client->Status(CallTimeout(deadline));
      t.status_ok = st.ok();
      if (st.ok()) {
        o.key_id = st->key_id;
        o.healthz = st->healthz;
        t.first_seen.emplace(st->key_id, clock_->Now());
      } else {
        o.last_error = Message(st.status());
      }
    }
    nudge_all = false;

    // The key_id to agree on: the first plugin's, which must be new after a KEK rotation.
    const Tracked& lead = tracked.front();
    std::string target;
    if (lead.status_ok && (!options_.rotate_kek || old_ids.count(lead.outcome->key_id) == 0)) {
      target = lead.outcome->key_id;
    }
    size_t at_target = 0;
    const Tracked* laggard = nullptr;
    for (Tracked& t : tracked) {
      t.at_target = !target.empty() && t.status_ok && t.outcome->healthz == "ok" &&
                    t.outcome->key_id == target && (options_.rotate_kek || t.data_key_rotated);
      if (t.at_target) {
        ++at_target;
      } else if (laggard == nullptr) {
        laggard = &t;
      }
      // A key_id that is neither the target nor one from before: the KEK was rotated again (two
      // `rotate --kek` at once), and the plugins counted at the target may be behind it now.
      if (!target.empty() && t.status_ok && t.outcome->key_id != target &&
          old_ids.count(t.outcome->key_id) == 0) {
        nudge_all = true;
      }
    }
    if (laggard == nullptr) {
      result.new_key_id = target;
      for (Tracked& t : tracked) {
        t.outcome->converged = true;
        t.outcome->converged_after = t.first_seen.at(target) - result.started;
      }
      if (options_.rotate_kek) result.kek_rotated = true;
      if (!expected.empty() && target != expected) {
        Emit(Stage::kConverge,
             fmt::format("the plugins agree on {}, not on {} that the rotation produced: the KEK "
                         "was rotated again meanwhile",
                         target, expected),
             at_target, /*warning=*/true);
      }
      Emit(Stage::kConverge, fmt::format("all {} plugins report key_id {}", tracked.size(), target),
           at_target);
      return absl::OkStatus();
    }
    const PluginOutcome& lo = *laggard->outcome;
    std::string why;
    if (target.empty()) {
      why = options_.rotate_kek && lead.status_ok
                ? fmt::format("{} still reports the old key_id {}", lead.outcome->socket,
                              lead.outcome->key_id)
                : fmt::format("{} does not answer ({})", lead.outcome->socket,
                              lead.outcome->last_error);
    } else if (!laggard->status_ok) {
      why = fmt::format("{} does not answer Status ({})", lo.socket, lo.last_error);
    } else if (lo.key_id != target) {
      why =
          fmt::format("{} reports key_id {}{}", lo.socket, lo.key_id,
                      lo.last_error.empty() ? "" : fmt::format(" (last error: {})", lo.last_error));
    } else if (lo.healthz != "ok") {
      why = fmt::format("{} reports healthz {}", lo.socket, lo.healthz);
    } else {
      why = fmt::format("{} has not rotated its data key ({})", lo.socket, lo.last_error);
    }

    const absl::Time now = clock_->Now();
    if (now >= deadline) {
      std::string msg = fmt::format(
          "the plugins did not converge within {}: {}", absl::FormatDuration(options_.timeout),
          target.empty()
              ? why
              : fmt::format("{}/{} report key_id {}; {}", at_target, tracked.size(), target, why));
      if (!rotate_error.ok()) {
        msg += fmt::format("; the rotation call had failed: {}", ShortStatus(rotate_error));
      }
      return absl::DeadlineExceededError(msg);
    }
    Emit(Stage::kConverge,
         target.empty() ? fmt::format("waiting: {}", why)
                        : fmt::format("{}/{} at key_id {}; waiting: {}", at_target, tracked.size(),
                                      target, why),
         at_target);
    sleep_(std::min(wait, deadline - now));
    wait = std::min(wait * 2, options_.max_poll_interval);
  }
}

absl::Status Rotator::Canary(std::vector<Tracked>& tracked, RotateResult& result,
                             bool* superseded) {
  const absl::Duration timeout = options_.call_timeout;
  absl::Status first_failure;
  size_t done = 0;
  std::set<std::string> old_ids;
  for (const Tracked& t : tracked) old_ids.insert(t.outcome->old_key_id);
  // A key_id that is neither the agreed one nor one from before the run: the KEK was rotated
  // again since the plugins converged (another `kms-plugin rotate --kek` at the same time).
  auto newer = [&](const std::string& key_id) {
    return !key_id.empty() && key_id != result.new_key_id && old_ids.count(key_id) == 0;
  };
  *superseded = false;
  for (Tracked& t : tracked) {
    PluginOutcome& o = *t.outcome;
    auto fail = [&](std::string why) {
      o.canary = why;
      if (first_failure.ok()) {
        first_failure =
            absl::AbortedError(fmt::format("canary through {} failed: {}", o.socket, why));
      }
      Emit(Stage::kCanary, fmt::format("{}: FAILED: {}", o.socket, why), done, /*warning=*/true);
    };
    Emit(Stage::kCanary, fmt::format("Encrypt and Decrypt through {}", o.socket), done);
    absl::StatusOr<KmsStatus> st = t.client->Status(timeout);
    if (!st.ok()) {
      fail(fmt::format("Status: {}", ShortStatus(st.status())));
      continue;
    }
    if (st->key_id != result.new_key_id || st->healthz != "ok") {
      *superseded |= newer(st->key_id);
      fail(fmt::format("Status says key_id {} healthz {}, expected {} ok", st->key_id, st->healthz,
                       result.new_key_id));
      continue;
    }
    absl::StatusOr<std::string> plaintext = RandomBytes(kCanarySize);
    absl::StatusOr<std::string> uid = RandomHex(8);
    if (!plaintext.ok() || !uid.ok()) {
      fail("no randomness for the canary");
      continue;
    }
    const std::string canary_uid = "kms-plugin-rotate-canary-" + *uid;
    absl::StatusOr<Ciphertext> enc = t.client->Encrypt(*plaintext, canary_uid, timeout);
    if (!enc.ok()) {
      fail(fmt::format("Encrypt: {}", ShortStatus(enc.status())));
      continue;
    }
    if (enc->key_id != result.new_key_id) {
      *superseded |= newer(enc->key_id);
      fail(fmt::format("Encrypt returned key_id {} but Status said {}", enc->key_id,
                       result.new_key_id));
      continue;
    }
    bool ok = true;
    for (Tracked& reader : tracked) {
      absl::StatusOr<SecretBytes> dec = reader.client->Decrypt(*enc, canary_uid, timeout);
      if (!dec.ok()) {
        fail(fmt::format("Decrypt through {}: {}", reader.outcome->socket,
                         ShortStatus(dec.status())));
        ok = false;
        break;
      }
      if (dec->Reveal() != *plaintext) {
        fail(fmt::format("Decrypt through {} returned other bytes", reader.outcome->socket));
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    o.canary = "ok";
    ++done;
    Emit(Stage::kCanary,
         fmt::format("{}: Encrypt under {} decrypts through all {} plugins", o.socket, enc->key_id,
                     tracked.size()),
         done);
  }
  return first_failure;
}

RotateResult Rotator::Run() {
  RotateResult result;
  result.started = clock_->Now();
  const absl::Time deadline = result.started + options_.timeout;
  std::vector<Tracked> tracked(plugins_.size());
  result.plugins.resize(plugins_.size());
  for (size_t i = 0; i < plugins_.size(); ++i) {
    result.plugins[i].socket = plugins_[i].address.socket;
    result.plugins[i].admin_socket = plugins_[i].address.admin_socket;
    tracked[i].client = plugins_[i].client.get();
    tracked[i].outcome = &result.plugins[i];
  }
  auto finish = [&](absl::Status status) {
    result.status = std::move(status);
    result.finished = clock_->Now();
    result.reencrypt_not_before =
        result.finished + kApiserverSeedTtl + kApiserverStatusPoll + kReencryptBuffer;
    if (!result.status.ok()) result.new_key_id.clear();
    Emit(Stage::kDone,
         result.status.ok()
             ? fmt::format("key_id {} -> {} on all {} plugins in {}", result.old_key_id,
                           result.new_key_id, plugins_.size(),
                           absl::FormatDuration(absl::Trunc(result.finished - result.started,
                                                            absl::Milliseconds(1))))
             : fmt::format("FAILED: {}", Message(result.status)),
         result.status.ok() ? plugins_.size() : 0, !result.status.ok());
    return result;
  };
  if (plugins_.empty()) return finish(absl::InvalidArgumentError("no plugin to rotate"));

  if (absl::Status s = Check(tracked, result, deadline); !s.ok()) return finish(s);

  // Rotate.
  absl::Status rotate_error;
  std::string expected;
  if (options_.rotate_kek) {
    Tracked& lead = tracked.front();
    Emit(Stage::kRotate,
         fmt::format("rotating the KEK at the backend through {}", lead.outcome->admin_socket), 0);
    absl::StatusOr<PluginState> rotated = lead.client->RotateKek(CallTimeout(deadline));
    if (rotated.ok()) {
      result.kek_rotated = true;
      expected = rotated->key_id;
      Emit(Stage::kRotate,
           fmt::format("KEK rotated: {} now has key_id {}", lead.outcome->socket, expected), 1);
    } else if (rotated.status().code() == absl::StatusCode::kUnimplemented ||
               rotated.status().code() == absl::StatusCode::kPermissionDenied ||
               rotated.status().code() == absl::StatusCode::kUnauthenticated ||
               rotated.status().code() == absl::StatusCode::kOutOfRange) {
      // The backend refused before creating anything (OUT_OF_RANGE: the local keyring has no
      // version number left).
      return finish(absl::FailedPreconditionError(
          fmt::format("the backend did not rotate its KEK ({}); nothing was rotated",
                      ShortStatus(rotated.status()))));
    } else {
      // The KEK may have been rotated all the same (e.g. the plugin's switch failed after the
      // backend call): let the plugins tell.
      rotate_error = rotated.status();
      lead.outcome->last_error = Message(rotate_error);
      Emit(Stage::kRotate,
           fmt::format("RotateKek through {} failed ({}); checking whether the backend rotated "
                       "all the same",
                       lead.outcome->admin_socket, ShortStatus(rotate_error)),
           0, /*warning=*/true);
    }
  } else {
    size_t done = 0;
    for (Tracked& t : tracked) {
      Emit(Stage::kRotate, fmt::format("new data key in {}", t.outcome->socket), done);
      absl::StatusOr<PluginState> r = t.client->RotateDataKey(CallTimeout(deadline));
      if (r.ok()) {
        t.data_key_rotated = true;
        ++done;
        Emit(Stage::kRotate,
             fmt::format("{}: new data key under key_id {}", t.outcome->socket, r->key_id), done);
      } else {
        t.outcome->last_error = Message(r.status());
        Emit(Stage::kRotate,
             fmt::format("{}: RotateDataKey failed ({}); will retry", t.outcome->socket,
                         ShortStatus(r.status())),
             done, /*warning=*/true);
      }
    }
  }

  if (absl::Status s = Converge(tracked, result, deadline, expected, rotate_error); !s.ok()) {
    return finish(s);
  }
  // Two `kms-plugin rotate --kek` at once: the other one may rotate the KEK again after this one
  // converged, so that the canary meets a newer key_id on some plugin. That is no failure when
  // the plugins end up consistent: follow the newer key_id (converge again, each time within a
  // fresh `timeout`, and run the canary again), a bounded number of times.
  constexpr int kMaxFollows = 3;
  for (int follows = 0;; ++follows) {
    bool superseded = false;
    absl::Status canary = Canary(tracked, result, &superseded);
    if (!superseded || follows == kMaxFollows) return finish(canary);
    Emit(Stage::kCanary,
         fmt::format("the KEK was rotated again meanwhile (another `kms-plugin rotate --kek`?): "
                     "key_id {} is already replaced; converging on the newer key_id",
                     result.new_key_id),
         0, /*warning=*/true);
    for (Tracked& t : tracked) {
      t.outcome->canary.clear();
      t.outcome->converged = false;
      t.at_target = false;
    }
    const absl::Time follow_deadline = std::max(deadline, clock_->Now() + options_.timeout);
    if (absl::Status s = Converge(tracked, result, follow_deadline, "", absl::OkStatus());
        !s.ok()) {
      return finish(s);
    }
  }
}

std::string RotateResult::ToJson() const {
  nlohmann::ordered_json j;
  j["old_key_id"] = old_key_id;
  j["new_key_id"] = new_key_id;
  j["plugins"] = nlohmann::ordered_json::array();
  for (const PluginOutcome& p : plugins) {
    nlohmann::ordered_json o;
    o["socket"] = p.socket;
    o["admin_socket"] = p.admin_socket;
    o["old_key_id"] = p.old_key_id;
    o["key_id"] = p.key_id;
    o["healthz"] = p.healthz;
    o["converged"] = p.converged;
    o["converged_after_ms"] =
        p.converged ? absl::ToInt64Milliseconds(p.converged_after) : int64_t{-1};
    o["canary"] = p.canary;
    if (!p.last_error.empty()) o["last_error"] = p.last_error;
    j["plugins"].push_back(std::move(o));
  }
  j["kek_rotated"] = kek_rotated;
  j["ok"] = status.ok();
  j["elapsed_ms"] = absl::ToInt64Milliseconds(finished - started);
  j["reencrypt_not_before"] = status.ok() ? FormatRfc3339(reencrypt_not_before) : "";
  j["error"] = status.ok() ? "" : Message(status);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string NextStepAdvice(const RotateResult& result) {
  if (!result.status.ok()) {
    std::string out = fmt::format("Rotation did not complete: {}\n", Message(result.status));
    out +=
        "The plugins keep serving and every existing ciphertext still decrypts; do not start "
        "re-encryption yet.\n";
    if (result.kek_rotated) {
      out +=
          "The KEK was rotated at the backend: re-run `kms-plugin rotate` WITHOUT --kek once "
          "every plugin answers (each also switches on its own at its next --key-poll-interval "
          "probe).\n";
    } else {
      out += "Fix the cause, then re-run `kms-plugin rotate`.\n";
    }
    return out;
  }
  if (result.new_key_id == result.old_key_id) {
    return fmt::format(
        "key_id is unchanged ({}): each plugin has a new data key under the same KEK version. "
        "kube-apiserver keeps its current seed, so there is nothing to re-encrypt. To retire a "
        "KEK version, rotate it: `kms-plugin rotate --kek …`.\n",
        result.new_key_id);
  }
  std::string out = fmt::format(
      "Next step: re-encrypt the stored objects under key_id {} so that {} can be retired:\n"
      "  kms-plugin reencrypt --encryption-config <kube-apiserver's EncryptionConfiguration "
      "file> --etcd-endpoints <etcd URLs> [--etcd-cacert/--etcd-cert/--etcd-key …]\n",
      result.new_key_id, result.old_key_id);
  out += fmt::format(
      "Start it no earlier than {} (UTC): kube-apiserver notices the new key_id on its next "
      "Status poll (about 1 min) and may keep writing with its cached seed for 3 min more "
      "(kmsv2-contract.md §2.5); 5 min of buffer added.\n",
      FormatRfc3339(result.reencrypt_not_before));
  out += fmt::format(
      "Keep the old KEK version until `kms-plugin reencrypt --scan …` shows no object under {}.\n",
      result.old_key_id);
  return out;
}

void ProgressPrinter::operator()(const Progress& p) {
  std::string line = Format(p);
  if (line == last_) return;
  last_ = line;
  if (terminal_) {
    // Warnings and the last line stay on screen; the rest is redrawn in place.
    std::fprintf(out_, "\r\033[2K%s", line.c_str());
    line_open_ = true;
    if (p.warning || p.stage == Stage::kDone) Finish();
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void ProgressPrinter::Finish() {
  if (!line_open_) return;
  std::fputc('\n', out_);
  std::fflush(out_);
  line_open_ = false;
}

std::string ProgressPrinter::Format(const Progress& p) {
  return fmt::format("kms-plugin rotate: [{} {}/{}] {}", StageName(p.stage), p.done, p.total,
                     p.message);
}

}  // namespace kmsplugin::rotate
