"""A python fake server (tests/aws/fake_aws_server.py, tests/vault/fake_vault_server.py) in a child
process: start it, read the one JSON ready line it writes on stdout (with a deadline), stop it,
and call its admin API (plain HTTP on loopback, no proxy from the environment).

The harnesses (fake_aws_harness.py, fake_vault_harness.py) subclass FakeProcess.
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.request


class FakeProcess:
    def __init__(self, name, server, args=(), ready_timeout=20.0):
        """Runs `/usr/bin/python3 server --state-dir DIR *args` with DIR a fresh temporary
        directory, and waits up to ready_timeout seconds for its JSON line (self.info)."""
        self._tmp = tempfile.TemporaryDirectory(prefix=f"fake-{name.lower()}-")
        self.state_dir = self._tmp.name
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", server, "--state-dir", self.state_dir, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr)
        deadline = time.monotonic() + ready_timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                self.close()
                raise RuntimeError(f"fake {name} server did not start in time")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                self.close()
                raise RuntimeError(f"fake {name} server exited at start")
            line += chunk
        self.info = json.loads(line)
        self.https = f"https://127.0.0.1:{self.info['https_port']}"
        self.http = f"http://127.0.0.1:{self.info['http_port']}"
        self.ca_file = self.info["ca_file"]

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
        """One admin call: POST with a JSON body ({} if none) unless method says otherwise;
        a GET without a body. Returns the parsed JSON answer ({} if empty)."""
        data = None if body is None and method == "GET" else json.dumps(body or {}).encode()
        req = urllib.request.Request(self.http + path, data=data,
                                     method=method or ("POST" if data is not None else "GET"))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def requests(self):
        return self.admin("/admin/requests", method="GET")["requests"]
