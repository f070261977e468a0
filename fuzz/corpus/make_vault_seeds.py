#!/usr/bin/python3
"""Writes the seed corpus of fuzz/vault_response_fuzzer.cc into vault_response_fuzzer/:
byte 0 = mode, byte 1 = status selector (index into kStatuses), the first answer (HTTP 200),
0xff, the second answer."""

import json
import os

STATUSES = [200, 204, 307, 400, 403, 404, 412, 429, 500, 501, 503]
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vault_response_fuzzer")

LOOKUP = {"data": {"ttl": 3600, "creation_ttl": 3600, "renewable": True, "policies": ["default"]}}
LOGIN = {"auth": {"client_token": "hvs.seed", "lease_duration": 3600, "renewable": True,
                  "policies": ["default"], "token_type": "service"}}
KEY = {"data": {"name": "k8s", "type": "aes256-gcm96", "latest_version": 3,
                "min_decryption_version": 1, "keys": {"1": 1, "2": 2, "3": 3},
                "supports_encryption": True, "supports_decryption": True}}
ENC = {"data": {"ciphertext": "vault:v3:" + "A" * 63 + "=",
                "key_version": 3}}
DEC = {"data": {"plaintext": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="}}
SEEDS = {
    "token-probe": (0, 200, LOOKUP, KEY),
    "token-probe-disabled": (0, 200, LOOKUP, {"data": {"latest_version": 1,
                                                       "min_decryption_version": 4}}),
    "approle-wrap": (1, 200, LOGIN, ENC),
    "approle-wrap-mismatch": (1, 200, LOGIN, {"data": {"ciphertext": "vault:v2:QUJD",
                                                       "key_version": 3}}),
    "k8s-unwrap": (2, 200, LOGIN, DEC),
    "k8s-unwrap-too-old": (2, 400, LOGIN, {"errors": [
        "ciphertext or signature version is disallowed by policy (too old)"]}),
    "sealed": (0, 503, LOOKUP, {"errors": ["Vault is sealed"]}),
    "rotate": (3, 204, LOOKUP, ""),
    "renew": (4, 200, LOGIN, {"auth": {"client_token": "hvs.seed", "lease_duration": 60,
                                       "renewable": False}}),
    "errors": (5, 403, "", {"errors": ["permission denied", "\u0007bad"]}),
    "ciphertext": (5, 400, "vault:v12:QUJD", ""),
}

os.makedirs(HERE, exist_ok=True)
for name, (mode, status, first, second) in SEEDS.items():
    enc = lambda v: v.encode() if isinstance(v, str) else json.dumps(v).encode()
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(bytes([mode, STATUSES.index(status)]) + enc(first) + b"\xff" + enc(second))
