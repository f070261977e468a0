#include "plugin/recovery_format.h"

#include <memory>

#include "base/status.h"
#include "crypto/aes_gcm.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

constexpr size_t kDataKeySize = 32;
constexpr size_t kWrap3072 = 384;
constexpr size_t kWrap4096 = 512;

}  // namespace

std::string SerializeRecoveryWrap(const RecoveryWrap& wrap) {
  std::string out;
  out.reserve(1 + wrap.fingerprint.size() + wrap.wrapped_key.size());
  out.push_back(static_cast<char>(kRecoveryFormatVersion));
  out.append(wrap.fingerprint);
  out.append(wrap.wrapped_key);
  return out;
}

absl::StatusOr<RecoveryWrap> ParseRecoveryWrap(std::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError("recovery annotation is empty");
  if (static_cast<uint8_t>(value[0]) != kRecoveryFormatVersion) {
    return absl::InvalidArgumentError(fmt::format(
        "recovery annotation has unknown format version {}", static_cast<uint8_t>(value[0])));
  }
  constexpr size_t kHeader = 1 + kRecoveryFingerprintSize;
  if (value.size() != kHeader + kWrap3072 && value.size() != kHeader + kWrap4096) {
    return absl::InvalidArgumentError(
        fmt::format("recovery annotation is {} bytes; format 1 is {} or {} bytes", value.size(),
                    kHeader + kWrap3072, kHeader + kWrap4096));
  }
  return RecoveryWrap{std::string(value.substr(1, kRecoveryFingerprintSize)),
                      std::string(value.substr(1 + kRecoveryFingerprintSize))};
}

absl::StatusOr<std::string> MakeRecoveryAnnotation(const RsaPublicKey& key,
                                                   const SecretBytes& data_key) {
  KMSP_ASSIGN_OR_RETURN(std::string wrapped, key.Wrap(data_key, kRecoveryOaepLabel));
  return SerializeRecoveryWrap(RecoveryWrap{key.fingerprint(), std::move(wrapped)});
}

absl::StatusOr<SecretBytes> UnwrapRecoveryAnnotation(
    std::string_view value, const std::vector<const RsaPrivateKey*>& keys) {
  KMSP_ASSIGN_OR_RETURN(RecoveryWrap wrap, ParseRecoveryWrap(value));
  const RsaPrivateKey* key = nullptr;
  for (const RsaPrivateKey* k : keys) {
    if (k != nullptr && k->fingerprint() == wrap.fingerprint) key = k;
  }
  if (key == nullptr) {
    return absl::NotFoundError(
        fmt::format("recovery key {} not given", FingerprintText(wrap.fingerprint)));
  }
  KMSP_ASSIGN_OR_RETURN(SecretBytes dek, key->Unwrap(wrap.wrapped_key, kRecoveryOaepLabel));
  if (dek.size() != kDataKeySize) {
    return absl::InvalidArgumentError(
        fmt::format("recovery wrap holds a key of {} bytes, not {}", dek.size(), kDataKeySize));
  }
  return dek;
}

absl::StatusOr<SecretBytes> OpenWithRecoveryKey(std::string_view ciphertext,
                                                std::string_view key_id,
                                                const Annotations& annotations,
                                                const std::vector<const RsaPrivateKey*>& keys) {
  auto it = annotations.find(std::string(kRecoveryAnnotation));
  if (it == annotations.end()) {
    return absl::NotFoundError(
        fmt::format("no recovery wrap (no {} annotation)", kRecoveryAnnotation));
  }
  KMSP_ASSIGN_OR_RETURN(ParsedEnvelope env, ParseEnvelope(ciphertext));
  KMSP_ASSIGN_OR_RETURN(SecretBytes dek, UnwrapRecoveryAnnotation(it->second, keys));
  KMSP_ASSIGN_OR_RETURN(std::unique_ptr<AesGcm> aead, AesGcm::Create(std::move(dek)));
  absl::StatusOr<SecretBytes> plaintext =
      aead->OpenDetached(env.nonce, env.ct_and_tag, EnvelopeAad(key_id, annotations));
  if (!plaintext.ok()) {
    return absl::InvalidArgumentError(
        "ciphertext failed authentication (modified ciphertext, key_id or annotations)");
  }
  return plaintext;
}

}  // namespace kmsplugin
