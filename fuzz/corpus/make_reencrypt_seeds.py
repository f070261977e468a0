#!/usr/bin/env python3
"""Writes the seed corpora of the reencrypt fuzzers (fuzz/reencrypt_*_fuzzer.cc) from the formats
of kmsv2-contract.md §3-4, with the fixed keys of fuzz/reencrypt_fuzz_support.h. Needs the
`cryptography` package. Run from the repository root: python3 fuzz/corpus/make_reencrypt_seeds.py"""
import hashlib, hmac, os, struct
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ETCD_KEY = b"/registry/secrets/default/fuzz"
K, O, SEED = b"k" * 32, b"o" * 32, b"s" * 32
PT = b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x06\n\x04fuzz"
IV, NONCE, INFO = bytes(range(16)), bytes(range(12)), bytes(range(32, 64))


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80]); n >>= 7
    return out + bytes([n])


def field(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def cbc(key, pt):
    p = padding.PKCS7(128).padder(); data = p.update(pt) + p.finalize()
    e = Cipher(algorithms.AES(key), modes.CBC(IV)).encryptor()
    return IV + e.update(data) + e.finalize()


def gcm(key, pt, aad):
    return NONCE + AESGCM(key).encrypt(NONCE, pt, aad)


def write(target, name, data):
    d = os.path.join("fuzz", "corpus", target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- stored values ---
dek = hmac.new(SEED, INFO + b"\x01", hashlib.sha256).digest()
t1 = INFO + NONCE + AESGCM(dek).encrypt(NONCE, PT, ETCD_KEY)
ann = field(1, b"kek.fuzz.example.com") + field(2, b"a")
v2 = (field(1, t1) + field(2, b"fuzz-key-1") + field(3, SEED) + field(4, ann) + varint(5 << 3) +
      varint(1))
write("reencrypt_storage_fuzzer", "kmsv2-type1", b"k8s:enc:kms:v2:fuzz-v2:" + v2)
v2t0 = field(1, gcm(SEED, PT, ETCD_KEY)) + field(2, b"fuzz-key-0") + field(3, SEED)
write("reencrypt_storage_fuzzer", "kmsv2-type0", b"k8s:enc:kms:v2:fuzz-v2:" + v2t0)
v1 = b"k8s:enc:kms:v1:fuzz-v1:" + struct.pack(">H", 32) + SEED
write("reencrypt_storage_fuzzer", "kmsv1-gcm", v1 + gcm(SEED, PT, ETCD_KEY))
write("reencrypt_storage_fuzzer", "kmsv1-cbc", v1 + cbc(SEED, PT))
write("reencrypt_storage_fuzzer", "aescbc-key1", b"k8s:enc:aescbc:v1:key1:" + cbc(K, PT))
write("reencrypt_storage_fuzzer", "aescbc-key1-second", b"k8s:enc:aescbc:v1:key1:" + cbc(O, PT))
write("reencrypt_storage_fuzzer", "aescbc-key0-json",
      b"k8s:enc:aescbc:v1:key0:" + cbc(O, b'{"kind":"Widget","apiVersion":"example.com/v1"}'))
write("reencrypt_storage_fuzzer", "aesgcm-key1", b"k8s:enc:aesgcm:v1:key1:" + gcm(K, PT, ETCD_KEY))
write("reencrypt_storage_fuzzer", "secretbox-key1", b"k8s:enc:secretbox:v1:key1:" + bytes(56))
write("reencrypt_storage_fuzzer", "identity", PT)

# --- EncryptionConfiguration ---
b64 = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="
write("reencrypt_config_fuzzer", "full", f"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, widgets.example.com]
    providers:
      - kms: {{apiVersion: v2, name: p2, endpoint: unix:///p2.sock, timeout: 3s}}
      - kms: {{name: p1, endpoint: unix:///p1.sock, cachesize: 100}}
      - aescbc: {{keys: [{{name: key1, secret: {b64}}}]}}
      - aesgcm: {{keys: [{{name: key1, secret: {b64}}}]}}
      - secretbox: {{keys: [{{name: key1, secret: {b64}}}]}}
      - identity: {{}}
  - resources: ["*.apps", "*."]
    providers:
      - identity: {{}}
  - resources: ["*.*"]
    providers:
      - aescbc: {{keys: [{{name: a, secret: {b64}}}, {{name: b, secret: {b64}}}]}}
""".encode())
write("reencrypt_config_fuzzer", "legacy", f"""kind: EncryptionConfig
apiVersion: v1
resources:
  - resources:
    - secrets
    providers:
    - aescbc:
        keys:
        - name: key1
          secret: {b64}
    - identity: {{}}
""".encode())
write("reencrypt_config_fuzzer", "flow", b"{apiVersion: apiserver.config.k8s.io/v1, kind: "
      b"EncryptionConfiguration, resources: [{resources: [configmaps], providers: [{identity: {}}]}]}")

# --- etcd answers: u16be(len) || protobuf; even chunks answer Range, odd ones Txn ---
def kv(key, value, mod):
    return field(1, key) + varint(2 << 3) + varint(mod) + varint(3 << 3) + varint(mod) + \
        varint(4 << 3) + varint(1) + field(5, value)


def chunks(*cs):
    return b"".join(struct.pack(">H", len(c)) + c for c in cs)


a_key, b_key = b"/registry/configmaps/ns/a", b"/registry/configmaps/ns/b"
a_val = b"k8s:enc:aescbc:v1:key1:" + cbc(O, PT)
header = field(1, varint(3 << 3) + varint(9))
count = header + varint(4 << 3) + varint(2)
page1 = header + field(2, kv(a_key, a_val, 5)) + varint(3 << 3) + varint(1) + varint(4 << 3) + varint(2)
page2 = header + field(2, kv(b_key, PT, 6)) + varint(4 << 3) + varint(2)
txn_ok = header + varint(2 << 3) + varint(1)
txn_conflict = header + field(3, field(1, field(2, kv(a_key, a_val, 7))))
write("reencrypt_etcd_response_fuzzer", "two-pages-conflict",
      chunks(count, txn_conflict, page1, txn_ok, page2, txn_ok))
write("reencrypt_etcd_response_fuzzer", "one-page", chunks(count, txn_ok, page1))
