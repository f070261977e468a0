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
Vault's status codes; a sealed server answers 503 {"errors": ["Vault is sealed"]}. Mutual TLS: a
client certificate is asked for (optional) and the CN of a verified one is logged; "client_cert"
and "client_key" in the JSON line name one the server trusts. Tokens are "hvs." + random; the request log (GET /admin/requests)
holds no token, secret id, jwt or plaintext.

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
import ssl
import sys
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aws"))
from fake_aws_server import FakeHandler, announce_and_wait, start_servers  # noqa: E402

import fake_vault_admin  # noqa: E402
import fake_vault_api  # noqa: E402
from fake_vault_state import DropConnection, State, VaultError  # noqa: E402

FAULTS = {"429": (429, "request path: rate limit quota exceeded"),
          "500": (500, "internal error"), "502": (502, "upstream error"),
          "412": (412, "required index state not present"),
          "no-active": (503, "no active Vault instance found")}


class Handler(FakeHandler):
    server_version = "FakeVault/1.0"

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

    def _client_cn(self):
        """The CN of the verified client certificate, or None."""
        cert = self.connection.getpeercert() if self.server.tls else None
        for rdn in (cert or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

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
                 "vault_request": headers.get("x-vault-request") == "true",
                 "client_cn": self._client_cn()}
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


def make_client_certificate(state_dir):
    """A client CA and one client certificate (CN kms-plugin) signed by it, for mutual TLS: the
    server asks for a client certificate (optional) and logs the CN of a verified one."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-vault client CA")])

    def build(subject, public_key, ca):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
             .public_key(public_key).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        return b.sign(ca_key, hashes.SHA256())

    files = {}
    for name, obj in (("client-ca.pem", build(ca_name, ca_key.public_key(), True)),
                      ("client.pem", build(x509.Name([x509.NameAttribute(
                          NameOID.COMMON_NAME, "kms-plugin")]), key.public_key(), False)),
                      ("client.key", key)):
        files[name] = os.path.join(state_dir, name)
        data = (obj.public_bytes(serialization.Encoding.PEM) if name.endswith(".pem") else
                obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
        with open(files[name], "wb") as f:
            f.write(data)
        os.chmod(files[name], 0o600)
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    client = make_client_certificate(args.state_dir)

    def ask_for_client_certificates(context):
        context.load_verify_locations(client["client-ca.pem"])
        context.verify_mode = ssl.CERT_OPTIONAL

    state = State()
    https, plain, ca_file = start_servers(Handler, Handler, state, args.state_dir,
                                          ask_for_client_certificates)
    for srv in (https, plain):
        srv.active_port = https.server_address[1]
    announce_and_wait({"https_port": https.server_address[1],
                       "http_port": plain.server_address[1], "ca_file": ca_file,
                       "root_token": state.root.id, "pid": os.getpid(),
                       "client_cert": client["client.pem"], "client_key": client["client.key"]})


if __name__ == "__main__":
    main()
