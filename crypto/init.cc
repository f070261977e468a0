#include "crypto/init.h"

#include <openssl/crypto.h>
#include <sodium.h>

#include <atomic>

namespace kmsplugin {
namespace {

std::atomic<CryptoEngine> g_engine{CryptoEngine::kAuto};

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

}  // namespace

void InitCrypto() {
  OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, nullptr);
  (void)SodiumReady();
}

void SetCryptoEngine(CryptoEngine engine) { g_engine.store(engine); }
CryptoEngine GetCryptoEngine() { return g_engine.load(); }

namespace internal {

bool UseSodium() { return g_engine.load() == CryptoEngine::kAuto && SodiumReady(); }

bool UseSodiumAesGcm() {
  static const bool cpu = SodiumReady() && crypto_aead_aes256gcm_is_available() == 1;
  return cpu && UseSodium();
}

}  // namespace internal
}  // namespace kmsplugin
