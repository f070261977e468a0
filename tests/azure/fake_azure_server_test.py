"""azure-keyvault-keys 4.8.0b3 and azure-identity 1.13.0b2 (Debian's python3-azure, clients written
independently of the plugin) against the fake Azure server: the fake speaks the Key Vault, Entra
and IMDS protocols the plugin relies on. Run: /usr/bin/python3 -m unittest -v
fake_azure_server_test (from tests/azure).

azure-identity 1.13.0b2 has no WorkloadIdentityCredential: its ManagedIdentityCredential takes the
same path when AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID and
AZURE_AUTHORITY_HOST are set (remote-kms-apis.md §9.1), which is what the workload identity test
uses. The SDK wraps locally with any RSA key it can GET, so the wrap tests deny "get" (403).
"""

import base64
import json
import os
import time
import unittest
import urllib.error
import urllib.request
import warnings
from unittest import mock

for _v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_v, None)  # Loopback only.

from azure.core.credentials import AccessToken  # noqa: E402
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError  # noqa: E402
from azure.identity import ClientSecretCredential, ManagedIdentityCredential  # noqa: E402
from azure.keyvault.keys import KeyClient  # noqa: E402
from azure.keyvault.keys._shared import http_challenge_cache  # noqa: E402
from azure.keyvault.keys.crypto import (CryptographyClient, EncryptionAlgorithm,  # noqa: E402
                                        KeyWrapAlgorithm)

from fake_azure_harness import FakeAzure  # noqa: E402

DEK = bytes(range(32))
VAULT_SCOPE = "https://vault.azure.net/.default"


class StaticCredential:
    """A TokenCredential handing out one token the fake issued; records what it was asked."""

    def __init__(self, token):
        self.token = token
        self.calls = []

    def get_token(self, *scopes, **kwargs):
        self.calls.append((scopes, kwargs.get("tenant_id")))
        return AccessToken(self.token, int(time.time()) + 3600)


class FakeAzureServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.azure = FakeAzure()

    @classmethod
    def tearDownClass(cls):
        cls.azure.close()

    def setUp(self):
        warnings.simplefilter("ignore", ResourceWarning)
        self.azure.admin("/admin/reset")
        http_challenge_cache.clear()  # Each test starts with the SDK's token-less first request.

    def key(self, name="kek", kty="RSA", deny_get=True):
        info = self.azure.admin("/admin/keys", {"name": name, "kty": kty})
        if deny_get:  # So that the SDK calls wrapkey/encrypt instead of working locally.
            self.azure.admin("/admin/deny", {"ops": ["get"]})
        return info

    def static(self, resource=None):
        body = {"resource": resource} if resource else {}
        return StaticCredential(self.azure.admin("/admin/tokens", body)["token"])

    def crypto(self, kid, credential):
        return CryptographyClient(kid, credential, verify_challenge_resource=False,
                                  connection_verify=self.azure.ca_file)

    def vault_log(self):
        return [r for r in self.azure.requests() if r.get("path", "").startswith("/keys/")]

    def test_challenge_then_wrapkey_and_unwrapkey_with_rsa_oaep_256(self):
        kid = self.key()["kid"]
        credential = self.static()
        client = self.crypto(kid, credential)
        wrapped = client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DEK)
        self.assertEqual(wrapped.key_id, kid)
        self.assertEqual(len(wrapped.encrypted_key), 256)  # RSA-2048.
        self.assertEqual(client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256,
                                           wrapped.encrypted_key).key, DEK)
        # The SDK asked for the scope and tenant the challenge named.
        self.assertEqual(credential.calls[0], ((VAULT_SCOPE,), self.azure.tenant))
        log = self.vault_log()
        first = log[0]
        self.assertEqual((first["status"], first["authorized"]), (401, False))
        self.assertEqual(self.azure.counts().get("wrapkey"), 1)
        self.assertEqual(self.azure.counts().get("unwrapkey"), 1)
        self.assertTrue(all(r["request_id"] for r in log))
        self.assertEqual({r["alg"] for r in log if r.get("status") == 200}, {"RSA-OAEP-256"})

    def test_client_secret_credential_gets_a_token_at_the_entra_endpoint(self):
        kid = self.key()["kid"]
        self.azure.admin("/admin/entra", {"client_id": "app-1", "secret": "s3cret"})
        credential = ClientSecretCredential(self.azure.tenant, "app-1", "s3cret",
                                            authority=self.azure.https,
                                            connection_verify=self.azure.ca_file,
                                            instance_discovery=False)
        client = self.crypto(kid, credential)
        wrapped = client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DEK)
        self.assertEqual(client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256,
                                           wrapped.encrypted_key).key, DEK)
        tokens = [r for r in self.azure.requests() if r.get("op") == "entra-token"]
        self.assertEqual(len(tokens), 1)
        self.assertEqual((tokens[0]["credential"], tokens[0]["scope"], tokens[0]["client_id"]),
                         ("secret", VAULT_SCOPE, "app-1"))
        self.assertNotIn("s3cret", json.dumps(self.azure.requests()))

    def test_a_wrong_client_secret_is_refused(self):
        self.azure.admin("/admin/entra", {"client_id": "app-1", "secret": "s3cret"})
        credential = ClientSecretCredential(self.azure.tenant, "app-1", "wrong",
                                            authority=self.azure.https,
                                            connection_verify=self.azure.ca_file,
                                            instance_discovery=False)
        with self.assertRaises(ClientAuthenticationError) as cm:
            credential.get_token(VAULT_SCOPE)
        self.assertIn("AADSTS7000215", str(cm.exception))

    def test_workload_identity_posts_the_token_file_as_client_assertion(self):
        kid = self.key()["kid"]
        token_file = os.path.join(self.azure.state_dir, "azure-identity-token")
        with open(token_file, "w") as f:
            f.write("projected.sa.token")
        self.azure.admin("/admin/entra", {"client_id": "wi-app", "assertion": "projected.sa.token"})
        env = {"AZURE_CLIENT_ID": "wi-app", "AZURE_TENANT_ID": self.azure.tenant,
               "AZURE_FEDERATED_TOKEN_FILE": token_file, "AZURE_AUTHORITY_HOST": self.azure.https}
        with mock.patch.dict(os.environ, env):
            credential = ManagedIdentityCredential(connection_verify=self.azure.ca_file)
            client = self.crypto(kid, credential)
            wrapped = client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DEK)
            self.assertEqual(client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256,
                                               wrapped.encrypted_key).key, DEK)
        tokens = [r for r in self.azure.requests() if r.get("op") == "entra-token"]
        self.assertEqual([(t["credential"], t["status"]) for t in tokens], [("assertion", 200)])
        self.assertEqual(self.vault_log()[-1]["token_source"], "assertion")

    def test_managed_identity_through_imds_with_and_without_a_client_id(self):
        kid = self.key()["kid"]
        self.azure.admin("/admin/imds", {"client_ids": ["system-mi", "user-mi"]})
        env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.azure.http}
        for client_id in (None, "user-mi"):
            with mock.patch.dict(os.environ, env):
                os.environ.pop("AZURE_CLIENT_ID", None)
                credential = ManagedIdentityCredential(client_id=client_id)
                client = self.crypto(kid, credential)
                wrapped = client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DEK)
                self.assertEqual(client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256,
                                                   wrapped.encrypted_key).key, DEK)
        imds = [r for r in self.azure.requests() if r.get("op") == "imds-token"]
        self.assertEqual([(r["client_id"], r["resource"], r["metadata_header"], r["status"])
                          for r in imds],
                         [("", "https://vault.azure.net", "true", 200),
                          ("user-mi", "https://vault.azure.net", "true", 200)])
        self.assertEqual(self.vault_log()[-1]["client_id"], "user-mi")

    def test_imds_requires_the_metadata_header(self):
        url = (self.azure.http + "/metadata/identity/oauth2/token?api-version=2018-02-01"
               "&resource=https://vault.azure.net")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            opener.open(url, timeout=10)
        self.assertEqual(cm.exception.code, 400)
        with opener.open(urllib.request.Request(url, headers={"Metadata": "true"}),
                         timeout=10) as resp:
            answer = json.loads(resp.read())
        self.assertIsInstance(answer["expires_on"], str)
        self.assertEqual(answer["resource"], "https://vault.azure.net")

    def test_oct_hsm_key_wraps_with_a256kw_and_encrypts_with_a256gcm_and_aad(self):
        self.azure.admin("/admin/resource", {"resource": "https://managedhsm.azure.net"})
        kid = self.key("hsm-kek", "oct-HSM", deny_get=False)["kid"]
        credential = self.static("https://managedhsm.azure.net")
        client = self.crypto(kid, credential)
        wrapped = client.wrap_key(KeyWrapAlgorithm.aes_256, DEK)
        self.assertEqual(len(wrapped.encrypted_key), 40)
        self.assertEqual(client.unwrap_key(KeyWrapAlgorithm.aes_256,
                                           wrapped.encrypted_key).key, DEK)
        self.assertEqual(credential.calls, [(("https://managedhsm.azure.net/.default",),
                                             self.azure.tenant)])
        sealed = client.encrypt(EncryptionAlgorithm.a256_gcm, DEK,
                                additional_authenticated_data=b"ctx")
        self.assertEqual((len(sealed.iv), len(sealed.tag)), (12, 16))
        opened = client.decrypt(EncryptionAlgorithm.a256_gcm, sealed.ciphertext, iv=sealed.iv,
                                authentication_tag=sealed.tag,
                                additional_authenticated_data=b"ctx")
        self.assertEqual(opened.plaintext, DEK)
        with self.assertRaises(HttpResponseError) as cm:  # Another AAD: the tag does not verify.
            client.decrypt(EncryptionAlgorithm.a256_gcm, sealed.ciphertext, iv=sealed.iv,
                           authentication_tag=sealed.tag,
                           additional_authenticated_data=b"other")
        self.assertEqual(cm.exception.status_code, 400)
        self.assertEqual(self.azure.counts().get("encrypt"), 1)

    def test_key_client_reads_rotates_and_lists_versions_and_old_versions_unwrap(self):
        first = self.key(deny_get=False)
        keys = KeyClient(self.azure.https, self.static(), verify_challenge_resource=False,
                         connection_verify=self.azure.ca_file)
        self.assertEqual(keys.get_key("kek").id, first["kid"])
        self.assertEqual(keys.get_key("kek", first["version"]).key.kty, "RSA")
        rotated = keys.rotate_key("kek")
        self.assertNotEqual(rotated.id, first["kid"])
        self.assertEqual(keys.get_key("kek").id, rotated.id)
        self.assertEqual(sorted(p.version for p in keys.list_properties_of_key_versions("kek")),
                         sorted([first["version"], rotated.properties.version]))
        self.azure.admin("/admin/deny", {"ops": ["get"]})
        old = self.crypto(first["kid"], self.static())
        wrapped = old.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DEK)
        self.assertEqual(old.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256,
                                        wrapped.encrypted_key).key, DEK)
        paths = [r["path"] for r in self.vault_log() if r["op"] == "get"]
        self.assertIn("/keys/kek/", paths)  # The SDK's version-less GET has a trailing slash.

    def test_errors_have_key_vault_shapes_and_transient_ones_are_retried(self):
        kid = self.key()["kid"]
        client = self.crypto(kid, self.static())
        self.azure.admin("/admin/faults", {"kind": "429", "op": "wrapkey", "retry_after": 0})
        self.azure.admin("/admin/faults", {"kind": "503", "op": "wrapkey"})
        client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DEK)
        statuses = [r["status"] for r in self.vault_log() if r["op"] == "wrapkey"]
        self.assertEqual(statuses, [429, 503, 200])  # The 401 challenge went to the GET.
        self.azure.admin("/admin/deny", {"ops": ["get", "wrapkey"]})
        with self.assertRaises(HttpResponseError) as cm:
            client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DEK)
        self.assertEqual((cm.exception.status_code, cm.exception.error.code), (403, "Forbidden"))
        self.assertEqual(self.vault_log()[-1]["inner"], "ForbiddenByRbac")
        self.azure.admin("/admin/deny", {"ops": ["get"]})
        self.azure.admin("/admin/keys/enable", {"name": "kek", "enabled": False})
        with self.assertRaises(HttpResponseError) as cm:
            client.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, DEK)
        self.assertEqual(cm.exception.status_code, 403)
        self.azure.admin("/admin/keys/delete", {"name": "kek"})
        with self.assertRaises(HttpResponseError) as cm:
            client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"\0" * 256)
        self.assertEqual((cm.exception.status_code, cm.exception.error.code), (404, "KeyNotFound"))
        self.assertNotIn(base64.b64encode(DEK).decode(), json.dumps(self.azure.requests()))


if __name__ == "__main__":
    unittest.main()
