#!/usr/bin/python3
"""Generator of envelope_v1_golden.json: the plugin's ciphertext envelope, format version 1.

Written from the README ("0x01 || nonce(12) || AES-256-GCM(seed) || tag(16)") and the AAD layout
of plugin/envelope_format.h, with the `cryptography` package (Debian python3-cryptography); it
shares no code with the plugin. Fixed data key, nonce, seed, key_id and annotations, so the output
is the same on every run.

  /usr/bin/python3 make_envelope_v1_golden.py            # rewrites the JSON (never needed)
  /usr/bin/python3 make_envelope_v1_golden.py --check    # exit 1 unless the JSON matches

The committed JSON is a frozen format: do not regenerate it to make a test pass.
"""
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "envelope_v1_golden.json")

DATA_KEY = bytes(range(0x40, 0x60))                 # 32 bytes: the DEK.
NONCE = bytes(range(0xa0, 0xac))                    # 12 bytes.
SEED = b"golden apiserver seed, 32 bytes!"          # The apiserver's plaintext (a DEK seed).
KEY_ID = ("aws:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab/"
          + "6f0c" * 16)
# The wrapped data key as a backend returns it: opaque bytes, 0x00 and high bytes included.
WRAPPED = b"\x00\x01\xfe\xffwrapped-by-kek:" + bytes(range(0x80, 0x90))
ANNOTATIONS = {"dek.kms-plugin.io": WRAPPED}
# AAD only: two annotations, to pin the order (byte-wise by key) and the per-entry layout.
ANNOTATIONS_TWO = {"z.example.com": b"last", "a.example.com": b"\x00first"}


def aad(key_id: bytes, annotations: dict) -> bytes:
    """"kms-plugin/v1" 0x00 u16be(len key_id) key_id u32be(count)
    then per annotation in byte order of keys: u16be(len key) key u32be(len value) value."""
    out = b"kms-plugin/v1\x00" + struct.pack(">H", len(key_id)) + key_id
    out += struct.pack(">I", len(annotations))
    for k in sorted(annotations, key=lambda s: s.encode()):
        kb, v = k.encode(), annotations[k]
        out += struct.pack(">H", len(kb)) + kb + struct.pack(">I", len(v)) + v
    return out


def build() -> dict:
    a = aad(KEY_ID.encode(), ANNOTATIONS)
    ct_and_tag = AESGCM(DATA_KEY).encrypt(NONCE, SEED, a)
    envelope = b"\x01" + NONCE + ct_and_tag
    assert len(envelope) == 1 + 12 + len(SEED) + 16
    return {
        "comment": "Frozen: kms-plugin ciphertext envelope v1. Made by make_envelope_v1_golden.py "
                   "(python3-cryptography). Never edit.",
        "data_key_hex": DATA_KEY.hex(),
        "nonce_hex": NONCE.hex(),
        "seed_hex": SEED.hex(),
        "key_id": KEY_ID,
        "annotations_hex": {k: v.hex() for k, v in ANNOTATIONS.items()},
        "aad_hex": a.hex(),
        "ciphertext_hex": envelope.hex(),
        "two_annotations_hex": {k: v.hex() for k, v in ANNOTATIONS_TWO.items()},
        "two_annotations_aad_hex": aad(KEY_ID.encode(), ANNOTATIONS_TWO).hex(),
    }


def main() -> int:
    text = json.dumps(build(), indent=2, sort_keys=True) + "\n"
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                print("envelope_v1_golden.json differs from what the generator makes")
                return 1
        print("envelope_v1_golden.json matches the generator")
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
