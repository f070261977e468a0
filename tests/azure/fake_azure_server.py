#!/usr/bin/python3
"""A local Azure-compatible test server: Key Vault / Managed HSM keys, Microsoft Entra's token
endpoint and Azure IMDS, following the published REST APIs (remote-kms-apis.md §6).

Loopback only. Run with Debian's /usr/bin/python3 (python3-cryptography).

    fake_azure_server.py --state-dir DIR [--tenant TENANT]

On start it makes a throwaway CA and a server certificate for 127.0.0.1/localhost in DIR (the fake
AWS server's helper), listens on two ports and writes one JSON line on stdout:
    {"https_port": N, "http_port": M, "ca_file": "DIR/ca.pem", "tenant": T, "pid": P}
It exits when its stdin closes (so a crashed test cannot leak it) or on SIGTERM.
  - https_port: Key Vault (/keys/...), Entra (/<tenant>/oauth2/v2.0/token and
    /<tenant>/v2.0/.well-known/openid-configuration) and IMDS (/metadata/identity/oauth2/token);
  - http_port: IMDS (plain http, as on Azure) and the admin API (/admin/...).

Key Vault requests need "Authorization: Bearer <token>" with a token this server issued for the
vault's resource (https://vault.azure.net unless POST /admin/resource changes it); without one the
answer is the challenge the SDKs rely on (§6.6): 401 {"error":{"code":"Unauthorized",...}} with
    WWW-Authenticate: Bearer authorization="https://127.0.0.1:<https_port>/<tenant>",
                      resource="https://vault.azure.net"
Every Key Vault answer carries x-ms-request-id (also in the request log); errors are
{"error": {"code", "message", "innererror": {"code"}}}. Key GET answers the public JWK with the
key's key_ops; Debian's SDK wraps locally with any RSA JWK it gets, so tests of the SDK deny "get"
(403) to make it call wrapkey. The request log (GET /admin/requests) and the per-operation counts
of successful calls (GET /admin/counts) hold no token, secret, assertion or key bytes.

Admin API (JSON bodies, http_port):
  POST /admin/reset                                  no keys, no apps, IMDS on, no faults
  POST /admin/keys {"name", "kty": "RSA|RSA-HSM|oct-HSM", "key_ops"?}  -> {"kid", "version", ...}
  POST /admin/keys/rotate {"name"}                   a new current version
  POST /admin/keys/enable {"name", "version"?, "enabled": false|true}   (all versions if none)
  POST /admin/keys/delete {"name"}                   the key is gone (404 KeyNotFound)
  POST /admin/resource {"resource"}                  e.g. https://managedhsm.azure.net
  POST /admin/entra {"client_id", "secret"?, "assertion"?, "expires_in"?}   an app registration
  POST /admin/imds {"enabled"?, "client_ids"?: [first = system-assigned], "expires_in"?}
  POST /admin/tokens {"resource"?, "expires_in"?} -> {"token"}   a token for test clients
  POST /admin/tokens/revoke                          every issued token stops working
  POST /admin/deny {"ops": ["get", "wrapkey", ...]}  403 ForbiddenByRbac for those operations
  POST /admin/faults {"kind": "429|500|503|drop", "op": "*"|op, "count": N (-1: until cleared),
                      "retry_after"?: seconds}       ops: get, versions, rotate, wrapkey,
                                                     unwrapkey, encrypt, decrypt, entra-token,
                                                     imds-token
  POST /admin/faults/clear
  GET  /admin/requests, GET /admin/counts, POST /admin/requests/clear
  GET  /admin/seeds -> {"seeds": [hex, ...]}          every value wrapped or encrypted (the data
                                                     keys), for the tests' leak scans
"""

import argparse
import json
import os
import sys
import uuid
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aws"))
from fake_aws_server import FakeHandler, announce_and_wait, start_servers  # noqa: E402

import fake_azure_admin  # noqa: E402
import fake_azure_entra  # noqa: E402
import fake_azure_vault  # noqa: E402
from fake_azure_state import (DEFAULT_TENANT, AzureError, DropConnection, OAuthError,  # noqa: E402
                              State)

FAULTS = {"429": (429, "Throttled", "Request was not processed because too many requests were "
                  "received. Reason: VaultRequestTypeLimitReached"),
          "500": (500, "InternalServerError", "An internal error occurred."),
          "503": (503, "ServiceUnavailable", "The service is unavailable.")}


