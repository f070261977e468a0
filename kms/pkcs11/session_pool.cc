#include "kms/pkcs11/session_pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_join.h"
#include "base/printable.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace kmsplugin::pkcs11 {
namespace {

absl::Status PinStatus(ck_rv_t rv, std::string_view token_label) {
  const std::string token = Printable(token_label);
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
      return absl::UnauthenticatedError(fmt::format(
          "the PIN of PKCS#11 token '{}' is wrong ({}); not retrying, since every failed login "
          "counts toward the token's lockout: fix --pkcs11-pin-file and restart",
          token, CkrName(rv)));
    case CKR_PIN_LOCKED:
      return absl::PermissionDeniedError(fmt::format(
          "the user PIN of PKCS#11 token '{}' is locked ({}): unlock it with the SO PIN "
          "(e.g. pkcs11-tool --login --login-type so --init-pin) and restart",
          token, CkrName(rv)));
    case CKR_PIN_EXPIRED:
      return absl::PermissionDeniedError(fmt::format(
          "the user PIN of PKCS#11 token '{}' has expired ({}): set a new one and restart", token,
          CkrName(rv)));
    case CKR_USER_PIN_NOT_INITIALIZED:
      return absl::PermissionDeniedError(fmt::format(
          "PKCS#11 token '{}' has no user PIN ({}): initialise it (pkcs11-tool --init-pin)", token,
          CkrName(rv)));
    default:
      return absl::OkStatus();
  }
}

}  // namespace

SessionPool::SessionPool(Pkcs11Module* module, std::string token_label, SecretBytes pin,
                         size_t max_sessions, const Clock* clock)
    : module_(module),
      token_label_(std::move(token_label)),
      pin_(std::move(pin)),
      max_sessions_(max_sessions == 0 ? 1 : max_sessions),
      clock_(clock),
      jitter_(std::random_device{}()) {}

SessionPool::~SessionPool() {
  absl::MutexLock l(&mu_);
  for (ck_session_handle_t s : idle_) module_->f()->C_CloseSession(s);
  idle_.clear();
}

absl::Status SessionPool::FindToken(TokenIdentity* token) {
  struct ck_function_list* f = module_->f();
  unsigned long count = 0;  // NOLINT(google-runtime-int): CK_ULONG.
  ck_rv_t rv = f->C_GetSlotList(1, nullptr, &count);
  std::vector<ck_slot_id_t> slots(count);
  if (rv == CKR_OK && count > 0) rv = f->C_GetSlotList(1, slots.data(), &count);
  if (rv != CKR_OK) {
    return absl::UnavailableError(
        fmt::format("C_GetSlotList of PKCS#11 module {} failed: {}", module_->path(), CkrName(rv)));
  }
  slots.resize(count);
  std::vector<std::string> labels;
  labels.reserve(slots.size());
  std::vector<TokenIdentity> matches;
  for (ck_slot_id_t slot : slots) {
    struct ck_token_info info = {};
    if (f->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;  // A free slot (SoftHSM keeps one).
    std::string label = PaddedText(info.label, sizeof(info.label));
    if (label == token_label_) {
      TokenIdentity id;
      id.slot = slot;
      id.label = label;
      id.serial = PaddedText(info.serial_number, sizeof(info.serial_number));
      if ((info.flags & CKF_USER_PIN_LOCKED) != 0) {
        return PinStatus(CKR_PIN_LOCKED, token_label_);
      }
      if ((info.flags & CKF_USER_PIN_INITIALIZED) == 0) {
        return PinStatus(CKR_USER_PIN_NOT_INITIALIZED, token_label_);
      }
      if ((info.flags & CKF_USER_PIN_FINAL_TRY) != 0) {
        spdlog::warn("PKCS#11 token '{}': one more wrong PIN locks it (CKF_USER_PIN_FINAL_TRY)",
                     Printable(token_label_));
      }
      matches.push_back(std::move(id));
    }
    labels.push_back("'" + Printable(label) + "'");
  }
  if (matches.empty()) {
    return absl::UnavailableError(fmt::format(
        "no PKCS#11 token labelled '{}' in module {} (tokens found: {})", Printable(token_label_),
        module_->path(), labels.empty() ? "none" : absl::StrJoin(labels, ", ")));
  }
  if (matches.size() > 1) {
    return absl::FailedPreconditionError(
        fmt::format("{} PKCS#11 tokens are labelled '{}' in module {}: the label must be unique",
                    matches.size(), Printable(token_label_), module_->path()));
  }
  *token = std::move(matches[0]);
  return absl::OkStatus();
}

absl::Status SessionPool::Login(ck_session_handle_t session) {
  struct ck_function_list* f = module_->f();
  struct ck_session_info info = {};
  if (f->C_GetSessionInfo(session, &info) == CKR_OK &&
      (info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS)) {
    return absl::OkStatus();
  }
  {
    absl::MutexLock l(&mu_);
    if (!pin_error_.ok()) return pin_error_;
  }
  // C_Login takes a non-const pointer; the module does not write through it.
  auto* pin = const_cast<unsigned char*>(  // NOLINT(cppcoreguidelines-pro-type-const-cast)
      reinterpret_cast<const unsigned char*>(pin_.Reveal().data()));
  ck_rv_t rv = f->C_Login(session, CKU_USER, pin, pin_.size());
  if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return absl::OkStatus();
  absl::Status pin_status = PinStatus(rv, token_label_);
  if (!pin_status.ok()) {
    absl::MutexLock l(&mu_);
    pin_error_ = pin_status;
    return pin_status;
  }
  return absl::UnavailableError(fmt::format("C_Login to PKCS#11 token '{}' failed: {}",
                                            Printable(token_label_), CkrName(rv)));
}

absl::StatusOr<ck_session_handle_t> SessionPool::OpenSession(ck_slot_id_t slot, ck_rv_t* rv) {
  ck_session_handle_t session = 0;
  *rv = module_->f()->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                                    &session);
  if (*rv != CKR_OK) {
    return absl::UnavailableError(fmt::format("C_OpenSession on PKCS#11 token '{}' failed: {}",
                                              Printable(token_label_), CkrName(*rv)));
  }
  if (absl::Status s = Login(session); !s.ok()) {
    module_->f()->C_CloseSession(session);
    return s;
  }
  return session;
}

