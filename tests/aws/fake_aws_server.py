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
import base64
import datetime
import hashlib
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

DEFAULT_ACCESS_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BLOB_MAGIC = b"FKMS\x01"
ISO = "%Y-%m-%dT%H:%M:%SZ"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.strftime(ISO)


class AwsError(Exception):
    def __init__(self, code, status, message):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


class DropConnection(Exception):
    pass


# The KMS model's HTTP status per error code (aws-sdk-go-v2 kms.json).
def kms_error(code, message):
    status = {
        "NotFoundException": 400, "DisabledException": 409, "KMSInvalidStateException": 409,
        "InvalidCiphertextException": 400, "IncorrectKeyException": 400,
        "AccessDeniedException": 400, "ThrottlingException": 400,
        "KMSInternalException": 500, "DependencyTimeoutException": 503,
        "ValidationException": 400, "LimitExceededException": 400,
        "InvalidKeyUsageException": 400, "UnsupportedOperationException": 400,
        "ConflictException": 409, "InvalidArnException": 400,
        "UnknownOperationException": 400, "SerializationException": 400,
    }.get(code, 400)
    return AwsError(code, status, message)


# ------------------------------------------------------------------------------------------------
# State

class Key:
    def __init__(self, region, account, report_material_ids=True):
        self.key_id = str(uuid.uuid4())
        self.arn = f"arn:aws:kms:{region}:{account}:key/{self.key_id}"
        self.state = "Enabled"
        self.created = time.time()
        self.report_material_ids = report_material_ids
        self.materials = []  # [{"id", "secret", "date", "type"}]; last is current
        self.add_material(None)

    def add_material(self, rotation_type):
        self.materials.append({
            "id": secrets.token_hex(32),
            "secret": secrets.token_bytes(32),
            "date": time.time(),
            "type": rotation_type,
        })

    @property
    def current(self):
        return self.materials[-1]


class State:
    def __init__(self, region, account):
        self.region = region
        self.account = account
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.keys = {}
            self.aliases = {}
            self.creds = {DEFAULT_ACCESS_KEY: {"secret": DEFAULT_SECRET, "token": None,
                                               "expires": None}}
            self.deny_ops = set()
            self.faults = []
            self.requests = []
            self.sts = None
            self.container = None
            self.imds = None
            self.imds_tokens = {}

    def issue_temporary(self, duration):
        akid = "ASIA" + secrets.token_hex(8).upper()
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = "FQoG" + base64.b64encode(secrets.token_bytes(96)).decode()
        expires = utcnow() + datetime.timedelta(seconds=duration)
        with self.lock:
            self.creds[akid] = {"secret": secret, "token": token, "expires": expires}
        return akid, secret, token, expires

    def resolve_key(self, key_id):
        with self.lock:
            if key_id.startswith("alias/"):
                target = self.aliases.get(key_id[len("alias/"):])
            elif key_id.startswith("arn:"):
                m = re.fullmatch(r"arn:aws:kms:([^:]+):(\d+):(key|alias)/(.+)", key_id)
                if not m or m.group(1) != self.region or m.group(2) != self.account:
                    raise kms_error("NotFoundException", f"Key '{key_id}' does not exist")
                target = m.group(4) if m.group(3) == "key" else self.aliases.get(m.group(4))
            else:
                target = key_id
            key = self.keys.get(target) if target else None
            if key is None:
                raise kms_error("NotFoundException", f"Key '{key_id}' does not exist")
            return key

    def take_fault(self, service, op):
        with self.lock:
            for f in self.faults:
                if f["service"] == service and f["op"] in ("*", op) and f["count"] != 0:
                    if f["count"] > 0:
                        f["count"] -= 1
                    return dict(f)
        return None

    def log(self, entry):
        with self.lock:
            self.requests.append(entry)


def context_aad(ctx):
    return json.dumps(ctx or {}, sort_keys=True, separators=(",", ":")).encode()


