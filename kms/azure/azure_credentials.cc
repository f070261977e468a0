// Microsoft Entra access tokens for the Azure Key Vault backend; see azure_credentials.h.
#include "kms/azure/azure_credentials.h"

#include <cctype>
#include <utility>
#include <vector>

#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/azure/azure_wire.h"
#include "kms/secret_file.h"

namespace kmsplugin::azure {
namespace {

constexpr std::string_view kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr std::string_view kForm = "application/x-www-form-urlencoded";

std::string StripSlashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// "https://HOST[:PORT]" (also from a bare host, as AZURE_AUTHORITY_HOST may be given).
std::string NormalizeAuthority(std::string host) {
  host = StripSlashes(std::move(host));
  if (host.find("://") == std::string::npos) host = "https://" + host;
  return host;
}

bool ValidTenant(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (char c : t) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '.') return false;
  }
  return true;
}

// True for scheme://HOST[:PORT] with no path.
bool BaseUrl(std::string_view url, std::string_view scheme) {
  const std::string prefix = std::string(scheme) + "://";
  if (url.substr(0, prefix.size()) != prefix) return false;
  const std::string_view rest = url.substr(prefix.size());
  return !rest.empty() && rest.find_first_of("/?#@ ") == std::string_view::npos;
}

// A client-credentials grant at Entra's v2 token endpoint; `secret_field` is client_secret or
// client_assertion.
class EntraSource : public TokenSource {
 public:
  EntraSource(const AzureCredentialOptions& options, const AzureScope* scope, HttpClient* http,
              const Clock* clock, TokenEndpointOptions endpoint_options)
      : tenant_(options.tenant_id),
        client_id_(options.client_id),
        authority_(NormalizeAuthority(options.authority_host)),
        scope_(scope),
        http_(http),
        clock_(clock),
        endpoint_options_(endpoint_options) {}

 protected:
  absl::StatusOr<AccessToken> Exchange(std::string_view secret_field, const SecretBytes& secret,
                                       const CallContext& ctx) {
    const std::string scope = scope_->Get();
    std::vector<std::pair<std::string_view, std::string_view>> fields = {
        {"client_id", client_id_}, {"grant_type", "client_credentials"}, {"scope", scope}};
    if (secret_field == "client_assertion")
      fields.emplace_back("client_assertion_type", kJwtBearer);
    fields.emplace_back(secret_field, secret.Reveal());
    TokenRequest request;
    request.what = fmt::format("Entra token ({})", Name());
    request.method = "POST";
    request.url = fmt::format("{}/{}/oauth2/v2.0/token", authority_, tenant_);
    request.body = FormEncode(fields);
    request.content_type = std::string(kForm);
    request.source = std::string(Name());
    request.identity = client_id_;
    return RequestToken(http_, clock_, request, ctx, endpoint_options_);
  }

  const std::string tenant_;
  const std::string client_id_;
  const std::string authority_;

 private:
  const AzureScope* const scope_;
  HttpClient* const http_;
  const Clock* const clock_;
  const TokenEndpointOptions endpoint_options_;
};

class ClientSecretSource final : public EntraSource {
 public:
  ClientSecretSource(const AzureCredentialOptions& options, const AzureScope* scope,
                     HttpClient* http, const Clock* clock, TokenEndpointOptions endpoint_options)
      : EntraSource(options, scope, http, clock, endpoint_options),
        secret_(options.client_secret.Clone()) {}
  std::string_view Name() const override { return "client-secret"; }

  absl::StatusOr<AccessToken> Fetch(const CallContext& ctx) override {
    if (tenant_.empty() || client_id_.empty() || secret_.empty()) {
      return absl::NotFoundError(
          "AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET are "
          "not all set");
    }
    return Exchange("client_secret", secret_, ctx);
  }

 private:
  const SecretBytes secret_;
};

class WorkloadIdentitySource final : public EntraSource {
 public:
  WorkloadIdentitySource(const AzureCredentialOptions& options, const AzureScope* scope,
                         HttpClient* http, const Clock* clock,
                         TokenEndpointOptions endpoint_options)
      : EntraSource(options, scope, http, clock, endpoint_options),
        token_file_(options.federated_token_file) {}
  std::string_view Name() const override { return "workload-identity"; }

  absl::StatusOr<AccessToken> Fetch(const CallContext& ctx) override {
    if (token_file_.empty() || client_id_.empty() || tenant_.empty()) {
      return absl::NotFoundError(
          "AZURE_FEDERATED_TOKEN_FILE / AZURE_CLIENT_ID / AZURE_TENANT_ID "
          "are not all set");
    }
    // Re-read on every refresh: the kubelet replaces the projected token before it expires.
    absl::StatusOr<std::string> read = ReadSecretFile(token_file_);
    if (!read.ok()) {
      return absl::UnavailableError(
          fmt::format("workload identity token file {} cannot be read", Printable(token_file_)));
    }
    std::string text = std::move(*read);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
      text.pop_back();  // In place: no copy of the token.
    }
    if (text.empty()) {
      return absl::UnavailableError(
          fmt::format("workload identity token file {} is empty", Printable(token_file_)));
    }
    const SecretBytes assertion = SecretBytes::TakeFrom(text);
    return Exchange("client_assertion", assertion, ctx);
  }

 private:
  const std::string token_file_;
};

class ImdsSource final : public TokenSource {
 public:
  ImdsSource(const AzureCredentialOptions& options, const AzureScope* scope, HttpClient* http,
             const Clock* clock, TokenEndpointOptions endpoint_options)
      : endpoint_(StripSlashes(options.imds_endpoint)),
        client_id_(options.managed_identity_client_id),
        scope_(scope),
        http_(http),
        clock_(clock),
        endpoint_options_(endpoint_options) {}
  std::string_view Name() const override { return "managed-identity"; }

