#include "kms/aws/aws_kms.h"

#include <cctype>
#include <fstream>
#include <set>

#include "base/printable.h"
#include "base/status.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "kms/aws/credentials_provider.h"
#include "kms/secret_json.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace kmsplugin::aws {
namespace {

constexpr std::string_view kKekIdPrefix = "aws:";
// A kek_id is printable ASCII of about 150 bytes (ARN and material id); a longer or odder one is
// client input and is cut (Printable) before it reaches a message.
constexpr size_t kPrintableKekIdLength = 256;

std::string PrintableKekId(std::string_view kek_id) {
  return Printable(kek_id, kPrintableKekIdLength);
}

// "arn:<partition>:kms:<region>:<account>:key/<key id>" split into its parts; nullopt when `arn`
// is not a KMS key ARN of that shape (trailing "/<material>" after the key id is allowed and
// dropped: `key_arn` is the ARN without it).
struct KeyArnParts {
  std::string_view partition, region, account, key_id;
  std::string key_arn;
};
// ARNs and key material ids are printable ASCII without spaces; an answer that says otherwise is
// malformed (and must not become part of a kek_id).
bool PrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::optional<KeyArnParts> SplitKeyArn(std::string_view arn) {
  std::string_view parts[5];
  size_t pos = 0;
  for (std::string_view& part : parts) {
    const size_t colon = arn.find(':', pos);
    if (colon == std::string_view::npos) return std::nullopt;
    part = arn.substr(pos, colon - pos);
    pos = colon + 1;
  }
  const std::string_view resource = arn.substr(pos);
  if (parts[0] != "arn" || parts[2] != "kms" || resource.rfind("key/", 0) != 0) {
    return std::nullopt;
  }
  const std::string_view key_part = resource.substr(0, resource.find('/', 4));
  KeyArnParts out{parts[1], parts[3], parts[4], key_part.substr(4), ""};
  if (out.partition.empty() || out.region.empty() || out.account.empty() || out.key_id.empty()) {
    return std::nullopt;
  }
  out.key_arn = std::string(arn.substr(0, pos + key_part.size()));
  return out;
}

bool ValidRegion(std::string_view region) {
  // e.g. us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-4.
  if (region.size() < 4 || region.size() > 32) return false;
  if (!std::isdigit(static_cast<unsigned char>(region.back()))) return false;
  for (char c : region) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
      return false;
    }
  }
  return region.find('-') != std::string_view::npos;
}

absl::StatusOr<nlohmann::json> ParseJson(const SecretBytes& body, std::string_view what) {
  nlohmann::json doc = nlohmann::json::parse(body.Reveal(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::UnavailableError(fmt::format("AWS KMS {}: the answer is not a JSON object", what));
  }
  return doc;
}

std::string StringField(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseEncryptionContext(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> seen;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view entry = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          fmt::format("encryption context entry '{}' is not key=value", entry));
    }
    std::string key(entry.substr(0, eq));
    if (key == kPluginContextKey) {
      return absl::InvalidArgumentError(
          fmt::format("encryption context key '{}' is reserved for the plugin", key));
    }
    if (!seen.insert(key).second) {
      return absl::InvalidArgumentError(
          fmt::format("encryption context key '{}' is given twice", key));
    }
    out.emplace_back(std::move(key), std::string(entry.substr(eq + 1)));
  }
  return out;
}

std::string DefaultKmsEndpoint(std::string_view region, bool fips) {
  const bool china = region.rfind("cn-", 0) == 0;
  return fmt::format("https://{}.{}.{}", fips ? "kms-fips" : "kms", region,
                     china ? "amazonaws.com.cn" : "amazonaws.com");
}

std::string AwsKms::MakeKekId(std::string_view key_arn, std::string_view key_material_id) {
  std::string id = fmt::format("{}{}", kKekIdPrefix, key_arn);
  if (!key_material_id.empty()) id += fmt::format("/{}", key_material_id);
  return id;
}

