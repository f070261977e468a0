// Process-wide crypto set-up.
//
// InitCrypto(): OpenSSL's one-time set-up, once at process start, before any thread. The
// error-string tables are not loaded: they would cost the serving process about half a megabyte
// of memory, and our errors carry OpenSSL's packed error code instead ("error:1C800064::…"),
// which `openssl errstr CODE` explains.
//
// The engine: the serving path's primitives (AES-256-GCM, SHA-256, the CSPRNG) run on libsodium
// where the CPU allows (AES-NI and PCLMUL), which needs no per-call set-up and keeps OpenSSL's
// provider machinery (about 1.5 MB) out of a process that only serves; everything else, and
// everything when the engine is kOpenSslOnly (as a FIPS mode must be), runs on OpenSSL. The same
// bytes either way: the crypto tests run every vector through both engines.
#ifndef KMSP_CRYPTO_INIT_H_
#define KMSP_CRYPTO_INIT_H_

namespace kmsplugin {

void InitCrypto();

enum class CryptoEngine {
  kAuto,         // libsodium where it applies and the CPU allows, else OpenSSL.
  kOpenSslOnly,  // OpenSSL for everything.
};

// Applies to objects (AesGcm) created and calls made from now on. Default kAuto.
void SetCryptoEngine(CryptoEngine engine);
CryptoEngine GetCryptoEngine();

namespace internal {
// True when libsodium is initialised (idempotent, thread-safe) and the engine is kAuto.
bool UseSodium();
// UseSodium() and the CPU has what libsodium's AES-256-GCM needs.
bool UseSodiumAesGcm();
}  // namespace internal

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_INIT_H_
