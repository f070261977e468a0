#include "cmd/shutdown_signals.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "base/error_text.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {

ShutdownSignals::ShutdownSignals() {
  // A shell may start us with SIGINT ignored; an ignored signal is discarded, not queued.
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  // SIGHUP (a closed terminal, `kill -HUP` by habit) would otherwise end us silently with 129
  // and leave the socket files behind: treat it like SIGTERM (issue 9, item 17).
  sigaddset(&set_, SIGHUP);
  // SIGUSR1's default action ends the process: a logrotate postrotate `kill -USR1` must not.
  sigaddset(&set_, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  thread_ = std::thread([this] { Run(); });
}

ShutdownSignals::~ShutdownSignals() {
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    wake = signal_ == 0;  // The thread is still in sigwait().
  }
  // Wakes our own sigwait() thread with a signal it waits for (it returns, seeing stopping_); the
  // signal is blocked everywhere, so nothing is terminated.
  if (wake) pthread_kill(thread_.native_handle(), SIGTERM);  // NOLINT(bugprone-bad-signal-to-kill-thread)
  thread_.join();
}

void ShutdownSignals::Run() {
  while (true) {
    int sig = 0;
    if (sigwait(&set_, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      std::function<void()> reopen;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        reopen = on_sigusr1_;
      }
      if (reopen) {
        reopen();
      } else {
        spdlog::info("received SIGUSR1; nothing to reopen (no --audit-log), ignored");
      }
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (!serving_) {
      spdlog::critical("received signal {} ({}) during start-up; exiting without serving", sig,
                       SignalText(sig));
      spdlog::default_logger()->flush();
      _exit(1);
    }
    signal_ = sig;
    return;
  }
}

void ShutdownSignals::OnSigusr1(std::function<void()> reopen) {
  absl::MutexLock lock(&mu_);
  on_sigusr1_ = std::move(reopen);
}

void ShutdownSignals::Serving() {
  absl::MutexLock lock(&mu_);
  serving_ = true;
}

int ShutdownSignals::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* sig) { return *sig != 0; }, &signal_));
  return signal_;
}

}  // namespace kmsplugin