absl::StatusOr<std::unique_ptr<AwsKms>> AwsKms::Create(AwsKmsOptions options, const Clock* clock) {
  if (options.key_id.empty() || options.key_id.size() > 2048) {
    return absl::InvalidArgumentError("--aws-key-id is required (key ARN, key id or alias)");
  }
  if (!ValidRegion(options.region)) {
    return absl::InvalidArgumentError(
        fmt::format("--aws-region '{}' is not an AWS region name", Printable(options.region)));
  }
  std::set<std::string> keys;
  for (const auto& [k, v] : options.encryption_context) {
    if (k.empty() || k == kPluginContextKey || !keys.insert(k).second) {
      return absl::InvalidArgumentError(
          fmt::format("encryption context key '{}' is empty, reserved or repeated", k));
    }
  }
  // Everything that goes into a JSON request must be valid UTF-8 (nlohmann's dump() throws
  // otherwise); check once here so that no request can fail that way later.
  try {
    nlohmann::json probe = nlohmann::json::object();
    probe["KeyId"] = options.key_id;
    for (const auto& [k, v] : options.encryption_context) probe["EncryptionContext"][k] = v;
    (void)probe.dump();
  } catch (const nlohmann::json::exception&) {
    return absl::InvalidArgumentError("--aws-key-id or the encryption context is not valid UTF-8");
  }
  if (options.endpoint.empty()) options.endpoint = DefaultKmsEndpoint(options.region, options.fips);
  if (!options.env) options.env = ProcessEnv();

  std::unique_ptr<HttpClient> http = std::move(options.http);
  if (http == nullptr) {
    HttpClientOptions http_options;
    http_options.ca_file = options.ca_file;
    http_options.connect_timeout = options.connect_timeout;
    http_options.default_timeout = options.default_call_timeout;
    http_options.max_idle_handles = std::max<size_t>(options.max_concurrent_calls, 2);
    KMSP_ASSIGN_OR_RETURN(http, CurlHttpClient::Create(std::move(http_options)));
  }
  std::unique_ptr<CredentialsProvider> credentials = std::move(options.credentials);
  if (credentials == nullptr) {
    credentials = MakeDefaultCredentialsChain(
        options.env, http.get(), clock,
        DefaultChainOptions{options.region, options.fips, options.allow_insecure_http});
  }
  auto kms = std::unique_ptr<AwsKms>(
      new AwsKms(std::move(options), std::move(http), std::move(credentials)));
  KmsApiOptions api_options;
  api_options.endpoint = kms->options_.endpoint;
  api_options.region = kms->options_.region;
  api_options.allow_insecure_http = kms->options_.allow_insecure_http;
  api_options.retry = kms->options_.retry;
  api_options.max_concurrent_calls = kms->options_.max_concurrent_calls;
  api_options.default_call_timeout = kms->options_.default_call_timeout;
  api_options.observer = kms->options_.observer;
  KMSP_ASSIGN_OR_RETURN(kms->api_, KmsApi::Create(std::move(api_options), kms->http_.get(),
                                                  kms->credentials_.get(), clock));
  // A key ARN needs no resolving: it is the one key Unwrap accepts.
  if (std::optional<KeyArnParts> parts = SplitKeyArn(kms->options_.key_id);
      parts && parts->key_arn == kms->options_.key_id) {
    absl::MutexLock lock(&kms->mu_);
    kms->key_arn_ = kms->options_.key_id;
  }
  return kms;
}

namespace {
std::string ContextJson(const std::vector<std::pair<std::string, std::string>>& entries) {
  nlohmann::json ctx = nlohmann::json::object();
  ctx[std::string(kPluginContextKey)] = std::string(kPluginContextValue);
  for (const auto& [k, v] : entries) ctx[k] = v;
  return ctx.dump();
}

// "k=v,k2=v2", sorted by key (nlohmann's objects are).
std::string ContextText(const std::string& json) {
  const nlohmann::json doc = nlohmann::json::parse(json);
  std::string out;
  for (const auto& [k, v] : doc.items()) {
    if (!out.empty()) out += ',';
    out += k + "=" + v.get<std::string>();
  }
  return out;
}
}  // namespace

AwsKms::AwsKms(AwsKmsOptions options, std::unique_ptr<HttpClient> http,
               std::unique_ptr<CredentialsProvider> credentials)
    : options_(std::move(options)),
      context_json_(ContextJson(options_.encryption_context)),
      context_text_(ContextText(context_json_)),
      http_(std::move(http)),
      credentials_(std::move(credentials)) {}

AwsKms::~AwsKms() = default;

