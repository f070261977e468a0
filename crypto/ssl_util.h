// SslUniquePtr<T>: unique_ptr with the matching OpenSSL free function, for every OpenSSL handle.
// Private to crypto/.
#ifndef KMSP_CRYPTO_SSL_UTIL_H_
#define KMSP_CRYPTO_SSL_UTIL_H_

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <memory>
#include <string>
#include <string_view>

namespace kmsplugin::internal {

template <typename T>
struct SslDeleter;
template <>
struct SslDeleter<EVP_CIPHER_CTX> {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
template <>
struct SslDeleter<EVP_MD_CTX> {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
template <>
struct SslDeleter<EVP_KDF> {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
template <>
struct SslDeleter<EVP_KDF_CTX> {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
template <>
struct SslDeleter<EVP_MAC> {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
template <>
struct SslDeleter<EVP_MAC_CTX> {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};

template <typename T>
using SslUniquePtr = std::unique_ptr<T, SslDeleter<T>>;

// The bytes of `s` as OpenSSL's and libsodium's `const unsigned char*`.
inline const unsigned char* U8(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// The oldest queued OpenSSL error as text (never contains key or data bytes), clearing the queue.
std::string SslErrorString();

}  // namespace kmsplugin::internal

#endif  // KMSP_CRYPTO_SSL_UTIL_H_
