// The Azure Key Vault / Managed HSM backend; see azure_kms.h.
#include "kms/azure/azure_kms.h"

#include <cctype>
#include <cstdlib>
#include <utility>
#include <vector>

#include "base/printable.h"
#include "base/status.h"
#include "fmt/format.h"
#include "kms/secret_json.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace kmsplugin::azure {
namespace {

constexpr size_t kMaxBlobSize = 8192;
constexpr size_t kPrintableKekIdLength = 256;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string StringAt(const nlohmann::json& doc, const char* name) {
  if (!doc.is_object()) return "";
  auto it = doc.find(name);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

// "<alg>:<value>[:<iv>:<tag>]" -> its parts.
std::vector<std::string_view> SplitBlob(std::string_view blob) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t colon = blob.find(':', start);
    parts.push_back(blob.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) return parts;
    start = colon + 1;
  }
}

bool HasOp(const nlohmann::json& key, std::string_view op) {
  auto ops = key.find("key_ops");
  if (ops == key.end() || !ops->is_array()) return true;  // Not stated: not restricted.
  for (const auto& o : *ops) {
    if (o.is_string() && o.get_ref<const std::string&>() == op) return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> AzureKms::KekIdOfKid(std::string_view kid) {
  std::optional<KeyId> id = ParseKeyId(kid);
  if (!id.has_value()) return std::nullopt;
  return fmt::format("{}{}/keys/{}/{}", kKekIdPrefix, id->vault.base, id->name, id->version);
}

RestError AzureKms::Classify(std::string_view operation, const HttpResponse& response) {
  const nlohmann::json doc =
      nlohmann::json::parse(response.body.Reveal(), nullptr, /*allow_exceptions=*/false);
  const nlohmann::json error =
      doc.is_object() && doc.contains("error") ? doc["error"] : nlohmann::json();
  const std::string code = StringAt(error, "code");
  const std::string inner = error.is_object() && error.contains("innererror")
                                ? StringAt(error["innererror"], "code")
                                : "";
  const std::string message = StringAt(error, "message");
  const int s = response.status;
  const std::string text =
      fmt::format("Azure Key Vault {}: HTTP {}{}{}{}{}", operation, s, code.empty() ? "" : " ",
                  Printable(code, 64), inner.empty() ? "" : "/" + Printable(inner, 64),
                  message.empty() ? "" : ": " + Printable(message, 300));
  RestError e;
  if (s == 401) {
    e.status = absl::UnauthenticatedError(text);
    e.refresh_token = true;
  } else if (s == 403) {
    const bool disabled =
        inner == "KeyDisabled" || Lower(message).find("disabled") != std::string::npos;
    e.status = disabled ? absl::FailedPreconditionError(text) : absl::PermissionDeniedError(text);
  } else if (s == 404) {
    e.status = absl::NotFoundError(text);
  } else if (s == 408 || s == 429 || s >= 500) {
    e.status = absl::UnavailableError(text);
    e.retryable = s != 501 && s != 505;
    e.throttled = s == 429;
    e.not_acted = s == 429 || s == 503;
  } else if (s == 409) {
    e.status = absl::UnavailableError(text);  // A conflicting change in flight (rotate).
  } else {
    e.status = absl::InvalidArgumentError(text);
  }
  return e;
}

absl::StatusOr<std::unique_ptr<AzureKms>> AzureKms::Create(AzureKmsOptions options,
                                                           const Clock* clock) {
  KMSP_ASSIGN_OR_RETURN(VaultUrl vault, ParseVaultUrl(options.vault_url));
  if (!ValidKeyName(options.key_name)) {
    return absl::InvalidArgumentError(
        fmt::format("--azure-key-name '{}' is not a Key Vault key name ([0-9A-Za-z-], 1-127)",
                    Printable(options.key_name, 200)));
  }
  if (!options.key_version.empty() && !ValidKeyVersion(options.key_version)) {
    return absl::InvalidArgumentError(
        fmt::format("--azure-key-version '{}' is not a Key Vault key version ([0-9A-Za-z])",
                    Printable(options.key_version, 100)));
  }
  if (options.oct_algorithm != "A256KW" && options.oct_algorithm != "A256GCM") {
    return absl::InvalidArgumentError("the oct-HSM algorithm must be A256KW or A256GCM");
  }
  KMSP_RETURN_IF_ERROR(ValidateCredentialOptions(options.credentials));
  if (fmt::format("{}{}/keys/{}/{}", kKekIdPrefix, vault.base, options.key_name,
                  std::string(64, 'f'))
          .size() > kMaxKekIdSize) {
    return absl::InvalidArgumentError("the vault URL and key name are too long for a key_id");
  }
  std::unique_ptr<HttpClient> http = std::move(options.http);
  if (http == nullptr) {
    HttpClientOptions http_options;
    http_options.ca_file = options.ca_file;
    if (!options.ca_file.empty()) http_options.system_ca_dir = kSystemCaDir;
    http_options.connect_timeout = options.connect_timeout;
    http_options.default_timeout = options.default_call_timeout;
    http_options.max_idle_handles = std::max<size_t>(options.max_concurrent_calls, 2);
    KMSP_ASSIGN_OR_RETURN(http, CurlHttpClient::Create(std::move(http_options)));
  }
  std::unique_ptr<TokenSource> tokens = std::move(options.tokens);
  auto kms = std::unique_ptr<AzureKms>(new AzureKms(std::move(options), std::move(vault)));
  kms->http_ = std::move(http);
  if (tokens == nullptr) {
    TokenEndpointOptions endpoint;
    endpoint.backend = "azure";
    endpoint.retry = kms->options_.retry;
    endpoint.default_call_timeout = kms->options_.default_call_timeout;
    endpoint.observer = kms->options_.observer;
    tokens = MakeAzureTokenSource(kms->options_.credentials, &kms->scope_, kms->http_.get(), clock,
                                  endpoint);
  }
  kms->tokens_ = std::move(tokens);
  BearerRestOptions rest;
  rest.backend = "azure";
  rest.service = "Azure Key Vault";
  rest.request_id_headers = {"x-ms-request-id"};
  rest.classify = &AzureKms::Classify;
  AzureKms* self = kms.get();
  rest.on_unauthorized = [self](const HttpResponse& r) { self->OnUnauthorized(r); };
  rest.retry = kms->options_.retry;
  rest.max_concurrent_calls = kms->options_.max_concurrent_calls;
  rest.default_call_timeout = kms->options_.default_call_timeout;
  rest.observer = kms->options_.observer;
  kms->api_ =
      std::make_unique<BearerRestApi>(std::move(rest), kms->http_.get(), kms->tokens_.get());
  return kms;
}

AzureKms::AzureKms(AzureKmsOptions options, VaultUrl vault)
    : options_(std::move(options)),
      vault_(std::move(vault)),
      key_path_(fmt::format("{}/keys/{}", vault_.base, options_.key_name)),
      aad_b64_(Base64UrlEncode(fmt::format("{}{}/keys/{}", kAssociatedDataPrefix, vault_.base,
                                           Lower(options_.key_name)))),
      scope_(DefaultScopeFor(vault_.host)) {}

AzureKms::~AzureKms() = default;

std::string AzureKms::Url(std::string_view path) const {
  return fmt::format("{}/{}?api-version={}", key_path_, path, options_.api_version);
}

void AzureKms::OnUnauthorized(const HttpResponse& response) {
  std::optional<std::string_view> header = response.Header("www-authenticate");
  if (!header.has_value()) return;
  std::optional<std::string> scope = ChallengeScope(*header);
  if (!scope.has_value()) return;
  if (!ChallengeScopeAllowed(*scope, vault_.host)) {
    spdlog::warn(
        "Azure Key Vault {} asked for a token for {}, which is not a Key Vault audience "
        "for this host; keeping {}",
        vault_.base, Printable(*scope, 200), scope_.Get());
    return;
  }
  if (scope_.Set(*scope)) {
    spdlog::info("Azure Key Vault {}: tokens are now asked for {} (401 challenge)", vault_.base,
                 Printable(*scope, 200));
  }
}

absl::StatusOr<AzureKms::CurrentKey> AzureKms::KeyOfBundle(const SecretBytes& answer,
                                                           std::string_view what) const {
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc,
                        ParseAnswer(answer, fmt::format("Azure Key Vault {}", what)));
  const nlohmann::json key = doc.contains("key") ? doc["key"] : nlohmann::json::object();
  const nlohmann::json attrs =
      doc.contains("attributes") ? doc["attributes"] : nlohmann::json::object();
  const std::string kid = StringAt(key, "kid");
  std::optional<KeyId> id = ParseKeyId(kid);
  if (!id.has_value() || id->vault.base != vault_.base ||
      Lower(id->name) != Lower(options_.key_name)) {
    return absl::UnavailableError(
        fmt::format("Azure Key Vault {}: the answer's kid '{}' is not a version of {}", what,
                    Printable(kid, kPrintableKekIdLength), key_path_));
  }
  CurrentKey current;
  current.version = id->version;
  current.kek_id = *KekIdOfKid(kid);
  current.kty = StringAt(key, "kty");
  const std::string name = fmt::format("{} version {}", key_path_, current.version);
  if (attrs.is_object() && attrs.contains("enabled") && attrs["enabled"].is_boolean() &&
      !attrs["enabled"].get<bool>()) {
    return absl::FailedPreconditionError(fmt::format("Azure Key Vault key {} is disabled", name));
  }
  if (attrs.is_object() && attrs.contains("exp") && attrs["exp"].is_number() &&
      attrs["exp"].get<int64_t>() <= absl::ToUnixSeconds(absl::Now())) {
    return absl::FailedPreconditionError(fmt::format("Azure Key Vault key {} has expired", name));
  }
  std::string_view wrap_op = "wrapKey";
  std::string_view unwrap_op = "unwrapKey";
  if (current.kty == "RSA" || current.kty == "RSA-HSM") {
    current.alg = "RSA-OAEP-256";
  } else if (current.kty == "oct-HSM" || current.kty == "oct") {
    current.alg = options_.oct_algorithm;
    if (current.alg == "A256GCM") {
      wrap_op = "encrypt";
      unwrap_op = "decrypt";
    }
  } else {
    return absl::FailedPreconditionError(
        fmt::format("Azure Key Vault key {} is of type '{}'; RSA, RSA-HSM or oct-HSM is needed",
                    name, Printable(current.kty, 32)));
  }
  if (!HasOp(key, wrap_op) || !HasOp(key, unwrap_op)) {
    return absl::FailedPreconditionError(fmt::format(
        "Azure Key Vault key {} does not allow {} and {} (key_ops)", name, wrap_op, unwrap_op));
  }
  return current;
}

absl::StatusOr<AzureKms::CurrentKey> AzureKms::ReadKey(const CallContext& ctx) {
  RestCall call;
  call.operation = "get key";
  call.method = "GET";
  call.url = options_.key_version.empty()
                 ? fmt::format("{}?api-version={}", key_path_, options_.api_version)
                 : Url(options_.key_version);
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer, api_->Call(call, ctx, AttemptSubject{key_path_}));
  absl::StatusOr<CurrentKey> key = KeyOfBundle(answer, "get key");
  absl::MutexLock lock(&mu_);
  if (key.ok()) {
    current_ = *key;
  } else {
    current_.reset();  // A disabled or unusable key is read again before the next Wrap.
  }
  return key;
}

