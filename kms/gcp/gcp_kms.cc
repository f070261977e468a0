// Google Cloud KMS backend (see gcp_kms.h).
#include "kms/gcp/gcp_kms.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "base/printable.h"
#include "base/status.h"
#include "crypto/crc32c.h"
#include "crypto/encoding.h"
#include "fmt/format.h"
#include "kms/secret_json.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace kmsplugin::gcp {
namespace {

constexpr size_t kMaxErrorText = 200;
constexpr size_t kMaxBlobSize = 8192;
constexpr size_t kPrintableKekIdLength = 256;
constexpr int kIntegrityTries = 2;  // A CRC mismatch is retried once.
constexpr std::string_view kVersionsInfix = "/cryptoKeyVersions/";

bool ValidSegment(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::string Str(const nlohmann::json& doc, const char* name) {
  auto it = doc.find(name);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool Flag(const nlohmann::json& doc, const char* name) {
  auto it = doc.find(name);
  return it != doc.end() && it->is_boolean() && it->get<bool>();  // Absent means false.
}

// An int64-as-string (proto3 JSON) or number CRC32C field; nullopt when absent or malformed.
std::optional<uint32_t> Crc(const nlohmann::json& doc, const char* name) {
  auto it = doc.find(name);
  if (it == doc.end()) return std::nullopt;
  uint64_t v = 0;
  if (it->is_number_unsigned()) {
    v = it->get<uint64_t>();
  } else if (!it->is_string() || !absl::SimpleAtoi(it->get_ref<const std::string&>(), &v)) {
    return std::nullopt;
  }
  if (v > 0xFFFFFFFFULL) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// Canonical google.rpc codes that name an absl code of the same meaning.
absl::StatusCode CodeOfStatus(std::string_view status, int http) {
  static constexpr std::pair<std::string_view, absl::StatusCode> kCodes[] = {
      {"INVALID_ARGUMENT", absl::StatusCode::kInvalidArgument},
      {"FAILED_PRECONDITION", absl::StatusCode::kFailedPrecondition},
      {"OUT_OF_RANGE", absl::StatusCode::kOutOfRange},
      {"PERMISSION_DENIED", absl::StatusCode::kPermissionDenied},
      {"NOT_FOUND", absl::StatusCode::kNotFound},
      {"ALREADY_EXISTS", absl::StatusCode::kAlreadyExists},
      {"UNIMPLEMENTED", absl::StatusCode::kUnimplemented},
      {"CANCELLED", absl::StatusCode::kCancelled},
      {"DATA_LOSS", absl::StatusCode::kDataLoss},
  };
  for (const auto& [name, code] : kCodes) {
    if (status == name) return code;
  }
  if (http == 403) return absl::StatusCode::kPermissionDenied;
  if (http == 404) return absl::StatusCode::kNotFound;
  return absl::StatusCode::kInvalidArgument;  // Another 4xx: a request we built wrongly.
}

}  // namespace

RestError ClassifyGcpAnswer(std::string_view operation, const HttpResponse& response) {
  std::string status;
  std::string message;
  nlohmann::json doc = nlohmann::json::parse(response.body.Reveal(), nullptr, false);
  if (doc.is_object()) {
    auto err = doc.find("error");
    if (err != doc.end() && err->is_object()) {
      status = Printable(Str(*err, "status"), 40);
      message = Printable(Str(*err, "message"), kMaxErrorText);
    }
  }
  WipeJson(doc);
  const int http = response.status;
  std::string text = fmt::format("Cloud KMS {}: HTTP {}", operation, http);
  if (!status.empty()) text += " " + status;
  if (!message.empty()) text += ": " + message;
  RestError e;
  if (http == 401 || status == "UNAUTHENTICATED") {
    e.status = absl::UnauthenticatedError(text);
    e.refresh_token = true;
    return e;
  }
  const bool transient = status == "UNAVAILABLE" || status == "DEADLINE_EXCEEDED" ||
                         status == "RESOURCE_EXHAUSTED" || status == "INTERNAL" ||
                         status == "UNKNOWN" || status == "ABORTED";
  if (http == 408 || http == 429 || http >= 500 || transient) {
    e.status = absl::UnavailableError(text);
    e.retryable = true;
    e.throttled = http == 429 || status == "RESOURCE_EXHAUSTED";
    e.not_acted = http == 429 || http == 503;
    return e;
  }
  e.status = absl::Status(CodeOfStatus(status, http), text);
  return e;
}

std::string GcpKms::MakeKekId(std::string_view version_name) {
  return "gcp:" + std::string(version_name);
}

std::string GcpKms::AssociatedData(std::string_view key_name) {
  return std::string(kAssociatedDataPrefix) + std::string(key_name);
}

bool GcpKms::ValidKeyName(std::string_view name) {
  static constexpr std::string_view kLabels[] = {"projects", "locations", "keyRings", "cryptoKeys"};
  for (size_t i = 0; i < 4; ++i) {
    const size_t slash = name.find('/');
    if (slash == std::string_view::npos || name.substr(0, slash) != kLabels[i]) return false;
    name.remove_prefix(slash + 1);
    const size_t next = name.find('/');
    if (i < 3 && next == std::string_view::npos) return false;
    if (i == 3 && next != std::string_view::npos) return false;
    if (!ValidSegment(name.substr(0, next))) return false;
    if (i < 3) name.remove_prefix(next + 1);
  }
  return true;
}

absl::StatusOr<std::unique_ptr<GcpKms>> GcpKms::Create(GcpKmsOptions options, const Clock* clock) {
  if (!ValidKeyName(options.key)) {
    return absl::InvalidArgumentError(
        fmt::format("--gcp-key '{}' is not projects/P/locations/L/keyRings/R/cryptoKeys/K",
                    Printable(options.key, 300)));
  }
  while (!options.endpoint.empty() && options.endpoint.back() == '/') options.endpoint.pop_back();
  if (options.endpoint.rfind("https://", 0) != 0 || options.endpoint.size() <= 8) {
    return absl::InvalidArgumentError(fmt::format("--gcp-endpoint '{}' is not an https:// URL",
                                                  Printable(options.endpoint, 300)));
  }
  if (MakeKekId(options.key + "/cryptoKeyVersions/18446744073709551615").size() > kMaxKekIdSize) {
    return absl::InvalidArgumentError("--gcp-key is too long");
  }
  options.credentials.FromEnvironment();
  options.credentials.endpoint.backend = "gcp";
  options.credentials.endpoint.retry = options.retry;
  options.credentials.endpoint.default_call_timeout = options.default_call_timeout;
  options.credentials.endpoint.observer = options.observer;
  std::unique_ptr<HttpClient> http = std::move(options.http);
  if (http == nullptr) {
    HttpClientOptions http_options;
    http_options.ca_file = options.ca_file;
    if (!options.ca_file.empty()) http_options.system_ca_dir = kSystemCaDir;  // On top of them.
    http_options.connect_timeout = options.connect_timeout;
    http_options.default_timeout = options.default_call_timeout;
    http_options.max_idle_handles = std::max<size_t>(options.max_concurrent_calls, 2);
    KMSP_ASSIGN_OR_RETURN(http, CurlHttpClient::Create(std::move(http_options)));
  }
  std::unique_ptr<TokenSource> tokens = std::move(options.tokens);
  if (tokens == nullptr) {
    KMSP_ASSIGN_OR_RETURN(tokens, NewGcpTokenSource(options.credentials, http.get(), clock));
  }
  auto kms = std::unique_ptr<GcpKms>(new GcpKms(std::move(options)));
  kms->http_ = std::move(http);
  kms->tokens_ = std::move(tokens);
  BearerRestOptions rest;
  rest.backend = "gcp";
  rest.service = "Cloud KMS";
  rest.classify = ClassifyGcpAnswer;
  rest.retry = kms->options_.retry;
  rest.max_concurrent_calls = kms->options_.max_concurrent_calls;
  rest.default_call_timeout = kms->options_.default_call_timeout;
  rest.observer = kms->options_.observer;
  kms->api_ =
      std::make_unique<BearerRestApi>(std::move(rest), kms->http_.get(), kms->tokens_.get());
  return kms;
}

GcpKms::GcpKms(GcpKmsOptions options)
    : options_(std::move(options)),
      aad_(AssociatedData(options_.key)),
      url_(options_.endpoint + "/v1/" + options_.key) {}

GcpKms::~GcpKms() = default;

int64_t GcpKms::VersionOf(std::string_view name) const {
  if (name.size() <= options_.key.size() + kVersionsInfix.size() ||
      name.substr(0, options_.key.size()) != options_.key ||
      name.substr(options_.key.size(), kVersionsInfix.size()) != kVersionsInfix) {
    return 0;
  }
  const std::string_view digits = name.substr(options_.key.size() + kVersionsInfix.size());
  int64_t n = 0;
  if (digits.empty() || digits[0] == '0' || digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(ToAbsl(digits), &n)) {
    return 0;
  }
  return n;
}

absl::StatusOr<WrappedKey> GcpKms::Wrap(const SecretBytes& key, const CallContext& ctx) {
  std::string b64 = Base64Encode(key.Reveal());
  const std::string plaintext_crc = std::to_string(Crc32c(key.Reveal()));
  const SecretBytes body =
      JsonObjectOfStrings({{"plaintext", b64},
                           {"plaintextCrc32c", plaintext_crc},
                           {"additionalAuthenticatedData", Base64Encode(aad_)},
                           {"additionalAuthenticatedDataCrc32c", std::to_string(Crc32c(aad_))}});
  WipeString(b64);
  // The answer names the version that encrypted (public).
  auto version_of_answer = [this](std::string_view text) -> std::string {
    const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    const std::string name = doc.is_object() ? Str(doc, "name") : "";
    return VersionOf(name) > 0 ? MakeKekId(name) : "";
  };
  const RestCall call{"encrypt", "POST", url_ + ":encrypt", body.Clone(), true};
  std::string problem;
  for (int round = 1; round <= kIntegrityTries; ++round) {
    KMSP_ASSIGN_OR_RETURN(
        SecretBytes answer,
        api_->Call(call, ctx, AttemptSubject{options_.key, {}, {}, version_of_answer}));
    KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseAnswer(answer, "Cloud KMS encrypt"));
    const std::string name = Str(doc, "name");
    absl::StatusOr<std::string> ciphertext = Base64Decode(Str(doc, "ciphertext"));
    const std::optional<uint32_t> crc = Crc(doc, "ciphertextCrc32c");
    if (!Flag(doc, "verifiedPlaintextCrc32c")) {
      problem = "verifiedPlaintextCrc32c is not true";
    } else if (!Flag(doc, "verifiedAdditionalAuthenticatedDataCrc32c")) {
      problem = "verifiedAdditionalAuthenticatedDataCrc32c is not true";
    } else if (!ciphertext.ok() || ciphertext->empty()) {
      problem = "the ciphertext is missing or not base64";
    } else if (!crc.has_value() || *crc != Crc32c(*ciphertext)) {
      problem = "ciphertextCrc32c does not match the ciphertext";
    } else if (VersionOf(name) == 0) {
      problem = fmt::format("name '{}' is not a version of {}", Printable(name, 300), options_.key);
    } else if (ciphertext->size() > kMaxBlobSize) {
      return absl::UnavailableError(
          fmt::format("Cloud KMS encrypt: the ciphertext is {} bytes (at most {})",
                      ciphertext->size(), kMaxBlobSize));
    } else {
      return WrappedKey{MakeKekId(name), *std::move(ciphertext)};
    }
    spdlog::warn("Cloud KMS encrypt of {}: integrity check failed ({}); answer discarded{}",
                 options_.key, problem, round < kIntegrityTries ? ", trying once more" : "");
  }
  return absl::UnavailableError(
      fmt::format("Cloud KMS encrypt: integrity check failed twice ({})", problem));
}

absl::StatusOr<SecretBytes> GcpKms::Unwrap(const WrappedKey& wrapped, const CallContext& ctx) {
  const std::string_view kek_id = wrapped.kek_id;
  if (kek_id.substr(0, 4) != "gcp:" || VersionOf(kek_id.substr(4)) == 0) {
    return absl::FailedPreconditionError(fmt::format(
        "kek_id '{}' is not one of this Cloud KMS backend (not gcp:{}/cryptoKeyVersions/<N>)",
        Printable(kek_id, kPrintableKekIdLength), options_.key));
  }
  if (wrapped.blob.empty()) return absl::InvalidArgumentError("the wrapped key is empty");
  const SecretBytes body =
      JsonObjectOfStrings({{"ciphertext", Base64Encode(wrapped.blob)},
                           {"ciphertextCrc32c", std::to_string(Crc32c(wrapped.blob))},
                           {"additionalAuthenticatedData", Base64Encode(aad_)},
                           {"additionalAuthenticatedDataCrc32c", std::to_string(Crc32c(aad_))}});
  const RestCall call{"decrypt", "POST", url_ + ":decrypt", body.Clone(), true};
  std::string problem;
  for (int round = 1; round <= kIntegrityTries; ++round) {
    KMSP_ASSIGN_OR_RETURN(SecretBytes answer,
                          api_->Call(call, ctx, AttemptSubject{options_.key, kek_id}));
    KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseAnswer(answer, "Cloud KMS decrypt"));
    absl::StatusOr<SecretBytes> plaintext = absl::UnavailableError("no plaintext");
    if (auto p = doc.find("plaintext"); p != doc.end() && p->is_string()) {
      plaintext = Base64DecodeSecret(p->get_ref<const std::string&>());
    }
    const std::optional<uint32_t> crc = Crc(doc, "plaintextCrc32c");
    WipeJson(doc);
    if (!plaintext.ok() || plaintext->empty()) {
      problem = "the plaintext is missing or not base64";
    } else if (!crc.has_value() || *crc != Crc32c(plaintext->Reveal())) {
      problem = "plaintextCrc32c does not match the plaintext";
    } else {
      return plaintext;
    }
    spdlog::warn("Cloud KMS decrypt with {}: integrity check failed ({}); answer discarded{}",
                 Printable(kek_id, kPrintableKekIdLength), problem,
                 round < kIntegrityTries ? ", trying once more" : "");
  }
  return absl::UnavailableError(
      fmt::format("Cloud KMS decrypt: integrity check failed twice ({})", problem));
}

absl::StatusOr<KeyStatus> GcpKms::Probe(const CallContext& ctx) {
  const RestCall call{"cryptoKeys.get", "GET", url_, SecretBytes(), true};
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer, api_->Call(call, ctx, AttemptSubject{options_.key}));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc, ParseAnswer(answer, "Cloud KMS cryptoKeys.get"));
  auto primary = doc.find("primary");
  if (primary == doc.end() || !primary->is_object()) {
    const std::string purpose = Str(doc, "purpose");
    return absl::FailedPreconditionError(fmt::format(
        "Cloud KMS key {} has no primary version (purpose {}; an ENCRYPT_DECRYPT key is needed)",
        options_.key, Printable(purpose.empty() ? "unknown" : purpose, 40)));
  }
  const std::string name = Str(*primary, "name");
  const std::string state = Str(*primary, "state");
  if (VersionOf(name) == 0) {
    return absl::UnavailableError(
        fmt::format("Cloud KMS cryptoKeys.get: primary '{}' is not a version of {}",
                    Printable(name, 300), options_.key));
  }
  if (state != "ENABLED") {
    return absl::FailedPreconditionError(
        fmt::format("Cloud KMS key {}: primary version {} is {}", options_.key, VersionOf(name),
                    Printable(state.empty() ? "in no state" : state, 40)));
  }
  KeyStatus status;
  status.kek_id = MakeKekId(name);
  status.description =
      fmt::format("Cloud KMS key {} primary version {} ({}, {})", options_.key, VersionOf(name),
                  Printable(state, 40), Printable(Str(*primary, "protectionLevel"), 40));
  return status;
}

