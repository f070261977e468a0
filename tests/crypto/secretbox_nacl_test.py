"""PyNaCl (python3-nacl) opens what our crypto/secretbox.h seals, and seals the same bytes given
the same nonce; and testdata/secretbox_golden.json is exactly what its generator makes.

Run by ctest as: /usr/bin/python3 secretbox_nacl_test.py <path of secretbox_seal_helper>
"""
import os
import subprocess
import sys
import unittest

import nacl.exceptions
import nacl.secret

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "testdata"))
import make_secretbox_golden  # noqa: E402

HELPER = None


class SecretboxNaclTest(unittest.TestCase):
    def sealed_by_our_code(self):
        out = subprocess.run([HELPER], check=True, capture_output=True, text=True, timeout=60)
        rows = [line.split(" ") for line in out.stdout.splitlines()]
        return [(bytes.fromhex(p), bytes.fromhex(s)) for p, s in rows]

    def test_pynacl_opens_every_value_our_seal_makes(self):
        box = nacl.secret.SecretBox(make_secretbox_golden.KEY)
        rows = self.sealed_by_our_code()
        self.assertEqual(len(rows), 5)
        for plaintext, sealed in rows:
            self.assertEqual(len(sealed), 24 + 16 + len(plaintext))
            self.assertEqual(box.decrypt(sealed), plaintext)

    def test_pynacl_seals_the_same_bytes_with_the_nonce_our_seal_drew(self):
        box = nacl.secret.SecretBox(make_secretbox_golden.KEY)
        for plaintext, sealed in self.sealed_by_our_code():
            self.assertEqual(bytes(box.encrypt(plaintext, sealed[:24])), sealed)

    def test_our_seal_draws_a_fresh_nonce_for_every_value(self):
        nonces = {sealed[:24] for _, sealed in self.sealed_by_our_code()}
        self.assertEqual(len(nonces), 5)

    def test_pynacl_refuses_a_flipped_tag_byte(self):
        box = nacl.secret.SecretBox(make_secretbox_golden.KEY)
        _, sealed = self.sealed_by_our_code()[0]
        bad = bytearray(sealed)
        bad[24] ^= 1
        with self.assertRaises(nacl.exceptions.CryptoError):
            box.decrypt(bytes(bad))

    def test_the_committed_json_is_what_the_generator_makes(self):
        with open(make_secretbox_golden.OUT, encoding="utf-8") as f:
            committed = f.read()
        import json
        expected = json.dumps(make_secretbox_golden.build(), indent=2, sort_keys=True) + "\n"
        self.assertEqual(committed, expected)


if __name__ == "__main__":
    HELPER = sys.argv.pop(1)
    unittest.main(verbosity=2)
