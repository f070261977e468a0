#!/usr/bin/python3
"""A local AWS-compatible test server: KMS, STS web identity, container credentials and IMDSv2.

Loopback only. Run with Debian's /usr/bin/python3 (python3-botocore, python3-cryptography).

    fake_aws_server.py --state-dir DIR [--region us-east-1] [--account 111122223333]

On start it makes a throwaway CA and a server certificate for 127.0.0.1/localhost in DIR, listens on
two ports and then writes DIR/server.json and the same JSON as one line on stdout:
    {"https_port": N, "http_port": M, "ca_file": "DIR/ca.pem", "pid": P, ...}
It exits when its stdin closes (so a crashed test cannot leak it) or on SIGTERM.
  - https_port: KMS (JSON 1.1, X-Amz-Target: TrentService.*) and STS (query protocol,
    Action=AssumeRoleWithWebIdentity), TLS with the server certificate.
  - http_port: container credentials (GET /v1/credentials), IMDSv2 (/latest/...) and the admin API
    (/admin/...), plain HTTP as on AWS.

Every KMS request's SigV4 signature is recomputed with botocore's SigV4Auth (an implementation
independent of the plugin's) over exactly the headers the client says it signed; mismatches,
unknown keys, missing or wrong session tokens, expired credentials, skewed clocks and wrong scopes
are refused with AWS's error shapes ({"__type": ..., "message": ...} and the HTTP status codes of
the KMS model).

Ciphertext blobs carry the key id and the key material id, and are AES-256-GCM under that
material with the encryption context as AAD, so decryption after rotation and context checks behave
as in AWS. Secrets never appear in the request log (GET /admin/requests).

One module per service, all on one State (fake_aws_state.py): fake_kms.py, fake_sts.py,
fake_imds.py (container credentials and IMDSv2) and fake_aws_admin.py; this file is the entry
point, the HTTP(S) listeners and the dispatch.

Admin API (JSON bodies, http_port):
  POST /admin/reset                         back to the initial state (one static key pair)
  POST /admin/keys {"alias": "k8s", "report_material_ids": true}  -> {"key_id", "arn"}
  POST /admin/keys/<key id>/{disable,enable,rotate,schedule-deletion}
  POST /admin/keys/<key id>/state {"state": "Unavailable"}   any KMS KeyState (Creating, Updating,
                                            Unavailable, PendingImport, ...); crypto operations
                                            on a key that is not Enabled are refused as AWS does
  POST /admin/credentials {"access_key", "secret", "token"?, "expires_in"?}
  POST /admin/credentials/expire {"access_key"}
  POST /admin/deny {"ops": ["Decrypt", ...]}     AccessDeniedException for those KMS operations
  POST /admin/faults {"service": "kms|sts|container|imds", "op": "*|Encrypt|...",
                      "kind": "throttle|internal|http500|dependency-timeout|drop|latency",
                      "count": N (-1 = until cleared), "delay_ms": D}
  POST /admin/faults/clear
  POST /admin/sts {"role_arn", "token", "duration"}       what AssumeRoleWithWebIdentity accepts
  POST /admin/container {"path", "token"?, "duration"}    the container credentials endpoint
  POST /admin/imds {"role", "duration"}                   the instance role
  GET  /admin/requests, POST /admin/requests/clear        request log (no secrets)
"""

import argparse
import datetime
import json
import os
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import fake_aws_admin
import fake_imds
import fake_kms
import fake_sts
from fake_aws_state import AwsError, DropConnection, State, utcnow