absl::StatusOr<AzureKms::CurrentKey> AzureKms::Current(const CallContext& ctx) {
  {
    absl::MutexLock lock(&mu_);
    if (current_.has_value()) return *current_;
  }
  return ReadKey(ctx);
}

absl::StatusOr<WrappedKey> AzureKms::Wrap(const SecretBytes& key, const CallContext& ctx) {
  KMSP_ASSIGN_OR_RETURN(CurrentKey current, Current(ctx));
  const bool gcm = current.alg == "A256GCM";
  RestCall call;
  call.operation = gcm ? "encrypt" : "wrapkey";
  call.url = Url(current.version + (gcm ? "/encrypt" : "/wrapkey"));
  call.body = KeyOperationBody(current.alg, key, {}, {}, gcm ? aad_b64_ : std::string_view());
  auto kek_of_answer = [](std::string_view text) -> std::string {
    const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    return KekIdOfKid(StringAt(doc, "kid")).value_or("");
  };
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer,
                        api_->Call(call, ctx, AttemptSubject{key_path_, {}, {}, kek_of_answer}));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc,
                        ParseAnswer(answer, fmt::format("Azure Key Vault {}", call.operation)));
  const std::string kid = StringAt(doc, "kid");
  std::optional<std::string> kek_id = KekIdOfKid(kid);
  if (kid.empty()) kek_id = current.kek_id;
  if (kek_id != current.kek_id) {
    return absl::UnavailableError(
        fmt::format("Azure Key Vault {}: the answer's kid '{}' is not the version asked for ({})",
                    call.operation, Printable(kid, kPrintableKekIdLength), current.kek_id));
  }
  std::string blob = current.alg + ":" + StringAt(doc, "value");
  if (gcm) blob += ":" + StringAt(doc, "iv") + ":" + StringAt(doc, "tag");
  const std::vector<std::string_view> parts = SplitBlob(blob);
  for (std::string_view p : parts) {
    if (p.empty() || !Base64UrlDecodeSecret(p).ok()) {
      return absl::UnavailableError(
          fmt::format("Azure Key Vault {}: the answer lacks a base64url value{}", call.operation,
                      gcm ? ", iv or tag" : ""));
    }
  }
  if (blob.size() > kMaxBlobSize) {
    return absl::UnavailableError(
        fmt::format("Azure Key Vault {}: the wrapped key is {} bytes "
                    "(at most {})",
                    call.operation, blob.size(), kMaxBlobSize));
  }
  return WrappedKey{*kek_id, std::move(blob)};
}

