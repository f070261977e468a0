"""Shared state of the fake Google Cloud server (fake_gcp_server.py): Cloud KMS CryptoKeys and
their versions, service accounts, issued access tokens, STS set-up, injected faults and the
request log. Every handler works under State.lock."""

import base64
import os
import secrets
import struct
import threading
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PROJECT = "fake-project"
SA_EMAIL = f"kms-plugin@{PROJECT}.iam.gserviceaccount.com"       # the key file's account
IMPERSONATED_EMAIL = f"kms-wif@{PROJECT}.iam.gserviceaccount.com"  # the WIF target account
METADATA_EMAIL = f"node@{PROJECT}.iam.gserviceaccount.com"         # the metadata server's
STS_AUDIENCE = (f"//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/"
                f"k8s/providers/cluster")
CIPHERTEXT_MAGIC = b"\x0agcpfake"


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), independent of the plugin's C++ one."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class GcpError(Exception):
    """A google.rpc error answer: {"error": {"code": status, "message", "status": code}}."""

    def __init__(self, http, code, message, headers=None):
        super().__init__(http, code, message)
        self.http = http
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self):
        return {"error": {"code": self.http, "message": self.message, "status": self.code}}


class OAuthError(Exception):
    """An OAuth 2.0 error answer: {"error": error, "error_description": description}."""

    def __init__(self, http, error, description):
        super().__init__(http, error, description)
        self.http = http
        self.error = error
        self.description = description


class DropConnection(Exception):
    pass


def b64decode_any(text):
    """Standard or URL-safe base64, padded or not (proto3 JSON accepts both)."""
    text = text.strip().replace("-", "+").replace("_", "/").rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class CryptoKey:
    """A symmetric ENCRYPT_DECRYPT CryptoKey: one random AES-256 key per version."""

    def __init__(self, name):
        self.name = name
        self.versions = {}  # n -> {"key": bytes, "state": str, "created": float}
        self.primary = 0
        self.created = time.time()
        self.primary = self.add_version()

    def add_version(self):
        n = len(self.versions) + 1
        self.versions[n] = {"key": AESGCM.generate_key(bit_length=256), "state": "ENABLED",
                            "created": time.time()}
        return n

    def version_name(self, n):
        return f"{self.name}/cryptoKeyVersions/{n}"

    def version_json(self, n):
        v = self.versions[n]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(v["created"]))
        out = {"name": self.version_name(n), "state": v["state"], "protectionLevel": "SOFTWARE",
               "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION", "createTime": stamp}
        if v["state"] == "ENABLED":
            out["generateTime"] = stamp
        return out

    def json(self):
        out = {"name": self.name, "purpose": "ENCRYPT_DECRYPT",
               "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
               "versionTemplate": {"protectionLevel": "SOFTWARE",
                                   "algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"},
               "destroyScheduledDuration": "86400s"}
        if self.primary:
            out["primary"] = self.version_json(self.primary)
        return out

    def _check_usable(self, n):
        state = self.versions[n]["state"]
        if state != "ENABLED":
            raise GcpError(400, "FAILED_PRECONDITION",
                           f"{self.version_name(n)} is not enabled, current state is: {state}.")

    def encrypt(self, n, plaintext, aad):
        self._check_usable(n)
        nonce = os.urandom(12)
        sealed = AESGCM(self.versions[n]["key"]).encrypt(
            nonce, plaintext, self.name.encode() + b"\0" + aad)
        return CIPHERTEXT_MAGIC + struct.pack(">I", n) + nonce + sealed

    def decrypt(self, ciphertext, aad):
        """-> (plaintext, version number)."""
        head = len(CIPHERTEXT_MAGIC)
        if len(ciphertext) < head + 4 + 12 + 16 or not ciphertext.startswith(CIPHERTEXT_MAGIC):
            raise GcpError(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
        n = struct.unpack(">I", ciphertext[head:head + 4])[0]
        if n not in self.versions:
            raise GcpError(400, "INVALID_ARGUMENT",
                           "Decryption failed: verify that 'name' refers to the correct "
                           "CryptoKey.")
        self._check_usable(n)
        try:
            pt = AESGCM(self.versions[n]["key"]).decrypt(
                ciphertext[head + 4:head + 16], ciphertext[head + 16:],
                self.name.encode() + b"\0" + aad)
        except Exception:  # cryptography's InvalidTag: wrong key or wrong AAD.
            raise GcpError(400, "INVALID_ARGUMENT",
                           "Decryption failed: verify that 'name' refers to the correct "
                           "CryptoKey.") from None
        return pt, n


class ServiceAccount:
    def __init__(self, email, public_key, key_id):
        self.email = email
        self.public_key = public_key
        self.key_id = key_id


def new_service_account_key(email, token_uri):
    """A fresh RSA-2048 key; -> (ServiceAccount, the key file's JSON dict)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = secrets.token_hex(20)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": PROJECT, "private_key_id": key_id,
            "private_key": pem, "client_email": email, "client_id": "1" + "0" * 20,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs"}
    return ServiceAccount(email, key.public_key(), key_id), info


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.service_accounts = {}  # email -> ServiceAccount (JWT bearer grant)
        self.token_uris = set()     # this server's token endpoint URLs (accepted JWT aud)
        self.reset()

    def reset(self):
        self.keys = {}        # CryptoKey name -> CryptoKey
        self.tokens = {}      # access token -> {"identity", "expires", "source"}
        self.token_lifetime = 3600
        self.sts_subject_tokens = set()  # subject tokens STS accepts (for STS_AUDIENCE)
        self.impersonable = {IMPERSONATED_EMAIL, SA_EMAIL}
        self.metadata_email = METADATA_EMAIL
        self.denied = {}      # op -> identity or "*" refused with 403
        self.faults = []      # {"op", "kind", "count"}
        self.corrupt = []     # {"field", "count"}
        self.requests = []    # the request log (no secrets)
        self.stats = {}       # op -> successful answers

    def log(self, entry):
        self.requests.append(entry)
        if entry.get("status", 0) < 300:
            self.stats[entry["op"]] = self.stats.get(entry["op"], 0) + 1

    def issue_token(self, identity, source, lifetime=None):
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        lifetime = self.token_lifetime if lifetime is None else lifetime
        self.tokens[token] = {"identity": identity, "expires": time.time() + lifetime,
                              "source": source}
        return token, lifetime

    def check_bearer(self, headers):
        """-> the token's record; 401 UNAUTHENTICATED without a valid unexpired token."""
        auth = headers.get("authorization", "")
        record = self.tokens.get(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
        if record is None or record["expires"] <= time.time():
            raise GcpError(401, "UNAUTHENTICATED",
                           "Request had invalid authentication credentials. Expected OAuth 2 "
                           "access token, login cookie or other valid authentication credential.",
                           {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        return record

    def take(self, items, key, value):
        """The first entry of `items` whose `key` is value or "*", with its count used once."""
        for item in items:
            if item[key] in (value, "*") and item["count"] != 0:
                if item["count"] > 0:
                    item["count"] -= 1
                return item
        return None

    def key(self, name):
        if name not in self.keys:
            raise GcpError(404, "NOT_FOUND", f"CryptoKey {name} not found.")
        return self.keys[name]