class Handler(FakeHandler):
    server_version = "FakeAzure/1.0"

    def send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, op):
        fault = self.state.take_fault(op)
        if fault is None:
            return
        if fault["kind"] == "drop":
            raise DropConnection()
        status, code, message = FAULTS[fault["kind"]]
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        if op in ("entra-token", "imds-token"):
            raise OAuthError(status, "temporarily_unavailable", message)
        raise AzureError(status, code, message, headers=headers)

    def _challenge(self):
        authority = f"{self.server.vault_base}/{self.state.tenant}"
        return {"WWW-Authenticate":
                f'Bearer authorization="{authority}", resource="{self.state.resource}"'}

    def _vault(self, method, path, headers, body):
        request_id = str(uuid.uuid4())
        entry = {"method": method, "path": path, "request_id": request_id, "tls": True,
                 "authorized": False}
        rid = {"x-ms-request-id": request_id, "x-ms-keyvault-region": "westeurope"}
        st = self.state
        try:
            with st.lock:
                entry["op"] = fake_azure_vault.parse_path(path)[0]
                record = st.check_token(headers.get("authorization"))
                if record is None:
                    missing = "authorization" not in headers
                    raise AzureError(401, "Unauthorized",
                                     "AKV10000: Request is missing a Bearer or PoP token."
                                     if missing else "AKV10022: Invalid audience or token.",
                                     headers=self._challenge())
                entry.update({"authorized": True, "client_id": record["client_id"],
                              "token_source": record["source"]})
                self._fault(entry["op"])
                req = json.loads(body or b"{}") if method in ("POST", "PATCH") else {}
                if not isinstance(req, dict):
                    raise AzureError(400, "BadParameter", "the body is not a JSON object")
                status, obj = fake_azure_vault.handle(st, method, path, self.server.vault_base,
                                                      req, entry)
                entry["status"] = status
                st.log(entry)
            self.send_json(status, obj, rid)
        except DropConnection:
            self._drop()
        except AzureError as e:
            with st.lock:
                entry.update({"status": e.status, "error": e.code, "inner": e.inner})
                st.log(entry)
            self.send_json(e.status, e.body(), {**rid, **e.headers})
        except (ValueError, KeyError, TypeError) as e:
            self.send_json(400, {"error": {"code": "BadParameter", "message": type(e).__name__}},
                           rid)

    def _token_endpoint(self, method, parts, headers, body):
        st = self.state
        entry = {"method": method, "path": parts.path, "tls": self.server.tls}
        segments = parts.path.split("/")
        try:
            with st.lock:
                if parts.path == "/metadata/identity/oauth2/token" and method == "GET":
                    self._fault("imds-token")
                    status, obj = fake_azure_entra.imds(st, parts.query, headers, entry)
                elif (len(segments) == 5 and segments[2:] == ["oauth2", "v2.0", "token"]
                      and method == "POST" and self.server.tls):
                    self._fault("entra-token")
                    status, obj = fake_azure_entra.token(st, segments[1], body, entry)
                elif (parts.path.endswith("/v2.0/.well-known/openid-configuration")
                      and len(segments) == 5 and self.server.tls):
                    entry["op"] = "openid-configuration"
                    status, obj = fake_azure_entra.openid_configuration(
                        st, self.server.vault_base, segments[1])
                else:
                    entry["op"] = "unknown"
                    raise OAuthError(404, "not_found", "no such endpoint")
                entry["status"] = status
                st.log(entry)
            self.send_json(status, obj)
        except DropConnection:
            self._drop()
        except OAuthError as e:
            with st.lock:
                entry.update({"status": e.status, "error": e.error})
                st.log(entry)
            self.send_json(e.status, e.body())

    def _serve(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if parts.path.startswith("/admin/") and not self.server.tls:
            try:
                return fake_azure_admin.handle(self, method, parts.path, body)
            except AzureError as e:
                return self.send_json(e.status, e.body())
        if parts.path.startswith("/keys/") and self.server.tls:
            return self._vault(method, parts.path, headers, body)
        return self._token_endpoint(method, parts, headers, body)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PATCH(self):
        self._serve("PATCH")

    def do_DELETE(self):
        self._serve("DELETE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--tenant", default=DEFAULT_TENANT)
    args = parser.parse_args()
    state = State(args.tenant)
    https, plain, ca_file = start_servers(Handler, Handler, state, args.state_dir)
    for srv in (https, plain):
        srv.vault_base = f"https://127.0.0.1:{https.server_address[1]}"
    announce_and_wait({"https_port": https.server_address[1],
                       "http_port": plain.server_address[1], "ca_file": ca_file,
                       "tenant": args.tenant, "pid": os.getpid()})


if __name__ == "__main__":
    main()
