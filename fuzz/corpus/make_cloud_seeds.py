#!/usr/bin/python3
"""Writes the seed corpus of fuzz/cloud_response_fuzzer.cc into cloud_response_fuzzer/:
byte 0 = mode, byte 1 = status selector (index into kStatuses), then 0xff-separated segments:
the token answer, the backend's answers in call order, the WWW-Authenticate value."""

import base64
import json
import os

STATUSES = [200, 400, 401, 403, 404, 409, 429, 500, 503]
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cloud_response_fuzzer")
KEY = "projects/p/locations/global/keyRings/r/cryptoKeys/k"
VAULT = "https://myvault.vault.azure.net"
VERSION = "0123456789abcdef0123456789abcdef"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def b64(data):
    return base64.b64encode(data).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


CT = b"CT:" + b"k" * 32
PT = b"k" * 32
GOOGLE_TOKEN = {"access_token": "ya29.seed", "expires_in": 3599, "token_type": "Bearer"}
ENTRA_TOKEN = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
               "access_token": "eyJ0eXAiOiJKV1QifQ.seed.sig"}
V1 = KEY + "/cryptoKeyVersions/1"
ENCRYPT = {"name": V1, "ciphertext": b64(CT), "ciphertextCrc32c": str(crc32c(CT)),
           "verifiedPlaintextCrc32c": True, "verifiedAdditionalAuthenticatedDataCrc32c": True,
           "protectionLevel": "SOFTWARE"}
DECRYPT = {"plaintext": b64(PT), "plaintextCrc32c": str(crc32c(PT))}
CRYPTO_KEY = {"name": KEY, "purpose": "ENCRYPT_DECRYPT",
              "primary": {"name": V1, "state": "ENABLED", "protectionLevel": "SOFTWARE"}}
GOOGLE_ERROR = {"error": {"code": 403, "status": "PERMISSION_DENIED",
                          "message": "Permission 'cloudkms.cryptoKeyVersions.useToEncrypt' denied"}}
BUNDLE = {"key": {"kid": VAULT + "/keys/kek/" + VERSION, "kty": "RSA",
                  "key_ops": ["wrapKey", "unwrapKey", "encrypt", "decrypt"]},
          "attributes": {"enabled": True}}
WRAPPED = {"kid": VAULT + "/keys/kek/" + VERSION, "value": b64url(b"W" * 256)}
UNWRAPPED = {"kid": VAULT + "/keys/kek/" + VERSION, "value": b64url(PT)}
AZURE_ERROR = {"error": {"code": "Forbidden", "message": "The user does not have keys wrapKey",
                         "innererror": {"code": "ForbiddenByRbac"}}}
CHALLENGE = ('Bearer authorization="https://login.microsoftonline.com/tenant", '
             'resource="https://vault.azure.net"')
SEEDS = {
    "gcp-wrap": (0, 200, [GOOGLE_TOKEN, ENCRYPT]),
    "gcp-wrap-bad-crc": (0, 200, [GOOGLE_TOKEN, dict(ENCRYPT, ciphertextCrc32c="1")]),
    "gcp-wrap-denied": (0, 403, [GOOGLE_TOKEN, GOOGLE_ERROR]),
    "gcp-unwrap": (1, 200, [GOOGLE_TOKEN, DECRYPT]),
    "gcp-unwrap-throttled": (1, 429, [GOOGLE_TOKEN, {"error": {"code": 429,
                                                     "status": "RESOURCE_EXHAUSTED"}}]),
    "gcp-probe": (2, 200, [GOOGLE_TOKEN, CRYPTO_KEY]),
    "gcp-probe-disabled": (2, 200, [GOOGLE_TOKEN, dict(CRYPTO_KEY, primary={
        "name": V1, "state": "DISABLED"})]),
    "gcp-rotate": (3, 200, [GOOGLE_TOKEN, {"name": KEY + "/cryptoKeyVersions/2",
                                           "state": "ENABLED"}, CRYPTO_KEY]),
    "gcp-token-string-expiry": (2, 200, [{"access_token": "ya29.x", "expires_in": "60"},
                                         CRYPTO_KEY]),
    "azure-wrap": (4, 200, [ENTRA_TOKEN, BUNDLE, WRAPPED, ""]),
    "azure-wrap-challenge": (4, 401, [ENTRA_TOKEN, BUNDLE, "", CHALLENGE]),
    "azure-wrap-oct": (4, 200, [ENTRA_TOKEN, dict(BUNDLE, key=dict(BUNDLE["key"], kty="oct-HSM")),
                                WRAPPED, ""]),
    "azure-unwrap": (5, 200, [ENTRA_TOKEN, UNWRAPPED, ""]),
    "azure-unwrap-forbidden": (5, 403, [ENTRA_TOKEN, AZURE_ERROR, ""]),
    "azure-probe": (6, 200, [ENTRA_TOKEN, BUNDLE, ""]),
    "azure-probe-disabled": (6, 200, [ENTRA_TOKEN, dict(BUNDLE, attributes={"enabled": False}),
                                      ""]),
    "azure-rotate": (7, 200, [ENTRA_TOKEN, BUNDLE, BUNDLE, ""]),
    "azure-token-expires-on": (6, 200, [{"access_token": "x", "expires_on": "1800003600",
                                         "resource": "https://vault.azure.net"}, BUNDLE, ""]),
    "parse-token": (8, 200, [GOOGLE_TOKEN]),
    "parse-iam-token": (8, 200, [{"accessToken": "ya29.i", "expireTime": "2027-01-01T00:00:00Z"}]),
    "parse-challenge": (8, 401, [CHALLENGE]),
    "parse-kid": (8, 200, [VAULT + ":443/keys/kek/" + VERSION]),
    "parse-error": (8, 403, [AZURE_ERROR]),
}

os.makedirs(HERE, exist_ok=True)
for name, (mode, status, segments) in SEEDS.items():
    enc = lambda v: v.encode() if isinstance(v, str) else json.dumps(v).encode()
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(bytes([mode, STATUSES.index(status)]) + b"\xff".join(enc(s) for s in segments))
