"""Starts tests/azure/fake_azure_server.py in a child process and talks to its admin API.

    with FakeAzure() as azure:
        kid = azure.admin("/admin/keys", {"name": "kek"})["kid"]
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_azure_server.py")
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from fake_process import FakeProcess  # noqa: E402  (start, stop and the admin API)


class FakeAzure(FakeProcess):
    def __init__(self, ready_timeout=20.0):
        super().__init__("Azure", SERVER, ready_timeout=ready_timeout)
        self.tenant = self.info["tenant"]

    def counts(self):
        return self.admin("/admin/counts", method="GET")["counts"]
