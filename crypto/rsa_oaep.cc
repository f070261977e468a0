#include "crypto/rsa_oaep.h"

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <utility>

#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/ssl_util.h"
#include "fmt/format.h"

namespace kmsplugin {

namespace internal {
void EvpPkeyFree::operator()(evp_pkey_st* p) const { EVP_PKEY_free(p); }
}  // namespace internal

namespace {

using internal::EvpPkeyPtr;
using internal::SslErrorString;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

constexpr char kUnwrapError[] = "recovery key cannot unwrap: wrong private key or damaged wrap";
constexpr size_t kSha256OaepOverhead = 2 * 32 + 2;

// A passphrase callback that refuses: an encrypted PEM fails instead of prompting on the tty.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

BioPtr ReadOnlyBio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

// Checks type and size; returns the bits.
absl::StatusOr<int> CheckRsaKey(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "RSA") != 1) {
    return absl::InvalidArgumentError(fmt::format(
        "the recovery key is a {} key; an RSA key of {} or {} bits is required",
        EVP_PKEY_get0_type_name(pkey) != nullptr ? EVP_PKEY_get0_type_name(pkey) : "non-RSA",
        kRsaRecoveryBits3072, kRsaRecoveryBits4096));
  }
  const int bits = EVP_PKEY_get_bits(pkey);
  if (bits != kRsaRecoveryBits3072 && bits != kRsaRecoveryBits4096) {
    return absl::InvalidArgumentError(
        fmt::format("the recovery key is RSA-{}; only RSA-{} and RSA-{} are accepted", bits,
                    kRsaRecoveryBits3072, kRsaRecoveryBits4096));
  }
  return bits;
}

// SHA-256 of the DER SubjectPublicKeyInfo of the public half of `pkey`.
absl::StatusOr<std::string> SpkiFingerprint(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  if (len <= 0 || der == nullptr) {
    return absl::InternalError("cannot encode the public key: " + SslErrorString());
  }
  std::string fp =
      Sha256(std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  return fp;
}

// OAEP with SHA-256 for the digest and MGF1, and `label`.
absl::StatusOr<PkeyCtxPtr> OaepContext(EVP_PKEY* pkey, std::string_view label, bool encrypt) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (ctx == nullptr) return absl::InternalError("EVP_PKEY_CTX_new: " + SslErrorString());
  char pad[] = OSSL_PKEY_RSA_PAD_MODE_OAEP;
  char md[] = "SHA256";
  char mgf1[] = "SHA256";
  std::string label_copy(label);
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, pad, 0),
      OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, md, 0),
      OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, mgf1, 0),
      OSSL_PARAM_construct_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, label_copy.data(),
                                        label_copy.size()),
      OSSL_PARAM_construct_end(),
  };
  const int rc = encrypt ? EVP_PKEY_encrypt_init_ex(ctx.get(), params)
                         : EVP_PKEY_decrypt_init_ex(ctx.get(), params);
  if (rc != 1) return absl::InternalError("RSA-OAEP set-up: " + SslErrorString());
  return ctx;
}

absl::StatusOr<EvpPkeyPtr> ReadPublicPem(std::string_view pem) {
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "the recovery public key file holds a PRIVATE key; give the public key "
        "(openssl pkey -in private.pem -pubout) and keep the private key offline");
  }
  if (pem.empty()) return absl::InvalidArgumentError("the recovery public key file is empty");
  BioPtr bio = ReadOnlyBio(pem);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf: " + SslErrorString());
  EvpPkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (pkey == nullptr) {
    (void)SslErrorString();  // Clears the queue.
    return absl::InvalidArgumentError(
        "the recovery public key is not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  }
  return pkey;
}

}  // namespace

std::string FingerprintText(std::string_view fingerprint) {
  return "sha256:" + HexEncode(fingerprint);
}

RsaPublicKey::RsaPublicKey(EvpPkeyPtr pkey, int bits, std::string fingerprint)
    : pkey_(std::move(pkey)), bits_(bits), fingerprint_(std::move(fingerprint)) {}

absl::StatusOr<RsaPublicKey> RsaPublicKey::FromPem(std::string_view pem) {
  absl::StatusOr<EvpPkeyPtr> pkey = ReadPublicPem(pem);
  if (!pkey.ok()) return pkey.status();
  absl::StatusOr<int> bits = CheckRsaKey(pkey->get());
  if (!bits.ok()) return bits.status();
  absl::StatusOr<std::string> fp = SpkiFingerprint(pkey->get());
  if (!fp.ok()) return fp.status();
  return RsaPublicKey(*std::move(pkey), *bits, *std::move(fp));
}

std::string RsaPublicKey::FingerprintText() const {
  return ::kmsplugin::FingerprintText(fingerprint_);
}

