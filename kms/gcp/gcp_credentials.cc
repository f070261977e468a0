// Google token sources (see gcp_credentials.h): service-account JWT, external_account (STS and
// impersonation), metadata server.
#include "kms/gcp/gcp_credentials.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include "base/printable.h"
#include "base/status.h"
#include "crypto/jwt_rs256.h"
#include "fmt/format.h"
#include "kms/secret_file.h"
#include "kms/secret_json.h"
#include "nlohmann/json.hpp"

namespace kmsplugin::gcp {
namespace {

constexpr char kJwtBearerGrant[] = "urn:ietf:params:oauth:grant-type:jwt-bearer";
constexpr char kTokenExchangeGrant[] = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr char kAccessTokenType[] = "urn:ietf:params:oauth:token-type:access_token";
constexpr absl::Duration kJwtLifetime = absl::Hours(1);  // The most Google accepts.
constexpr int64_t kDefaultImpersonationSeconds = 3600;

// A parsed credentials file. Only `private_key` is secret.
struct CredentialsFile {
  std::string type;
  // service_account
  std::string client_email;
  std::string private_key_id;
  SecretBytes private_key;
  std::string token_uri;
  // external_account
  std::string audience;
  std::string subject_token_type;
  std::string token_url;
  std::string subject_token_file;
  std::string subject_token_field;  // Non-empty: format json, the field holding the token.
  std::string impersonation_url;
  int64_t impersonation_seconds = kDefaultImpersonationSeconds;
};

std::string Str(const nlohmann::json& doc, const char* name) {
  auto it = doc.find(name);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Reads and checks a credentials file. `read_error` is the code for an unreadable file
// (INVALID_ARGUMENT at start-up, UNAVAILABLE at a refresh: a local outage, never a refusal).
absl::StatusOr<CredentialsFile> ReadCredentialsFile(const std::string& path,
                                                    absl::StatusCode read_error) {
  absl::StatusOr<std::string> text = ReadSecretFile(path);
  if (!text.ok()) {
    return absl::Status(read_error, fmt::format("Google credentials file {} cannot be read: {}",
                                                Printable(path), ToStd(text.status().message())));
  }
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  WipeString(*text);
  auto bad = [&path](std::string_view why) {
    return absl::InvalidArgumentError(
        fmt::format("Google credentials file {}: {}", Printable(path), why));
  };
  if (!doc.is_object()) return bad("not a JSON object");
  CredentialsFile f;
  f.type = Str(doc, "type");
  absl::Status status = absl::OkStatus();
  if (f.type == "service_account") {
    f.client_email = Str(doc, "client_email");
    f.private_key_id = Str(doc, "private_key_id");
    f.token_uri = Str(doc, "token_uri");
    if (f.token_uri.empty()) f.token_uri = "https://oauth2.googleapis.com/token";
    if (auto it = doc.find("private_key"); it != doc.end() && it->is_string()) {
      f.private_key = SecretBytes::CopyFrom(it->get_ref<const std::string&>());
    }
    if (f.client_email.empty()) status = bad("client_email is missing");
    if (f.private_key.empty()) status = bad("private_key is missing");
  } else if (f.type == "external_account") {
    f.audience = Str(doc, "audience");
    f.subject_token_type = Str(doc, "subject_token_type");
    f.token_url = Str(doc, "token_url");
    if (f.token_url.empty()) f.token_url = "https://sts.googleapis.com/v1/token";
    f.impersonation_url = Str(doc, "service_account_impersonation_url");
    auto imp = doc.find("service_account_impersonation");
    if (imp != doc.end() && imp->is_object()) {
      auto life = imp->find("token_lifetime_seconds");
      if (life != imp->end() && life->is_number_integer()) {
        f.impersonation_seconds = life->get<int64_t>();
      }
    }
    auto source = doc.find("credential_source");
    if (source != doc.end() && source->is_object()) {
      f.subject_token_file = Str(*source, "file");
      auto format = source->find("format");
      if (format != source->end() && format->is_object() && Str(*format, "type") == "json") {
        f.subject_token_field = Str(*format, "subject_token_field_name");
        if (f.subject_token_field.empty()) status = bad("subject_token_field_name is missing");
      }
      if (f.subject_token_file.empty()) {
        status = bad("only a file credential_source is supported (credential_source.file)");
      }
    } else {
      status = bad("credential_source is missing");
    }
    if (f.audience.empty()) status = bad("audience is missing");
    if (f.subject_token_type.empty()) status = bad("subject_token_type is missing");
    if (f.impersonation_seconds < 600 || f.impersonation_seconds > 43200) {
      status = bad("token_lifetime_seconds must be between 600 and 43200");
    }
  } else {
    status = bad(
        fmt::format("type '{}' is not service_account or external_account", Printable(f.type, 40)));
  }
  WipeJson(doc);
  if (!status.ok()) return status;
  return f;
}

// The service account's e-mail in an impersonation URL (…/serviceAccounts/<email>:generate…).
std::string ImpersonatedEmail(std::string_view url) {
  const size_t at = url.rfind("/serviceAccounts/");
  const size_t colon = url.rfind(':');
  if (at == std::string_view::npos || colon == std::string_view::npos || colon < at) return "";
  return std::string(url.substr(at + 17, colon - at - 17));
}

class CredentialsFileSource final : public TokenSource {
 public:
  CredentialsFileSource(GcpCredentialsOptions options, HttpClient* http, const Clock* clock)
      : options_(std::move(options)), http_(http), clock_(clock) {}
  std::string_view Name() const override { return "google-credentials-file"; }

  absl::StatusOr<AccessToken> Fetch(const CallContext& ctx) override {
    if (options_.credentials_file.empty()) {
      return absl::NotFoundError("no --gcp-credentials-file or GOOGLE_APPLICATION_CREDENTIALS");
    }
    KMSP_ASSIGN_OR_RETURN(CredentialsFile f, ReadCredentialsFile(options_.credentials_file,
                                                                 absl::StatusCode::kUnavailable));
    if (f.type == "service_account") return ServiceAccount(f, ctx);
    return ExternalAccount(f, ctx);
  }

 private:
  absl::StatusOr<AccessToken> ServiceAccount(const CredentialsFile& f, const CallContext& ctx) {
    const int64_t now = absl::ToUnixSeconds(clock_->Now());
    nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
    if (!f.private_key_id.empty()) header["kid"] = f.private_key_id;
    const nlohmann::json claims = {{"iss", f.client_email},
                                   {"scope", options_.scope},
                                   {"aud", f.token_uri},
                                   {"iat", now},
                                   {"exp", now + absl::ToInt64Seconds(kJwtLifetime)}};
    absl::StatusOr<SecretBytes> jwt = SignJwtRs256(f.private_key, header.dump(), claims.dump());
    if (!jwt.ok()) {
      return absl::InvalidArgumentError(fmt::format("Google credentials file {}: {}",
                                                    Printable(options_.credentials_file),
                                                    ToStd(jwt.status().message())));
    }
    TokenRequest req;
    req.what = "Google OAuth token";
    req.url = f.token_uri;
    req.body = FormEncode({{"grant_type", kJwtBearerGrant}, {"assertion", jwt->Reveal()}});
    req.content_type = "application/x-www-form-urlencoded";
    req.source = "service-account-file";
    req.identity = f.client_email;
    return RequestToken(http_, clock_, req, ctx, options_.endpoint);
  }

  absl::StatusOr<SecretBytes> SubjectToken(const CredentialsFile& f) {
    absl::StatusOr<std::string> text = ReadSecretFile(f.subject_token_file);
    if (!text.ok()) {
      return absl::UnavailableError(fmt::format("the subject token file {} cannot be read: {}",
                                                Printable(f.subject_token_file),
                                                ToStd(text.status().message())));
    }
    SecretBytes token = SecretBytes::TakeFrom(*text);
    if (!f.subject_token_field.empty()) {
      nlohmann::json doc = nlohmann::json::parse(token.Reveal(), nullptr, false);
      std::string value = doc.is_object() ? Str(doc, f.subject_token_field.c_str()) : "";
      WipeJson(doc);
      token = SecretBytes::TakeFrom(value);
    } else {
      std::string_view v = token.Reveal();
      while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ')) {
        v.remove_suffix(1);
      }
      token = SecretBytes::CopyFrom(v);
    }
    if (token.empty()) {
      return absl::UnavailableError(
          fmt::format("the subject token file {} holds no token", Printable(f.subject_token_file)));
    }
    return token;
  }

  absl::StatusOr<AccessToken> ExternalAccount(const CredentialsFile& f, const CallContext& ctx) {
    KMSP_ASSIGN_OR_RETURN(SecretBytes subject, SubjectToken(f));
    TokenRequest sts;
    sts.what = "Google STS token exchange";
    sts.url = f.token_url;
    sts.body = FormEncode({{"grant_type", kTokenExchangeGrant},
                           {"audience", f.audience},
                           {"scope", options_.scope},
                           {"requested_token_type", kAccessTokenType},
                           {"subject_token", subject.Reveal()},
                           {"subject_token_type", f.subject_token_type}});
    sts.content_type = "application/x-www-form-urlencoded";
    sts.source = "external-account-file";
    sts.identity = "federated (" + f.audience + ")";
    KMSP_ASSIGN_OR_RETURN(AccessToken federated,
                          RequestToken(http_, clock_, sts, ctx, options_.endpoint));
    if (f.impersonation_url.empty()) return federated;

    TokenRequest imp;
    imp.what = "Google service-account impersonation";
    imp.url = f.impersonation_url;
    std::string auth;
    auth.reserve(7 + federated.token.size());
    auth.append("Bearer ").append(federated.token.Reveal());
    imp.headers.push_back({"Authorization", std::move(auth)});
    imp.body = SecretBytes::CopyFrom(nlohmann::json{
        {"scope", nlohmann::json::array({options_.scope})},
        {"lifetime", fmt::format("{}s", f.impersonation_seconds)},
        {"delegates",
         nlohmann::json::array()}}.dump());
    imp.content_type = "application/json";
    imp.source = "external-account-file";
    imp.identity = ImpersonatedEmail(f.impersonation_url);
    absl::StatusOr<AccessToken> token = RequestToken(http_, clock_, imp, ctx, options_.endpoint);
    for (HttpHeader& h : imp.headers) WipeString(h.value);
    return token;
  }

  const GcpCredentialsOptions options_;
  HttpClient* const http_;
  const Clock* const clock_;
};

class MetadataServerSource final : public TokenSource {
 public:
  MetadataServerSource(GcpCredentialsOptions options, HttpClient* http, const Clock* clock)
      : options_(std::move(options)), http_(http), clock_(clock) {}
  std::string_view Name() const override { return "metadata-server"; }

