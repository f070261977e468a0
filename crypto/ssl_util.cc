#include "crypto/ssl_util.h"

#include <openssl/err.h>

namespace kmsplugin::internal {

std::string SslErrorString() {
  unsigned long err = ERR_get_error();
  ERR_clear_error();
  if (err == 0) return "no OpenSSL error queued";
  char buf[256];
  ERR_error_string_n(err, buf, sizeof(buf));
  return buf;
}

}  // namespace kmsplugin::internal
