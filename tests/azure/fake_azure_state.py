"""Shared state of the fake Azure server (tests/azure/fake_azure_server.py): Key Vault keys and
their versions, the Entra applications and the IMDS identities that may get tokens, the tokens
issued, denied operations, injected faults and the request log. Handlers work under State.lock.

Key material: RSA keys are real RSA-2048 private keys (python3-cryptography), one per version;
oct-HSM keys are 32 random bytes per version. Nothing secret is ever written to the request log.
"""

import base64
import os
import secrets
import threading
import time

from cryptography.hazmat.primitives.asymmetric import rsa

# The audiences a token may be issued for (Key Vault and Managed HSM, public cloud).
VAULT_RESOURCE = "https://vault.azure.net"
HSM_RESOURCE = "https://managedhsm.azure.net"
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ALL_KEY_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]


class AzureError(Exception):
    """A Key Vault error: HTTP `status`, body {"error": {"code", "message", "innererror"}}."""

    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.headers = headers or {}

    def body(self):
        err = {"code": self.code, "message": self.message}
        if self.inner:
            err["innererror"] = {"code": self.inner}
        return {"error": err}


class OAuthError(Exception):
    """An Entra / IMDS error answer: {"error", "error_description", "error_codes", ...}."""

    def __init__(self, status, error, description, code=0):
        super().__init__(status, error, description)
        self.status = status
        self.error = error
        self.description = description
        self.code = code

    def body(self):
        return {"error": self.error, "error_description": self.description,
                "error_codes": [self.code] if self.code else [],
                "trace_id": secrets.token_hex(8), "correlation_id": secrets.token_hex(8)}


class DropConnection(Exception):
    pass


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    if not isinstance(text, str):
        raise AzureError(400, "BadParameter", "value must be a base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise AzureError(400, "BadParameter", "value is not base64url") from None


class KeyVersion:
    def __init__(self, kty):
        self.id = secrets.token_hex(16)  # 32 hex digits, as Key Vault's.
        self.created = int(time.time())
        self.enabled = True
        if kty.startswith("RSA"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.secret = None
        else:
            self.private = None
            self.secret = os.urandom(32)


class Key:
    """A named key: kty RSA, RSA-HSM or oct-HSM, with its versions (the last one is current)."""

    def __init__(self, name, kty="RSA", key_ops=None):
        if kty not in ("RSA", "RSA-HSM", "oct-HSM"):
            raise AzureError(400, "BadParameter", f"unsupported kty {kty}")
        self.name = name
        self.kty = kty
        self.key_ops = list(key_ops) if key_ops is not None else list(ALL_KEY_OPS)
        self.versions = []
        self.rotate()

    def rotate(self):
        self.versions.append(KeyVersion(self.kty))
        return self.versions[-1]

    @property
    def current(self):
        return self.versions[-1]

    def version(self, version_id):
        """The named version ("" = current); KeyNotFound if there is none."""
        if not version_id:
            return self.current
        for v in self.versions:
            if v.id == version_id:
                return v
        raise AzureError(404, "KeyNotFound",
                         f"A key with (name/id) {self.name}/{version_id} was not found in this "
                         "key vault.")


class State:
    def __init__(self, tenant=DEFAULT_TENANT):
        self.lock = threading.RLock()
        self.tenant = tenant
        self.reset()

    def reset(self):
        self.keys = {}  # name -> Key
        self.resource = VAULT_RESOURCE  # What the 401 challenge names and tokens must be for.
        self.apps = {}  # client_id -> {"secret", "assertion", "expires_in"}
        self.imds = {"enabled": True, "client_ids": ["system-assigned-mi"],
                     "expires_in": 86399}
        self.tokens = {}  # token -> {"audience", "expires", "client_id", "source"}
        self.deny = set()  # Operations answered 403 ForbiddenByRbac.
        self.faults = []  # {"kind", "count", "op", "retry_after"}
        self.requests = []
        self.counts = {}  # op -> successful calls
        self.seeds = []  # Hex of every value wrapped or encrypted (GET /admin/seeds: leak scans).

    def log(self, entry):
        self.requests.append(entry)
        if entry.get("status", 500) < 300:
            self.counts[entry["op"]] = self.counts.get(entry["op"], 0) + 1

    def take_fault(self, op):
        for fault in self.faults:
            if fault["op"] in ("*", op) and fault["count"] != 0:
                if fault["count"] > 0:
                    fault["count"] -= 1
                return fault
        return None

    def issue_token(self, audience, client_id, source, expires_in):
        token = "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(32)  # Opaque, JWT-looking.
        self.tokens[token] = {"audience": audience, "expires": time.time() + expires_in,
                              "client_id": client_id, "source": source}
        return token

    def check_token(self, authorization):
        """The token record for an "Authorization: Bearer …" header, or None when it is missing,
        unknown, expired or for another audience."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        record = self.tokens.get(authorization[len("Bearer "):])
        if record is None or record["expires"] < time.time():
            return None
        if record["audience"].rstrip("/") != self.resource:
            return None
        return record