absl::Status SessionPool::Connect() {
  absl::WriterMutexLock module_lock(&module_mu_);
  if (absl::Status s = module_->Initialize(); !s.ok()) return s;
  TokenIdentity token;
  if (absl::Status s = FindToken(&token); !s.ok()) return s;
  ck_rv_t rv = CKR_OK;
  absl::StatusOr<ck_session_handle_t> session = OpenSession(token.slot, &rv);
  if (!session.ok()) return session.status();
  absl::MutexLock l(&mu_);
  token_ = std::move(token);
  idle_.push_back(*session);
  open_ = 1;
  return absl::OkStatus();
}

absl::Status SessionPool::DownStatus(absl::Time now) const {
  return absl::UnavailableError(
      fmt::format("PKCS#11 token '{}' unavailable ({}); next reconnect in {}",
                  Printable(token_label_), std::string(down_error_.message()),
                  absl::FormatDuration(std::max(next_reconnect_ - now, absl::ZeroDuration()))));
}

absl::Status SessionPool::Reconnect(uint64_t seen_generation) {
  absl::WriterMutexLock module_lock(&module_mu_);
  {
    absl::MutexLock l(&mu_);
    // Another thread did it (or tried: Run then sees down_).
    if (generation_ != seen_generation) return absl::OkStatus();
    if (!pin_error_.ok()) return pin_error_;
    if (down_ && clock_->Now() < next_reconnect_) return DownStatus(clock_->Now());
    // No call is in flight (we hold the module lock as writer): every session is idle. Their
    // handles die with C_Finalize.
    idle_.clear();
    open_ = 0;
    ++generation_;
    ++epoch_;
    ++reconnects_;
  }
  spdlog::warn("PKCS#11 token '{}': reconnecting (C_Finalize, C_Initialize, login)",
               Printable(token_label_));
  absl::Status s = ReconnectLocked();
  absl::MutexLock l(&mu_);
  if (s.ok()) {
    down_ = false;
    down_error_ = absl::OkStatus();
    next_reconnect_ = absl::InfinitePast();
    reconnect_interval_ = kMinReconnectInterval;
    return s;
  }
  // Full jitter: a wait in (0, interval], then the interval doubles up to the maximum.
  std::uniform_int_distribution<int64_t> wait_ns(1, absl::ToInt64Nanoseconds(reconnect_interval_));
  const absl::Duration wait = absl::Nanoseconds(wait_ns(jitter_));
  down_ = true;
  down_error_ = s;
  next_reconnect_ = clock_->Now() + wait;
  reconnect_interval_ = std::min(2 * reconnect_interval_, kMaxReconnectInterval);
  spdlog::warn("PKCS#11 token '{}': reconnection failed ({}); next attempt in {}",
               Printable(token_label_), std::string(s.message()), absl::FormatDuration(wait));
  return s;
}

