#include "kms/vault/vault_kms.h"

#include <utility>

#include "base/printable.h"
#include "base/status.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "kms/secret_json.h"
#include "spdlog/spdlog.h"

namespace kmsplugin::vault {
namespace {

constexpr size_t kPrintableKekIdLength = 256;

std::string StripSlashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  while (!s.empty() && s.front() == '/') s.erase(0, 1);
  return s;
}

std::string StringField(const nlohmann::json& doc, const char* a, const char* b) {
  auto it = doc.find(a);
  if (it == doc.end() || !it->is_object()) return "";
  auto jt = it->find(b);
  if (jt == it->end() || !jt->is_string()) return "";
  return jt->get<std::string>();
}

// data.<name> of a key read, as a boolean (absent: `absent`).
bool BoolField(const nlohmann::json& doc, const char* name, bool absent) {
  auto it = doc.find("data");
  if (it == doc.end() || !it->is_object()) return absent;
  auto jt = it->find(name);
  if (jt == it->end() || !jt->is_boolean()) return absent;
  return jt->get<bool>();
}

}  // namespace

std::string VaultKms::MakeKekId(std::string_view namespace_, std::string_view mount,
                                std::string_view key, int64_t version) {
  return fmt::format("vault:{}/{}/{}/v{}", namespace_.empty() ? "root" : namespace_, mount, key,
                     version);
}

std::string VaultKms::AssociatedData(std::string_view mount, std::string_view key) {
  return fmt::format("{}{}/{}", kAssociatedDataPrefix, mount, key);
}

absl::StatusOr<std::unique_ptr<VaultKms>> VaultKms::Create(VaultKmsOptions options,
                                                           const Clock* clock) {
  if (options.addr.empty()) return absl::InvalidArgumentError("--vault-addr is required");
  if (options.key.empty() || options.key.find('/') != std::string::npos ||
      !ValidVaultPath(options.key)) {
    return absl::InvalidArgumentError(fmt::format(
        "--vault-key '{}' is not a transit key name ([A-Za-z0-9_.-])", Printable(options.key)));
  }
  options.transit_mount = StripSlashes(std::move(options.transit_mount));
  if (!ValidVaultPath(options.transit_mount)) {
    return absl::InvalidArgumentError(fmt::format("--vault-transit-mount '{}' is not a Vault path",
                                                  Printable(options.transit_mount)));
  }
  options.namespace_ = StripSlashes(std::move(options.namespace_));
  KMSP_RETURN_IF_ERROR(ValidateAuthOptions(options.auth));
  if (MakeKekId(options.namespace_, options.transit_mount, options.key, INT64_MAX).size() >
      kMaxKekIdSize) {
    return absl::InvalidArgumentError("the Vault namespace, mount and key name are too long");
  }
  std::unique_ptr<HttpClient> http = std::move(options.http);
  if (http == nullptr) {
    HttpClientOptions http_options;
    http_options.ca_file = options.ca_file;
    http_options.client_cert_file = options.client_cert_file;
    http_options.client_key_file = options.client_key_file;
    http_options.connect_timeout = options.connect_timeout;
    http_options.default_timeout = options.default_call_timeout;
    http_options.max_idle_handles = std::max<size_t>(options.max_concurrent_calls, 2);
    KMSP_ASSIGN_OR_RETURN(http, CurlHttpClient::Create(std::move(http_options)));
  }
  VaultApiOptions api_options;
  api_options.addr = options.addr;
  api_options.namespace_ = options.namespace_;
  api_options.allow_insecure_http = options.allow_insecure_http;
  api_options.retry = options.retry;
  api_options.max_concurrent_calls = options.max_concurrent_calls;
  api_options.default_call_timeout = options.default_call_timeout;
  api_options.observer = options.observer;
  KMSP_ASSIGN_OR_RETURN(std::unique_ptr<VaultApi> api,
                        VaultApi::Create(std::move(api_options), http.get()));
  auto kms = std::unique_ptr<VaultKms>(new VaultKms(std::move(options), std::move(http)));
  kms->api_ = std::move(api);
  kms->auth_ = std::make_unique<VaultAuth>(kms->options_.auth, kms->api_.get(), clock);
  return kms;
}

