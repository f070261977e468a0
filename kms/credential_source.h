// CredentialSource<T>, ChainSource<T> and RefreshingSource<T>: the one credential machinery every
// remote backend shares. AWS (T = aws::AwsCredentials, kms/aws/credentials.h) and the bearer-token
// backends, Google Cloud KMS and Azure Key Vault (T = AccessToken, kms/bearer/access_token.h), use
// the same chain and the same refresh-before-expiry cache; only the sources differ.
//
// T is a value type with:
//   static constexpr std::string_view kKind;  // "AWS credentials", "access token": for messages
//   absl::Time expiration;                    // InfiniteFuture(): does not expire
//   std::string source;                       // the source's name, public
//   T Clone() const;                          // a deep copy (secrets are SecretBytes)
//   std::string PublicId() const;             // public identity for the log, e.g.
//                                             // "access key id AKIA…"; never a secret
//
// Fetch() failure codes (every source): NOT_FOUND when the source is not configured here (a chain
// then tries the next one); UNAVAILABLE when it is configured but its endpoint is unreachable or
// failing, or its token file is missing, unreadable or empty (a local outage); UNAUTHENTICATED /
// PERMISSION_DENIED only when the identity provider itself refused the identity (these count as
// a revocation upstream: never use them for a local problem); INVALID_ARGUMENT when the
// configuration or the answer is malformed; DEADLINE_EXCEEDED when ctx.deadline passed.
#ifndef KMSP_KMS_CREDENTIAL_SOURCE_H_
#define KMSP_KMS_CREDENTIAL_SOURCE_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/status.h"
#include "kms/key_encryption_service.h"
#include "spdlog/spdlog.h"

namespace kmsplugin {

// A source of credentials of type T. Thread-safe.
template <typename T>
class CredentialSource {
 public:
  virtual ~CredentialSource() = default;
  virtual std::string_view Name() const = 0;
  virtual absl::StatusOr<T> Fetch(const CallContext& ctx) = 0;
  // Drops any cached credentials so that the next Fetch() gets fresh ones (after the service
  // said the credentials expired or were not accepted). Sources without a cache ignore it.
  virtual void Invalidate() {}
};

// Tries sources in order. The first source that is configured decides: a configured source that
// fails stops the chain with its error (a broken federation set-up does not fall through to the
// node's own identity). Once one source has produced credentials, the chain keeps using it. When
// every source is NOT_FOUND, returns UNAVAILABLE naming what was tried: nothing configured is a
// local outage, not a refusal, so it never purges cached keys the way a revocation does.
template <typename T>
class ChainSource final : public CredentialSource<T> {
 public:
  explicit ChainSource(std::vector<std::unique_ptr<CredentialSource<T>>> sources)
      : sources_(std::move(sources)) {}
  std::string_view Name() const override { return "chain"; }

  absl::StatusOr<T> Fetch(const CallContext& ctx) override {
    CredentialSource<T>* chosen = Chosen();
    if (chosen != nullptr) return chosen->Fetch(ctx);
    std::string tried;
    for (const auto& s : sources_) {
      absl::StatusOr<T> c = s->Fetch(ctx);
      if (c.ok()) {
        spdlog::info("{} from {} ({})", T::kKind, s->Name(), c->PublicId());
        absl::MutexLock lock(&mu_);
        chosen_ = s.get();
        return c;
      }
      if (c.status().code() != absl::StatusCode::kNotFound) {
        return Annotate(c.status(), std::string(T::kKind) + " from " + std::string(s->Name()));
      }
      if (!tried.empty()) tried += "; ";
      tried += std::string(s->Name()) + ": " + std::string(ToStd(c.status().message()));
    }
    return absl::UnavailableError("no " + std::string(T::kKind) + " found (" + tried + ")");
  }

  void Invalidate() override {
    CredentialSource<T>* chosen = Chosen();
    if (chosen != nullptr) chosen->Invalidate();
  }

