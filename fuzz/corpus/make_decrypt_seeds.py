#!/usr/bin/python3
"""Writes the seed corpus of fuzz/decrypt_fuzzer.cc into decrypt_fuzzer/, seeds that carry a
recovery annotation (recovery.kms-plugin.io, plugin/recovery_format.h):
  - mode 0x02 (byte 0, then the annotation value): format-1 values of both sizes (3072- and
    4096-bit wraps) with the fingerprint of the TEST-ONLY key tests/crypto/testdata/
    recovery_test_key_3072 (so OpenWithRecoveryKey reaches the RSA unwrap) or another one, and
    values with a wrong version, a wrong size or nothing;
  - field mode (0xff-separated: ciphertext, key_id, annotation key/value pairs): an envelope-shaped
    ciphertext with {dek, recovery} annotations, and with the recovery annotation alone.
Deterministic (no randomness): re-running it rewrites the same files."""

import hashlib
import os

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decrypt_fuzzer")
TEST_KEY_FINGERPRINT = bytes.fromhex(
    "274e75082d2c204e1824e77988da938df7b6bc1e0ba7572c7ab32d2d6b443f44")
OTHER_FINGERPRINT = hashlib.sha256(b"not the test key").digest()
DEK = b"dek.kms-plugin.io"
RECOVERY = b"recovery.kms-plugin.io"


def filler(n, tag):
    """n bytes without 0xff (the field separator), fixed by tag."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(tag + bytes([i])).digest()
        i += 1
    return out[:n].replace(b"\xff", b"\xfe")


def wrap(fingerprint, rsa_bytes, version=1, tag=b"w"):
    return bytes([version]) + fingerprint + filler(rsa_bytes, tag)


def main():
    os.makedirs(HERE, exist_ok=True)
    seeds = {
        "recovery_3072_test_key": b"\x02" + wrap(TEST_KEY_FINGERPRINT, 384),
        "recovery_4096_test_key": b"\x02" + wrap(TEST_KEY_FINGERPRINT, 512),
        "recovery_3072_other_key": b"\x02" + wrap(OTHER_FINGERPRINT, 384),
        "recovery_bad_version": b"\x02" + wrap(TEST_KEY_FINGERPRINT, 384, version=2),
        "recovery_short": b"\x02" + wrap(TEST_KEY_FINGERPRINT, 383),
        "recovery_header_only": b"\x02\x01" + TEST_KEY_FINGERPRINT,
        "recovery_empty": b"\x02",
    }
    envelope = b"\x01" + filler(12 + 32 + 16, b"envelope")
    fields = [envelope, b"fuzz-key-1", DEK, filler(48, b"dek"), RECOVERY,
              wrap(TEST_KEY_FINGERPRINT, 384)]
    seeds["fields_dek_and_recovery"] = b"\xff".join(fields)
    seeds["fields_recovery_only"] = b"\xff".join(fields[:2] + fields[4:])
    seeds["fields_recovery_twice_size"] = b"\xff".join(
        fields[:4] + [RECOVERY, wrap(TEST_KEY_FINGERPRINT, 384) * 2])
    for name, data in seeds.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
