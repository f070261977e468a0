#!/usr/bin/python3
"""A local Google Cloud test server: Cloud KMS REST v1, the OAuth 2.0 token endpoint of
service-account keys, STS token exchange, IAM Credentials impersonation and the GCE metadata
server, following the published APIs (remote-kms-apis.md §5).

Loopback only. Run with Debian's /usr/bin/python3 (python3-cryptography).

    fake_gcp_server.py --state-dir DIR

On start it makes a throwaway CA and a server certificate for 127.0.0.1/localhost in DIR (the
fake AWS server's helper) and a service-account key file DIR/service_account.json (RSA-2048,
token_uri https://127.0.0.1:<https_port>/token), listens on two ports and writes one JSON line:
    {"https_port", "http_port", "ca_file", "sa_key_file", "sa_email", "impersonated_email",
     "metadata_email", "sts_audience", "project", "pid"}
It exits when its stdin closes (so a crashed test cannot leak it) or on SIGTERM.
  - https_port: Cloud KMS under /v1/projects/..., the token endpoint POST /token, STS
    POST /v1/token, IAM POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken.
  - http_port: the same token endpoint, the metadata server (GET / and /computeMetadata/v1/...,
    plain http as on GCE; GCE_METADATA_HOST=127.0.0.1:<http_port>) and the admin API.

Ciphertexts are magic || version (4 bytes) || nonce(12) || AES-256-GCM under that version's
random key, with the CryptoKey name and the AAD as GCM associated data: a ciphertext decrypts
only under its CryptoKey with the same AAD, and names its version. Errors are google.rpc JSON
({"error": {"code", "message", "status"}}) with Cloud KMS's HTTP codes; OAuth endpoints answer
{"error", "error_description"}. Every KMS call needs a Bearer token this server issued. The
request log (GET /admin/requests) holds no token, assertion, key or plaintext.

Admin API (JSON bodies, http_port; fake_gcp_admin.py):
  POST /admin/reset                        no keys, no tokens, no faults (accounts kept)
  POST /admin/keys {"name"}                a CryptoKey, version 1 primary -> the key
  POST /admin/keys/rotate {"name"}         a new version made primary -> the key
  POST /admin/keys/get {"name"}            the key with every version
  POST /admin/versions/state {"name": version name, "state": "DISABLED"|"ENABLED"|...}
  POST /admin/deny {"ops": {"encrypt": "*"|identity, ...}}   403 PERMISSION_DENIED; {} clears
  POST /admin/faults {"op": "*"|"encrypt"|"decrypt"|"get"|"token"|"sts"|"generateAccessToken"|
                      "metadata-token"|..., "kind": "503|429|500|drop", "count": N (-1: until
                      cleared)}
  POST /admin/corrupt {"field": "ciphertextCrc32c"|"plaintextCrc32c"|"verifiedPlaintextCrc32c"|
                       "verifiedAdditionalAuthenticatedDataCrc32c"|"name", "count": N}
  POST /admin/faults/clear                 faults and corruptions
  POST /admin/tokens/expire                every issued access token answers 401 from now
  POST /admin/token-lifetime {"seconds"}   lifetime of tokens issued from now on
  POST /admin/sts {"subject_token"}        a subject token STS accepts (audience: sts_audience)
  POST /admin/service-accounts {"email", "token_uri"?}  -> a new key file's JSON
  GET  /admin/requests, POST /admin/requests/clear, GET /admin/stats {"ops": {op: successes}}
"""

import argparse
import json
import os
import re
import sys
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aws"))
from fake_aws_server import FakeHandler, announce_and_wait, start_servers  # noqa: E402

import fake_gcp_admin  # noqa: E402
import fake_gcp_auth  # noqa: E402
import fake_gcp_kms  # noqa: E402
from fake_gcp_state import (IMPERSONATED_EMAIL, METADATA_EMAIL, PROJECT, SA_EMAIL,  # noqa: E402
                            STS_AUDIENCE, DropConnection, GcpError, OAuthError, State,
                            new_service_account_key)

FAULTS = {"503": (503, "UNAVAILABLE", "The service is currently unavailable."),
          "429": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Cryptographic "
                                             "requests'."),
          "500": (500, "INTERNAL", "Internal error encountered.")}