absl::StatusOr<SecretBytes> AzureKms::Unwrap(const WrappedKey& wrapped, const CallContext& ctx) {
  std::optional<KeyId> id;
  if (std::string_view(wrapped.kek_id).substr(0, kKekIdPrefix.size()) == kKekIdPrefix) {
    id = ParseKeyId(std::string_view(wrapped.kek_id).substr(kKekIdPrefix.size()));
  }
  if (!id.has_value() || id->vault.base != vault_.base ||
      Lower(id->name) != Lower(options_.key_name)) {
    return absl::FailedPreconditionError(
        fmt::format("kek_id '{}' is not a version of this Azure backend's key ({}/<version>)",
                    Printable(wrapped.kek_id, kPrintableKekIdLength), key_path_));
  }
  const std::vector<std::string_view> parts = SplitBlob(wrapped.blob);
  const std::string_view alg = parts[0];
  const bool gcm = alg == "A256GCM";
  if (!((alg == "RSA-OAEP-256" || alg == "A256KW") && parts.size() == 2) &&
      !(gcm && parts.size() == 4)) {
    return absl::InvalidArgumentError(
        "the wrapped key is not an Azure Key Vault blob (<alg>:<value>[:<iv>:<tag>])");
  }
  absl::StatusOr<SecretBytes> value = Base64UrlDecodeSecret(parts[1]);
  if (!value.ok() || value->empty()) {
    return absl::InvalidArgumentError("the wrapped key's value is not base64url");
  }
  RestCall call;
  call.operation = gcm ? "decrypt" : "unwrapkey";
  call.url = Url(id->version + (gcm ? "/decrypt" : "/unwrapkey"));
  call.body = KeyOperationBody(alg, *value, gcm ? parts[2] : std::string_view(),
                               gcm ? parts[3] : std::string_view(),
                               gcm ? std::string_view(aad_b64_) : std::string_view());
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer,
                        api_->Call(call, ctx, AttemptSubject{key_path_, wrapped.kek_id}));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc,
                        ParseAnswer(answer, fmt::format("Azure Key Vault {}", call.operation)));
  absl::StatusOr<SecretBytes> key = absl::UnavailableError(
      fmt::format("Azure Key Vault {}: the answer has no base64url value", call.operation));
  auto v = doc.find("value");
  if (v != doc.end() && v->is_string()) {
    absl::StatusOr<SecretBytes> decoded = Base64UrlDecodeSecret(v->get_ref<const std::string&>());
    if (decoded.ok()) key = std::move(decoded);
  }
  WipeJson(doc);
  return key;
}

