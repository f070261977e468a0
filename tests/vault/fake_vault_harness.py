"""Starts tests/vault/fake_vault_server.py in a child process and talks to its admin API.

    with FakeVault() as vault:
        vault.admin("/admin/keys", {"name": "k8s"})
        client = vault.hvac_client(token=vault.root_token)
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_vault_server.py")
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from fake_process import FakeProcess  # noqa: E402  (start, stop and the admin API)


class FakeVault(FakeProcess):
    def __init__(self, ready_timeout=20.0):
        super().__init__("Vault", SERVER, ready_timeout=ready_timeout)
        self.root_token = self.info["root_token"]

    def hvac_client(self, token=None, namespace=None):
        import hvac
        import requests
        session = requests.Session()
        session.trust_env = False  # No proxy from the environment for a loopback server.
        return hvac.Client(url=self.https, token=token, namespace=namespace, verify=self.ca_file,
                           session=session, timeout=10)
