#include "kms/vault/vault_auth.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "kms/secret_json.h"
#include "spdlog/spdlog.h"

namespace kmsplugin::vault {
namespace {

// A secret file's content without surrounding whitespace (a trailing newline is usual), moved into
// a SecretBytes. UNAVAILABLE when it cannot be read (a local outage, not a revocation: NOT_FOUND
// would purge the cached keys).
absl::StatusOr<SecretBytes> ReadSecret(const std::string& path, std::string_view what) {
  absl::StatusOr<std::string> text = ReadSecretFile(path);
  if (!text.ok()) {
    return absl::UnavailableError(fmt::format("cannot read the Vault {} file {}: {}", what,
                                              Printable(path), ToStd(text.status().message())));
  }
  const std::string_view trimmed = ToStd(absl::StripAsciiWhitespace(*text));
  SecretBytes out = SecretBytes::CopyFrom(trimmed);
  WipeString(*text);
  if (out.empty()) {
    return absl::UnauthenticatedError(
        fmt::format("the Vault {} file {} is empty", what, Printable(path)));
  }
  return out;
}

// The "auth" object of a login or renew-self answer.
absl::StatusOr<SecretBytes> TakeAuth(const SecretBytes& body, std::string_view what,
                                     absl::Duration* ttl, bool* renewable) {
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseAnswer(body, "Vault " + std::string(what)));
  auto auth = doc.find("auth");
  absl::StatusOr<SecretBytes> token =
      absl::UnavailableError(fmt::format("Vault {}: the answer has no auth.client_token", what));
  if (auth != doc.end() && auth->is_object()) {
    auto t = auth->find("client_token");
    if (t != auth->end() && t->is_string() && !t->get_ref<const std::string&>().empty()) {
      token = SecretBytes::CopyFrom(t->get_ref<const std::string&>());
    }
    *ttl = absl::Seconds(IntField(doc, "auth", "lease_duration").value_or(0));
    auto r = auth->find("renewable");
    *renewable = r != auth->end() && r->is_boolean() && r->get<bool>();
  }
  WipeJson(doc);
  if (*ttl < absl::ZeroDuration()) *ttl = absl::ZeroDuration();
  return token;
}

}  // namespace

absl::Status ValidateAuthOptions(const VaultAuthOptions& o) {
  switch (o.method) {
    case LoginMethod::kToken:
      if (o.token_file.empty()) return absl::InvalidArgumentError("--vault-token-file is empty");
      return absl::OkStatus();
    case LoginMethod::kAppRole:
      if (o.approle_role_id.empty() || o.approle_secret_id_file.empty()) {
        return absl::InvalidArgumentError(
            "AppRole login needs --vault-approle-role-id and --vault-approle-secret-id-file");
      }
      if (!ValidVaultPath(o.approle_mount)) {
        return absl::InvalidArgumentError("the AppRole auth mount is not a Vault path");
      }
      return absl::OkStatus();
    case LoginMethod::kKubernetes:
      if (o.k8s_role.empty() || o.k8s_token_file.empty()) {
        return absl::InvalidArgumentError(
            "Kubernetes login needs --vault-k8s-role and a service-account token file");
      }
      if (!ValidVaultPath(o.k8s_mount)) {
        return absl::InvalidArgumentError(
            fmt::format("--vault-k8s-mount {} is not a Vault path", Printable(o.k8s_mount)));
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("unknown Vault login method");
}

std::string_view VaultAuth::MethodName() const {
  switch (options_.method) {
    case LoginMethod::kToken:
      return "token file";
    case LoginMethod::kAppRole:
      return "AppRole";
    case LoginMethod::kKubernetes:
      return "Kubernetes";
  }
  return "unknown";
}

absl::StatusOr<VaultAuth::Grant> VaultAuth::Login(const CallContext& ctx) {
  std::string path;
  SecretBytes body;
  if (options_.method == LoginMethod::kAppRole) {
    KMSP_ASSIGN_OR_RETURN(SecretBytes secret_id,
                          ReadSecret(options_.approle_secret_id_file, "AppRole secret id"));
    path = fmt::format("auth/{}/login", options_.approle_mount);
    body = JsonObjectOfStrings(
        {{"role_id", options_.approle_role_id}, {"secret_id", secret_id.Reveal()}});
  } else {
    KMSP_ASSIGN_OR_RETURN(SecretBytes jwt,
                          ReadSecret(options_.k8s_token_file, "service-account token"));
    path = fmt::format("auth/{}/login", options_.k8s_mount);
    body = JsonObjectOfStrings({{"role", options_.k8s_role}, {"jwt", jwt.Reveal()}});
  }
  const std::string op = fmt::format("{} login", MethodName());
  absl::StatusOr<SecretBytes> answer = api_->Call(op, "POST", path, body, nullptr, true, ctx);
  if (!answer.ok()) {
    // A 400 at login is a refused credential (invalid secret id, role or jwt), not bad data.
    if (answer.status().code() == absl::StatusCode::kInvalidArgument) {
      return absl::UnauthenticatedError(answer.status().message());
    }
    return answer.status();
  }
  Grant g;
  KMSP_ASSIGN_OR_RETURN(g.token, TakeAuth(*answer, op, &g.ttl, &g.renewable));
  spdlog::info("Vault {} succeeded (token TTL {}, {})", MethodName(), absl::FormatDuration(g.ttl),
               g.renewable ? "renewable" : "not renewable");
  return g;
}

absl::StatusOr<VaultAuth::Grant> VaultAuth::ReadTokenFile(const CallContext& ctx) {
  Grant g;
  KMSP_ASSIGN_OR_RETURN(g.token, ReadSecret(options_.token_file, "token"));
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer,
                        api_->Call("token lookup-self", "GET", "auth/token/lookup-self",
                                   SecretBytes(), &g.token, true, ctx));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseAnswer(answer, "Vault token lookup-self"));
  g.ttl = absl::Seconds(std::max<int64_t>(0, IntField(doc, "data", "ttl").value_or(0)));
  auto data = doc.find("data");
  if (data != doc.end() && data->is_object()) {
    auto r = data->find("renewable");
    g.renewable = r != data->end() && r->is_boolean() && r->get<bool>();
  }
  WipeJson(doc);
  spdlog::info("Vault token read from {} (TTL {}, {})", Printable(options_.token_file),
               absl::FormatDuration(g.ttl), g.renewable ? "renewable" : "not renewable");
  return g;
}