  absl::StatusOr<AccessToken> Fetch(const CallContext& ctx) override {
    TokenRequest req;
    req.what = "Google metadata server token";
    req.method = "GET";
    req.url = fmt::format(
        "http://{}/computeMetadata/v1/instance/service-accounts/default/token?scopes={}",
        options_.metadata_host, UrlEncode(options_.scope));
    req.headers.push_back({"Metadata-Flavor", "Google"});
    req.source = "metadata-server";
    req.identity = "the metadata server's default service account";
    return RequestToken(http_, clock_, req, ctx, options_.endpoint);
  }

 private:
  const GcpCredentialsOptions options_;
  HttpClient* const http_;
  const Clock* const clock_;
};

}  // namespace

void GcpCredentialsOptions::FromEnvironment() {
  if (credentials_file.empty()) {
    const char* file = std::getenv("GOOGLE_APPLICATION_CREDENTIALS");
    if (file != nullptr) credentials_file = file;
  }
  for (const char* name : {"GCE_METADATA_HOST", "GCE_METADATA_ROOT"}) {
    const char* host = std::getenv(name);
    if (host != nullptr && host[0] != '\0') {
      metadata_host = host;
      break;
    }
  }
}

absl::Status ValidateCredentialsFile(const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  return ReadCredentialsFile(path, absl::StatusCode::kInvalidArgument).status();
}

std::unique_ptr<TokenSource> NewCredentialsFileSource(const GcpCredentialsOptions& options,
                                                      HttpClient* http, const Clock* clock) {
  return std::make_unique<CredentialsFileSource>(options, http, clock);
}

std::unique_ptr<TokenSource> NewMetadataServerSource(const GcpCredentialsOptions& options,
                                                     HttpClient* http, const Clock* clock) {
  return std::make_unique<MetadataServerSource>(options, http, clock);
}

absl::StatusOr<std::unique_ptr<TokenSource>> NewGcpTokenSource(const GcpCredentialsOptions& options,
                                                               HttpClient* http,
                                                               const Clock* clock) {
  KMSP_RETURN_IF_ERROR(ValidateCredentialsFile(options.credentials_file));
  std::vector<std::unique_ptr<TokenSource>> chain;
  chain.push_back(NewCredentialsFileSource(options, http, clock));
  chain.push_back(NewMetadataServerSource(options, http, clock));
  return std::make_unique<RefreshingTokenSource>(
      std::make_unique<ChainTokenSource>(std::move(chain)), clock);
}

}  // namespace kmsplugin::gcp
