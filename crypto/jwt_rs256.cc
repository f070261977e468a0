// RS256 signing for service-account JWTs (see crypto/jwt_rs256.h). OpenSSL 3 EVP only.
#include "crypto/jwt_rs256.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "crypto/ssl_util.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

using internal::SslErrorString;

constexpr int kMinRsaBits = 2048;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

// A passphrase callback that refuses: an encrypted PEM fails instead of prompting on the tty.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (rest == 2) out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

absl::StatusOr<std::string> SignRs256(const SecretBytes& private_key_pem, std::string_view data) {
  constexpr char kNotAKey[] =
      "the service-account private_key is not an unencrypted PEM RSA private key";
  if (private_key_pem.empty()) return absl::InvalidArgumentError(kNotAKey);
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(private_key_pem.Reveal().data(), static_cast<int>(private_key_pem.size())));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf: " + SslErrorString());
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (pkey == nullptr) {
    (void)SslErrorString();  // Clears the queue.
    return absl::InvalidArgumentError(kNotAKey);
  }
  if (EVP_PKEY_is_a(pkey.get(), "RSA") != 1) {
    return absl::InvalidArgumentError("the service-account private_key is not an RSA key");
  }
  const int bits = EVP_PKEY_get_bits(pkey.get());
  if (bits < kMinRsaBits) {
    return absl::InvalidArgumentError(
        fmt::format("the service-account private_key is RSA-{}; at least RSA-{} is required", bits,
                    kMinRsaBits));
  }
  internal::SslUniquePtr<EVP_MD_CTX> md(EVP_MD_CTX_new());
  if (md == nullptr) return absl::InternalError("EVP_MD_CTX_new: " + SslErrorString());
  // The default padding of an RSA EVP signature is PKCS#1 v1.5: RS256.
  if (EVP_DigestSignInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr, pkey.get(), nullptr) !=
      1) {
    return absl::InternalError("RS256 set-up: " + SslErrorString());
  }
  size_t len = 0;
  if (EVP_DigestSign(md.get(), nullptr, &len, internal::U8(data), data.size()) != 1) {
    return absl::InternalError("RS256 signature size: " + SslErrorString());
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     internal::U8(data), data.size()) != 1) {
    return absl::InternalError("RS256 signature: " + SslErrorString());
  }
  sig.resize(len);
  return sig;
}

absl::StatusOr<SecretBytes> SignJwtRs256(const SecretBytes& private_key_pem,
                                         std::string_view header_json,
                                         std::string_view claims_json) {
  std::string signing_input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(claims_json);
  absl::StatusOr<std::string> sig = SignRs256(private_key_pem, signing_input);
  if (!sig.ok()) return sig.status();
  signing_input += ".";
  signing_input += Base64UrlEncode(*sig);
  return SecretBytes::TakeFrom(signing_input);
}

}  // namespace kmsplugin
