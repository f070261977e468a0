"""hvac (Debian's python3-hvac 0.11.2, an independent Vault client) against the fake Vault server:
the fake speaks the Vault API the plugin relies on. Run: /usr/bin/python3 -m unittest -v
fake_vault_server_test (from tests/vault)."""

import base64
import unittest
import warnings

import hvac
import hvac.exceptions

from fake_vault_harness import FakeVault

AAD = base64.b64encode(b"kms-plugin/kubernetes-kms-v2:transit/k8s").decode()


def b64(data):
    return base64.b64encode(data).decode()


class FakeVaultServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.vault = FakeVault()

    @classmethod
    def tearDownClass(cls):
        cls.vault.close()

    def setUp(self):
        warnings.simplefilter("ignore", ResourceWarning)  # requests' pooled sockets.
        self.vault.admin("/admin/reset")
        self.root = self.vault.hvac_client(token=self.vault.root_token)

    def encrypt(self, client, name, plaintext, aad=AAD, mount="transit"):
        return client.adapter.post(f"/v1/{mount}/encrypt/{name}",
                                   json={"plaintext": b64(plaintext), "associated_data": aad})

    def decrypt(self, client, name, ciphertext, aad=AAD, mount="transit"):
        answer = client.adapter.post(f"/v1/{mount}/decrypt/{name}",
                                     json={"ciphertext": ciphertext, "associated_data": aad})
        return base64.b64decode(answer["data"]["plaintext"])

    def test_transit_create_encrypt_decrypt_with_associated_data(self):
        self.root.secrets.transit.create_key("k8s")
        enc = self.encrypt(self.root, "k8s", b"data key bytes")
        self.assertRegex(enc["data"]["ciphertext"], r"^vault:v1:[A-Za-z0-9+/=]+$")
        self.assertEqual(enc["data"]["key_version"], 1)
        raw = base64.b64decode(enc["data"]["ciphertext"].split(":")[2])
        self.assertEqual(len(raw), 12 + len(b"data key bytes") + 16)  # nonce || ct || tag
        self.assertEqual(self.decrypt(self.root, "k8s", enc["data"]["ciphertext"]),
                         b"data key bytes")
        # hvac's own helpers (no associated data) work too.
        plain = self.root.secrets.transit.encrypt_data("k8s", b64(b"x"))
        back = self.root.secrets.transit.decrypt_data("k8s", plain["data"]["ciphertext"])
        self.assertEqual(base64.b64decode(back["data"]["plaintext"]), b"x")

    def test_wrong_associated_data_or_a_tampered_ciphertext_is_a_400(self):
        self.vault.admin("/admin/keys", {"name": "k8s"})
        ct = self.encrypt(self.root, "k8s", b"secret")["data"]["ciphertext"]
        with self.assertRaisesRegex(hvac.exceptions.InvalidRequest, "message authentication"):
            self.decrypt(self.root, "k8s", ct, aad=b64(b"other"))
        with self.assertRaisesRegex(hvac.exceptions.InvalidRequest, "no prefix"):
            self.decrypt(self.root, "k8s", "v1:abc")

    def test_rotate_read_key_and_min_decryption_version(self):
        self.vault.admin("/admin/keys", {"name": "k8s"})
        old = self.encrypt(self.root, "k8s", b"old")["data"]["ciphertext"]
        self.root.secrets.transit.rotate_key("k8s")
        info = self.root.secrets.transit.read_key("k8s")["data"]
        self.assertEqual(info["latest_version"], 2)
        self.assertEqual(info["type"], "aes256-gcm96")
        self.assertEqual(sorted(info["keys"]), ["1", "2"])
        new = self.encrypt(self.root, "k8s", b"new")["data"]["ciphertext"]
        self.assertTrue(new.startswith("vault:v2:"))
        self.assertEqual(self.decrypt(self.root, "k8s", old), b"old")
        self.root.secrets.transit.update_key_configuration("k8s", min_decryption_version=2)
        self.assertEqual(self.root.secrets.transit.read_key("k8s")["data"]
                         ["min_decryption_version"], 2)
        with self.assertRaisesRegex(hvac.exceptions.InvalidRequest, "too old"):
            self.decrypt(self.root, "k8s", old)
        self.assertEqual(self.decrypt(self.root, "k8s", new), b"new")

    def test_approle_login_gives_a_token_limited_to_its_key(self):
        self.vault.admin("/admin/keys", {"name": "k8s"})
        self.vault.admin("/admin/keys", {"name": "other"})
        self.vault.admin("/admin/approle", {"role_id": "rid", "secret_id": "sid-123",
                                            "keys": ["transit/k8s"], "ttl": 600})
        client = self.vault.hvac_client()
        auth = client.auth.approle.login("rid", "sid-123")["auth"]
        self.assertTrue(auth["client_token"].startswith("hvs."))
        self.assertEqual(auth["lease_duration"], 600)
        self.assertTrue(client.is_authenticated())
        ct = self.encrypt(client, "k8s", b"abc")["data"]["ciphertext"]
        self.assertEqual(self.decrypt(client, "k8s", ct), b"abc")
        with self.assertRaises(hvac.exceptions.Forbidden):
            self.encrypt(client, "other", b"abc")
        with self.assertRaises(hvac.exceptions.Forbidden):
            client.secrets.transit.rotate_key("k8s")
        with self.assertRaises(hvac.exceptions.InvalidRequest):
            self.vault.hvac_client().auth.approle.login("rid", "wrong")

    def test_kubernetes_login_checks_the_role_and_the_jwt(self):
        self.vault.admin("/admin/keys", {"name": "k8s"})
        self.vault.admin("/admin/k8s", {"role": "kms", "jwt": "eyJ.sa-token", "keys": ["*"]})
        client = self.vault.hvac_client()
        client.auth.kubernetes.login("kms", "eyJ.sa-token")
        self.assertTrue(client.is_authenticated())
        with self.assertRaises(hvac.exceptions.Forbidden):
            self.vault.hvac_client().auth.kubernetes.login("kms", "eyJ.other")
        with self.assertRaises(hvac.exceptions.InvalidRequest):
            self.vault.hvac_client().auth.kubernetes.login("nope", "eyJ.sa-token")
        jwt = self.vault.hvac_client()
        self.vault.admin("/admin/k8s", {"mount": "jwt", "role": "kms", "jwt": "eyJ.j"})
        jwt.auth.jwt.jwt_login("kms", "eyJ.j", path="jwt")
        self.assertTrue(jwt.is_authenticated())

    def test_token_lookup_renew_and_revocation(self):
        token = self.vault.admin("/admin/tokens", {"keys": ["transit/k8s"], "ttl": 60,
                                                   "max_ttl": 100})["token"]
        client = self.vault.hvac_client(token=token)
        data = client.auth.token.lookup_self()["data"]
        self.assertTrue(data["renewable"])
        self.assertLessEqual(data["ttl"], 60)
        self.assertEqual(data["creation_ttl"], 60)
        renewed = client.auth.token.renew_self(increment="1h")["auth"]
        self.assertLessEqual(renewed["lease_duration"], 100)  # Capped by the max TTL.
        self.assertEqual(self.vault.admin("/admin/stats", method="GET")["renewals"], 1)
        self.vault.admin("/admin/tokens/revoke", {"token": token})
        with self.assertRaises(hvac.exceptions.Forbidden):
            client.auth.token.lookup_self()
        fixed = self.vault.admin("/admin/tokens", {"keys": ["transit/k8s"], "ttl": 0})["token"]
        with self.assertRaises(hvac.exceptions.InvalidRequest):
            self.vault.hvac_client(token=fixed).auth.token.renew_self()

    def test_sealed_is_vault_down_and_faults_have_vaults_codes(self):
        self.vault.admin("/admin/keys", {"name": "k8s"})
        self.vault.admin("/admin/seal", {"sealed": True})
        with self.assertRaisesRegex(hvac.exceptions.VaultDown, "Vault is sealed"):
            self.root.secrets.transit.read_key("k8s")
        self.vault.admin("/admin/seal", {"sealed": False})
        self.vault.admin("/admin/faults", {"kind": "429"})
        with self.assertRaises(hvac.exceptions.RateLimitExceeded):
            self.root.secrets.transit.read_key("k8s")
        self.vault.admin("/admin/keys/delete", {"name": "k8s"})
        with self.assertRaises(hvac.exceptions.InvalidPath):
            self.root.secrets.transit.read_key("k8s")

    def test_disabled_key_is_forbidden_and_namespaces_are_separate(self):
        self.vault.admin("/admin/keys", {"name": "k8s", "namespace": "team-a"})
        token = self.vault.admin("/admin/tokens", {"keys": ["transit/k8s"]})["token"]
        client = self.vault.hvac_client(token=token, namespace="team-a/")
        ct = self.encrypt(client, "k8s", b"n")["data"]["ciphertext"]
        with self.assertRaises(hvac.exceptions.Forbidden):  # Upsert: no such key in root ns.
            self.encrypt(self.vault.hvac_client(token=token), "k8s", b"n")
        self.vault.admin("/admin/keys/disable", {"name": "k8s", "namespace": "team-a"})
        with self.assertRaises(hvac.exceptions.Forbidden):
            self.decrypt(client, "k8s", ct)

    def test_the_request_log_records_headers_and_holds_no_secret(self):
        self.vault.admin("/admin/keys", {"name": "k8s"})
        self.vault.admin("/admin/approle", {"role_id": "rid", "secret_id": "sid-secret",
                                            "keys": ["*"]})
        client = self.vault.hvac_client()
        client.auth.approle.login("rid", "sid-secret")
        self.encrypt(client, "k8s", b"plaintext-secret")
        log = self.vault.requests()
        self.assertEqual([r["op"] for r in log], ["login-approle", "encrypt"])
        self.assertTrue(all(r["vault_request"] for r in log))
        text = repr(log)
        for secret in ("sid-secret", client.token, b64(b"plaintext-secret")):
            self.assertNotIn(secret, text)


if __name__ == "__main__":
    unittest.main()
