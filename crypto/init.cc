#include "crypto/init.h"

#include <openssl/crypto.h>

namespace kmsplugin {

void InitCrypto() { OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, nullptr); }

}  // namespace kmsplugin