absl::Status SessionPool::ReconnectLocked() {
  if (absl::Status s = module_->Reinitialize(); !s.ok()) return s;
  TokenIdentity token;
  if (absl::Status s = FindToken(&token); !s.ok()) return s;
  ck_rv_t rv = CKR_OK;
  absl::StatusOr<ck_session_handle_t> session = OpenSession(token.slot, &rv);
  if (!session.ok()) return session.status();
  absl::MutexLock l(&mu_);
  token_ = std::move(token);
  idle_.push_back(*session);
  open_ = 1;
  return absl::OkStatus();
}

SessionPool::Attempt SessionPool::RunOnce(absl::Time deadline, SessionFn fn, CallResult* result,
                                          absl::Status* status, uint64_t* generation) {
  absl::ReaderMutexLock module_lock(&module_mu_);
  ck_session_handle_t session = 0;
  ck_slot_id_t slot = 0;
  uint64_t epoch = 0;
  bool have_session = false;
  {
    auto available = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < max_sessions_ || !pin_error_.ok();
    };
    if (!mu_.LockWhenWithDeadline(absl::Condition(&available), deadline)) {
      mu_.Unlock();
      *status = absl::DeadlineExceededError(
          fmt::format("no PKCS#11 session free before the deadline ({} in use)", max_sessions_));
      return Attempt::kDone;
    }
    *generation = generation_;
    epoch = epoch_;
    slot = token_.slot;
    if (!pin_error_.ok()) {
      *status = pin_error_;
      mu_.Unlock();
      return Attempt::kDone;
    }
    if (!idle_.empty()) {
      session = idle_.back();
      idle_.pop_back();
      have_session = true;
    } else {
      ++open_;
    }
    mu_.Unlock();
  }
  if (!have_session) {
    ck_rv_t rv = CKR_OK;
    absl::StatusOr<ck_session_handle_t> opened = OpenSession(slot, &rv);
    if (!opened.ok()) {
      absl::MutexLock l(&mu_);
      if (generation_ == *generation) --open_;
      *status = opened.status();
      return IsTokenLost(rv) || IsSessionLost(rv) ? Attempt::kReconnect : Attempt::kDone;
    }
    session = *opened;
  }
  *result = fn(session, epoch);
  absl::MutexLock l(&mu_);
  if (generation_ != *generation) return Attempt::kDone;  // Cannot happen under the module lock.
  if (IsSessionLost(result->rv)) {
    // Sessions usually go all at once (C_CloseAllSessions, a logout): drop the idle ones too,
    // without closing them (their handle numbers may already name new sessions).
    open_ -= 1 + idle_.size();
    idle_.clear();
    // A logout (C_CloseAllSessions) may also have invalidated private object handles.
    if (epoch_ == epoch) ++epoch_;
    return Attempt::kRetrySession;
  }
  // The session goes back even when the token is lost: Reconnect drops every idle session, and a
  // call waiting for a free session must not hold up the reconnection until its deadline.
  idle_.push_back(session);
  return IsTokenLost(result->rv) ? Attempt::kReconnect : Attempt::kDone;
}

absl::StatusOr<CallResult> SessionPool::Run(absl::Time deadline, SessionFn fn) {
  // At most one retry on a new session and one on a new connection: a logout (all sessions
  // closed) shows first as a lost session, then as stale key handles.
  bool session_retried = false;
  bool reconnected = false;
  CallResult result;
  while (true) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("deadline passed before the PKCS#11 call");
    }
    absl::Status status;
    uint64_t generation = 0;
    bool down = false;
    {
      absl::MutexLock l(&mu_);
      down = down_;
      generation = generation_;
      // Down after our own attempt: another thread's reconnection failed since.
      if (down && reconnected) return DownStatus(clock_->Now());
    }
    if (down) {  // The last reconnection failed: reconnect first (or fail fast, see Reconnect).
      reconnected = true;
      if (absl::Status s = Reconnect(generation); !s.ok()) return s;
      continue;
    }
    Attempt next = RunOnce(deadline, fn, &result, &status, &generation);
    if (next == Attempt::kRetrySession && !session_retried) {
      session_retried = true;
      continue;
    }
    if (next == Attempt::kReconnect && !reconnected) {
      reconnected = true;
      if (absl::Status s = Reconnect(generation); !s.ok()) return s;
      continue;
    }
    if (!status.ok()) return status;
    return result;
  }
}

TokenIdentity SessionPool::token() const {
  absl::MutexLock l(&mu_);
  return token_;
}

uint64_t SessionPool::generation() const {
  absl::MutexLock l(&mu_);
  return generation_;
}

uint64_t SessionPool::epoch() const {
  absl::MutexLock l(&mu_);
  return epoch_;
}

uint64_t SessionPool::reconnects() const {
  absl::MutexLock l(&mu_);
  return reconnects_;
}

size_t SessionPool::open_sessions() const {
  absl::MutexLock l(&mu_);
  return open_;
}

}  // namespace kmsplugin::pkcs11
