"""Starts tests/gcp/fake_gcp_server.py in a child process and talks to its admin API.

    with FakeGcp() as gcp:
        gcp.admin("/admin/keys", {"name": KEY})
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_gcp_server.py")
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from fake_process import FakeProcess  # noqa: E402  (start, stop and the admin API)


class FakeGcp(FakeProcess):
    def __init__(self, ready_timeout=20.0):
        super().__init__("GCP", SERVER, ready_timeout=ready_timeout)

    def kms_url(self, name, verb=""):
        return f"{self.https}/v1/{name}" + (f":{verb}" if verb else "")

    def ops(self):
        return self.admin("/admin/stats", method="GET")["ops"]
