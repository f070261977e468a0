"""Starts tests/vault/fake_vault_server.py in a child process and talks to its admin API.

    with FakeVault() as vault:
        vault.admin("/admin/keys", {"name": "k8s"})
        client = vault.hvac_client(token=vault.root_token)
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_vault_server.py")


class FakeVault:
    def __init__(self, ready_timeout=20.0):
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-vault-")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", SERVER, "--state-dir", self._tmp.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr)
        deadline = time.monotonic() + ready_timeout
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [],
                                        max(deadline - time.monotonic(), 0))
            chunk = os.read(self.proc.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                self.close()
                raise RuntimeError("fake Vault server did not start")
            line += chunk
        self.info = json.loads(line)
        self.https = f"https://127.0.0.1:{self.info['https_port']}"
        self.http = f"http://127.0.0.1:{self.info['http_port']}"
        self.ca_file = self.info["ca_file"]
        self.root_token = self.info["root_token"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()
        self._tmp.cleanup()

    def admin(self, path, body=None, method=None):
        data = None if method == "GET" else json.dumps(body or {}).encode()
        req = urllib.request.Request(self.http + path, data=data, method=method or "POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def requests(self):
        return self.admin("/admin/requests", method="GET")["requests"]

    def hvac_client(self, token=None, namespace=None):
        import hvac
        import requests
        session = requests.Session()
        session.trust_env = False  # No proxy from the environment for a loopback server.
        return hvac.Client(url=self.https, token=token, namespace=namespace, verify=self.ca_file,
                           session=session, timeout=10)
