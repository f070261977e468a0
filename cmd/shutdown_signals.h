// ShutdownSignals: SIGTERM/SIGINT/SIGHUP (and SIGUSR1, below) for `kms-plugin serve`, from the
// first line of start-up on.
//
// The constructor blocks these signals in the calling thread (every thread created later inherits
// the mask, so none of them is interrupted) and starts one thread that sigwait()s for them.
//   - Until Serving() is called, a signal ends the process at once: one log line, exit status 1.
//     Start-up steps that may hang (a keyring lock held by another process, a stuck file system,
//     an unreachable KMS) can thus always be stopped with SIGTERM, as systemd and the kubelet do.
//   - After Serving(), Wait() returns the signal and the caller drains and returns.
// SIGUSR1 (logrotate's "reopen your files") never ends the process: it runs the OnSigusr1()
// callback (the audit log's Reopen) on the signal thread, or is logged and ignored when none is
// set, at any time from the constructor on.
// Construct it before any other thread exists. Not copyable; Serving() and Wait() from the
// thread that constructed it.
#ifndef KMSP_CMD_SHUTDOWN_SIGNALS_H_
#define KMSP_CMD_SHUTDOWN_SIGNALS_H_

#include <signal.h>

#include <functional>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace kmsplugin {

class ShutdownSignals {
 public:
  ShutdownSignals();
  ~ShutdownSignals();
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  // Start-up is over: a signal is now returned by Wait() instead of ending the process.
  void Serving();
  // What SIGUSR1 does (runs on the signal thread; must not block for long).
  void OnSigusr1(std::function<void()> reopen);
  // Blocks until SIGTERM, SIGINT or SIGHUP arrives (after Serving()); returns its number.
  int Wait();

 private:
  void Run();

  sigset_t set_;
  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int signal_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> on_sigusr1_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace kmsplugin

#endif  // KMSP_CMD_SHUTDOWN_SIGNALS_H_
