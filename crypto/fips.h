// FIPS mode (`serve --fips`): OpenSSL's FIPS provider for every primitive, or no start at all.
//
// EnableFips() loads the provider named "fips" (a FIPS 140 validated fips.so, configured by
// `openssl fipsinstall`) and the "base" provider (encoders and decoders, e.g. PEM), makes
// "fips=yes" the default property query so that no algorithm can come from elsewhere, checks that
// AES-256-GCM and SHA-256 can be fetched under it, and sets the crypto engine to kOpenSslOnly
// (crypto/init.h: libsodium is not a FIPS module). Call it once, at start-up, before any other
// crypto and before any thread uses crypto.
//
// Debian 12 ships no FIPS provider: there EnableFips() fails, with a message naming the provider,
// the modules directory and the config file looked in, and how to fix it.
#ifndef KMSP_CRYPTO_FIPS_H_
#define KMSP_CRYPTO_FIPS_H_

#include "absl/status/status.h"

namespace kmsplugin {

// FAILED_PRECONDITION when the provider cannot be loaded or FIPS mode cannot be enabled.
absl::Status EnableFips();

// True once EnableFips() succeeded (the default properties ask for fips=yes).
bool FipsEnabled();

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_FIPS_H_
