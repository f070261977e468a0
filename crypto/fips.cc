// EnableFips(): OpenSSL 3 provider loading for `serve --fips` (see fips.h).
#include "crypto/fips.h"

#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include <cstdlib>
#include <string>

#include "crypto/init.h"
#include "crypto/ssl_util.h"
#include "fmt/format.h"

namespace kmsplugin {
namespace {

// Where OpenSSL looks for providers: $OPENSSL_MODULES, else its built-in modules directory.
std::string ModulesDir() {
  const char* env = std::getenv("OPENSSL_MODULES");
  if (env != nullptr && *env != '\0') return std::string(env) + " (from OPENSSL_MODULES)";
  const char* dir = OPENSSL_info(OPENSSL_INFO_MODULES_DIR);
  return dir != nullptr ? dir : "(unknown)";
}

// The config file OpenSSL reads at start: $OPENSSL_CONF, else OPENSSLDIR/openssl.cnf.
std::string ConfigFile() {
  char* path = CONF_get1_default_config_file();
  std::string out = path != nullptr ? path : "(unknown)";
  OPENSSL_free(path);
  return out;
}

absl::Status Refuse(std::string_view what) {
  return absl::FailedPreconditionError(fmt::format(
      "--fips: {} ({}); looked for the provider \"fips\" (fips.so) in the modules directory {} "
      "with the OpenSSL config {}. To fix: install a FIPS 140 validated OpenSSL provider (fips.so "
      "of a validated OpenSSL 3 build, or your distribution's FIPS package), run `openssl "
      "fipsinstall -out fipsmodule.cnf -module <modules dir>/fips.so`, and include that "
      "fipsmodule.cnf from the OpenSSL config (or point OPENSSL_CONF and OPENSSL_MODULES at "
      "them); or start without --fips",
      what, internal::SslErrorString(), ModulesDir(), ConfigFile()));
}

bool CanFetch() {
  EVP_CIPHER* gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  EVP_MD* sha = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  const bool ok = gcm != nullptr && sha != nullptr;
  EVP_CIPHER_free(gcm);
  EVP_MD_free(sha);
  return ok;
}

}  // namespace

absl::Status EnableFips() {
  ERR_clear_error();
  if (OSSL_PROVIDER_load(nullptr, "fips") == nullptr) {
    return Refuse("cannot load OpenSSL's FIPS provider");
  }
  if (OSSL_PROVIDER_load(nullptr, "base") == nullptr) {
    return Refuse("cannot load OpenSSL's base provider next to the FIPS provider");
  }
  if (EVP_default_properties_enable_fips(nullptr, 1) != 1) {
    return Refuse("cannot make fips=yes the default property query");
  }
  if (!CanFetch()) return Refuse("the FIPS provider offers no AES-256-GCM or SHA-256");
  SetCryptoEngine(CryptoEngine::kOpenSslOnly);
  return absl::OkStatus();
}

bool FipsEnabled() { return EVP_default_properties_is_fips_enabled(nullptr) == 1; }

}  // namespace kmsplugin
