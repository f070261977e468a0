// Checkers: apiserver-like concurrent clients for the rotate integration tests
// (rotate_integration_test.cc), in a header of their own to keep that file small.
#ifndef KMSP_TESTS_ROTATE_ROTATE_CHECKERS_H_
#define KMSP_TESTS_ROTATE_ROTATE_CHECKERS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "crypto/random.h"
#include "gtest/gtest.h"
#include "tests/integration/plugin_test_base.h"

namespace kmsplugin::testing {

// Concurrent apiserver-like checkers: each loops Status, Encrypt, Status on one plugin and
// records every ciphertext with its plaintext, and every (Status, Encrypt, Status) key_id triple.
// Judged afterwards against the order in which the key_ids were created: Encrypt's key_id must lie
// between the two Status key_ids (equal to both when no change fell between the calls), and the
// Status key_ids one checker sees must never go back to an earlier key_id.
class Checkers {
 public:
  struct Sample {
    v2::EncryptResponse enc;
    std::string plaintext;
  };

  explicit Checkers(std::vector<std::string> targets) {
    sequences_.resize(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
      threads_.emplace_back([this, i, t = targets[i]] { Loop(t, sequences_[i]); });
    }
  }
  ~Checkers() { Stop(); }

  // Blocks until the checkers completed `n` more checks (no sleeping).
  void WaitForChecks(int64_t n) {
    absl::MutexLock l(&mu_);
    const int64_t target = checks_ + n;
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return checks_ >= target || stop_; };
    mu_.Await(absl::Condition(&enough));
  }
  void Stop() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  // The rest is valid after Stop(). `order`: every key_id, oldest first.
  struct Verdict {
    int64_t disagreements = 0;  // Encrypt's key_id not between the Status key_ids around it.
    int64_t regressions = 0;    // A checker's Status key_id went back.
    int64_t unknown = 0;        // A key_id not in `order`.
    std::vector<std::string> notes;
  };
  Verdict Judge(const std::vector<std::string>& order) const {
    Verdict v;
    auto index = [&](const std::string& id) -> int {
      for (size_t i = 0; i < order.size(); ++i) {
        if (order[i] == id) return static_cast<int>(i);
      }
      return -1;
    };
    for (const auto& [triple, count] : triples_) {
      const int s1 = index(std::get<0>(triple)), e = index(std::get<1>(triple)),
                s2 = index(std::get<2>(triple));
      if (s1 < 0 || e < 0 || s2 < 0) {
        v.unknown += count;
      } else if (!(s1 <= e && e <= s2)) {
        v.disagreements += count;
      } else {
        continue;
      }
      if (v.notes.size() < 10) {
        v.notes.push_back("Status " + std::get<0>(triple) + ", Encrypt " + std::get<1>(triple) +
                          ", Status " + std::get<2>(triple));
      }
    }
    for (const auto& seq : sequences_) {
      for (size_t i = 1; i < seq.size(); ++i) {
        if (index(seq[i]) < index(seq[i - 1])) {
          ++v.regressions;
          v.notes.push_back("Status went from " + seq[i - 1] + " back to " + seq[i]);
        }
      }
    }
    return v;
  }
  int64_t checks() const { return checks_; }
  int64_t errors() const { return errors_; }
  int64_t invalid() const { return invalid_; }
  const std::vector<Sample>& samples() const { return samples_; }
  std::set<std::string> key_ids() const {
    std::set<std::string> out;
    for (const auto& [triple, count] : triples_) out.insert(std::get<1>(triple));
    return out;
  }

 private:
  // `sequence`: the distinct Status key_ids this checker saw, in order.
  void Loop(const std::string& target, std::vector<std::string>& sequence) {
    ApiserverKmsClient client(target, absl::Seconds(10));
    auto note = [&sequence](const std::string& id) {
      if (sequence.empty() || sequence.back() != id) sequence.push_back(id);
    };
    while (true) {
      {
        absl::MutexLock l(&mu_);
        if (stop_) return;
      }
      std::string plaintext = *RandomBytes(32);
      auto s1 = client.Status();
      auto enc = client.Encrypt(plaintext);
      auto s2 = client.Status();
      absl::MutexLock l(&mu_);
      if (!s1.ok() || !enc.ok() || !s2.ok()) {
        // A plugin restarting: the apiserver retries too. Counted, not judged.
        ++errors_;
        continue;
      }
      note(s1->key_id());
      note(s2->key_id());
      ++triples_[{s1->key_id(), enc->key_id(), s2->key_id()}];
      if (!ValidateEncryptResponse(*enc, enc->key_id()).ok()) ++invalid_;
      samples_.push_back({*enc, plaintext});
      ++checks_;
    }
  }

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t checks_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t errors_ = 0, invalid_ = 0;
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> triples_;
  std::vector<std::vector<std::string>> sequences_;  // One per checker, written by its thread.
  std::vector<Sample> samples_;
  std::vector<std::thread> threads_;
};

}  // namespace kmsplugin::testing

#endif  // KMSP_TESTS_ROTATE_ROTATE_CHECKERS_H_
