"""KMS of the fake AWS server (JSON 1.1, X-Amz-Target: TrentService.*): Encrypt, Decrypt,
DescribeKey, RotateKeyOnDemand and ListKeyRotations, each request's SigV4 signature recomputed with
botocore's SigV4Auth over exactly the headers the client says it signed.

Ciphertext blobs carry the key id and the key material id, and are AES-256-GCM under that
material with the encryption context as AAD.
"""

import base64
import datetime
import json
import re
import secrets
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fake_aws_state import BLOB_MAGIC, AwsError, kms_error, utcnow


def context_aad(ctx):
    return json.dumps(ctx or {}, sort_keys=True, separators=(",", ":")).encode()


KEY_STATES = ("Creating", "Enabled", "Disabled", "PendingDeletion", "PendingImport",
              "PendingReplicaDeletion", "Unavailable", "Updating")


def check_usable(key):
    if key.state == "Disabled":
        raise kms_error("DisabledException", f"{key.arn} is disabled.")
    if key.state == "PendingDeletion":
        raise kms_error("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    if key.state != "Enabled":
        raise kms_error("KMSInvalidStateException", f"{key.arn} is {key.state}.")


def parse_context(body):
    ctx = body.get("EncryptionContext", {})
    if not isinstance(ctx, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in ctx.items()):
        raise kms_error("SerializationException", "EncryptionContext must be a string map")
    return ctx


def b64_field(body, name, lo, hi):
    value = body.get(name)
    if not isinstance(value, str):
        raise kms_error("ValidationException", f"1 validation error detected: '{name}' is required")
    try:
        raw = base64.b64decode(value, validate=True)
    except Exception:
        raise kms_error("SerializationException", f"{name} is not valid base64")
    if not lo <= len(raw) <= hi:
        raise kms_error("ValidationException",
                        f"1 validation error detected: Value at '{name}' failed to satisfy "
                        f"constraint: Member must have length between {lo} and {hi}")
    return raw


def kms_encrypt(state, body):
    key = state.resolve_key(body.get("KeyId", ""))
    check_usable(key)
    plaintext = b64_field(body, "Plaintext", 1, 4096)
    ctx = parse_context(body)
    material = key.current
    nonce = secrets.token_bytes(12)
    header = BLOB_MAGIC + key.key_id.encode() + bytes.fromhex(material["id"])
    sealed = AESGCM(material["secret"]).encrypt(nonce, plaintext, header + context_aad(ctx))
    blob = header + nonce + sealed
    return {"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": key.arn,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, {"key": key.arn, "context": ctx}


def kms_decrypt(state, body):
    blob = b64_field(body, "CiphertextBlob", 1, 6144)
    ctx = parse_context(body)
    if len(blob) < len(BLOB_MAGIC) + 36 + 32 + 12 + 16 or not blob.startswith(BLOB_MAGIC):
        raise kms_error("InvalidCiphertextException", "")
    off = len(BLOB_MAGIC)
    key_id = blob[off:off + 36].decode(errors="replace")
    material_id = blob[off + 36:off + 68].hex()
    header = blob[:off + 68]
    nonce, sealed = blob[off + 68:off + 80], blob[off + 80:]
    with state.lock:
        key = state.keys.get(key_id)
    if key is None:
        raise kms_error("InvalidCiphertextException", "")
    if body.get("KeyId") is not None:
        named = state.resolve_key(body["KeyId"])
        if named is not key:
            raise kms_error("IncorrectKeyException",
                            "The key ID in the request does not identify a CMK that can perform "
                            "this operation.")
    check_usable(key)
    material = next((m for m in key.materials if m["id"] == material_id), None)
    if material is None:
        raise kms_error("InvalidCiphertextException", "")
    try:
        plaintext = AESGCM(material["secret"]).decrypt(nonce, sealed, header + context_aad(ctx))
    except Exception:
        raise kms_error("InvalidCiphertextException", "")
    out = {"KeyId": key.arn, "Plaintext": base64.b64encode(plaintext).decode(),
           "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    if key.report_material_ids:
        out["KeyMaterialId"] = material_id
    return out, {"key": key.arn, "context": ctx, "material": material_id}


def kms_describe_key(state, body):
    key = state.resolve_key(body.get("KeyId", ""))
    meta = {
        "AWSAccountId": state.account, "KeyId": key.key_id, "Arn": key.arn,
        "CreationDate": key.created, "Enabled": key.state == "Enabled", "Description": "",
        "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": key.state, "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER", "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT", "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": False,
    }
    if key.state == "PendingDeletion":
        meta["DeletionDate"] = time.time() + 7 * 86400
        meta["PendingDeletionWindowInDays"] = 7
    if key.report_material_ids:
        meta["CurrentKeyMaterialId"] = key.current["id"]
    return {"KeyMetadata": meta}, {"key": key.arn}


def kms_rotate_key_on_demand(state, body):
    key = state.resolve_key(body.get("KeyId", ""))
    check_usable(key)
    with state.lock:
        if sum(1 for m in key.materials if m["type"] == "ON_DEMAND") >= 25:
            raise kms_error("LimitExceededException",
                            "The on-demand rotations limit has been reached for the given key.")
        key.add_material("ON_DEMAND")
    return {"KeyId": key.arn}, {"key": key.arn}


def kms_list_key_rotations(state, body):
    key = state.resolve_key(body.get("KeyId", ""))
    include_all = body.get("IncludeKeyMaterial", "ROTATIONS_ONLY") == "ALL_KEY_MATERIAL"
    limit = int(body.get("Limit", 100))
    if not 1 <= limit <= 1000:
        raise kms_error("ValidationException", "Limit must be between 1 and 1000")
    start = int(body.get("Marker", "0") or 0)
    entries = []
    for i, m in enumerate(key.materials):
        if i == 0 and not include_all:
            continue
        entry = {"KeyId": key.arn,
                 "KeyMaterialState": "CURRENT" if i == len(key.materials) - 1 else "NON_CURRENT"}
        if key.report_material_ids:
            entry["KeyMaterialId"] = m["id"]
        if m["type"] is not None:
            entry["RotationDate"] = m["date"]
            entry["RotationType"] = m["type"]
        entries.append(entry)
    page = entries[start:start + limit]
    out = {"Rotations": page, "Truncated": start + limit < len(entries)}
    if out["Truncated"]:
        out["NextMarker"] = str(start + limit)
    return out, {"key": key.arn}


KMS_OPS = {
    "Encrypt": kms_encrypt,
    "Decrypt": kms_decrypt,
    "DescribeKey": kms_describe_key,
    "RotateKeyOnDemand": kms_rotate_key_on_demand,
    "ListKeyRotations": kms_list_key_rotations,
}


def check_sigv4(state, method, path, query, headers, body, service):
    """Recomputes the request's SigV4 signature with botocore; returns the access key id."""
    auth = headers.get("authorization")
    if not auth:
        raise AwsError("MissingAuthenticationTokenException", 400, "Missing Authentication Token")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r" ?SignedHeaders=([a-z0-9;\-]+), ?Signature=([0-9a-f]{64})", auth)
    if not m:
        raise AwsError("IncompleteSignatureException", 400,
                       "Authorization header requires 'Credential', 'Signature' and "
                       "'SignedHeaders' parameters.")
    akid, scope_date, region, scope_service, signed, signature = m.groups()
    with state.lock:
        cred = state.creds.get(akid)
    if cred is None:
        raise AwsError("UnrecognizedClientException", 400,
                       "The security token included in the request is invalid.")
    if cred["token"] is not None and headers.get("x-amz-security-token") != cred["token"]:
        raise AwsError("UnrecognizedClientException", 400,
                       "The security token included in the request is invalid.")
    if cred["expires"] is not None and utcnow() >= cred["expires"]:
        raise AwsError("ExpiredTokenException", 400,
                       "The security token included in the request is expired")
    if region != state.region or scope_service != service:
        raise AwsError("InvalidSignatureException", 400,
                       f"Credential should be scoped to a valid region and service "
                       f"('{state.region}', '{service}'), not ('{region}', '{scope_service}').")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise AwsError("IncompleteSignatureException", 400, "X-Amz-Date is missing or malformed")
    now = utcnow()
    if signed_at < now - datetime.timedelta(minutes=5):
        raise AwsError("InvalidSignatureException", 400,
                       f"Signature expired: {amz_date} is now earlier than "
                       f"{(now - datetime.timedelta(minutes=5)).strftime('%Y%m%dT%H%M%SZ')} "
                       f"({now.strftime('%Y%m%dT%H%M%SZ')} - 5 min.)")
    if signed_at > now + datetime.timedelta(minutes=5):
        raise AwsError("InvalidSignatureException", 400,
                       f"Signature not yet current: {amz_date} is still later than "
                       f"{(now + datetime.timedelta(minutes=5)).strftime('%Y%m%dT%H%M%SZ')} "
                       f"({now.strftime('%Y%m%dT%H%M%SZ')} + 5 min.)")
    if scope_date != amz_date[:8]:
        raise AwsError("InvalidSignatureException", 400, "Credential date does not match X-Amz-Date")
    names = signed.split(";")
    if "host" not in names or names != sorted(names):
        raise AwsError("InvalidSignatureException", 400, "'Host' must be a signed header")
    signed_headers = {}
    for name in names:
        if name not in headers:
            raise AwsError("InvalidSignatureException", 400, f"Signed header {name} is missing")
        signed_headers[name] = headers[name]
    url = f"https://{headers['host']}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=signed_headers, data=body)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(akid, cred["secret"], cred["token"]), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not secrets.compare_digest(expected, signature):
        raise AwsError("InvalidSignatureException", 400,
                       "The request signature we calculated does not match the signature you "
                       "provided. Check your AWS Secret Access Key and signing method. Consult the "
                       "service documentation for details.")
    return akid, names


# ------------------------------------------------------------------------------------------------


def handle(handler, parts, headers, body, op):
    """Serves one KMS call (X-Amz-Target: TrentService.<op>) on `handler`."""
    state = handler.state
    if headers.get("content-type", "").split(";")[0] != "application/x-amz-json-1.1":
        raise AwsError("UnknownOperationException", 400, "bad Content-Type")
    akid, signed = check_sigv4(state, "POST", parts.path or "/", parts.query, headers, body,
                               "kms")
    if op not in KMS_OPS:
        raise AwsError("UnknownOperationException", 400, f"unknown operation {op}")
    if op in state.deny_ops:
        raise AwsError("AccessDeniedException", 400,
                       f"User: arn:aws:sts::{state.account}:assumed-role/kms-plugin is "
                       f"not authorized to perform: kms:{op}")
    handler.apply_fault("kms", op)
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        raise AwsError("SerializationException", 400, "body is not JSON")
    if not isinstance(request, dict):
        raise AwsError("SerializationException", 400, "body is not a JSON object")
    response, details = KMS_OPS[op](state, request)
    state.log({"service": "kms", "op": op, "access_key": akid, "signed_headers": signed,
               "token": "x-amz-security-token" in headers,
               "peer_port": handler.client_address[1], "request_id": handler.request_id,
               **details})
    handler.send(200, json.dumps(response), "application/x-amz-json-1.1")


def send_error(handler, e):
    """A KMS error as AWS sends it: JSON 1.1 {"__type", "message"}."""
    # AWS sometimes namespaces the type; clients must strip everything up to '#'.
    code = e.code
    if code in ("UnrecognizedClientException", "MissingAuthenticationTokenException",
                "IncompleteSignatureException", "InvalidSignatureException",
                "ExpiredTokenException", "InternalFailure"):
        code = "com.amazon.coral.service#" + code
    handler.send(e.status, json.dumps({"__type": code, "message": e.message}),
                 "application/x-amz-json-1.1")