absl::StatusOr<std::string> AwsKms::OwnedKeyArn(std::string_view kek_id, const CallContext& ctx) {
  auto refuse = [&kek_id](std::string_view why) {
    return absl::FailedPreconditionError(fmt::format(
        "kek_id '{}' is not one of this AWS KMS backend ({})", PrintableKekId(kek_id), why));
  };
  if (kek_id.substr(0, kKekIdPrefix.size()) != kKekIdPrefix) return refuse("no aws: prefix");
  std::string_view rest = kek_id.substr(kKekIdPrefix.size());
  for (char c : rest) {
    if (c < 0x21 || c > 0x7e) return refuse("not printable ASCII");  // ARNs and material ids are.
  }
  // arn:<partition>:kms:<region>:<account>:key/<key id>[/<material>]
  std::optional<KeyArnParts> named = SplitKeyArn(rest);
  if (!named) return refuse("not a KMS key ARN");
  if (named->region != options_.region) {
    return refuse(fmt::format("region is not {}", options_.region));
  }
  // Only the configured key: the plugin must never lend its role to a key the client names
  // (another account, partition or key, or the key another alias points to). The configured key
  // (an alias, key id or ARN) is resolved to its key ARN once; the comparison is exact.
  KMSP_ASSIGN_OR_RETURN(std::string configured, ConfiguredKeyArn(ctx));
  if (named->key_arn != configured) {
    std::optional<KeyArnParts> mine = SplitKeyArn(configured);
    std::string_view what = "another key id";
    if (mine && named->partition != mine->partition) {
      what = "another partition";
    } else if (mine && named->account != mine->account) {
      what = "another account";
    }
    return refuse(fmt::format("{} than --aws-key-id {}", what, Printable(options_.key_id)));
  }
  return configured;
}

namespace {

// The "KeyMaterialId" string of a Decrypt answer, found by a plain search rather than a second
// JSON parse: the answer also holds the plaintext, which no extra parse should copy. "" when
// absent or not a plain printable id.
std::string KeyMaterialIdOf(std::string_view answer) {
  constexpr std::string_view kName = "\"KeyMaterialId\"";
  size_t at = answer.find(kName);
  if (at == std::string_view::npos) return "";
  at += kName.size();
  while (at < answer.size() && (answer[at] == ' ' || answer[at] == ':')) ++at;
  if (at >= answer.size() || answer[at] != '"') return "";
  const size_t end = answer.find('"', at + 1);
  if (end == std::string_view::npos || end - at - 1 > 256) return "";
  const std::string_view id = answer.substr(at + 1, end - at - 1);
  if (id.empty() || id.find('\\') != std::string_view::npos || !PrintableAscii(id)) return "";
  return std::string(id);
}

}  // namespace

absl::StatusOr<std::string> AwsKms::ConfiguredKeyArn(const CallContext& ctx) {
  {
    absl::MutexLock lock(&mu_);
    if (!key_arn_.empty()) return key_arn_;
  }
  absl::Status described = Describe(ctx).status();
  absl::MutexLock lock(&mu_);
  if (!key_arn_.empty()) return key_arn_;  // Resolved, even if the key is not usable now.
  return Annotate(described, fmt::format("resolving --aws-key-id {}", Printable(options_.key_id)));
}

absl::StatusOr<SecretBytes> AwsKms::Decrypt(std::string_view key_id, std::string_view blob,
                                            std::string_view kek_id, const CallContext& ctx,
                                            std::string* key_material_id) {
  nlohmann::json req = nlohmann::json::object();
  req["KeyId"] = std::string(key_id);
  req["CiphertextBlob"] = Base64Encode(blob);
  req["EncryptionContext"] = nlohmann::json::parse(context_json_);
  std::string text = req.dump();
  AttemptSubject subject = Subject(kek_id);
  if (kek_id.empty()) {
    // The Decrypt that checks a fresh wrap: its answer's KeyMaterialId names the version, so the
    // attempt report can carry the key_id.
    subject.key_id_from_answer = [arn = std::string(key_id)](std::string_view answer) {
      const std::string material = KeyMaterialIdOf(answer);
      return material.empty() ? std::string() : MakeKekId(arn, material);
    };
  }
  KMSP_ASSIGN_OR_RETURN(SecretBytes body,
                        api_->Call("Decrypt", SecretBytes::TakeFrom(text), ctx, subject));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(body, "Decrypt"));
  auto it = doc.find("Plaintext");
  if (it == doc.end() || !it->is_string()) {
    WipeJson(doc);
    return absl::UnavailableError("AWS KMS Decrypt: the answer has no Plaintext");
  }
  absl::StatusOr<SecretBytes> plaintext = Base64DecodeSecret(it->get_ref<const std::string&>());
  if (key_material_id != nullptr) *key_material_id = StringField(doc, "KeyMaterialId");
  WipeJson(doc);
  if (!plaintext.ok()) return absl::UnavailableError("AWS KMS Decrypt: Plaintext is not base64");
  return plaintext;
}

