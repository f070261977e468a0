"""Starts tests/aws/fake_aws_server.py in a child process and talks to its admin API.

    with FakeAws() as aws:
        key = aws.admin("/admin/keys", {"alias": "k8s"})
        kms = aws.boto3_client("kms")
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
SERVER = os.path.join(HERE, "fake_aws_server.py")
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


class FakeAws:
    def __init__(self, region="us-east-1", ready_timeout=20.0):
        self.region = region
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-aws-")
        self.state_dir = self._tmp.name
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", SERVER, "--state-dir", self.state_dir, "--region", region],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr)
        deadline = time.monotonic() + ready_timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready:
                self.close()
                raise RuntimeError("fake AWS server did not start in time")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                self.close()
                raise RuntimeError("fake AWS server exited at start")
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
        data = None if body is None and method == "GET" else json.dumps(body or {}).encode()
        req = urllib.request.Request(self.http + path, data=data,
                                     method=method or ("POST" if data is not None else "GET"))
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def requests(self):
        return self.admin("/admin/requests", method="GET")["requests"]

    def boto3_client(self, service, access_key=ACCESS_KEY, secret_key=SECRET_KEY, token=None,
                     retries=None):
        import boto3
        from botocore.config import Config
        session = boto3.session.Session(aws_access_key_id=access_key,
                                        aws_secret_access_key=secret_key,
                                        aws_session_token=token, region_name=self.region)
        config = Config(retries=retries or {"mode": "standard", "total_max_attempts": 3},
                        connect_timeout=5, read_timeout=10)
        return session.client(service, endpoint_url=self.https, verify=self.ca_file,
                              config=config)

    def raw_kms(self, operation, body, access_key=ACCESS_KEY, secret_key=SECRET_KEY, token=None):
        """One KMS call signed by botocore's SigV4Auth and sent as is, for operations and fields
        that Debian's botocore 1.29 model predates (RotateKeyOnDemand, ListKeyRotations,
        KeyMaterialId, CurrentKeyMaterialId). Returns (HTTP status, parsed JSON body)."""
        import http.client
        import ssl
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        data = json.dumps(body).encode()
        request = AWSRequest(method="POST", url=self.https + "/", data=data, headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"TrentService.{operation}"})
        SigV4Auth(Credentials(access_key, secret_key, token), "kms", self.region).add_auth(request)
        context = ssl.create_default_context(cafile=self.ca_file)
        conn = http.client.HTTPSConnection("127.0.0.1", self.info["https_port"], context=context,
                                           timeout=10)
        try:
            conn.request("POST", "/", body=data, headers=dict(request.headers.items()))
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()
