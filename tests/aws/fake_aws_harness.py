"""Starts tests/aws/fake_aws_server.py in a child process and talks to its admin API.

    with FakeAws() as aws:
        key = aws.admin("/admin/keys", {"alias": "k8s"})
        kms = aws.boto3_client("kms")
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_aws_server.py")
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
from fake_process import FakeProcess  # noqa: E402  (start, stop and the admin API)

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


class FakeAws(FakeProcess):
    def __init__(self, region="us-east-1", ready_timeout=20.0):
        self.region = region
        super().__init__("AWS", SERVER, ["--region", region], ready_timeout=ready_timeout)

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
