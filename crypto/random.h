// CSPRNG (OpenSSL RAND_bytes, seeded from the kernel).
#ifndef KMSP_CRYPTO_RANDOM_H_
#define KMSP_CRYPTO_RANDOM_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace kmsplugin {

// `n` random bytes for public values (nonces, ids). INTERNAL if the generator fails.
absl::StatusOr<std::string> RandomBytes(size_t n);
// `n` random bytes for key material.
absl::StatusOr<SecretBytes> RandomSecret(size_t n);
// A random lower-case hex string of 2*n_bytes characters.
absl::StatusOr<std::string> RandomHex(size_t n_bytes);
// A random RFC 4122 version-4 UUID string (as kube-apiserver sends in `uid`).
absl::StatusOr<std::string> RandomUuid();

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_RANDOM_H_