absl::StatusOr<VaultAuth::Grant> VaultAuth::Acquire(const CallContext& ctx) {
  return options_.method == LoginMethod::kToken ? ReadTokenFile(ctx) : Login(ctx);
}

absl::StatusOr<VaultAuth::Grant> VaultAuth::Renew(const SecretBytes& token,
                                                  absl::Duration increment,
                                                  const CallContext& ctx) {
  const std::string inc = fmt::format("{}s", absl::ToInt64Seconds(increment));
  const SecretBytes body = JsonObjectOfStrings({{"increment", inc}});
  KMSP_ASSIGN_OR_RETURN(
      SecretBytes answer,
      api_->Call("token renew-self", "POST", "auth/token/renew-self", body, &token, true, ctx));
  Grant g;
  KMSP_ASSIGN_OR_RETURN(g.token, TakeAuth(answer, "token renew-self", &g.ttl, &g.renewable));
  // Renewal keeps the token; a grant shorter than asked means the max TTL is near: no more
  // renewals, the next refresh logs in again (or re-reads the token file).
  if (g.ttl < increment) g.renewable = false;
  spdlog::info("Vault token renewed (TTL {})", absl::FormatDuration(g.ttl));
  return g;
}

void VaultAuth::Install(Grant grant, absl::Time now) {
  const bool same = have_ && token_.ConstantTimeEquals(grant.token);
  token_ = std::move(grant.token);
  if (!same) ++generation_;
  have_ = true;
  obtained_ = now;
  ttl_ = grant.ttl;
  renewable_ = grant.renewable;
  if (!same || base_ttl_ <= absl::ZeroDuration()) base_ttl_ = grant.ttl;
}

absl::StatusOr<VaultAuth::Token> VaultAuth::Get(const CallContext& ctx) {
  enum class Need { kNothing, kRenew, kReplace };
  auto need = [this](absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!have_) return Need::kReplace;
    if (ttl_ <= absl::ZeroDuration()) return Need::kNothing;  // No expiry.
    if (now >= obtained_ + ttl_) return Need::kReplace;
    if (now >= obtained_ + ttl_ * 2 / 3) return renewable_ ? Need::kRenew : Need::kReplace;
    return Need::kNothing;
  };
  {
    absl::MutexLock lock(&mu_);
    if (need(clock_->Now()) == Need::kNothing) return Token{token_.Clone(), generation_};
  }
  absl::MutexLock refresh(&refresh_mu_);
  SecretBytes current;
  absl::Duration increment;
  Need what;
  bool still_valid = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    what = need(now);
    if (what == Need::kNothing) return Token{token_.Clone(), generation_};
    still_valid = have_ && now < obtained_ + ttl_;
    current = token_.Clone();
    increment = base_ttl_;
  }
  if (what == Need::kRenew) {
    absl::StatusOr<Grant> renewed = Renew(current, increment, ctx);
    if (renewed.ok()) {
      absl::MutexLock lock(&mu_);
      Install(*std::move(renewed), clock_->Now());
      return Token{token_.Clone(), generation_};
    }
    spdlog::warn(
        "Vault token renewal failed ({} instead): {}",
        options_.method == LoginMethod::kToken ? "re-reading the token file" : "logging in again",
        renewed.status().ToString());
  }
  absl::StatusOr<Grant> fresh = Acquire(ctx);
  absl::MutexLock lock(&mu_);
  if (fresh.ok()) {
    Install(*std::move(fresh), clock_->Now());
    return Token{token_.Clone(), generation_};
  }
  if (still_valid && have_ && fresh.status().code() == absl::StatusCode::kUnavailable) {
    // An outage: the current token has not expired yet, keep using it.
    spdlog::warn("Vault {} failed, keeping the current token: {}", MethodName(),
                 fresh.status().ToString());
    return Token{token_.Clone(), generation_};
  }
  return fresh.status();
}

void VaultAuth::Invalidate(uint64_t generation) {
  absl::MutexLock lock(&mu_);
  if (have_ && generation == generation_) {
    have_ = false;
    token_.Clear();
  }
}

}  // namespace kmsplugin::vault
