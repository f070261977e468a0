#include "kms/aws/remote_credentials_provider.h"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/aws/sigv4.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace kmsplugin::aws {
namespace {

// Reads a token file into SecretBytes, trimming trailing whitespace. A token file that is missing,
// unreadable or empty is a local outage (kubelet has not written it yet, a volume is gone), never
// AWS refusing us: UNAVAILABLE, so the plugin coasts on its cached keys instead of purging them.
absl::StatusOr<SecretBytes> ReadTokenFile(const std::string& path, std::string_view what) {
  absl::StatusOr<std::string> read = ReadCredentialsFile(path);
  if (!read.ok()) {
    return absl::UnavailableError(
        fmt::format("{} token file {} cannot be read", what, Printable(path)));
  }
  std::string text = std::move(*read);
  absl::StripTrailingAsciiWhitespace(&text);  // In place: no copy of the token.
  if (text.empty()) {
    return absl::UnavailableError(fmt::format("{} token file {} is empty", what, Printable(path)));
  }
  return SecretBytes::TakeFrom(text);
}

// Time left for a metadata-style call: at most `cap`, never past the caller's deadline.
absl::Time CappedDeadline(const CallContext& ctx, absl::Duration cap) {
  return std::min(ctx.deadline, absl::Now() + cap);
}

// Status for a non-200 HTTP answer from a credentials endpoint.
absl::Status HttpFailure(int status, std::string_view what) {
  std::string msg = fmt::format("{} answered HTTP {}", what, status);
  if (status >= 500 || status == 429 || status == 408) return absl::UnavailableError(msg);
  if (status == 401 || status == 403) return absl::UnauthenticatedError(msg);
  return absl::InvalidArgumentError(msg);
}

// Text between the first <tag> and its </tag>, with the five XML entities decoded.
std::optional<std::string> XmlText(std::string_view xml, std::string_view tag) {
  const std::string open = fmt::format("<{}>", tag);
  const std::string close = fmt::format("</{}>", tag);
  const size_t a = xml.find(open);
  if (a == std::string_view::npos) return std::nullopt;
  const size_t start = a + open.size();
  const size_t b = xml.find(close, start);
  if (b == std::string_view::npos) return std::nullopt;
  std::string_view raw = xml.substr(start, b - start);
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '&') {
      static constexpr std::pair<std::string_view, char> kEntities[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
      bool matched = false;
      for (const auto& [ent, ch] : kEntities) {
        if (raw.substr(i, ent.size()) == ent) {
          out.push_back(ch);
          i += ent.size() - 1;
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    out.push_back(raw[i]);
  }
  return out;
}

// Parses the JSON credentials document of the container endpoint and IMDS
// ({"AccessKeyId","SecretAccessKey","Token","Expiration"}); wipes every string it touched.
absl::StatusOr<AwsCredentials> ParseJsonCredentials(const SecretBytes& body, std::string_view what,
                                                    std::string_view source) {
  nlohmann::json doc = nlohmann::json::parse(body.Reveal(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return absl::InvalidArgumentError(fmt::format("{}: not JSON", what));
  auto text = [&doc](const char* key) -> std::string* {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_string()) return nullptr;
    return &it->get_ref<std::string&>();
  };
  auto wipe = [&doc] {
    for (auto& [k, v] : doc.items()) {
      if (v.is_string()) WipeString(v.get_ref<std::string&>());
    }
  };
  std::string* akid = text("AccessKeyId");
  std::string* secret = text("SecretAccessKey");
  std::string* token = text("Token");
  std::string* expiration = text("Expiration");
  if (akid == nullptr || secret == nullptr || akid->empty() || secret->empty()) {
    std::string code = text("Code") != nullptr ? *text("Code") : "";
    wipe();
    return absl::InvalidArgumentError(
        fmt::format("{}: the answer has no AccessKeyId/SecretAccessKey{}", what,
                    code.empty() ? "" : fmt::format(" (Code {})", Printable(code))));
  }
  AwsCredentials c;
  c.access_key_id = *akid;
  c.secret_access_key = SecretBytes::TakeFrom(*secret);
  if (token != nullptr && !token->empty()) c.session_token = SecretBytes::TakeFrom(*token);
  if (expiration != nullptr && !expiration->empty()) {
    absl::StatusOr<absl::Time> t = ParseAwsTime(*expiration);
    if (!t.ok()) {
      wipe();
      return Annotate(t.status(), what);
    }
    c.expiration = *t;
  }
  c.source = std::string(source);
  wipe();
  return c;
}

struct ParsedUrl {
  std::string scheme;
  std::string host;  // Without brackets for IPv6.
};

std::optional<ParsedUrl> ParseUrl(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  ParsedUrl out;
  out.scheme = std::string(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(rest.substr(1, close - 1));
  } else {
    out.host = std::string(rest.substr(0, rest.find(':')));
  }
  if (out.host.empty()) return std::nullopt;
  return out;
}

bool AllowedPlainHttpHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0 ||
         host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Web identity

WebIdentityCredentialsProvider::WebIdentityCredentialsProvider(EnvLookup env, HttpClient* http,
                                                               const Clock* clock,
                                                               DefaultChainOptions options)
    : env_(std::move(env)), http_(http), clock_(clock), options_(std::move(options)) {}

std::string WebIdentityCredentialsProvider::Endpoint() const {
  if (std::optional<std::string> e = NonEmptyEnv(env_, "AWS_ENDPOINT_URL_STS")) return *e;
  if (std::optional<std::string> e = NonEmptyEnv(env_, "AWS_ENDPOINT_URL")) return *e;
  const std::string& r = options_.region;
  const bool china = r.rfind("cn-", 0) == 0;
  const bool us_commercial =
      r == "us-east-1" || r == "us-east-2" || r == "us-west-1" || r == "us-west-2";
  const std::string host =
      options_.fips && us_commercial ? fmt::format("sts-fips.{}", r) : fmt::format("sts.{}", r);
  return fmt::format("https://{}.{}/", host, china ? "amazonaws.com.cn" : "amazonaws.com");
}

absl::StatusOr<AwsCredentials> WebIdentityCredentialsProvider::Fetch(const CallContext& ctx) {
  std::optional<std::string> role_arn = NonEmptyEnv(env_, "AWS_ROLE_ARN");
  std::optional<std::string> token_file = NonEmptyEnv(env_, "AWS_WEB_IDENTITY_TOKEN_FILE");
  std::optional<std::string> session_name = NonEmptyEnv(env_, "AWS_ROLE_SESSION_NAME");
  if (!role_arn || !token_file) {
    // The selected profile of the config file may configure it instead.
    SharedFilesConfig files = SharedFilesConfig::FromEnv(env_);
    absl::StatusOr<std::string> text = ReadCredentialsFile(files.config_file);
    if (text.ok()) {
      IniSections sections = ParseAwsIni(*text, /*config_style=*/true);
      WipeString(*text);
      absl::Cleanup wipe_sections = [&sections] { WipeSections(sections); };
      auto it = sections.find(files.profile);
      if (it != sections.end() && it->second.count("role_arn") > 0 &&
          it->second.count("web_identity_token_file") > 0) {
        role_arn = it->second["role_arn"];
        token_file = it->second["web_identity_token_file"];
        if (it->second.count("role_session_name") > 0) {
          session_name = it->second["role_session_name"];
        }
      }
    }
  }
  if (!role_arn || !token_file) {
    return absl::NotFoundError("AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE are not set");
  }
  if (options_.region.empty()) {
    return absl::InvalidArgumentError("web identity needs a region for the STS endpoint");
  }
  KMSP_ASSIGN_OR_RETURN(SecretBytes jwt, ReadTokenFile(*token_file, "web identity"));
  const std::string name =
      session_name.value_or(fmt::format("kms-plugin-{}", absl::ToUnixSeconds(clock_->Now())));

  std::string form = fmt::format(
      "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}"
      "&WebIdentityToken=",
      UriEncode(*role_arn, true), UriEncode(name, true));
  std::string encoded_jwt = UriEncode(jwt.Reveal(), true);
  form += encoded_jwt;
  WipeString(encoded_jwt);

  const std::string endpoint = Endpoint();
  const std::string scheme = absl::AsciiStrToLower(endpoint.substr(0, endpoint.find("://")));
  if (scheme != "https" && !(scheme == "http" && options_.allow_insecure_http)) {
    return absl::InvalidArgumentError(fmt::format(
        "STS endpoint {} is not https:// (the web identity token and the credentials STS returns "
        "would cross the network in clear)",
        Printable(endpoint)));
  }
  HttpRequest req;
  req.method = "POST";
  req.url = endpoint;
  req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"});
  req.headers.push_back({"Accept", "application/xml"});
  req.body = SecretBytes::TakeFrom(form);
  req.deadline = CappedDeadline(ctx, absl::Seconds(10));
  KMSP_ASSIGN_OR_RETURN(HttpResponse resp, http_->Send(req));
  std::string_view xml = resp.body.Reveal();
  if (resp.status != 200) {
    const std::string code = XmlText(xml, "Code").value_or("");
    const std::string what =
        fmt::format("STS AssumeRoleWithWebIdentity at {} for {}: HTTP {} {}", Printable(endpoint),
                    Printable(*role_arn), resp.status, Printable(code));
    if (code == "IDPCommunicationError" || code == "Throttling" || code == "ThrottlingException" ||
        resp.status >= 500 || resp.status == 429) {
      return absl::UnavailableError(what);
    }
    if (code == "AccessDenied" || code == "AccessDeniedException" ||
        code == "RegionDisabledException") {
      return absl::PermissionDeniedError(what);
    }
    if (code == "InvalidIdentityToken" || code == "ExpiredTokenException" ||
        code == "IDPRejectedClaim" || resp.status == 403 || resp.status == 401) {
      return absl::UnauthenticatedError(what);
    }
    return absl::InvalidArgumentError(what);
  }
  std::optional<std::string> akid = XmlText(xml, "AccessKeyId");
  std::optional<std::string> secret = XmlText(xml, "SecretAccessKey");
  std::optional<std::string> token = XmlText(xml, "SessionToken");
  std::optional<std::string> expiration = XmlText(xml, "Expiration");
  auto wipe = [&] {
    if (secret) WipeString(*secret);
    if (token) WipeString(*token);
  };
  if (!akid || !secret || !token || !expiration || akid->empty() || secret->empty()) {
    wipe();
    return absl::InvalidArgumentError(fmt::format(
        "STS AssumeRoleWithWebIdentity at {}: the answer has no Credentials", Printable(endpoint)));
  }
  absl::StatusOr<absl::Time> exp = ParseAwsTime(*expiration);
  if (!exp.ok()) {
    wipe();
    return Annotate(exp.status(), "STS AssumeRoleWithWebIdentity");
  }
  AwsCredentials c;
  c.access_key_id = *akid;
  c.secret_access_key = SecretBytes::TakeFrom(*secret);
  c.session_token = SecretBytes::TakeFrom(*token);
  c.expiration = *exp;
  c.source = fmt::format("{}:{}", Name(), Printable(*role_arn));
  return c;
}

// ---------------------------------------------------------------------------------------------
// Container credentials

absl::StatusOr<AwsCredentials> ContainerCredentialsProvider::Fetch(const CallContext& ctx) {
  std::string url;
  if (std::optional<std::string> rel =
          NonEmptyEnv(env_, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    url = "http://169.254.170.2" + *rel;
  } else if (std::optional<std::string> full =
                 NonEmptyEnv(env_, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
    std::optional<ParsedUrl> parsed = ParseUrl(*full);
    if (!parsed) {
      return absl::InvalidArgumentError(
          fmt::format("AWS_CONTAINER_CREDENTIALS_FULL_URI {} is not a URL", *full));
    }
    if (parsed->scheme != "https" &&
        !(parsed->scheme == "http" && AllowedPlainHttpHost(parsed->host))) {
      return absl::InvalidArgumentError(fmt::format(
          "AWS_CONTAINER_CREDENTIALS_FULL_URI {} must be https, or http to a loopback or the "
          "ECS/EKS link-local address",
          *full));
    }
    url = *full;
  } else {
    return absl::NotFoundError("AWS_CONTAINER_CREDENTIALS_*_URI is not set");
  }

  HttpRequest req;
  req.method = "GET";
  req.url = url;
  req.headers.push_back({"Accept", "application/json"});
  std::optional<SecretBytes> auth;
  if (std::optional<std::string> file =
          NonEmptyEnv(env_, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
    KMSP_ASSIGN_OR_RETURN(auth, ReadTokenFile(*file, "container authorization"));
  } else if (std::optional<std::string> tok =
                 NonEmptyEnv(env_, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
    auth = SecretBytes::TakeFrom(*tok);
  }
  if (auth) {
    if (auth->Reveal().find_first_of("\r\n") != std::string_view::npos) {
      return absl::InvalidArgumentError("the container authorization token has a CR or LF");
    }
    req.headers.push_back({"Authorization", std::string(auth->Reveal())});
  }
  req.deadline = CappedDeadline(ctx, absl::Seconds(5));
  KMSP_ASSIGN_OR_RETURN(HttpResponse resp, http_->Send(req));
  if (resp.status != 200)
    return HttpFailure(resp.status, fmt::format("container endpoint {}", url));
  return ParseJsonCredentials(resp.body, fmt::format("container endpoint {}", url), Name());
}

// ---------------------------------------------------------------------------------------------
// IMDSv2

absl::StatusOr<SecretBytes> ImdsCredentialsProvider::Token(const std::string& base,
                                                           const CallContext& ctx) {
  {
    absl::MutexLock lock(&mu_);
    if (!token_.empty() && clock_->Now() < token_expiry_) return token_.Clone();
  }
  HttpRequest req;
  req.method = "PUT";
  req.url = base + "/latest/api/token";
  req.headers.push_back({"X-aws-ec2-metadata-token-ttl-seconds", std::to_string(kTokenTtlSeconds)});
  req.deadline = CappedDeadline(ctx, absl::Seconds(2));
  const absl::Time now = clock_->Now();
  KMSP_ASSIGN_OR_RETURN(HttpResponse resp, http_->Send(req));
  if (resp.status != 200 || resp.body.empty()) {
    return absl::UnavailableError(
        fmt::format("IMDSv2 token request to {} answered HTTP {}", base, resp.status));
  }
  absl::MutexLock lock(&mu_);
  token_ = resp.body.Clone();
  token_expiry_ = now + absl::Seconds(kTokenTtlSeconds) - absl::Minutes(1);
  return std::move(resp.body);
}

absl::StatusOr<AwsCredentials> ImdsCredentialsProvider::Fetch(const CallContext& ctx) {
  // botocore compares both variables case-insensitively.
  if (absl::AsciiStrToLower(env_("AWS_EC2_METADATA_DISABLED").value_or("")) == "true") {
    return absl::NotFoundError("AWS_EC2_METADATA_DISABLED=true");
  }
  std::string base = "http://169.254.169.254";
  if (absl::AsciiStrToLower(env_("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE").value_or("")) ==
      "ipv6") {
    base = "http://[fd00:ec2::254]";
  }
  if (std::optional<std::string> e = NonEmptyEnv(env_, "AWS_EC2_METADATA_SERVICE_ENDPOINT"))
    base = *e;
  while (!base.empty() && base.back() == '/') base.pop_back();

  KMSP_ASSIGN_OR_RETURN(SecretBytes token, Token(base, ctx));
  auto get = [&](const std::string& path) -> absl::StatusOr<HttpResponse> {
    for (int attempt = 1;; ++attempt) {
      HttpRequest req;
      req.method = "GET";
      req.url = base + path;
      req.headers.push_back({"X-aws-ec2-metadata-token", std::string(token.Reveal())});
      req.deadline = CappedDeadline(ctx, absl::Seconds(2));
      KMSP_ASSIGN_OR_RETURN(HttpResponse resp, http_->Send(req));
      if (resp.status == 401) {
        {
          absl::MutexLock lock(&mu_);
          token_.Clear();  // Expired or revoked token (IMDS restarted): it is useless now.
        }
        if (attempt == 1) {
          // A rejected session token is not a refusal of the role: get a new one, ask again once.
          KMSP_ASSIGN_OR_RETURN(token, Token(base, ctx));
          continue;
        }
      }
      if (resp.status != 200) {
        return HttpFailure(resp.status, fmt::format("IMDS {}", Printable(path)));  // Has the role.
      }
      return resp;
    }
  };
  const std::string prefix = "/latest/meta-data/iam/security-credentials/";
  KMSP_ASSIGN_OR_RETURN(HttpResponse role_resp, get(prefix));
  std::string role(role_resp.body.Reveal());
  role = role.substr(0, role.find_first_of("\r\n"));
  if (role.empty()) return absl::NotFoundError("IMDS: no IAM role is attached to the instance");
  KMSP_ASSIGN_OR_RETURN(HttpResponse creds_resp, get(prefix + role));
  KMSP_ASSIGN_OR_RETURN(AwsCredentials c,
                        ParseJsonCredentials(creds_resp.body, "IMDS role credentials", Name()));
  const absl::Time now = clock_->Now();
  if (c.expiration != absl::InfiniteFuture() && c.expiration < now + absl::Minutes(15)) {
    spdlog::warn(
        "IMDS returned credentials expiring at {}; using them for 20 more minutes (static "
        "stability)",
        absl::FormatTime(c.expiration));
    c.expiration = now + absl::Minutes(20);
  }
  c.source = fmt::format("{}:{}", Name(), Printable(role));  // The role name comes from IMDS.
  return c;
}

}  // namespace kmsplugin::aws
