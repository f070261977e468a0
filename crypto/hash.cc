#include "crypto/hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include "crypto/encoding.h"
#include "crypto/init.h"
#include "crypto/ssl_util.h"

namespace kmsplugin {
namespace {

using internal::SslUniquePtr;

absl::StatusOr<SecretBytes> RunHkdf(int mode, std::string_view key, std::string_view salt,
                                    std::string_view info, size_t length) {
  SslUniquePtr<EVP_KDF> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return absl::InternalError("HKDF unavailable: " + internal::SslErrorString());
  SslUniquePtr<EVP_KDF_CTX> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return absl::InternalError("EVP_KDF_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[6];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(key.data()),
                                                  key.size());
  if (mode != EVP_KDF_HKDF_MODE_EXPAND_ONLY) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size());
  }
  if (mode != EVP_KDF_HKDF_MODE_EXTRACT_ONLY) {
    params[n++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size());
  }
  params[n++] = OSSL_PARAM_construct_end();
  SecretBytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.RevealMutable(), length, params) != 1) {
    return absl::InternalError("HKDF derive: " + internal::SslErrorString());
  }
  return out;
}

}  // namespace

std::string Sha256(std::string_view data) {
  std::string out(kSha256Size, '\0');
  if (internal::UseSodium()) {
    crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size());
    return out;
  }
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
             EVP_sha256(), nullptr);
  return out;
}

std::string Sha256Hex(std::string_view data) { return HexEncode(Sha256(data)); }

absl::StatusOr<SecretBytes> HmacSha256(const SecretBytes& key, std::string_view message) {
  SslUniquePtr<EVP_MAC> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return absl::InternalError("HMAC unavailable: " + internal::SslErrorString());
  SslUniquePtr<EVP_MAC_CTX> ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return absl::InternalError("EVP_MAC_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  // OpenSSL rejects a NULL key pointer even for a zero-length key.
  static const unsigned char kEmpty[1] = {0};
  const unsigned char* k = key.empty() ? kEmpty : internal::U8(key.Reveal());
  if (EVP_MAC_init(ctx.get(), k, key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    return absl::InternalError("HMAC: " + internal::SslErrorString());
  }
  SecretBytes out(kSha256Size);
  size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out.RevealMutable(), &len, out.size()) != 1 || len != kSha256Size) {
    return absl::InternalError("HMAC final: " + internal::SslErrorString());
  }
  return out;
}

absl::StatusOr<SecretBytes> HkdfSha256Extract(std::string_view salt, const SecretBytes& ikm) {
  static const std::string kZeroSalt(kSha256Size, '\0');
  if (salt.empty()) salt = kZeroSalt;
  return RunHkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm.Reveal(), salt, {}, kSha256Size);
}

absl::StatusOr<SecretBytes> HkdfSha256Expand(const SecretBytes& prk, std::string_view info,
                                             size_t length) {
  if (length == 0 || length > 255 * kSha256Size) {
    return absl::InvalidArgumentError("HKDF-Expand length must be 1..8160");
  }
  if (prk.size() < kSha256Size) return absl::InvalidArgumentError("HKDF PRK shorter than 32 bytes");
  return RunHkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk.Reveal(), {}, info, length);
}

absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm, std::string_view salt,
                                       std::string_view info, size_t length) {
  auto prk = HkdfSha256Extract(salt, ikm);
  if (!prk.ok()) return prk.status();
  return HkdfSha256Expand(*prk, info, length);
}

}  // namespace kmsplugin
