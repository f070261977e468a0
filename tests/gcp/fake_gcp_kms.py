"""Cloud KMS REST v1 of the fake Google Cloud server (remote-kms-apis.md §5): encrypt, decrypt,
cryptoKeys.get, cryptoKeyVersions create/get/patch/destroy and updatePrimaryVersion, with the
CRC32C integrity fields checked and returned and google.rpc error JSON.

handle(state, method, path, headers, req, entry) -> (status, answer); `path` is after "/v1/".
Raises GcpError. Every call needs a Bearer token the fake issued (401 otherwise)."""

import base64
import re

from fake_gcp_state import GcpError, b64decode_any, crc32c

KEY_RE = r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/:]+"
ROUTES = [  # (method, regex, op)
    ("POST", rf"({KEY_RE})(?:/cryptoKeyVersions/(\d+))?:encrypt", "encrypt"),
    ("POST", rf"({KEY_RE}):decrypt", "decrypt"),
    ("GET", rf"({KEY_RE})", "get"),
    ("POST", rf"({KEY_RE})/cryptoKeyVersions", "versions.create"),
    ("POST", rf"({KEY_RE}):updatePrimaryVersion", "updatePrimaryVersion"),
    ("GET", rf"({KEY_RE})/cryptoKeyVersions/(\d+)", "versions.get"),
    ("PATCH", rf"({KEY_RE})/cryptoKeyVersions/(\d+)", "versions.patch"),
    ("POST", rf"({KEY_RE})/cryptoKeyVersions/(\d+):destroy", "versions.destroy"),
]
PERMISSIONS = {"encrypt": "cloudkms.cryptoKeyVersions.useToEncrypt",
               "decrypt": "cloudkms.cryptoKeyVersions.useToDecrypt",
               "get": "cloudkms.cryptoKeys.get",
               "versions.create": "cloudkms.cryptoKeyVersions.create",
               "updatePrimaryVersion": "cloudkms.cryptoKeys.update",
               "versions.get": "cloudkms.cryptoKeyVersions.get",
               "versions.patch": "cloudkms.cryptoKeyVersions.update",
               "versions.destroy": "cloudkms.cryptoKeyVersions.destroy"}
MAX_PLAINTEXT = 64 * 1024


def route(method, path):
    """-> (op, regex groups) or (None, None)."""
    for m, pattern, op in ROUTES:
        match = re.fullmatch(pattern, path)
        if match and m == method:
            return op, match.groups()
    return None, None


def _crc_field(req, field):
    """The int64-as-string (or number) CRC32C field, or None when absent."""
    if field not in req:
        return None
    try:
        value = int(req[field])
    except (TypeError, ValueError):
        raise GcpError(400, "INVALID_ARGUMENT", f"Invalid value at '{field}'") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise GcpError(400, "INVALID_ARGUMENT", f"Invalid value at '{field}'")
    return value


def _bytes_field(req, field, required=False):
    if field not in req or req[field] in ("", None):
        if required:
            raise GcpError(400, "INVALID_ARGUMENT", f"{field} is required.")
        return b""
    try:
        return b64decode_any(req[field])
    except (ValueError, TypeError):
        raise GcpError(400, "INVALID_ARGUMENT", f"Invalid value at '{field}' (TYPE_BYTES)") \
            from None


def _check_crc(req, data_field, crc_field, data):
    """Checks a request checksum; -> True when one was sent (and matched)."""
    crc = _crc_field(req, crc_field)
    if crc is None:
        return False
    if crc != crc32c(data):
        raise GcpError(400, "INVALID_ARGUMENT",
                       f"The checksum in field {crc_field} did not match the data in field "
                       f"{data_field}.")
    return True


def _corrupt(state, answer, field):
    """Applies an injected corruption of `field` in this answer (the admin's /admin/corrupt)."""
    item = state.take(state.corrupt, "field", field)
    if item is None or field not in answer:
        return
    value = answer[field]
    if isinstance(value, bool):
        answer[field] = not value
    elif field == "name":
        answer[field] = value.replace("/cryptoKeys/", "/cryptoKeys/other-")
    else:
        answer[field] = str((int(value) + 1) & 0xFFFFFFFF)


