// InitCrypto: OpenSSL's one-time set-up, done once at process start, before any thread.
//
// The error-string tables are not loaded: they would cost the serving process about half a
// megabyte of memory, and our errors carry OpenSSL's packed error code instead
// ("error:1C800064::…"), which `openssl errstr CODE` explains.
#ifndef KMSP_CRYPTO_INIT_H_
#define KMSP_CRYPTO_INIT_H_

namespace kmsplugin {

void InitCrypto();

}  // namespace kmsplugin

#endif  // KMSP_CRYPTO_INIT_H_