absl::StatusOr<WrappedKey> AwsKms::Wrap(const SecretBytes& key, const CallContext& ctx) {
  // The body is assembled around the base64 plaintext so that no JSON library copy holds it.
  nlohmann::json req = nlohmann::json::object();
  req["KeyId"] = options_.key_id;
  req["EncryptionContext"] = nlohmann::json::parse(context_json_);
  std::string prefix = req.dump();
  prefix.pop_back();  // The closing '}'.
  std::string b64 = Base64Encode(key.Reveal());
  std::string text;
  text.reserve(prefix.size() + b64.size() + 20);  // No reallocation leaves a stray copy.
  text.append(prefix).append(",\"Plaintext\":\"").append(b64).append("\"}");
  WipeString(b64);
  KMSP_ASSIGN_OR_RETURN(SecretBytes body,
                        api_->Call("Encrypt", SecretBytes::TakeFrom(text), ctx, Subject()));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(body, "Encrypt"));
  const std::string key_arn = StringField(doc, "KeyId");
  absl::StatusOr<std::string> blob = Base64Decode(StringField(doc, "CiphertextBlob"));
  if (key_arn.empty() || !blob.ok() || blob->empty()) {
    return absl::UnavailableError("AWS KMS Encrypt: the answer has no KeyId or CiphertextBlob");
  }
  if (std::optional<KeyArnParts> parts = SplitKeyArn(key_arn);
      !parts || parts->key_arn != key_arn || !PrintableAscii(key_arn)) {
    return absl::UnavailableError(
        fmt::format("AWS KMS Encrypt: KeyId {} is not a KMS key ARN", Printable(key_arn)));
  }

  // Check that the blob opens (kms:Decrypt is allowed, the context matches) before the plugin
  // relies on it, and learn which key material wrapped it (Encrypt does not say).
  std::string material;
  absl::StatusOr<SecretBytes> roundtrip = Decrypt(key_arn, *blob, "", ctx, &material);
  if (!roundtrip.ok()) {
    return Annotate(roundtrip.status(), "AWS KMS Decrypt of a freshly wrapped key");
  }
  if (!roundtrip->ConstantTimeEquals(key)) {
    return absl::InternalError("AWS KMS Decrypt of a freshly wrapped key gave other bytes");
  }
  if (!PrintableAscii(material)) {
    return absl::UnavailableError(
        fmt::format("AWS KMS Decrypt: KeyMaterialId {} is malformed", Printable(material)));
  }
  if (material.empty()) {
    // No KeyMaterialId from Decrypt: use what DescribeKey says is current.
    std::string known_arn;
    {
      absl::MutexLock lock(&mu_);
      known_arn = key_arn_;
      material = current_material_;
    }
    if (known_arn != key_arn) {
      KMSP_RETURN_IF_ERROR(Describe(ctx).status());
      absl::MutexLock lock(&mu_);
      material = key_arn_ == key_arn ? current_material_ : "";
    }
  } else {
    absl::MutexLock lock(&mu_);
    if (key_arn_ == key_arn && current_material_ != material) {
      // Encrypt always uses the current material: a rotation happened since the last probe.
      current_material_ = material;
    }
  }
  WrappedKey wrapped;
  wrapped.kek_id = MakeKekId(key_arn, material);
  if (wrapped.kek_id.size() > kMaxKekIdSize) {
    return absl::InternalError(
        fmt::format("kek_id for {} is longer than {} bytes", Printable(key_arn), kMaxKekIdSize));
  }
  wrapped.blob = std::move(*blob);
  return wrapped;
}

absl::StatusOr<SecretBytes> AwsKms::Unwrap(const WrappedKey& wrapped, const CallContext& ctx) {
  if (wrapped.blob.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("AWS KMS Decrypt for kek_id {}: empty blob", PrintableKekId(wrapped.kek_id)));
  }
  KMSP_ASSIGN_OR_RETURN(std::string key_arn, OwnedKeyArn(wrapped.kek_id, ctx));
  std::string material;
  absl::StatusOr<SecretBytes> key = Decrypt(key_arn, wrapped.blob, wrapped.kek_id, ctx, &material);
  if (!key.ok()) {
    return Annotate(key.status(), fmt::format("kek_id {}", PrintableKekId(wrapped.kek_id)));
  }
  if (!material.empty() && wrapped.kek_id != MakeKekId(key_arn, material)) {
    spdlog::warn("AWS KMS Decrypt for kek_id {} reported key material {}",
                 PrintableKekId(wrapped.kek_id), Printable(material));
  }
  return key;
}

