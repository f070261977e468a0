"""Microsoft Entra and IMDS token endpoints of the fake Azure server (remote-kms-apis.md §6.5).

  GET  /<tenant>/v2.0/.well-known/openid-configuration      OIDC discovery (MSAL reads it)
  POST /<tenant>/oauth2/v2.0/token                           client_credentials grant with
       client_secret, or client_assertion (+ client_assertion_type jwt-bearer); scope
       "<resource>/.default"; the client id and secret / assertion must be configured
       (POST /admin/entra)
  GET  /metadata/identity/oauth2/token?resource=…[&client_id=…]   IMDS: "Metadata: true"
       required; numbers in the answer are strings and it names the `resource`

Each returns (status, body) or raises OAuthError. Tokens are recorded in State.tokens with their
audience; the request log names the grant and client id, never a secret, assertion or token.
"""

import time
from urllib.parse import parse_qs

from fake_azure_state import HSM_RESOURCE, VAULT_RESOURCE, OAuthError

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUDIENCES = (VAULT_RESOURCE, HSM_RESOURCE)


def openid_configuration(state, base, tenant):
    if tenant != state.tenant:
        raise OAuthError(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.",
                         90002)
    issuer = f"{base}/{tenant}/v2.0"
    return 200, {"token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                 "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                 "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
                 "issuer": issuer, "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                 "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                           "private_key_jwt"],
                 "response_types_supported": ["code", "id_token", "token"],
                 "tenant_region_scope": "EU"}


def _audience_of_scope(scope):
    for s in (scope or "").split():
        if s.endswith("/.default") and s[:-len("/.default")].rstrip("/") in AUDIENCES:
            return s[:-len("/.default")].rstrip("/")
    raise OAuthError(400, "invalid_scope",
                     f"AADSTS70011: The provided value for the input parameter 'scope' is not "
                     f"valid. The scope {scope} is not valid.", 70011)


def token(state, tenant, body, entry):
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    client_id = form.get("client_id", "")
    entry.update({"op": "entra-token", "client_id": client_id,
                  "grant_type": form.get("grant_type"), "scope": form.get("scope")})
    if tenant != state.tenant:
        raise OAuthError(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.",
                         90002)
    if form.get("grant_type") != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", "AADSTS70003: unsupported grant type",
                         70003)
    app = state.apps.get(client_id)
    if app is None:
        raise OAuthError(400, "unauthorized_client",
                         f"AADSTS700016: Application with identifier '{client_id}' was not found "
                         "in the directory.", 700016)
    if "client_assertion" in form:
        entry["credential"] = "assertion"
        if form.get("client_assertion_type") != JWT_BEARER:
            raise OAuthError(400, "invalid_request", "AADSTS50027: bad client_assertion_type",
                             50027)
        if app.get("assertion") is None or form["client_assertion"] != app["assertion"]:
            raise OAuthError(401, "invalid_client",
                             "AADSTS700024: Client assertion is not within its valid time range "
                             "or does not match a federated identity credential.", 700024)
    elif "client_secret" in form:
        entry["credential"] = "secret"
        if app.get("secret") is None or form["client_secret"] != app["secret"]:
            raise OAuthError(401, "invalid_client",
                             "AADSTS7000215: Invalid client secret provided.", 7000215)
    else:
        raise OAuthError(401, "invalid_client", "AADSTS7000218: no client credential", 7000218)
    audience = _audience_of_scope(form.get("scope"))
    expires_in = int(app.get("expires_in", 3599))
    issued = state.issue_token(audience, client_id, entry["credential"], expires_in)
    return 200, {"token_type": "Bearer", "expires_in": expires_in,
                 "ext_expires_in": expires_in, "access_token": issued}


def imds(state, query, headers, entry):
    q = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    client_id = q.get("client_id", "")
    entry.update({"op": "imds-token", "client_id": client_id, "resource": q.get("resource"),
                  "metadata_header": headers.get("metadata")})
    if headers.get("metadata", "").lower() != "true":
        raise OAuthError(400, "invalid_request", "Required metadata header not specified")
    if not state.imds["enabled"]:
        raise OAuthError(404, "not_found", "no managed identity on this machine")
    if "api-version" not in q:
        raise OAuthError(400, "invalid_request", "Required query variable 'api-version' is missing")
    resource = (q.get("resource") or "").rstrip("/")
    if resource.endswith("/.default"):
        raise OAuthError(400, "invalid_resource", "resource must not be a scope")
    if resource not in AUDIENCES:
        raise OAuthError(400, "invalid_resource",
                         f"AADSTS500011: The resource principal named {resource} was not found.")
    ids = state.imds["client_ids"]
    client_id = client_id or ids[0]
    if client_id not in ids:
        raise OAuthError(400, "invalid_request", "Identity not found")
    expires_in = int(state.imds["expires_in"])
    issued = state.issue_token(resource, client_id, "imds", expires_in)
    now = int(time.time())
    return 200, {"access_token": issued, "client_id": client_id,
                 "expires_in": str(expires_in), "expires_on": str(now + expires_in),
                 "ext_expires_in": str(expires_in), "not_before": str(now),
                 "resource": q.get("resource"), "token_type": "Bearer"}