absl::Status GcpKms::RotateKek(const CallContext& ctx) {
  const RestCall create{"cryptoKeyVersions.create", "POST", url_ + "/cryptoKeyVersions",
                        SecretBytes::CopyFrom("{}"), false};
  KMSP_ASSIGN_OR_RETURN(SecretBytes answer, api_->Call(create, ctx, AttemptSubject{options_.key}));
  KMSP_ASSIGN_OR_RETURN(nlohmann::json doc,
                        ParseAnswer(answer, "Cloud KMS cryptoKeyVersions.create"));
  const std::string name = Str(doc, "name");
  const int64_t version = VersionOf(name);
  if (version == 0) {
    return absl::UnavailableError(
        fmt::format("Cloud KMS cryptoKeyVersions.create: '{}' is not a version of {}",
                    Printable(name, 300), options_.key));
  }
  const std::string body = nlohmann::json{{"cryptoKeyVersionId", std::to_string(version)}}.dump();
  const RestCall update{"updatePrimaryVersion", "POST", url_ + ":updatePrimaryVersion",
                        SecretBytes::CopyFrom(body), true};
  KMSP_RETURN_IF_ERROR(
      api_->Call(update, ctx, AttemptSubject{options_.key, MakeKekId(name)}).status());
  spdlog::info("Cloud KMS key {}: version {} created and made primary", options_.key, version);
  return absl::OkStatus();
}

}  // namespace kmsplugin::gcp
