"""The Vault HTTP API paths the fake serves under /v1/ (Vault's published Transit, token, AppRole
and Kubernetes/JWT auth APIs): handle(state, method, path, headers, body) -> (status, JSON or
None), or raises VaultError. `path` is relative to /v1/."""

import base64
import binascii
import re
import time
import uuid

from fake_vault_state import TransitKey, VaultError

PERMISSION_DENIED = "permission denied"


def _b64(req, field, required=False):
    value = req.get(field)
    if value is None or value == "":
        if required:
            raise VaultError(400, f"missing {field} to encrypt")
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VaultError(400, f"failed to base64-decode {field}")


def _token(state, headers):
    token = state.tokens.get(headers.get("x-vault-token", ""))
    if token is None or not token.valid():
        raise VaultError(403, PERMISSION_DENIED, "invalid token")
    return token


def _response(data=None, auth=None):
    # A fresh id per answer, as Vault gives (its audit log names the request by it).
    return {"request_id": str(uuid.uuid4()), "lease_id": "",
            "renewable": False, "lease_duration": 0, "data": data, "wrap_info": None,
            "warnings": None, "auth": auth}


def _login(state, mount, req, entry):
    if mount in state.approle:
        cfg = state.approle[mount]
        entry["op"] = "login-approle"
        if req.get("role_id") != cfg["role_id"] or req.get("secret_id") != cfg["secret_id"]:
            raise VaultError(400, "invalid role or secret ID")
    elif mount in state.k8s:
        cfg = state.k8s[mount]
        entry["op"] = "login-kubernetes"
        if not req.get("jwt"):
            raise VaultError(400, "missing jwt")
        if req.get("role") != cfg["role"]:
            raise VaultError(400, f'invalid role name "{req.get("role")}"')
        if req.get("jwt") != cfg["jwt"]:
            raise VaultError(403, PERMISSION_DENIED)
    else:
        raise VaultError(404, f"no handler for route \"auth/{mount}/login\". "
                              "route entry not found.")
    token = state.issue(**state.token_params(cfg))
    return 200, _response(auth=token.auth())


def _parse_duration(value, default):
    if value in (None, ""):
        return default
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"(\d+)([smh]?)", str(value))
    if not m:
        raise VaultError(400, "invalid increment")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _token_self(state, op, headers, req, entry):
    token = _token(state, headers)
    entry["op"] = op
    if op == "lookup-self":
        return 200, _response(data={
            "id": token.id, "accessor": token.accessor, "policies": token.policies,
            "ttl": token.ttl_left(), "creation_ttl": token.creation_ttl,
            "renewable": token.renewable, "explicit_max_ttl": token.max_ttl,
            "expire_time": None if token.expires is None else time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(token.expires)),
            "type": "service", "orphan": True})
    if op == "renew-self":
        if not token.renewable:
            raise VaultError(400, "lease is not renewable")
        ttl = _parse_duration(req.get("increment"), token.creation_ttl)
        if token.max_ttl:
            ttl = min(ttl, int(token.issued + token.max_ttl - time.time()))
        token.expires = time.time() + max(ttl, 0)
        state.renewals += 1
        entry["granted"] = ttl
        return 200, _response(auth=token.auth())
    token.revoked = True  # revoke-self
    return 204, None


def _transit(state, method, ns, path, headers, req, entry):
    m = (re.fullmatch(r"(.+)/(encrypt|decrypt)/([^/]+)", path)
         or re.fullmatch(r"(.+)/(keys)/([^/]+)(?:/(rotate|config))?", path))
    if not m or m.group(1) not in state.mounts:
        raise VaultError(404, f"no handler for route \"{path}\". route entry not found.")
    mount, what, name = m.group(1), m.group(2), m.group(3)
    sub = m.group(4) if what == "keys" else None
    op = {("keys", None): "read-key" if method == "GET" else "create", ("keys", "rotate"): "rotate",
          ("keys", "config"): "config"}.get((what, sub), what)
    entry.update({"op": op, "mount": mount, "key": name})
    token = _token(state, headers)
    key = state.keys.get((ns, mount, name))
    action = {"read-key": "read", "create": "admin", "config": "admin"}.get(op, op)
    if action == "admin" and not token.root:
        raise VaultError(403, PERMISSION_DENIED)
    if action != "admin" and not token.allows(mount, name, action):
        raise VaultError(403, PERMISSION_DENIED)
    if key is not None and key.disabled and not token.root:
        raise VaultError(403, PERMISSION_DENIED)
    if op == "create":
        if key is None:
            state.keys[(ns, mount, name)] = TransitKey(name)
        return 204, None
    if key is None:
        if op == "encrypt" and token.root:  # Upsert needs the create capability.
            key = state.keys[(ns, mount, name)] = TransitKey(name)
        elif op == "encrypt":
            raise VaultError(403, PERMISSION_DENIED)  # Upsert would need "create".
        else:
            raise VaultError(404 if op != "decrypt" else 400,
                             *([] if op != "decrypt" else ["encryption key not found"]))
    if op == "read-key":
        return 200, _response(data=key.info())
    if op == "rotate":
        key.rotate()
        entry["key_version"] = key.latest_version
        return 200, _response(data=key.info())
    if op == "config":
        if "min_decryption_version" in req:
            v = int(req["min_decryption_version"])
            if v > key.latest_version:
                raise VaultError(400, "cannot set min decryption version of "
                                      f"{v}, latest key version is {key.latest_version}")
            key.min_decryption_version = max(v, 1)
        return 200, _response(data=key.info())
    aad = _b64(req, "associated_data")
    entry["aad"] = aad.decode("latin-1")
    if op == "encrypt":
        ciphertext, version = key.encrypt(_b64(req, "plaintext", required=True), aad,
                                          int(req.get("key_version") or 0))
        entry["key_version"] = version
        return 200, _response(data={"ciphertext": ciphertext, "key_version": version})
    ciphertext = req.get("ciphertext") or ""
    if not ciphertext:
        raise VaultError(400, "missing ciphertext to decrypt")
    m = re.match(r"vault:v(\d+):", ciphertext)
    entry["key_version"] = int(m.group(1)) if m else None
    plaintext = key.decrypt(ciphertext, aad)
    return 200, _response(data={"plaintext": base64.b64encode(plaintext).decode()})


def handle(state, method, path, headers, req, entry):
    """Serves one /v1/ call; `entry` (the request log line) gets the op and its details."""
    ns = headers.get("x-vault-namespace", "").strip("/")
    entry["namespace"] = ns
    m = re.fullmatch(r"auth/(.+)/login", path)
    if m and method in ("POST", "PUT"):
        return _login(state, m.group(1), req, entry)
    m = re.fullmatch(r"auth/token/(lookup-self|renew-self|revoke-self)", path)
    if m:
        return _token_self(state, m.group(1), headers, req, entry)
    if method not in ("GET", "POST", "PUT"):
        raise VaultError(405, "unsupported operation")
    return _transit(state, method, ns, path, headers, req, entry)
