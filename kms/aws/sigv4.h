// AWS Signature Version 4 (AWS4-HMAC-SHA256), header form, written from the published algorithm
// (remote-kms-apis.md §3) and checked step by step against AWS's signing test suite.
//
//   canonical request -> string to sign -> signing key (kDate→kRegion→kService→kSigning)
//   -> signature -> Authorization header
//
// Pure functions, thread-safe. The signing-key chain is secret (it is derived from the secret
// access key) and is held only in SecretBytes; the outputs (canonical request, string to sign,
// signature, headers) are public, except the X-Amz-Security-Token header value, which is the
// session token itself.
#ifndef KMSP_KMS_AWS_SIGV4_H_
#define KMSP_KMS_AWS_SIGV4_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "kms/aws/credentials.h"
#include "kms/http_client.h"

namespace kmsplugin::aws {

struct SigV4Request {
  std::string method;  // "GET", "POST", …
  // The path as the application sees it, NOT percent-encoded ("/example space/"); the signer
  // normalises it (unless normalize_path is false) and encodes each segment once.
  std::string path = "/";
  // The raw query string without '?', as on the wire (may hold %XX escapes or raw UTF-8).
  std::string query;
  // Headers to sign, in arrival order; repeated names are allowed. Must include Host.
  std::vector<HttpHeader> headers;
  std::string_view payload;  // Request body (hashed, not copied).
};

struct SigV4Options {
  std::string region;
  std::string service;
  absl::Time time;  // Signing time (UTC).
  bool normalize_path =
      true;  // Remove "." / ".." segments and repeated '/' (every non-S3 service).
  // Add X-Amz-Security-Token (when the credentials have a session token) before signing, so it is
  // signed (what AWS SDKs do); false adds it after signing, unsigned.
  bool sign_session_token = true;
  // Add and sign X-Amz-Content-Sha256 (S3 style; not needed for KMS or STS).
  bool add_content_sha256_header = false;
};

// Every intermediate step, for tests. With a session token, canonical_request and
// headers_to_add contain the token: never log them. canonical_request is built directly in
// SecretBytes (no std::string ever holds it); headers_to_add values are wiped on destruction.
struct SigV4Result {
  SigV4Result() = default;
  ~SigV4Result();
  SigV4Result(SigV4Result&&) = default;
  SigV4Result& operator=(SigV4Result&&) = default;

  std::string amz_date;  // YYYYMMDD'T'HHMMSS'Z'
  SecretBytes canonical_request;  // Holds the session token when it is signed.
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-date"
  std::string signature;       // 64 lower-case hex
  std::string authorization;   // The Authorization header value.
  // Headers to add to the request, in this order: X-Amz-Date, [X-Amz-Content-Sha256],
  // [X-Amz-Security-Token], Authorization (the token's value is secret: never log these).
  std::vector<HttpHeader> headers_to_add;
};

// INVALID_ARGUMENT for an empty access key id, secret, region or service, or a request without a
// Host header; INTERNAL on an HMAC failure.
absl::StatusOr<SigV4Result> SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                                   const SigV4Options& options);

// Pieces exposed for tests and for the STS form encoder.
std::string UriEncode(std::string_view bytes, bool encode_slash);
std::string CanonicalUri(std::string_view path, bool normalize);
std::string CanonicalQueryString(std::string_view query);
std::string AmzDate(absl::Time t);

}  // namespace kmsplugin::aws

#endif  // KMSP_KMS_AWS_SIGV4_H_
