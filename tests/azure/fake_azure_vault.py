"""Key Vault keys REST API of the fake Azure server (remote-kms-apis.md §6.2-§6.4): key GET
(with and without a version, trailing slash accepted), versions, rotate, PATCH attributes, DELETE,
and wrapkey / unwrapkey / encrypt / decrypt on a version. Any api-version is accepted.

handle() returns (status, body object); errors are raised as AzureError. The caller has already
checked the bearer token (or answered the 401 challenge) and holds State.lock.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (InvalidUnwrap, aes_key_unwrap,
                                                    aes_key_unwrap_with_padding, aes_key_wrap,
                                                    aes_key_wrap_with_padding)

from fake_azure_state import AzureError, b64url, unb64url

CRYPTO_OPS = ("wrapkey", "unwrapkey", "encrypt", "decrypt")


def _oaep(alg):
    if alg == "RSA-OAEP-256":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                            label=None)
    if alg == "RSA-OAEP":
        return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    if alg == "RSA1_5":
        return padding.PKCS1v15()
    raise AzureError(400, "BadParameter", f"Invalid algorithm {alg} for an RSA key")


def _bad_data():
    # What Key Vault answers for a ciphertext it cannot decrypt (wrong key version, tampered).
    return AzureError(400, "BadParameter", "Bad Request", inner="BadParameter")


def parse_path(path):
    """(op, key name, version) for a /keys/... path; version "" means the current one."""
    parts = path.split("/")[2:]  # ["", "keys", ...]
    if parts and parts[-1] == "":
        parts = parts[:-1]  # The SDK sends /keys/<name>/ when it has no version.
    if not parts:
        raise AzureError(404, "NotFound", "no such path")
    name = parts[0]
    rest = parts[1:]
    if not rest:
        return "get", name, ""
    if rest == ["versions"]:
        return "versions", name, ""
    if rest == ["rotate"]:
        return "rotate", name, ""
    if len(rest) == 1 and rest[0] in CRYPTO_OPS:
        return rest[0], name, ""
    if len(rest) == 1:
        return "get", name, rest[0]
    if len(rest) == 2 and rest[1] in CRYPTO_OPS:
        return rest[1], name, rest[0]
    raise AzureError(404, "NotFound", "no such path")


def key_bundle(base, key, version):
    kid = f"{base}/keys/{key.name}/{version.id}"
    jwk = {"kid": kid, "kty": key.kty, "key_ops": key.key_ops}
    if version.private is not None:
        numbers = version.private.public_key().public_numbers()
        jwk["n"] = b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
        jwk["e"] = b64url(numbers.e.to_bytes(3, "big"))
    attrs = {"enabled": version.enabled, "created": version.created, "updated": version.created,
             "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90, "exportable": False}
    return {"key": jwk, "attributes": attrs, "tags": {}}


def _operate(key, version, op, req):
    alg = req.get("alg")
    if not isinstance(alg, str):
        raise AzureError(400, "BadParameter", "alg is required")
    value = unb64url(req.get("value"))
    if version.private is not None:
        if op in ("wrapkey", "encrypt"):
            return {"value": b64url(version.private.public_key().encrypt(value, _oaep(alg)))}
        try:
            return {"value": b64url(version.private.decrypt(value, _oaep(alg)))}
        except ValueError:
            raise _bad_data() from None
    # oct-HSM: AES key wrap (wrapkey/unwrapkey) or AES-GCM (encrypt/decrypt).
    if op in ("wrapkey", "unwrapkey"):
        if alg not in ("A256KW", "CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_PAD"):
            raise AzureError(400, "BadParameter", f"Invalid algorithm {alg} for key wrap")
        pad = alg == "CKM_AES_KEY_WRAP_PAD"
        if op == "wrapkey":
            wrap = aes_key_wrap_with_padding if pad else aes_key_wrap
            try:
                return {"value": b64url(wrap(version.secret, value))}
            except ValueError:
                raise AzureError(400, "BadParameter", "bad key length for key wrap") from None
        unwrap = aes_key_unwrap_with_padding if pad else aes_key_unwrap
        try:
            return {"value": b64url(unwrap(version.secret, value))}
        except (InvalidUnwrap, ValueError):
            raise _bad_data() from None
    if alg != "A256GCM":
        raise AzureError(400, "BadParameter", f"Invalid algorithm {alg} for an oct-HSM key")
    aad = unb64url(req["aad"]) if req.get("aad") else None
    if op == "encrypt":
        iv = os.urandom(12)
        sealed = AESGCM(version.secret).encrypt(iv, value, aad)
        out = {"value": b64url(sealed[:-16]), "iv": b64url(iv), "tag": b64url(sealed[-16:])}
        if aad is not None:
            out["aad"] = req["aad"]
        return out
    iv, tag = unb64url(req.get("iv")), unb64url(req.get("tag"))
    try:
        return {"value": b64url(AESGCM(version.secret).decrypt(iv, value + tag, aad))}
    except (InvalidTag, ValueError):
        raise _bad_data() from None


def handle(state, method, path, base, req, entry):
    op, name, version_id = parse_path(path)
    if method == "DELETE" and op == "get" and not version_id:
        op = "delete"
    if method == "PATCH" and op == "get":
        op = "update"
    entry.update({"op": op, "key": name, "version": version_id})
    if op in state.deny:
        raise AzureError(403, "Forbidden",
                         f"Caller is not authorized to perform action on resource. Action: "
                         f"'Microsoft.KeyVault/vaults/keys/{op}/action'",
                         inner="ForbiddenByRbac")
    key = state.keys.get(name)
    if key is None:
        raise AzureError(404, "KeyNotFound",
                         f"A key with (name/id) {name} was not found in this key vault.")
    expected = {"get": ("GET",), "versions": ("GET",), "rotate": ("POST",), "delete": ("DELETE",),
                "update": ("PATCH",)}.get(op, ("POST",))
    if method not in expected:
        raise AzureError(405, "BadParameter", f"method {method} not allowed here")
    if op == "versions":
        return 200, {"value": [{"kid": f"{base}/keys/{name}/{v.id}",
                                "attributes": {"enabled": v.enabled, "created": v.created}}
                               for v in key.versions], "nextLink": None}
    if op == "rotate":
        return 200, key_bundle(base, key, key.rotate())
    if op == "delete":
        del state.keys[name]
        bundle = key_bundle(base, key, key.current)
        bundle.update({"recoveryId": f"{base}/deletedkeys/{name}"})
        return 200, bundle
    version = key.version(version_id)
    if op == "update":
        attrs = req.get("attributes") or {}
        if "enabled" in attrs:
            version.enabled = bool(attrs["enabled"])
        return 200, key_bundle(base, key, version)
    if op == "get":
        return 200, key_bundle(base, key, version)
    if not version.enabled:
        raise AzureError(403, "Forbidden", "Operation is not allowed on a disabled key.",
                         inner="KeyDisabled")
    entry["alg"] = req.get("alg")
    if op in ("wrapkey", "encrypt") and len(state.seeds) < 10000:
        state.seeds.append(unb64url(req.get("value")).hex())
    out = _operate(key, version, op, req)
    out["kid"] = f"{base}/keys/{name}/{version.id}"
    return 200, out