absl::StatusOr<KeyStatus> AzureKms::Probe(const CallContext& ctx) {
  KMSP_ASSIGN_OR_RETURN(CurrentKey key, ReadKey(ctx));
  KeyStatus status;
  status.kek_id = key.kek_id;
  status.description =
      fmt::format("Azure Key Vault key {} version {} ({}, {}{})", key_path_, key.version, key.kty,
                  key.alg, options_.key_version.empty() ? "" : ", pinned");
  return status;
}

absl::Status AzureKms::RotateKek(const CallContext& ctx) {
  if (!options_.key_version.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "--azure-key-version pins {} to version {}: a rotation would not be used; rotate the key "
        "in Key Vault and restart the plugin with the new version, or drop --azure-key-version",
        key_path_, options_.key_version));
  }
  RestCall call;
  call.operation = "rotate";
  call.url = fmt::format("{}/rotate?api-version={}", key_path_, options_.api_version);
  call.body = SecretBytes::CopyFrom("{}");
  call.idempotent = false;
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer, api_->Call(call, ctx, AttemptSubject{key_path_}));
  absl::StatusOr<CurrentKey> key = KeyOfBundle(answer, "rotate");
  absl::MutexLock lock(&mu_);
  if (key.ok()) {
    current_ = *key;
    spdlog::info("Azure Key Vault key {} rotated to version {}", key_path_, key->version);
  } else {
    current_.reset();
  }
  return key.status();
}

}  // namespace kmsplugin::azure