absl::StatusOr<KeyStatus> AwsKms::Describe(const CallContext& ctx) {
  nlohmann::json req = nlohmann::json::object();
  req["KeyId"] = options_.key_id;
  std::string text = req.dump();
  KMSP_ASSIGN_OR_RETURN(SecretBytes body,
                        api_->Call("DescribeKey", SecretBytes::TakeFrom(text), ctx, Subject()));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJson(body, "DescribeKey"));
  auto meta_it = doc.find("KeyMetadata");
  if (meta_it == doc.end() || !meta_it->is_object()) {
    return absl::UnavailableError("AWS KMS DescribeKey: the answer has no KeyMetadata");
  }
  const nlohmann::json& meta = *meta_it;
  const std::string arn = StringField(meta, "Arn");
  const std::string state = StringField(meta, "KeyState");
  const std::string usage = StringField(meta, "KeyUsage");
  std::string spec = StringField(meta, "KeySpec");
  if (spec.empty()) spec = StringField(meta, "CustomerMasterKeySpec");
  const std::string material = StringField(meta, "CurrentKeyMaterialId");
  if (arn.empty()) return absl::UnavailableError("AWS KMS DescribeKey: the answer has no Arn");
  std::optional<KeyArnParts> parts = SplitKeyArn(arn);
  if (!parts || parts->key_arn != arn || !PrintableAscii(arn) || !PrintableAscii(material)) {
    return absl::UnavailableError(
        fmt::format("AWS KMS DescribeKey: Arn {} is not a KMS key ARN", Printable(arn)));
  }
  {
    // The configured key is resolved whatever its state: Unwrap accepts only this ARN.
    absl::MutexLock lock(&mu_);
    key_arn_ = arn;
  }
  if (state != "Enabled") {
    const std::string msg = fmt::format("AWS KMS key {} is {}, not Enabled", arn,
                                        state.empty() ? "?" : Printable(state, 64));
    // Only a state the key owner chose refuses the key: Disabled, PendingDeletion (and its
    // multi-Region replica form), PendingImport (no key material). Unavailable (a disconnected
    // custom key store), Updating, Creating and any state this code does not know are transient:
    // an outage, through which the plugin coasts on its cached keys.
    if (state == "Disabled" || state == "PendingDeletion" || state == "PendingImport" ||
        state == "PendingReplicaDeletion") {
      return absl::FailedPreconditionError(msg);
    }
    return absl::UnavailableError(msg + " (a transient key state, not a revocation)");
  }
  if (!usage.empty() && usage != "ENCRYPT_DECRYPT") {
    return absl::FailedPreconditionError(fmt::format(
        "AWS KMS key {} has KeyUsage {}, not ENCRYPT_DECRYPT", arn, Printable(usage, 64)));
  }
  if (!spec.empty() && spec != "SYMMETRIC_DEFAULT") {
    return absl::FailedPreconditionError(fmt::format(
        "AWS KMS key {} has KeySpec {}, not SYMMETRIC_DEFAULT", arn, Printable(spec, 64)));
  }
  KeyStatus status;
  status.kek_id = MakeKekId(arn, material);
  if (status.kek_id.size() > kMaxKekIdSize) {
    return absl::InternalError(
        fmt::format("kek_id for {} is longer than {} bytes", arn, kMaxKekIdSize));
  }
  status.description =
      fmt::format("AWS KMS key {} ({}), {}{}", arn, state, options_.endpoint,
                  material.empty() ? "" : fmt::format(", key material {}", Printable(material)));
  absl::MutexLock lock(&mu_);
  key_arn_ = arn;
  current_material_ = material;
  return status;
}

absl::StatusOr<KeyStatus> AwsKms::Probe(const CallContext& ctx) { return Describe(ctx); }

absl::Status AwsKms::RotateKek(const CallContext& ctx) {
  nlohmann::json req = nlohmann::json::object();
  req["KeyId"] = options_.key_id;
  std::string text = req.dump();
  KMSP_ASSIGN_OR_RETURN(SecretBytes body, api_->Call("RotateKeyOnDemand",
                                                     SecretBytes::TakeFrom(text), ctx, Subject()));
  spdlog::info("AWS KMS RotateKeyOnDemand accepted for {}", options_.key_id);
  return absl::OkStatus();
}

}  // namespace kmsplugin::aws
