#!/usr/bin/python3
"""Generator of secretbox_golden.json: NaCl secretbox (XSalsa20-Poly1305) values made by PyNaCl
(Debian python3-nacl, nacl.secret.SecretBox), with no code of the plugin, for crypto/secretbox.h
and kube-apiserver's `secretbox` provider (kmsv2-contract.md §4.2):

  sealed          = nonce(24) || tag(16) || ciphertext       (what Secretbox::Seal returns)
  apiserver value = "k8s:enc:secretbox:v1:" + key name + ":" + sealed

Fixed key, nonces and plaintexts, so every run makes the same bytes.

  /usr/bin/python3 make_secretbox_golden.py            # rewrites the JSON (never needed)
  /usr/bin/python3 make_secretbox_golden.py --check    # exit 1 unless the JSON matches

The committed JSON is a frozen format: do not regenerate it to make a test pass.
"""
import json
import os
import sys

import nacl.secret

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "secretbox_golden.json")

KEY = bytes(range(0x10, 0x30))  # 32 bytes.
KEY_NAME = "key1"
VECTORS = [
    # (name, nonce, plaintext)
    ("secret", bytes(range(0xc0, 0xd8)),
     b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x08\n\x06golden"),
    ("empty", bytes(range(0x30, 0x48)), b""),
    ("binary", bytes(24), bytes(range(256))),
]


def build() -> dict:
    box = nacl.secret.SecretBox(KEY)
    vectors = []
    for name, nonce, plaintext in VECTORS:
        sealed = bytes(box.encrypt(plaintext, nonce))  # PyNaCl: nonce || tag || ciphertext.
        assert sealed[:24] == nonce and len(sealed) == 24 + 16 + len(plaintext)
        value = b"k8s:enc:secretbox:v1:" + KEY_NAME.encode() + b":" + sealed
        vectors.append({
            "name": name,
            "nonce_hex": nonce.hex(),
            "plaintext_hex": plaintext.hex(),
            "sealed_hex": sealed.hex(),
            "apiserver_value_hex": value.hex(),
        })
    return {
        "comment": "Frozen: NaCl secretbox vectors made by make_secretbox_golden.py with PyNaCl "
                   "(python3-nacl). Never edit.",
        "key_hex": KEY.hex(),
        "key_name": KEY_NAME,
        "vectors": vectors,
    }


def main() -> int:
    text = json.dumps(build(), indent=2, sort_keys=True) + "\n"
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                print("secretbox_golden.json differs from what the generator makes")
                return 1
        print("secretbox_golden.json matches the generator")
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