VaultKms::VaultKms(VaultKmsOptions options, std::unique_ptr<HttpClient> http)
    : options_(std::move(options)),
      kek_prefix_(fmt::format("vault:{}/{}/{}/v",
                              options_.namespace_.empty() ? "root" : options_.namespace_,
                              options_.transit_mount, options_.key)),
      aad_b64_(Base64Encode(AssociatedData(options_.transit_mount, options_.key))),
      audit_key_(fmt::format("{}{}{}/keys/{}", options_.namespace_,
                             options_.namespace_.empty() ? "" : "/", options_.transit_mount,
                             options_.key)),
      http_(std::move(http)) {}

VaultKms::~VaultKms() = default;

absl::StatusOr<SecretBytes> VaultKms::Authed(
    std::string_view operation, std::string_view method, const std::string& path,
    const SecretBytes& body, bool idempotent, const CallContext& ctx, std::string_view kek_id,
    std::function<std::string(std::string_view)> key_id_from_answer) {
  for (int round = 0;; ++round) {
    KMSP_ASSIGN_OR_RETURN(VaultAuth::Token token, auth_->Get(ctx));
    absl::StatusOr<SecretBytes> answer =
        api_->Call(operation, method, path, body, &token.value, idempotent, ctx,
                   AttemptSubject{audit_key_, kek_id, "", key_id_from_answer});
    if (answer.ok() || answer.status().code() != absl::StatusCode::kPermissionDenied || round > 0) {
      return answer;
    }
    // A revoked or expired token, or a policy change: replace the token once (log in again or
    // re-read the token file) and repeat the call.
    spdlog::warn("Vault {} was refused; replacing the token ({}) and trying once more: {}",
                 operation, auth_->MethodName(), answer.status().ToString());
    auth_->Invalidate(token.generation);
  }
}

absl::StatusOr<WrappedKey> VaultKms::Wrap(const SecretBytes& key, const CallContext& ctx) {
  std::string b64 = Base64Encode(key.Reveal());
  const SecretBytes body = JsonObjectOfStrings({{"plaintext", b64}, {"associated_data", aad_b64_}});
  WipeString(b64);
  const std::string path = fmt::format("{}/encrypt/{}", options_.transit_mount, options_.key);
  // The answer's ciphertext (public: it is the wrapped key) names the version Vault used.
  auto version_of_answer = [this](std::string_view text) -> std::string {
    const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    const std::optional<int64_t> v = CiphertextVersion(StringField(doc, "data", "ciphertext"));
    return v.has_value() ? kek_prefix_ + std::to_string(*v) : "";
  };
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer, Authed("transit encrypt", "POST", path, body, true, ctx,
                                                   {}, version_of_answer));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseAnswer(answer, "Vault transit encrypt"));
  std::string ciphertext = StringField(doc, "data", "ciphertext");
  const std::optional<int64_t> reported = IntField(doc, "data", "key_version");
  const std::optional<int64_t> version = CiphertextVersion(ciphertext);
  if (!version.has_value()) {
    return absl::UnavailableError(
        "Vault transit encrypt: the answer has no vault:v<N>: ciphertext");
  }
  if (reported.has_value() && *reported != *version) {
    return absl::UnavailableError(
        fmt::format("Vault transit encrypt: key_version {} disagrees with the ciphertext's v{}",
                    *reported, *version));
  }
  if (ciphertext.size() > 8192) {
    return absl::UnavailableError(fmt::format(
        "Vault transit encrypt: the ciphertext is {} bytes (at most 8192)", ciphertext.size()));
  }
  return WrappedKey{kek_prefix_ + std::to_string(*version), std::move(ciphertext)};
}