 private:
  CredentialSource<T>* Chosen() {
    absl::MutexLock lock(&mu_);
    return chosen_;
  }
  std::vector<std::unique_ptr<CredentialSource<T>>> sources_;
  absl::Mutex mu_;
  CredentialSource<T>* chosen_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Caches the inner source's credentials and refreshes them before they expire, the botocore way
// (remote-kms-apis.md §2.6), which google-auth and azure-identity follow in substance:
//   - fresh (more than `advisory` before expiry): served from the cache;
//   - inside the advisory window: one caller refreshes (single-flight); if that fails the cached
//     credentials keep being served;
//   - less than `mandatory` before expiry (or none yet): callers wait for a refresh and get its
//     error if it fails.
// Credentials without an expiry are fetched once. Times come from `clock` (must outlive this).
template <typename T>
class RefreshingSource final : public CredentialSource<T> {
 public:
  struct Options {
    absl::Duration advisory = absl::Minutes(15);
    absl::Duration mandatory = absl::Seconds(10);
  };
  RefreshingSource(std::unique_ptr<CredentialSource<T>> inner, const Clock* clock, Options options)
      : inner_(std::move(inner)), clock_(clock), options_(options) {}
  RefreshingSource(std::unique_ptr<CredentialSource<T>> inner, const Clock* clock)
      : RefreshingSource(std::move(inner), clock, Options()) {}
  std::string_view Name() const override { return inner_->Name(); }

  absl::StatusOr<T> Fetch(const CallContext& ctx) override {
    absl::MutexLock lock(&mu_);
    while (true) {
      const absl::Time now = clock_->Now();
      if (has_cached_) {
        if (now < cached_.expiration - options_.advisory) return cached_.Clone();
        // Inside the advisory window: someone else is already refreshing; keep serving.
        if (refreshing_ && now < cached_.expiration - options_.mandatory) return cached_.Clone();
      }
      if (!refreshing_) break;
      // Someone is refreshing and we have nothing usable: wait for them (bounded by the deadline).
      auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !refreshing_; };
      if (ctx.deadline == absl::InfiniteFuture()) {
        mu_.Await(absl::Condition(&done));
      } else if (!mu_.AwaitWithDeadline(absl::Condition(&done), ctx.deadline)) {
        return absl::DeadlineExceededError("deadline passed while waiting for " +
                                           std::string(T::kKind));
      }
    }
    refreshing_ = true;
    mu_.Unlock();
    absl::StatusOr<T> fresh = inner_->Fetch(ctx);
    mu_.Lock();
    refreshing_ = false;
    const absl::Time now = clock_->Now();
    if (fresh.ok()) {
      cached_ = fresh->Clone();
      has_cached_ = true;
      if (fresh->expiration != absl::InfiniteFuture()) {
        spdlog::debug("{} from {} refreshed; they expire at {}", T::kKind, fresh->source,
                      absl::FormatTime(fresh->expiration));
      }
      return fresh;
    }
    if (has_cached_ && now < cached_.expiration - options_.mandatory) {
      spdlog::warn("refreshing {} failed ({}); using the current ones until {}", T::kKind,
                   fresh.status().ToString(), absl::FormatTime(cached_.expiration));
      return cached_.Clone();
    }
    return fresh.status();
  }

  // Drops the cache; the next Fetch() refreshes.
  void Invalidate() override {
    inner_->Invalidate();
    absl::MutexLock lock(&mu_);
    has_cached_ = false;
    cached_ = T();
  }

 private:
  std::unique_ptr<CredentialSource<T>> inner_;
  const Clock* clock_;
  const Options options_;
  absl::Mutex mu_;
  bool has_cached_ ABSL_GUARDED_BY(mu_) = false;
  T cached_ ABSL_GUARDED_BY(mu_);
  bool refreshing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kmsplugin

#endif  // KMSP_KMS_CREDENTIAL_SOURCE_H_
