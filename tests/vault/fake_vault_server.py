#!/usr/bin/python3
"""A local Vault-compatible test server: Transit, token self-operations, AppRole and
Kubernetes/JWT login, following Vault's published HTTP API (remote-kms-apis.md §4).

Loopback only. Run with Debian's /usr/bin/python3 (python3-cryptography).

    fake_vault_server.py --state-dir DIR

On start it makes a throwaway CA and a server certificate for 127.0.0.1/localhost in DIR (the
fake AWS server's helper), listens on two ports and writes one JSON line on stdout:
    {"https_port": N, "http_port": M, "ca_file": "DIR/ca.pem", "root_token": "hvs.…", "pid": P}
It exits when its stdin closes (so a crashed test cannot leak it) or on SIGTERM.
  - https_port: the Vault API under /v1/ (TLS), plain http is not served there;
  - http_port: the same Vault API (for the http:// refusal tests) and the admin API (/admin/...).

Transit ciphertexts are "vault:v<N>:" + base64(nonce(12) || AES-256-GCM ciphertext || tag), one
random key per version, with the associated data as GCM AAD. Errors are {"errors": [...]} with
Vault's status codes; a sealed server answers 503 {"errors": ["Vault is sealed"]}. Tokens are
"hvs." + random; the request log (GET /admin/requests) holds no token, secret id, jwt or plaintext.

Admin API (JSON bodies, http_port):
  POST /admin/reset                                   back to the initial state (root token kept)
  POST /admin/keys {"name", "mount"?, "namespace"?}   create a transit key (version 1)
  POST /admin/keys/rotate {"name", ...}               add a version -> {"latest_version"}
  POST /admin/keys/config {"name", "min_decryption_version", ...}
  POST /admin/keys/disable {"name", "disabled": true} every operation on the key: 403
  POST /admin/keys/delete {"name", ...}               the key is gone (read: 404)
  POST /admin/tokens {"keys": ["transit/k8s"], "rotate"?, "ttl"?, "max_ttl"?, "renewable"?}
                                                      -> {"token", "accessor"}
  POST /admin/tokens/revoke {"token"} or {"all": true}   revoke one token or every non-root one
  POST /admin/approle {"mount"?, "role_id", "secret_id", token params}
  POST /admin/k8s {"mount"?, "role", "jwt", token params}
  POST /admin/seal {"sealed": true|false}
  POST /admin/faults {"kind": "429|500|502|412|standby|no-active|drop", "count": N (-1: until
                      cleared), "path": "*" or a /v1/-relative prefix}
  POST /admin/faults/clear
  GET  /admin/requests, POST /admin/requests/clear    request log; GET /admin/stats
"""

import argparse
import json
import os
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aws"))
from fake_aws_server import Server, make_certificates  # noqa: E402  (the shared TLS harness)

import fake_vault_admin  # noqa: E402
import fake_vault_api  # noqa: E402
from fake_vault_state import DropConnection, State, VaultError  # noqa: E402

FAULTS = {"429": (429, "request path: rate limit quota exceeded"),
          "500": (500, "internal error"), "502": (502, "upstream error"),
          "412": (412, "required index state not present"),
          "no-active": (503, "no active Vault instance found")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeVault/1.0"

    def log_message(self, fmt, *args):  # Quiet: the request log is /admin/requests.
        pass

    @property
    def state(self):
        return self.server.state

    def send_json(self, status, obj, headers=None):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass

    def _fault(self, path):
        fault = self.state.take_fault(path)
        if fault is None:
            return
        kind = fault["kind"]
        if kind == "drop":
            raise DropConnection()
        if kind == "standby":
            active = f"https://127.0.0.1:{self.server.active_port}/v1/{path}"
            raise VaultError(307, headers={"Location": active})
        status, message = FAULTS[kind]
        raise VaultError(status, message)

    def _serve(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path = urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        if path.startswith("/admin/") and not self.server.tls:
            try:
                return fake_vault_admin.handle(self, method, path, body)
            except VaultError as e:
                return self.send_json(e.status, {"errors": e.messages})
        if not path.startswith("/v1/"):
            return self.send_json(404, {"errors": []})
        path = path[len("/v1/"):]
        entry = {"method": method, "path": path, "tls": self.server.tls,
                 "vault_request": headers.get("x-vault-request") == "true"}
        try:
            with self.state.lock:
                self._fault(path)
                if self.state.sealed:
                    raise VaultError(503, "Vault is sealed")
                req = json.loads(body or b"{}") if method != "GET" else {}
                if not isinstance(req, dict):
                    raise VaultError(400, "failed to parse JSON input")
                status, obj = fake_vault_api.handle(self.state, method, path, headers, req, entry)
                entry["status"] = status
                self.state.log(entry)
            self.send_json(status, obj)
        except DropConnection:
            self._drop()
        except VaultError as e:
            with self.state.lock:
                entry.update({"status": e.status, "error": "; ".join(e.messages)})
                self.state.log(entry)
            self.send_json(e.status, {"errors": e.messages}, e.headers)
        except (ValueError, KeyError, TypeError) as e:
            self.send_json(400, {"errors": [f"bad request: {type(e).__name__}"]})

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_LIST(self):
        self._serve("LIST")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    ca_file, cert_file, key_file = make_certificates(args.state_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    state = State()
    https = Server(Handler, state, context)
    plain = Server(Handler, state)
    https.tls, plain.tls = True, False
    for srv in (https, plain):
        srv.active_port = https.server_address[1]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    info = {"https_port": https.server_address[1], "http_port": plain.server_address[1],
            "ca_file": ca_file, "root_token": state.root.id, "pid": os.getpid()}
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()  # Exit when the parent goes away.
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