class FakeHandler(BaseHTTPRequestHandler):
    """What the fake AWS and Vault servers' handlers share: HTTP/1.1, no log lines (the request
    log is /admin/requests), the server's State and a dropped connection (RST)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    @property
    def state(self):
        return self.server.state

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass


class Handler(FakeHandler):
    server_version = "FakeAWS/1.0"

    def _headers(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body, content_type, extra=None):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        # The id handle_https_post logged for this request (so a test can match it), else fresh.
        self.send_header("x-amzn-RequestId", getattr(self, "request_id", None) or str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj), "application/json")

    def apply_fault(self, service, op):
        """Sleeps or raises for an injected fault; returns normally otherwise."""
        fault = self.state.take_fault(service, op)
        if fault is None:
            return
        kind = fault["kind"]
        if kind == "latency":
            time.sleep(fault.get("delay_ms", 0) / 1000.0)
            return
        if kind == "drop":
            raise DropConnection()
        if service == "kms":
            if kind == "throttle":
                raise AwsError("ThrottlingException", 400,
                               "You have exceeded the rate at which you may call KMS. Reduce the "
                               "frequency of your calls.")
            if kind == "internal":
                raise AwsError("KMSInternalException", 500, "An internal error occurred.")
            if kind == "dependency-timeout":
                raise AwsError("DependencyTimeoutException", 503, "The service timed out.")
        raise AwsError("InternalFailure", 500, "injected HTTP 500")

    def _error(self, e, service):
        if service == "sts":
            fake_sts.send_error(self, e)
        elif service == "kms":
            fake_kms.send_error(self, e)
        else:
            self.send_json(e.status, {"Code": e.code, "Message": e.message})

    # --- HTTPS: KMS and STS ---------------------------------------------------------------------

    def handle_https_post(self):
        headers = self._headers()
        body = self._body()
        parts = urlsplit(self.path)
        target = headers.get("x-amz-target", "")
        service = "kms" if target.startswith("TrentService.") else "sts"
        self.request_id = str(uuid.uuid4())  # Sent as x-amzn-RequestId and kept in the log.
        try:
            if service == "kms":
                fake_kms.handle(self, parts, headers, body, target[len("TrentService."):])
            else:
                fake_sts.handle(self, headers, body)
        except DropConnection:
            self._drop()
        except AwsError as e:
            self.state.log({"service": service, "op": target[len("TrentService."):] or "sts",
                            "error": e.code, "request_id": self.request_id})
            self._error(e, service)

    # --- HTTP: container credentials, IMDS, admin ----------------------------------------------

    def handle_http(self, method):
        headers = self._headers()
        body = self._body()
        path = urlsplit(self.path).path
        try:
            if path.startswith("/admin/"):
                return fake_aws_admin.handle(self, method, path, body)
            if path.startswith("/latest/"):
                return fake_imds.handle_imds(self, method, path, headers)
            return fake_imds.handle_container(self, method, path, headers)
        except DropConnection:
            self._drop()
        except AwsError as e:
            self._error(e, "http")

class HttpsHandler(Handler):
    def do_POST(self):
        self.handle_https_post()


class PlainHandler(Handler):
    def do_GET(self):
        self.handle_http("GET")

    def do_POST(self):
        self.handle_http("POST")

    def do_PUT(self):
        self.handle_http("PUT")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler, state, ssl_context=None):
        super().__init__(("127.0.0.1", 0), handler)
        self.state = state
        self.ssl_context = ssl_context

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            # The handshake happens in the handler thread (do_handshake_on_connect on first I/O).
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass  # Dropped connections and TLS failures are part of the tests.


def make_certificates(state_dir):
    now = utcnow()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-aws test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = os.path.join(state_dir, "ca.pem")
    cert_file = os.path.join(state_dir, "server.pem")
    key_file = os.path.join(state_dir, "server.key")
    with open(ca_file, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return ca_file, cert_file, key_file


def start_servers(https_handler, plain_handler, state, state_dir, configure_tls=None):
    """The shared start of every fake (AWS, Vault, GCP, Azure): a test CA and server certificate
    in state_dir, then an HTTPS and a plain-HTTP server on loopback ports sharing `state`, each
    serving on its own thread (server.tls tells them apart). configure_tls(context), when given,
    adjusts the HTTPS context first (client certificates). Returns (https, plain, ca_file)."""
    os.makedirs(state_dir, exist_ok=True)
    ca_file, cert_file, key_file = make_certificates(state_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    if configure_tls is not None:
        configure_tls(context)
    https = Server(https_handler, state, context)
    plain = Server(plain_handler, state)
    https.tls, plain.tls = True, False
    for srv in (https, plain):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    return https, plain, ca_file


def announce_and_wait(info):
    """Writes the ready line (one JSON object) the parent waits for, then serves until the parent
    goes away (stdin closes), so that no test can leak a server."""
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="111122223333")
    args = parser.parse_args()
    state = State(args.region, args.account)
    https, plain, ca_file = start_servers(HttpsHandler, PlainHandler, state, args.state_dir)
    info = {"https_port": https.server_address[1], "http_port": plain.server_address[1],
            "ca_file": ca_file, "pid": os.getpid(), "region": args.region,
            "account": args.account}
    tmp = os.path.join(args.state_dir, "server.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, os.path.join(args.state_dir, "server.json"))
    # The same line on stdout: the parent waits on it instead of polling the file.
    announce_and_wait(info)


if __name__ == "__main__":
    main()