absl::StatusOr<std::string> RsaPublicKey::Wrap(const SecretBytes& key,
                                               std::string_view label) const {
  const size_t modulus = static_cast<size_t>(bits_) / 8;
  if (key.empty() || key.size() > modulus - kSha256OaepOverhead) {
    return absl::InvalidArgumentError(
        fmt::format("cannot RSA-OAEP wrap a key of {} bytes under RSA-{}", key.size(), bits_));
  }
  absl::StatusOr<PkeyCtxPtr> ctx = OaepContext(pkey_.get(), label, /*encrypt=*/true);
  if (!ctx.ok()) return ctx.status();
  std::string out(modulus, '\0');
  size_t out_len = out.size();
  if (EVP_PKEY_encrypt(ctx->get(), reinterpret_cast<unsigned char*>(out.data()), &out_len,
                       internal::U8(key.Reveal()), key.size()) != 1 ||
      out_len != modulus) {
    return absl::InternalError("RSA-OAEP encryption failed: " + SslErrorString());
  }
  return out;
}

RsaPrivateKey::RsaPrivateKey(EvpPkeyPtr pkey, int bits, std::string fingerprint)
    : pkey_(std::move(pkey)), bits_(bits), fingerprint_(std::move(fingerprint)) {}

absl::StatusOr<RsaPrivateKey> RsaPrivateKey::FromPem(const SecretBytes& pem) {
  if (pem.empty()) return absl::InvalidArgumentError("the recovery private key file is empty");
  BioPtr bio = ReadOnlyBio(pem.Reveal());
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf: " + SslErrorString());
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (pkey == nullptr) {
    (void)SslErrorString();
    return absl::InvalidArgumentError(
        "the recovery private key is not an unencrypted PEM private key (-----BEGIN PRIVATE "
        "KEY----- or -----BEGIN RSA PRIVATE KEY-----)");
  }
  absl::StatusOr<int> bits = CheckRsaKey(pkey.get());
  if (!bits.ok()) return bits.status();
  absl::StatusOr<std::string> fp = SpkiFingerprint(pkey.get());
  if (!fp.ok()) return fp.status();
  return RsaPrivateKey(std::move(pkey), *bits, *std::move(fp));
}

std::string RsaPrivateKey::FingerprintText() const {
  return ::kmsplugin::FingerprintText(fingerprint_);
}

absl::StatusOr<SecretBytes> RsaPrivateKey::Unwrap(std::string_view wrapped,
                                                  std::string_view label) const {
  const size_t modulus = static_cast<size_t>(bits_) / 8;
  if (wrapped.size() != modulus) return absl::InvalidArgumentError(kUnwrapError);
  absl::StatusOr<PkeyCtxPtr> ctx = OaepContext(pkey_.get(), label, /*encrypt=*/false);
  if (!ctx.ok()) return ctx.status();
  SecretBytes buf(modulus);
  size_t out_len = buf.size();
  if (EVP_PKEY_decrypt(ctx->get(), buf.RevealMutable(), &out_len, internal::U8(wrapped),
                       wrapped.size()) != 1 ||
      out_len == 0 || out_len > modulus) {
    (void)SslErrorString();
    return absl::InvalidArgumentError(kUnwrapError);
  }
  return SecretBytes::CopyFrom(buf.Reveal().substr(0, out_len));  // `buf` is wiped on return.
}

absl::StatusOr<RsaKeyPairPem> GenerateRsaKeyPair(int bits) {
  if (bits != kRsaRecoveryBits3072 && bits != kRsaRecoveryBits4096) {
    return absl::InvalidArgumentError(fmt::format("--bits {}: only {} and {} are accepted", bits,
                                                  kRsaRecoveryBits3072, kRsaRecoveryBits4096));
  }
  EvpPkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  if (pkey == nullptr) return absl::InternalError("RSA key generation: " + SslErrorString());
  BioPtr priv(BIO_new(BIO_s_mem()));
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (priv == nullptr || pub == nullptr) return absl::InternalError("BIO_new: " + SslErrorString());
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted.
  if (PEM_write_bio_PrivateKey(priv.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_PUBKEY(pub.get(), pkey.get()) != 1) {
    return absl::InternalError("PEM encoding of the key pair: " + SslErrorString());
  }
  RsaKeyPairPem out;
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(priv.get(), &mem);
  if (mem == nullptr || mem->data == nullptr) return absl::InternalError("empty PEM buffer");
  out.private_pem = SecretBytes::CopyFrom(std::string_view(mem->data, mem->length));
  OPENSSL_cleanse(mem->data, mem->length);  // BUF_MEM_free also clears; belt and braces.
  BIO_get_mem_ptr(pub.get(), &mem);
  if (mem == nullptr || mem->data == nullptr) return absl::InternalError("empty PEM buffer");
  out.public_pem.assign(mem->data, mem->length);
  return out;
}

}  // namespace kmsplugin
