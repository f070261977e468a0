#!/usr/bin/python3
"""Generator and checker of recovery_golden.json: the recovery annotation, format 1 (issue 12).

Written from plugin/recovery_format.h and the README with the `cryptography` package (Debian
python3-cryptography); it shares no code with the plugin. A full plugin EncryptResponse (ciphertext,
key_id, both annotations) for a fixed data key and seed, with the recovery wrap under the TEST-ONLY
key tests/crypto/testdata/recovery_test_key_3072.pem:

  recovery.kms-plugin.io = 0x01 || SHA-256(DER SubjectPublicKeyInfo) (32)
                           || RSA-OAEP(SHA-256, MGF1-SHA-256, label "kms-plugin/recovery/v1",
                                       data key (32))                  (384 for RSA-3072)
  ciphertext            = 0x01 || nonce(12) || AES-256-GCM(data key, seed, AAD) || tag(16)
  AAD                   = EnvelopeAad(key_id, both annotations) (make_envelope_v1_golden.py)

RSA-OAEP is randomised, so the JSON was made once and is frozen; `--check` re-derives everything
that is deterministic and verifies the rest (the wrap opens to the data key with the test key):

  /usr/bin/python3 make_recovery_golden.py --check    # exit 1 unless the JSON is consistent
  /usr/bin/python3 make_recovery_golden.py --write    # made the JSON once; never needed again
"""
import hashlib
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "recovery_golden.json")
KEY_FILE = os.path.join(HERE, "..", "..", "crypto", "testdata", "recovery_test_key_3072.pem")

DATA_KEY = bytes(range(0x60, 0x80))                 # 32 bytes: the plugin's data key.
NONCE = bytes(range(0xc0, 0xcc))                    # 12 bytes.
SEED = b"recovery golden seed, 32 bytes!!"          # The apiserver's plaintext.
KEY_ID = "local:v1:recovery-golden"
DEK_BLOB = b"\x00\x02wrapped-by-the-kms:" + bytes(range(0x90, 0xa0))
LABEL = b"kms-plugin/recovery/v1"


def aad(key_id: bytes, annotations: dict) -> bytes:
    out = b"kms-plugin/v1\x00" + struct.pack(">H", len(key_id)) + key_id
    out += struct.pack(">I", len(annotations))
    for k in sorted(annotations, key=lambda s: s.encode()):
        kb, v = k.encode(), annotations[k]
        out += struct.pack(">H", len(kb)) + kb + struct.pack(">I", len(v)) + v
    return out


def oaep():
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(),
                        label=LABEL)


def load_key():
    with open(KEY_FILE, "rb") as f:
        text = f.read()
    return serialization.load_pem_private_key(text[text.index(b"-----BEGIN"):], password=None)


def fingerprint(key) -> bytes:
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def build(wrapped: bytes) -> dict:
    key = load_key()
    recovery = b"\x01" + fingerprint(key) + wrapped
    annotations = {"dek.kms-plugin.io": DEK_BLOB, "recovery.kms-plugin.io": recovery}
    ciphertext = b"\x01" + NONCE + AESGCM(DATA_KEY).encrypt(NONCE, SEED, aad(KEY_ID.encode(),
                                                                               annotations))
    return {
        "comment": "Frozen: kms-plugin recovery annotation format 1 and a full EncryptResponse. "
                   "Made by make_recovery_golden.py (python3-cryptography). Never edit.",
        "private_key_file": "tests/crypto/testdata/recovery_test_key_3072.pem",
        "fingerprint_hex": fingerprint(key).hex(),
        "oaep_label": LABEL.decode(),
        "data_key_hex": DATA_KEY.hex(),
        "seed_hex": SEED.hex(),
        "key_id": KEY_ID,
        "annotations_hex": {k: v.hex() for k, v in annotations.items()},
        "ciphertext_hex": ciphertext.hex(),
    }


def main() -> int:
    if "--write" in sys.argv[1:]:
        wrapped = load_key().public_key().encrypt(DATA_KEY, oaep())
        with open(OUT, "w", encoding="utf-8") as f:
            f.write(json.dumps(build(wrapped), indent=2, sort_keys=True) + "\n")
        return 0
    with open(OUT, encoding="utf-8") as f:
        text = f.read()
    stored = json.loads(text)
    recovery = bytes.fromhex(stored["annotations_hex"]["recovery.kms-plugin.io"])
    wrapped = recovery[33:]
    if len(recovery) != 1 + 32 + 384 or load_key().decrypt(wrapped, oaep()) != DATA_KEY:
        print("recovery_golden.json: the recovery wrap does not open to the data key")
        return 1
    if json.dumps(build(wrapped), indent=2, sort_keys=True) + "\n" != text:
        print("recovery_golden.json differs from what the generator makes")
        return 1
    print("recovery_golden.json matches the generator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
