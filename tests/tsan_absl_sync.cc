// ThreadSanitizer builds only (KMSP_TSAN): makes Debian's libabsl_synchronization visible to TSan.
//
// The system abseil is not built with TSan, so TSan sees neither absl::Mutex nor
// absl::Notification: every field guarded by an absl::Mutex would be reported as a race. This
// file interposes the exported lock, unlock, wait and notify entry points (the executable's
// definitions win over the shared library's) and tells TSan about the happens-before edges they
// create (__tsan_release before giving a mutex up or notifying, __tsan_acquire after taking it or
// being notified), then calls the real function (dlsym RTLD_NEXT). Our own code stays fully
// instrumented: a field touched without the mutex is still a race.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

template <typename Fn>
Fn Real(const char* mangled) {
  void* sym = dlsym(RTLD_NEXT, mangled);
  if (sym == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found\n", mangled);
    std::abort();
  }
  return reinterpret_cast<Fn>(sym);
}

#define KMSP_REAL(type, mangled)                  \
  static const auto real = Real<type>(mangled)

void* Addr(const void* p) { return const_cast<void*>(p); }

// absl evaluates a waiter's Condition under the mutex in whichever thread holds it (often the
// unlocking one, inside the library). A release after each evaluation orders those reads before
// the next holder's acquire.
struct CondAndMutex {
  const absl::Condition* cond;
  absl::Mutex* mu;
};
// Takes void*: absl::Condition's (void*) constructor keeps the call inside the uninstrumented
// library, where the template one would read the Condition's fields in instrumented code (a
// false report when another thread evaluates it). The waiter releases `cm` after filling it.
bool EvalThenRelease(void* arg) {
  auto* c = static_cast<CondAndMutex*>(arg);
  __tsan_acquire(c);
  __tsan_acquire(c->mu);  // The evaluating thread holds the mutex.
  bool r = c->cond->Eval();
  __tsan_release(c->mu);
  return r;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

using MutexFn = void (*)(Mutex*);
using MutexBoolFn = bool (*)(Mutex*);
using MutexCondFn = void (*)(Mutex*, const Condition&);
using MutexCondDeadlineFn = bool (*)(Mutex*, const Condition&, Time);
using MutexCondTimeoutFn = bool (*)(Mutex*, const Condition&, Duration);

void Mutex::Lock() {
  KMSP_REAL(MutexFn, "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}
void Mutex::ReaderLock() {
  KMSP_REAL(MutexFn, "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}
bool Mutex::TryLock() {
  KMSP_REAL(MutexBoolFn, "_ZN4absl7debian35Mutex7TryLockEv");
  bool ok = real(this);
  if (ok) __tsan_acquire(this);
  return ok;
}
bool Mutex::ReaderTryLock() {
  KMSP_REAL(MutexBoolFn, "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  bool ok = real(this);
  if (ok) __tsan_acquire(this);
  return ok;
}
void Mutex::Unlock() {
  KMSP_REAL(MutexFn, "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
}
void Mutex::ReaderUnlock() {
  KMSP_REAL(MutexFn, "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}
void Mutex::LockWhen(const Condition& cond) {
  KMSP_REAL(MutexCondFn, "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  CondAndMutex cm{&cond, this};
  __tsan_release(&cm);
  real(this, absl::Condition(&EvalThenRelease, static_cast<void*>(&cm)));
  __tsan_acquire(this);
}
bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  KMSP_REAL(MutexCondDeadlineFn,
            "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  CondAndMutex cm{&cond, this};
  __tsan_release(&cm);
  bool ok = real(this, absl::Condition(&EvalThenRelease, static_cast<void*>(&cm)), deadline);
  __tsan_acquire(this);
  return ok;
}
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  KMSP_REAL(MutexCondTimeoutFn,
            "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  CondAndMutex cm{&cond, this};
  __tsan_release(&cm);
  bool ok = real(this, absl::Condition(&EvalThenRelease, static_cast<void*>(&cm)), timeout);
  __tsan_acquire(this);
  return ok;
}
void Mutex::Await(const Condition& cond) {
  KMSP_REAL(MutexCondFn, "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  CondAndMutex cm{&cond, this};
  __tsan_release(&cm);
  __tsan_release(this);
  real(this, absl::Condition(&EvalThenRelease, static_cast<void*>(&cm)));
  __tsan_acquire(this);
}
bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  KMSP_REAL(MutexCondDeadlineFn,
            "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  CondAndMutex cm{&cond, this};
  __tsan_release(&cm);
  __tsan_release(this);
  bool ok = real(this, absl::Condition(&EvalThenRelease, static_cast<void*>(&cm)), deadline);
  __tsan_acquire(this);
  return ok;
}
bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  KMSP_REAL(MutexCondTimeoutFn,
            "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  CondAndMutex cm{&cond, this};
  __tsan_release(&cm);
  __tsan_release(this);
  bool ok = real(this, absl::Condition(&EvalThenRelease, static_cast<void*>(&cm)), timeout);
  __tsan_acquire(this);
  return ok;
}

using CondVarWaitFn = void (*)(CondVar*, Mutex*);
using CondVarDeadlineFn = bool (*)(CondVar*, Mutex*, Time);
using CondVarTimeoutFn = bool (*)(CondVar*, Mutex*, Duration);

void CondVar::Wait(Mutex* mu) {
  KMSP_REAL(CondVarWaitFn, "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  KMSP_REAL(CondVarDeadlineFn, "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  bool r = real(this, mu, deadline);
  __tsan_acquire(mu);
  return r;
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  KMSP_REAL(CondVarTimeoutFn,
            "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  bool r = real(this, mu, timeout);
  __tsan_acquire(mu);
  return r;
}

using NotifyFn = void (*)(Notification*);
using WaitFn = void (*)(const Notification*);
using WaitDeadlineFn = bool (*)(const Notification*, Time);
using WaitTimeoutFn = bool (*)(const Notification*, Duration);

void Notification::Notify() {
  KMSP_REAL(NotifyFn, "_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}
void Notification::WaitForNotification() const {
  KMSP_REAL(WaitFn, "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(Addr(this));
}
bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  KMSP_REAL(WaitDeadlineFn,
            "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  bool r = real(this, deadline);
  if (r) __tsan_acquire(Addr(this));
  return r;
}
bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  KMSP_REAL(WaitTimeoutFn,
            "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool r = real(this, timeout);
  if (r) __tsan_acquire(Addr(this));
  return r;
}
// HasBeenNotified() is inline (an atomic load paired with the library's store, which TSan does
// not see): code that polls it instead of waiting gets no edge from this file.

ABSL_NAMESPACE_END
}  // namespace absl