class Handler(FakeHandler):
    server_version = "FakeGCP/1.0"

    def send_body(self, status, obj, headers=None):
        if isinstance(obj, (dict, list)):
            data, ctype = json.dumps(obj).encode(), "application/json"
        else:
            data, ctype = str(obj).encode(), "application/text"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if not self.server.tls:
            self.send_header("Metadata-Flavor", "Google")  # Every metadata server answer.
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, obj):
        self.send_body(status, obj)

    def _fault(self, op, oauth):
        fault = self.state.take(self.state.faults, "op", op)
        if fault is None:
            return
        if fault["kind"] == "drop":
            raise DropConnection()
        status, code, message = FAULTS[fault["kind"]]
        if oauth:
            raise OAuthError(status, "temporarily_unavailable" if status != 500 else
                             "internal_failure", message)
        raise GcpError(status, code, message)

    def _dispatch(self, method, path, query, headers, body, entry):
        """-> (status, answer); raises GcpError/OAuthError/DropConnection."""
        st = self.state
        if method == "POST" and path == "/token":
            self._fault("token", True)
            return fake_gcp_auth.token(st, headers, body, entry)
        if not self.server.tls:
            self._fault("metadata-token" if path.endswith("/token") else "metadata", True)
            return fake_gcp_auth.metadata(st, path, query, headers, entry)
        if method == "POST" and path == "/v1/token":
            self._fault("sts", True)
            return fake_gcp_auth.sts(st, headers, body, entry)
        req = json.loads(body or b"{}") if method in ("POST", "PATCH") else {}
        if not isinstance(req, dict):
            raise GcpError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if re.fullmatch(fake_gcp_auth.IMPERSONATE_RE, path[1:]):
            self._fault("generateAccessToken", False)
            return fake_gcp_auth.impersonate(st, path[1:], headers, req, entry)
        if not path.startswith("/v1/"):
            raise GcpError(404, "NOT_FOUND", "Not found.")
        op, _ = fake_gcp_kms.route(method, path[len("/v1/"):])
        self._fault(op or "unknown", False)
        headers[":query"] = query
        return fake_gcp_kms.handle(st, method, path[len("/v1/"):], headers, req, entry)

    def _serve(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        parts = urlsplit(self.path)
        path = parts.path
        headers = {k.lower(): v for k, v in self.headers.items()}
        if path.startswith("/admin/") and not self.server.tls:
            try:
                return fake_gcp_admin.handle(self, method, path, body)
            except GcpError as e:
                return self.send_body(e.http, e.body())
        entry = {"method": method, "path": path, "tls": self.server.tls, "op": "unknown",
                 "user_project": headers.get("x-goog-user-project")}
        try:
            with self.state.lock:
                status, answer = self._dispatch(method, path, parts.query, headers, body, entry)
                entry["status"] = status
                self.state.log(entry)
            self.send_body(status, answer)
        except DropConnection:
            self._drop()
        except (GcpError, OAuthError) as e:
            with self.state.lock:
                entry.update({"status": e.http, "error": getattr(e, "code", None) or e.error})
                self.state.log(entry)
            if isinstance(e, GcpError):
                self.send_body(e.http, e.body(), e.headers)
            else:
                self.send_body(e.http, {"error": e.error, "error_description": e.description})
        except (ValueError, KeyError, TypeError) as e:
            self.send_body(400, GcpError(400, "INVALID_ARGUMENT",
                                         f"bad request: {type(e).__name__}").body())

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PATCH(self):
        self._serve("PATCH")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    state = State()
    https, plain, ca_file = start_servers(Handler, Handler, state, args.state_dir)
    https_port, http_port = https.server_address[1], plain.server_address[1]
    state.token_uris = {f"https://127.0.0.1:{https_port}/token",
                        f"http://127.0.0.1:{http_port}/token"}
    sa, key_info = new_service_account_key(SA_EMAIL, f"https://127.0.0.1:{https_port}/token")
    state.service_accounts[sa.email] = sa
    sa_key_file = os.path.join(args.state_dir, "service_account.json")
    with open(os.open(sa_key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(key_info, f)
    info = {"https_port": https_port, "http_port": http_port, "ca_file": ca_file,
            "sa_key_file": sa_key_file, "sa_email": SA_EMAIL,
            "impersonated_email": IMPERSONATED_EMAIL, "metadata_email": METADATA_EMAIL,
            "sts_audience": STS_AUDIENCE, "project": PROJECT, "pid": os.getpid()}
    announce_and_wait(info)


if __name__ == "__main__":
    main()