# ------------------------------------------------------------------------------------------------
# KMS

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
# HTTP handlers

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAWS/1.0"

    def log_message(self, fmt, *args):  # Quiet: the request log is /admin/requests.
        pass

    @property
    def state(self):
        return self.server.state

    def _headers(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, content_type, extra=None):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj), "application/json")

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass

    def _apply_fault(self, service, op):
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
            xml = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                   f'<Type>Sender</Type><Code>{e.code}</Code><Message>{e.message}</Message>'
                   f'</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>')
            self._send(e.status, xml, "text/xml")
        elif service == "kms":
            # AWS sometimes namespaces the type; clients must strip everything up to '#'.
            code = e.code
            if code in ("UnrecognizedClientException", "MissingAuthenticationTokenException",
                        "IncompleteSignatureException", "InvalidSignatureException",
                        "ExpiredTokenException", "InternalFailure"):
                code = "com.amazon.coral.service#" + code
            self._send(e.status, json.dumps({"__type": code, "message": e.message}),
                       "application/x-amz-json-1.1")
        else:
            self._json(e.status, {"Code": e.code, "Message": e.message})

    # --- HTTPS: KMS and STS ---------------------------------------------------------------------

    def handle_https_post(self):
        headers = self._headers()
        body = self._body()
        parts = urlsplit(self.path)
        target = headers.get("x-amz-target", "")
        service = "kms" if target.startswith("TrentService.") else "sts"
        try:
            if service == "kms":
                self._kms(parts, headers, body, target[len("TrentService."):])
            else:
                self._sts(headers, body)
        except DropConnection:
            self._drop()
        except AwsError as e:
            self.state.log({"service": service, "op": target[len("TrentService."):] or "sts",
                            "error": e.code})
            self._error(e, service)

    def _kms(self, parts, headers, body, op):
        if headers.get("content-type", "").split(";")[0] != "application/x-amz-json-1.1":
            raise AwsError("UnknownOperationException", 400, "bad Content-Type")
        akid, signed = check_sigv4(self.state, "POST", parts.path or "/", parts.query, headers,
                                   body, "kms")
        if op not in KMS_OPS:
            raise AwsError("UnknownOperationException", 400, f"unknown operation {op}")
        if op in self.state.deny_ops:
            raise AwsError("AccessDeniedException", 400,
                           f"User: arn:aws:sts::{self.state.account}:assumed-role/kms-plugin is "
                           f"not authorized to perform: kms:{op}")
        self._apply_fault("kms", op)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise AwsError("SerializationException", 400, "body is not JSON")
        if not isinstance(request, dict):
            raise AwsError("SerializationException", 400, "body is not a JSON object")
        response, details = KMS_OPS[op](self.state, request)
        self.state.log({"service": "kms", "op": op, "access_key": akid, "signed_headers": signed,
                        "token": "x-amz-security-token" in headers,
                        "peer_port": self.client_address[1], **details})
        self._send(200, json.dumps(response), "application/x-amz-json-1.1")

    def _sts(self, headers, body):
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("Version") != "2011-06-15":
            raise AwsError("InvalidAction", 400, "Could not find operation")
        self._apply_fault("sts", "AssumeRoleWithWebIdentity")
        cfg = self.state.sts
        if cfg is None or form.get("RoleArn") != cfg["role_arn"]:
            raise AwsError("AccessDenied", 403, "Not authorized to perform sts:AssumeRoleWithWebIdentity")
        if form.get("WebIdentityToken") != cfg["token"]:
            raise AwsError("InvalidIdentityToken", 400, "Incorrect token audience")
        name = form.get("RoleSessionName", "")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", name):
            raise AwsError("ValidationError", 400, "RoleSessionName is invalid")
        akid, secret, token, expires = self.state.issue_temporary(cfg.get("duration", 3600))
        self.state.log({"service": "sts", "op": "AssumeRoleWithWebIdentity",
                        "role_arn": cfg["role_arn"], "session": name, "issued": akid})
        xml = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:kube-system:kms-plugin</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::{self.state.account}:assumed-role/kms-plugin/{name}</Arn>
      <AssumedRoleId>AROAEXAMPLE:{name}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{akid}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{iso(expires)}</Expiration>
    </Credentials>
    <Provider>arn:aws:iam::{self.state.account}:oidc-provider/oidc.example</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""
        self._send(200, xml, "text/xml")

    # --- HTTP: container credentials, IMDS, admin ----------------------------------------------

    def handle_http(self, method):
        headers = self._headers()
        body = self._body()
        path = urlsplit(self.path).path
        try:
            if path.startswith("/admin/"):
                return self._admin(method, path, body)
            if path.startswith("/latest/"):
                return self._imds(method, path, headers)
            return self._container(method, path, headers)
        except DropConnection:
            self._drop()
        except AwsError as e:
            self._error(e, "http")

    def _creds_json(self, duration, extra=None):
        akid, secret, token, expires = self.state.issue_temporary(duration)
        doc = {"AccessKeyId": akid, "SecretAccessKey": secret, "Token": token,
               "Expiration": iso(expires)}
        doc.update(extra or {})
        return akid, doc

    def _container(self, method, path, headers):
        cfg = self.state.container
        if method != "GET" or cfg is None or path != cfg["path"]:
            raise AwsError("NotFound", 404, "no such path")
        self._apply_fault("container", "GET")
        if cfg.get("token") is not None and headers.get("authorization") != cfg["token"]:
            raise AwsError("AccessDenied", 401, "bad authorization token")
        akid, doc = self._creds_json(cfg.get("duration", 3600),
                                     {"AccountId": self.state.account,
                                      "RoleArn": f"arn:aws:iam::{self.state.account}:role/pod"})
        self.state.log({"service": "container", "op": "GET", "issued": akid,
                        "authorized": "authorization" in headers})
        self._json(200, doc)

    def _imds(self, method, path, headers):
        cfg = self.state.imds
        if cfg is None:
            raise AwsError("NotFound", 404, "no instance metadata here")
        self._apply_fault("imds", method)
        if path == "/latest/api/token":
            if method != "PUT":
                raise AwsError("MethodNotAllowed", 405, "PUT only")
            ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                raise AwsError("BadRequest", 400, "bad TTL")
            token = secrets.token_urlsafe(32)
            with self.state.lock:
                self.state.imds_tokens[token] = time.time() + int(ttl)
            self.state.log({"service": "imds", "op": "token"})
            return self._send(200, token, "text/plain",
                              {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
        token = headers.get("x-aws-ec2-metadata-token")
        with self.state.lock:
            valid = token is not None and self.state.imds_tokens.get(token, 0) > time.time()
        if not valid:
            raise AwsError("Unauthorized", 401, "IMDSv2 token required")
        prefix = "/latest/meta-data/iam/security-credentials/"
        if path == prefix:
            self.state.log({"service": "imds", "op": "role"})
            return self._send(200, cfg["role"], "text/plain")
        if path == prefix + cfg["role"]:
            akid, doc = self._creds_json(cfg.get("duration", 3600),
                                         {"Code": "Success", "Type": "AWS-HMAC",
                                          "LastUpdated": iso(utcnow())})
            self.state.log({"service": "imds", "op": "credentials", "issued": akid})
            return self._json(200, doc)
        raise AwsError("NotFound", 404, "no such metadata")

    def _admin(self, method, path, body):
        st = self.state
        req = json.loads(body or b"{}") if method == "POST" else {}
        if method == "GET" and path == "/admin/requests":
            with st.lock:
                return self._json(200, {"requests": list(st.requests)})
        if method != "POST":
            raise AwsError("NotFound", 404, "unknown admin call")
        with st.lock:
            if path == "/admin/reset":
                st.reset()
                return self._json(200, {})
            if path == "/admin/keys":
                key = Key(st.region, st.account, req.get("report_material_ids", True))
                st.keys[key.key_id] = key
                if req.get("alias"):
                    st.aliases[req["alias"]] = key.key_id
                return self._json(200, {"key_id": key.key_id, "arn": key.arn,
                                        "material_id": key.current["id"]})
            m = re.fullmatch(r"/admin/keys/([^/]+)/state", path)
            if m:
                key = st.keys.get(m.group(1))
                if key is None:
                    raise AwsError("NotFound", 404, "no such key")
                if req.get("state") not in KEY_STATES:
                    raise AwsError("BadRequest", 400, "unknown key state")
                key.state = req["state"]
                return self._json(200, {"state": key.state, "material_id": key.current["id"]})
            m = re.fullmatch(r"/admin/keys/([^/]+)/([a-z-]+)", path)
            if m:
                key = st.keys.get(m.group(1))
                if key is None:
                    raise AwsError("NotFound", 404, "no such key")
                action = m.group(2)
                if action == "disable":
                    key.state = "Disabled"
                elif action == "enable":
                    key.state = "Enabled"
                elif action == "schedule-deletion":
                    key.state = "PendingDeletion"
                elif action == "rotate":
                    key.add_material("AUTOMATIC")
                else:
                    raise AwsError("NotFound", 404, "unknown key action")
                return self._json(200, {"state": key.state, "material_id": key.current["id"]})
            if path == "/admin/credentials":
                expires = None
                if req.get("expires_in") is not None:
                    expires = utcnow() + datetime.timedelta(seconds=req["expires_in"])
                st.creds[req["access_key"]] = {"secret": req["secret"],
                                               "token": req.get("token"), "expires": expires}
                return self._json(200, {})
            if path == "/admin/credentials/expire":
                st.creds[req["access_key"]]["expires"] = utcnow() - datetime.timedelta(seconds=1)
                return self._json(200, {})
            if path == "/admin/deny":
                st.deny_ops = set(req.get("ops", []))
                return self._json(200, {})
            if path == "/admin/faults":
                st.faults.append({"service": req.get("service", "kms"), "op": req.get("op", "*"),
                                  "kind": req["kind"], "count": int(req.get("count", 1)),
                                  "delay_ms": int(req.get("delay_ms", 0))})
                return self._json(200, {})
            if path == "/admin/faults/clear":
                st.faults = []
                return self._json(200, {})
            if path == "/admin/sts":
                st.sts = req
                return self._json(200, {})
            if path == "/admin/container":
                st.container = req
                return self._json(200, {})
            if path == "/admin/imds":
                st.imds = req
                return self._json(200, {})
            if path == "/admin/requests/clear":
                st.requests = []
                return self._json(200, {})
        raise AwsError("NotFound", 404, "unknown admin call")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="111122223333")
    args = parser.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    ca_file, cert_file, key_file = make_certificates(args.state_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    state = State(args.region, args.account)
    https = Server(HttpsHandler, state, context)
    plain = Server(PlainHandler, state)
    for srv in (https, plain):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    info = {"https_port": https.server_address[1], "http_port": plain.server_address[1],
            "ca_file": ca_file, "pid": os.getpid(), "region": args.region,
            "account": args.account}
    tmp = os.path.join(args.state_dir, "server.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, os.path.join(args.state_dir, "server.json"))
    # The same line on stdout: the parent waits on it instead of polling the file.
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    # Exit when the parent goes away (stdin closes), so no test can leak a server.
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