  absl::StatusOr<AccessToken> Fetch(const CallContext& ctx) override {
    TokenRequest request;
    request.what = "Azure IMDS token";
    request.method = "GET";
    request.url =
        fmt::format("{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
                    endpoint_, UrlEncode(ResourceOfScope(scope_->Get())));
    if (!client_id_.empty()) request.url += "&client_id=" + UrlEncode(client_id_);
    request.headers.push_back({"Metadata", "true"});
    request.source = std::string(Name());
    request.identity = client_id_.empty() ? "system-assigned" : client_id_;
    return RequestToken(http_, clock_, request, ctx, endpoint_options_);
  }

 private:
  const std::string endpoint_;
  const std::string client_id_;
  const AzureScope* const scope_;
  HttpClient* const http_;
  const Clock* const clock_;
  const TokenEndpointOptions endpoint_options_;
};

}  // namespace

AzureCredentialOptions AzureCredentialOptions::FromEnvironment(
    const std::string& imds_endpoint_flag, const std::string& managed_identity_client_id_flag,
    const std::function<const char*(const char*)>& getenv) {
  auto env = [&getenv](const char* name) -> std::string {
    const char* v = getenv(name);
    return v == nullptr ? std::string() : std::string(v);
  };
  AzureCredentialOptions o;
  o.tenant_id = env("AZURE_TENANT_ID");
  o.client_id = env("AZURE_CLIENT_ID");
  std::string secret = env("AZURE_CLIENT_SECRET");
  o.client_secret = SecretBytes::TakeFrom(secret);
  o.federated_token_file = env("AZURE_FEDERATED_TOKEN_FILE");
  const std::string authority = env("AZURE_AUTHORITY_HOST");
  if (!authority.empty()) o.authority_host = authority;
  const std::string pod_identity = env("AZURE_POD_IDENTITY_AUTHORITY_HOST");
  if (!imds_endpoint_flag.empty()) {
    o.imds_endpoint = imds_endpoint_flag;
  } else if (!pod_identity.empty()) {
    o.imds_endpoint = pod_identity;
  }
  o.managed_identity_client_id =
      !managed_identity_client_id_flag.empty() ? managed_identity_client_id_flag : o.client_id;
  return o;
}

absl::Status ValidateCredentialOptions(const AzureCredentialOptions& options) {
  const std::string authority = NormalizeAuthority(options.authority_host);
  if (!BaseUrl(authority, "https")) {
    return absl::InvalidArgumentError(fmt::format(
        "AZURE_AUTHORITY_HOST '{}' is not https://HOST[:PORT]", Printable(authority, 200)));
  }
  const std::string imds = StripSlashes(options.imds_endpoint);
  if (!BaseUrl(imds, "http") && !BaseUrl(imds, "https")) {
    return absl::InvalidArgumentError(fmt::format(
        "the IMDS endpoint '{}' (--azure-imds-endpoint, AZURE_POD_IDENTITY_AUTHORITY_HOST) is not "
        "http(s)://HOST[:PORT]",
        Printable(imds, 200)));
  }
  if (!options.tenant_id.empty() && !ValidTenant(options.tenant_id)) {
    return absl::InvalidArgumentError(
        fmt::format("AZURE_TENANT_ID '{}' is not a tenant id", Printable(options.tenant_id, 64)));
  }
  return absl::OkStatus();
}

std::unique_ptr<TokenSource> MakeClientSecretSource(const AzureCredentialOptions& options,
                                                    const AzureScope* scope, HttpClient* http,
                                                    const Clock* clock,
                                                    TokenEndpointOptions endpoint_options) {
  return std::make_unique<ClientSecretSource>(options, scope, http, clock, endpoint_options);
}

std::unique_ptr<TokenSource> MakeWorkloadIdentitySource(const AzureCredentialOptions& options,
                                                        const AzureScope* scope, HttpClient* http,
                                                        const Clock* clock,
                                                        TokenEndpointOptions endpoint_options) {
  return std::make_unique<WorkloadIdentitySource>(options, scope, http, clock, endpoint_options);
}

std::unique_ptr<TokenSource> MakeImdsSource(const AzureCredentialOptions& options,
                                            const AzureScope* scope, HttpClient* http,
                                            const Clock* clock,
                                            TokenEndpointOptions endpoint_options) {
  return std::make_unique<ImdsSource>(options, scope, http, clock, endpoint_options);
}

std::unique_ptr<TokenSource> MakeAzureTokenSource(const AzureCredentialOptions& options,
                                                  const AzureScope* scope, HttpClient* http,
                                                  const Clock* clock,
                                                  TokenEndpointOptions endpoint_options) {
  std::vector<std::unique_ptr<TokenSource>> chain;
  chain.push_back(MakeClientSecretSource(options, scope, http, clock, endpoint_options));
  chain.push_back(MakeWorkloadIdentitySource(options, scope, http, clock, endpoint_options));
  chain.push_back(MakeImdsSource(options, scope, http, clock, endpoint_options));
  // Entra tokens last 60-90 minutes (IMDS up to 24 h): refresh 5 minutes ahead, as
  // azure-identity does.
  RefreshingTokenSource::Options refresh;
  refresh.advisory = absl::Minutes(5);
  return std::make_unique<RefreshingTokenSource>(
      std::make_unique<ChainTokenSource>(std::move(chain)), clock, refresh);
}

}  // namespace kmsplugin::azure