def _encrypt(state, key, version, req, entry):
    n = int(version) if version else key.primary
    if n not in key.versions:
        raise GcpError(404, "NOT_FOUND", f"{key.version_name(n)} not found.")
    plaintext = _bytes_field(req, "plaintext", required=True)
    aad = _bytes_field(req, "additionalAuthenticatedData")
    if len(plaintext) > MAX_PLAINTEXT or len(aad) > MAX_PLAINTEXT:
        raise GcpError(400, "INVALID_ARGUMENT", "The plaintext or AAD is too large.")
    pt_crc = _check_crc(req, "plaintext", "plaintextCrc32c", plaintext)
    aad_crc = _check_crc(req, "additional_authenticated_data",
                         "additionalAuthenticatedDataCrc32c", aad)
    entry.update({"plaintext_crc32c": pt_crc, "aad_crc32c": aad_crc, "aad_size": len(aad),
                  "version": n})
    ciphertext = key.encrypt(n, plaintext, aad)
    answer = {"name": key.version_name(n),
              "ciphertext": base64.b64encode(ciphertext).decode(),
              "ciphertextCrc32c": str(crc32c(ciphertext)), "protectionLevel": "SOFTWARE"}
    if pt_crc:
        answer["verifiedPlaintextCrc32c"] = True
    if aad_crc:
        answer["verifiedAdditionalAuthenticatedDataCrc32c"] = True
    for field in ("ciphertextCrc32c", "verifiedPlaintextCrc32c",
                  "verifiedAdditionalAuthenticatedDataCrc32c", "name"):
        _corrupt(state, answer, field)
    return answer


def _decrypt(state, key, req, entry):
    ciphertext = _bytes_field(req, "ciphertext", required=True)
    aad = _bytes_field(req, "additionalAuthenticatedData")
    ct_crc = _check_crc(req, "ciphertext", "ciphertextCrc32c", ciphertext)
    aad_crc = _check_crc(req, "additional_authenticated_data",
                         "additionalAuthenticatedDataCrc32c", aad)
    entry.update({"ciphertext_crc32c": ct_crc, "aad_crc32c": aad_crc, "aad_size": len(aad)})
    plaintext, n = key.decrypt(ciphertext, aad)
    entry["version"] = n
    answer = {"plaintext": base64.b64encode(plaintext).decode(),
              "plaintextCrc32c": str(crc32c(plaintext)), "protectionLevel": "SOFTWARE"}
    if n == key.primary:
        answer["usedPrimary"] = True
    _corrupt(state, answer, "plaintextCrc32c")
    return answer


def _set_state(key, n, new_state):
    v = key.versions[n]
    allowed = {("ENABLED", "DISABLED"), ("DISABLED", "ENABLED")}
    if new_state != v["state"] and (v["state"], new_state) not in allowed:
        raise GcpError(400, "FAILED_PRECONDITION",
                       f"{key.version_name(n)} cannot go from {v['state']} to {new_state}.")
    v["state"] = new_state


def handle(state, method, path, headers, req, entry):
    op, groups = route(method, path)
    entry["op"] = op or "unknown"
    if op is None:
        raise GcpError(404, "NOT_FOUND", "Method not found.")
    record = state.check_bearer(headers)
    entry["identity"] = record["identity"]
    entry["key"] = groups[0]
    denied = state.denied.get(op)
    if denied in ("*", record["identity"]):
        raise GcpError(403, "PERMISSION_DENIED",
                       f"Permission '{PERMISSIONS[op]}' denied on resource '{groups[0]}' (or it "
                       f"may not exist).")
    key = state.key(groups[0])
    if op == "encrypt":
        return 200, _encrypt(state, key, groups[1], req, entry)
    if op == "decrypt":
        return 200, _decrypt(state, key, req, entry)
    if op == "get":
        return 200, key.json()
    if op == "versions.create":
        return 200, key.version_json(key.add_version())
    if op == "updatePrimaryVersion":
        n = int(req.get("cryptoKeyVersionId", 0) or 0)
        if n not in key.versions:
            raise GcpError(404, "NOT_FOUND", f"{key.version_name(n)} not found.")
        if key.versions[n]["state"] != "ENABLED":
            raise GcpError(400, "FAILED_PRECONDITION", f"{key.version_name(n)} is not enabled.")
        key.primary = n
        return 200, key.json()
    n = int(groups[1])
    if n not in key.versions:
        raise GcpError(404, "NOT_FOUND", f"{key.version_name(n)} not found.")
    if op == "versions.patch":
        if "state" not in headers.get(":query", "") and "state" not in req:
            raise GcpError(400, "INVALID_ARGUMENT", "updateMask must name state.")
        _set_state(key, n, req["state"])
    elif op == "versions.destroy":
        key.versions[n]["state"] = "DESTROY_SCHEDULED"
    return 200, key.version_json(n)
