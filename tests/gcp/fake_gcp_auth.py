"""The token side of the fake Google Cloud server (remote-kms-apis.md §5.7):

  - POST /token (OAuth 2.0 JWT bearer grant, RFC 7523): the assertion's RS256 signature is
    verified with the public key of the service account it names (kid = private_key_id,
    iss = client_email), and its claims are checked: aud is one of this server's token URLs or
    https://oauth2.googleapis.com/token, iat not in the future, exp after now and at most one hour
    after iat, a scope present. base64url segments are accepted padded (google-auth 1.5.1) or not.
  - POST /v1/token (STS token exchange, RFC 8693, as sts.googleapis.com): the subject token must
    be one the test registered, with the workload identity pool audience.
  - POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken (IAM Credentials
    impersonation), with a Bearer token from STS (or any token the fake issued).
  - GET /computeMetadata/v1/... (the GCE metadata server, plain http): tokens for `default` and
    the account's e-mail, the recursive identity, the project id; Metadata-Flavor: Google needed.

OAuth-style endpoints raise OAuthError ({"error", "error_description"}); IAM raises GcpError."""

import base64
import json
import re
import time
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fake_gcp_state import PROJECT, STS_AUDIENCE, GcpError, OAuthError

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = {"urn:ietf:params:oauth:token-type:jwt",
                       "urn:ietf:params:oauth:token-type:id_token"}
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPES = {"https://www.googleapis.com/auth/cloudkms",
          "https://www.googleapis.com/auth/cloud-platform"}
IMPERSONATE_RE = r"v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken"


def _form(body):
    try:
        form = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError(400, "invalid_request", "the body is not a form") from None
    return {k: v[0] for k, v in form.items()}


def _b64url(segment):
    segment = segment.rstrip("=")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _verify_jwt(state, assertion, entry):
    """Checks the assertion; -> the ServiceAccount it signs for."""
    parts = assertion.split(".")
    if len(parts) != 3:
        raise OAuthError(400, "invalid_grant", "Invalid JWT: malformed.")
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, TypeError):
        raise OAuthError(400, "invalid_grant", "Invalid JWT: not base64url JSON.") from None
    entry["jwt_padded"] = any(p.endswith("=") for p in parts)
    if header.get("alg") != "RS256":
        raise OAuthError(400, "invalid_grant", "Invalid JWT: alg is not RS256.")
    sa = state.service_accounts.get(claims.get("iss"))
    if sa is None:
        raise OAuthError(400, "invalid_grant", "Invalid JWT: unknown issuer.")
    if header.get("kid") not in (None, sa.key_id):
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
    try:
        sa.public_key.verify(signature, (parts[0] + "." + parts[1]).encode(),
                             padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None
    now = time.time()
    if claims.get("aud") not in state.token_uris | {GOOGLE_TOKEN_URI}:
        raise OAuthError(400, "invalid_grant", "Invalid JWT: audience.")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or exp <= now or \
            exp - iat > 3600 or exp <= iat:
        raise OAuthError(400, "invalid_grant",
                         "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                         "reasonable timeframe.")
    scopes = set(str(claims.get("scope", "")).split())
    if not scopes & SCOPES:
        raise OAuthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience.")
    entry.update({"identity": sa.email, "scopes": sorted(scopes), "aud": claims["aud"],
                  "kid": header.get("kid")})
    return sa


def token(state, headers, body, entry):
    """POST /token: the service-account JWT bearer grant."""
    entry["op"] = "token"
    form = _form(body)
    if form.get("grant_type") != JWT_GRANT:
        raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type.")
    sa = _verify_jwt(state, form.get("assertion", ""), entry)
    tok, lifetime = state.issue_token(sa.email, "service-account")
    entry["lifetime"] = lifetime
    return 200, {"access_token": tok, "expires_in": lifetime, "token_type": "Bearer"}


def sts(state, headers, body, entry):
    """POST /v1/token: STS token exchange."""
    entry["op"] = "sts"
    form = _form(body)
    if form.get("grant_type") != TOKEN_EXCHANGE:
        raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type.")
    if form.get("requested_token_type") != ACCESS_TOKEN_TYPE:
        raise OAuthError(400, "invalid_request", "Invalid requested_token_type.")
    if form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES:
        raise OAuthError(400, "invalid_request", "Invalid subject_token_type.")
    if form.get("audience") != STS_AUDIENCE:
        raise OAuthError(400, "invalid_target", "The target service indicated by the "
                                                "\"audience\" parameters is invalid.")
    scopes = set(form.get("scope", "").split())
    if not scopes & SCOPES:
        raise OAuthError(400, "invalid_scope", "Invalid scope.")
    subject = form.get("subject_token", "")
    if subject not in state.sts_subject_tokens:
        raise OAuthError(400, "invalid_grant", "The provided subject token is invalid.")
    entry["identity"] = "federated:" + str(sorted(state.sts_subject_tokens).index(subject))
    tok, lifetime = state.issue_token(entry["identity"], "sts")
    return 200, {"access_token": tok, "issued_token_type": ACCESS_TOKEN_TYPE,
                 "token_type": "Bearer", "expires_in": str(lifetime)}


def impersonate(state, path, headers, req, entry):
    """POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken."""
    entry["op"] = "generateAccessToken"
    email = re.fullmatch(IMPERSONATE_RE, path).group(1)
    record = state.check_bearer(headers)
    entry.update({"caller": record["identity"], "identity": email})
    if state.denied.get("generateAccessToken") in ("*", record["identity"]) or \
            email not in state.impersonable:
        raise GcpError(403, "PERMISSION_DENIED",
                       "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or "
                       "it may not exist).")
    scope = req.get("scope")
    if not isinstance(scope, list) or not set(scope) & SCOPES:
        raise GcpError(400, "INVALID_ARGUMENT", "Scope required.")
    lifetime = str(req.get("lifetime", "3600s"))
    seconds = int(lifetime[:-1]) if re.fullmatch(r"\d+s", lifetime) else -1
    if not 0 < seconds <= 43200:
        raise GcpError(400, "INVALID_ARGUMENT", "Invalid lifetime.")
    tok, lifetime = state.issue_token(email, "impersonation", min(seconds, state.token_lifetime))
    expire = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lifetime))
    return 200, {"accessToken": tok, "expireTime": expire}


def metadata(state, path, query, headers, entry):
    """GET on the metadata server; -> (status, body (str or dict))."""
    entry["op"] = "metadata"
    if path == "/":
        return 200, ""
    if headers.get("metadata-flavor") != "Google":
        raise OAuthError(403, "forbidden", "Missing Metadata-Flavor:Google header.")
    prefix = "/computeMetadata/v1/"
    if not path.startswith(prefix):
        raise OAuthError(404, "not_found", "no such metadata")
    rest = path[len(prefix):]
    if rest == "project/project-id":
        return 200, PROJECT
    m = re.fullmatch(r"instance/service-accounts/([^/]+)/(token|email|)", rest)
    if m is None or m.group(1) not in ("default", state.metadata_email):
        raise OAuthError(404, "not_found", "no such metadata")
    if m.group(2) == "email":
        return 200, state.metadata_email
    if m.group(2) == "":
        if "recursive=true" not in query and "recursive=True" not in query:
            return 200, "aliases\nemail\nscopes\ntoken\n"
        return 200, {"aliases": ["default"], "email": state.metadata_email,
                     "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
    entry["op"] = "metadata-token"
    entry["identity"] = state.metadata_email
    tok, lifetime = state.issue_token(state.metadata_email, "metadata")
    return 200, {"access_token": tok, "expires_in": lifetime, "token_type": "Bearer"}