absl::StatusOr<SecretBytes> VaultKms::Unwrap(const WrappedKey& wrapped, const CallContext& ctx) {
  auto refuse = [&wrapped](std::string_view why) {
    return absl::FailedPreconditionError(
        fmt::format("kek_id '{}' is not one of this Vault backend ({})",
                    Printable(wrapped.kek_id, kPrintableKekIdLength), why));
  };
  const std::string_view kek_id = wrapped.kek_id;
  if (kek_id.substr(0, kek_prefix_.size()) != kek_prefix_) {
    return refuse(fmt::format("not {}<N>", kek_prefix_));
  }
  const std::string_view digits = kek_id.substr(kek_prefix_.size());
  const std::optional<int64_t> blob_version = CiphertextVersion(wrapped.blob);
  if (!blob_version.has_value()) {
    return absl::InvalidArgumentError("the wrapped key is not a vault:v<N>: transit ciphertext");
  }
  if (digits != std::to_string(*blob_version)) {
    return refuse(fmt::format("the wrapped key is of key version {}", *blob_version));
  }
  const SecretBytes body =
      JsonObjectOfStrings({{"ciphertext", wrapped.blob}, {"associated_data", aad_b64_}});
  const std::string path = fmt::format("{}/decrypt/{}", options_.transit_mount, options_.key);
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer,
                        Authed("transit decrypt", "POST", path, body, true, ctx, kek_id));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseAnswer(answer, "Vault transit decrypt"));
  absl::StatusOr<SecretBytes> plaintext =
      absl::UnavailableError("Vault transit decrypt: the answer has no data.plaintext");
  auto data = doc.find("data");
  if (data != doc.end() && data->is_object()) {
    auto p = data->find("plaintext");
    if (p != data->end() && p->is_string()) {
      plaintext = Base64DecodeSecret(p->get_ref<const std::string&>());
      if (!plaintext.ok()) {
        plaintext = absl::UnavailableError("Vault transit decrypt: plaintext is not base64");
      }
    }
  }
  WipeJson(doc);
  return plaintext;
}

absl::StatusOr<KeyStatus> VaultKms::Probe(const CallContext& ctx) {
  const std::string path = fmt::format("{}/keys/{}", options_.transit_mount, options_.key);
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer,
                        Authed("transit read key", "GET", path, SecretBytes(), true, ctx));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseAnswer(answer, "Vault transit read key"));
  const std::string name = fmt::format("{}/{}", options_.transit_mount, options_.key);
  const std::optional<int64_t> latest = IntField(doc, "data", "latest_version");
  const int64_t min_decrypt = IntField(doc, "data", "min_decryption_version").value_or(1);
  const std::string type = StringField(doc, "data", "type");
  if (!latest.has_value() || *latest < 1) {
    return absl::UnavailableError(
        fmt::format("Vault transit key {}: the answer has no latest_version", name));
  }
  if (min_decrypt > *latest) {
    return absl::FailedPreconditionError(fmt::format(
        "Vault transit key {} is disabled: min_decryption_version {} is above latest_version {}",
        name, min_decrypt, *latest));
  }
  if (!BoolField(doc, "supports_encryption", true) ||
      !BoolField(doc, "supports_decryption", true) ||
      (!type.empty() && type != "aes256-gcm96" && type != "aes128-gcm96" &&
       type != "chacha20-poly1305" && type != "xchacha20-poly1305")) {
    return absl::FailedPreconditionError(
        fmt::format("Vault transit key {} is of type {}, not an AEAD encryption key (aes256-gcm96)",
                    name, Printable(type, 32)));
  }
  KeyStatus status;
  status.kek_id = kek_prefix_ + std::to_string(*latest);
  status.description = fmt::format("Vault transit key {} version {} (min_decryption_version {})",
                                   name, *latest, min_decrypt);
  return status;
}

absl::Status VaultKms::RotateKek(const CallContext& ctx) {
  const std::string path = fmt::format("{}/keys/{}/rotate", options_.transit_mount, options_.key);
  KMSP_RETURN_IF_ERROR(
      Authed("transit rotate", "POST", path, SecretBytes::CopyFrom("{}"), false, ctx).status());
  spdlog::info("Vault transit key {}/{} rotated", options_.transit_mount, options_.key);
  return absl::OkStatus();
}

}  // namespace kmsplugin::vault
