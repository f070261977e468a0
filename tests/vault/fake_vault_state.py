"""Shared state of the fake Vault server: transit keys, tokens, login roles, seal, faults and the
request log. Every handler works under State.lock."""

import base64
import math
import os
import secrets
import threading
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class VaultError(Exception):
    """An error answer: HTTP `status` with body {"errors": [message, ...]}."""

    def __init__(self, status, *messages, headers=None):
        super().__init__(status, messages)
        self.status = status
        self.messages = list(messages)
        self.headers = headers or {}


class DropConnection(Exception):
    pass


class TransitKey:
    """A versioned aes256-gcm96 key: one random 256-bit AES key per version."""

    def __init__(self, name):
        self.name = name
        self.versions = {}  # version -> (key bytes, creation unix time)
        self.min_decryption_version = 1
        self.min_encryption_version = 0
        self.disabled = False  # The fake's "disabled": every operation on it is denied (403).
        self.rotate()

    @property
    def latest_version(self):
        return max(self.versions)

    def rotate(self):
        self.versions[len(self.versions) + 1] = (AESGCM.generate_key(bit_length=256),
                                                 int(time.time()))

    def encrypt(self, plaintext, aad, version=0):
        version = version or self.latest_version
        if version not in self.versions:
            raise VaultError(400, "invalid key version")
        if version < self.min_encryption_version:
            raise VaultError(400, "requested version for encryption is less than the minimum "
                                  "encryption key version")
        nonce = os.urandom(12)
        ct = AESGCM(self.versions[version][0]).encrypt(nonce, plaintext, aad or None)
        return f"vault:v{version}:" + base64.b64encode(nonce + ct).decode(), version

    def decrypt(self, ciphertext, aad):
        if not ciphertext.startswith("vault:"):
            raise VaultError(400, "invalid ciphertext: no prefix")
        parts = ciphertext.split(":", 2)
        if len(parts) != 3 or not parts[1].startswith("v"):
            raise VaultError(400, "invalid ciphertext: wrong number of fields")
        try:
            version = int(parts[1][1:])
        except ValueError:
            raise VaultError(400, "invalid ciphertext: version number could not be decoded")
        if version > self.latest_version:
            raise VaultError(400, "invalid ciphertext: version is too new")
        if version < self.min_decryption_version or version not in self.versions:
            raise VaultError(400, "ciphertext or signature version is disallowed by policy "
                                  "(too old)")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except ValueError:
            raise VaultError(400, "invalid ciphertext: could not decode base64")
        if len(raw) < 12 + 16:
            raise VaultError(400, "invalid ciphertext length")
        try:
            return AESGCM(self.versions[version][0]).decrypt(raw[:12], raw[12:], aad or None)
        except Exception:  # cryptography's InvalidTag
            raise VaultError(400, "cipher: message authentication failed")

    def info(self):
        return {"name": self.name, "type": "aes256-gcm96",
                "latest_version": self.latest_version,
                "min_decryption_version": self.min_decryption_version,
                "min_encryption_version": self.min_encryption_version,
                "min_available_version": 0,
                "keys": {str(v): t for v, (_, t) in self.versions.items()},
                "deletion_allowed": False, "derived": False, "exportable": False,
                "allow_plaintext_backup": False, "supports_encryption": True,
                "supports_decryption": True, "supports_derivation": True,
                "supports_signing": False, "auto_rotate_period": 0, "imported_key": False}


class Token:
    """A service token. `keys`: "<mount>/<key>" paths it may encrypt/decrypt/read ("*": any);
    `rotate`: it may also rotate them; `root`: anything, including creating and configuring keys."""

    def __init__(self, keys=(), rotate=False, root=False, ttl=0, max_ttl=0, renewable=True,
                 policies=None):
        self.id = "hvs." + secrets.token_urlsafe(24)
        self.accessor = secrets.token_hex(12)
        self.keys = set(keys)
        self.rotate = rotate
        self.root = root
        self.creation_ttl = int(ttl)
        self.max_ttl = int(max_ttl)
        self.renewable = bool(renewable) and ttl > 0
        self.issued = time.time()
        self.expires = self.issued + ttl if ttl else None
        self.revoked = False
        self.policies = policies or (["root"] if root else ["default", "kms-plugin"])

    def valid(self):
        return not self.revoked and (self.expires is None or time.time() < self.expires)

    def ttl_left(self):
        return 0 if self.expires is None else max(0, math.ceil(self.expires - time.time()))

    def allows(self, mount, key, action):
        if self.root:
            return True
        if f"{mount}/{key}" not in self.keys and "*" not in self.keys:
            return False
        return action in ("encrypt", "decrypt", "read") or (action == "rotate" and self.rotate)

    def auth(self):
        return {"client_token": self.id, "accessor": self.accessor, "policies": self.policies,
                "token_policies": self.policies, "metadata": {}, "lease_duration": self.ttl_left(),
                "renewable": self.renewable, "entity_id": "", "token_type": "service",
                "orphan": True}


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        self.keys = {}  # (namespace, mount, name) -> TransitKey
        self.mounts = {"transit"}
        self.tokens = {}  # id -> Token
        self.approle = {}  # mount -> {"role_id", "secret_id", token params}
        self.k8s = {}  # mount -> {"role", "jwt", token params}
        self.sealed = False
        self.faults = []
        self.requests = []
        self.renewals = 0
        self.root = self.issue(root=True)

    def issue(self, **params):
        token = Token(**params)
        self.tokens[token.id] = token
        return token

    def token_params(self, req):
        return {k: req[k] for k in ("keys", "rotate", "ttl", "max_ttl", "renewable") if k in req}

    def log(self, entry):
        self.requests.append(entry)

    def take_fault(self, path):
        for f in self.faults:
            if f["count"] != 0 and (f["path"] == "*" or path.startswith(f["path"])):
                if f["count"] > 0:
                    f["count"] -= 1
                return f
        return None
