// AccessToken and TokenSource: OAuth 2.0 bearer tokens for the backends that authenticate with
// one (Google Cloud KMS, Azure Key Vault), on the credential machinery shared with AWS
// (kms/credential_source.h): the same chain (ChainTokenSource) and the same refresh-before-expiry
// cache (RefreshingTokenSource).
//
// The token lives only in SecretBytes; `source` ("service-account-file", "metadata-server",
// "client-secret", …) and `identity` (a service account e-mail, a client id) are public and may be
// logged.
#ifndef KMSP_KMS_BEARER_ACCESS_TOKEN_H_
#define KMSP_KMS_BEARER_ACCESS_TOKEN_H_

#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "base/printable.h"
#include "crypto/secret_bytes.h"
#include "kms/credential_source.h"

namespace kmsplugin {

struct AccessToken {
  SecretBytes token;
  absl::Time expiration = absl::InfiniteFuture();  // InfiniteFuture(): does not expire.
  std::string source;                              // The source's name, public.
  std::string identity;  // Public: service account e-mail, client id; may be empty.

  static constexpr std::string_view kKind = "access token";
  AccessToken Clone() const { return AccessToken{token.Clone(), expiration, source, identity}; }
  std::string PublicId() const {
    return identity.empty() ? std::string("identity not named") : "identity " + Printable(identity);
  }
};

// A source of bearer tokens; failure codes in kms/credential_source.h. Thread-safe.
using TokenSource = CredentialSource<AccessToken>;
// Sources tried in order; the first configured one decides (kms/credential_source.h).
using ChainTokenSource = ChainSource<AccessToken>;
// Refreshes the inner source's token before it expires (kms/credential_source.h).
using RefreshingTokenSource = RefreshingSource<AccessToken>;

}  // namespace kmsplugin

#endif  // KMSP_KMS_BEARER_ACCESS_TOKEN_H_
