"""boto3/botocore against the fake AWS server: shows that the fake speaks the protocol a real AWS
client speaks (KMS JSON 1.1 with SigV4, STS query protocol, container credentials, IMDSv2) and
answers with the error shapes botocore parses.

Run: /usr/bin/python3 -m unittest tests/aws/fake_aws_server_test.py (ctest: AwsFakeServerBoto3).
"""

import base64
import os
import sys
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from botocore.exceptions import ClientError  # noqa: E402

from fake_aws_harness import FakeAws  # noqa: E402

NO_RETRIES = {"mode": "standard", "total_max_attempts": 1}


def code_of(ctx):
    return ctx.exception.response["Error"]["Code"]


class FakeAwsServerBoto3Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        warnings.simplefilter("ignore", ResourceWarning)  # boto3 keeps pooled sockets open.
        cls.aws = FakeAws()

    @classmethod
    def tearDownClass(cls):
        cls.aws.close()

    def setUp(self):
        self.aws.admin("/admin/reset")
        self.key = self.aws.admin("/admin/keys", {"alias": "k8s"})
        self.kms = self.aws.boto3_client("kms", retries=NO_RETRIES)

    def raw(self, operation, body):
        status, out = self.aws.raw_kms(operation, body)
        self.assertEqual(status, 200, out)
        return out

    def test_encrypt_then_decrypt_returns_the_plaintext_and_key_material(self):
        out = self.kms.encrypt(KeyId="alias/k8s", Plaintext=b"secret data key",
                               EncryptionContext={"kms-plugin": "kubernetes-kms-v2"})
        self.assertEqual(out["KeyId"], self.key["arn"])
        back = self.kms.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=self.key["arn"],
                                EncryptionContext={"kms-plugin": "kubernetes-kms-v2"})
        self.assertEqual(back["Plaintext"], b"secret data key")
        # Fields newer than Debian's botocore model, checked on the wire.
        raw_enc = self.raw("Encrypt", {"KeyId": "alias/k8s", "Plaintext": "AAEC"})
        self.assertNotIn("KeyMaterialId", raw_enc)  # As in AWS: Encrypt does not report it.
        raw_dec = self.raw("Decrypt", {"CiphertextBlob": raw_enc["CiphertextBlob"]})
        self.assertEqual(raw_dec["KeyMaterialId"], self.key["material_id"])
        self.assertEqual(raw_dec["Plaintext"], "AAEC")

    def test_decrypt_with_another_encryption_context_is_invalid_ciphertext(self):
        out = self.kms.encrypt(KeyId=self.key["key_id"], Plaintext=b"k",
                               EncryptionContext={"a": "1"})
        with self.assertRaises(ClientError) as ctx:
            self.kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"a": "2"})
        self.assertEqual(code_of(ctx), "InvalidCiphertextException")

    def test_decrypt_naming_another_key_is_incorrect_key(self):
        other = self.aws.admin("/admin/keys", {})
        out = self.kms.encrypt(KeyId=self.key["key_id"], Plaintext=b"k")
        with self.assertRaises(ClientError) as ctx:
            self.kms.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=other["arn"])
        self.assertEqual(code_of(ctx), "IncorrectKeyException")

    def test_describe_key_resolves_an_alias_and_reports_current_key_material(self):
        meta = self.kms.describe_key(KeyId="alias/k8s")["KeyMetadata"]
        self.assertEqual(meta["Arn"], self.key["arn"])
        self.assertEqual(meta["KeyState"], "Enabled")
        self.assertTrue(meta["Enabled"])
        self.assertEqual(meta["KeySpec"], "SYMMETRIC_DEFAULT")
        raw_meta = self.raw("DescribeKey", {"KeyId": "alias/k8s"})["KeyMetadata"]
        self.assertEqual(raw_meta["CurrentKeyMaterialId"], self.key["material_id"])

    def test_rotation_changes_current_material_and_old_ciphertext_still_decrypts(self):
        old = self.kms.encrypt(KeyId="alias/k8s", Plaintext=b"before")
        self.assertEqual(self.raw("RotateKeyOnDemand", {"KeyId": "alias/k8s"})["KeyId"],
                         self.key["arn"])
        meta = self.raw("DescribeKey", {"KeyId": "alias/k8s"})["KeyMetadata"]
        self.assertNotEqual(meta["CurrentKeyMaterialId"], self.key["material_id"])
        self.assertEqual(self.kms.decrypt(CiphertextBlob=old["CiphertextBlob"])["Plaintext"],
                         b"before")
        blob = base64.b64encode(old["CiphertextBlob"]).decode()
        self.assertEqual(self.raw("Decrypt", {"CiphertextBlob": blob})["KeyMaterialId"],
                         self.key["material_id"])
        new = self.raw("Encrypt", {"KeyId": "alias/k8s", "Plaintext": "AAEC"})
        self.assertEqual(self.raw("Decrypt", {"CiphertextBlob": new["CiphertextBlob"]})
                         ["KeyMaterialId"], meta["CurrentKeyMaterialId"])
        rotations = self.raw("ListKeyRotations", {"KeyId": self.key["arn"]})["Rotations"]
        self.assertEqual(len(rotations), 1)
        self.assertEqual(rotations[0]["RotationType"], "ON_DEMAND")
        self.assertEqual(rotations[0]["KeyMaterialState"], "CURRENT")
        everything = self.raw("ListKeyRotations", {"KeyId": self.key["arn"],
                                                   "IncludeKeyMaterial": "ALL_KEY_MATERIAL"})
        self.assertEqual(len(everything["Rotations"]), 2)

    def test_list_key_rotations_paginates_with_markers(self):
        for _ in range(3):
            self.raw("RotateKeyOnDemand", {"KeyId": self.key["arn"]})
        seen, marker = 0, None
        while True:
            body = {"KeyId": self.key["arn"], "Limit": 2}
            if marker:
                body["Marker"] = marker
            page = self.raw("ListKeyRotations", body)
            seen += len(page["Rotations"])
            if not page["Truncated"]:
                break
            marker = page["NextMarker"]
        self.assertEqual(seen, 3)

    def test_raw_request_with_a_tampered_body_fails_the_signature_check(self):
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        import http.client
        import json
        import ssl
        request = AWSRequest(method="POST", url=self.aws.https + "/",
                             data=b'{"KeyId":"alias/k8s"}',
                             headers={"Content-Type": "application/x-amz-json-1.1",
                                      "X-Amz-Target": "TrentService.DescribeKey"})
        SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "kms",
                  "us-east-1").add_auth(request)
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.aws.info["https_port"], timeout=10,
            context=ssl.create_default_context(cafile=self.aws.ca_file))
        try:
            conn.request("POST", "/", body=b'{"KeyId":"alias/k9s"}',
                         headers=dict(request.headers.items()))
            resp = conn.getresponse()
            self.assertEqual(resp.status, 400)
            self.assertTrue(json.loads(resp.read())["__type"].endswith(
                "#InvalidSignatureException"))
        finally:
            conn.close()

    def test_disabled_key_refuses_encrypt_and_decrypt_but_describes(self):
        out = self.kms.encrypt(KeyId=self.key["arn"], Plaintext=b"k")
        self.aws.admin(f"/admin/keys/{self.key['key_id']}/disable")
        for call in (lambda: self.kms.encrypt(KeyId=self.key["arn"], Plaintext=b"k"),
                     lambda: self.kms.decrypt(CiphertextBlob=out["CiphertextBlob"])):
            with self.assertRaises(ClientError) as ctx:
                call()
            self.assertEqual(code_of(ctx), "DisabledException")
            self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 409)
        self.assertEqual(self.kms.describe_key(KeyId=self.key["arn"])["KeyMetadata"]["KeyState"],
                         "Disabled")

    def test_pending_deletion_key_is_invalid_state(self):
        self.aws.admin(f"/admin/keys/{self.key['key_id']}/schedule-deletion")
        with self.assertRaises(ClientError) as ctx:
            self.kms.encrypt(KeyId=self.key["arn"], Plaintext=b"k")
        self.assertEqual(code_of(ctx), "KMSInvalidStateException")

    def test_transient_and_import_key_states_describe_and_refuse_crypto_as_invalid_state(self):
        out = self.kms.encrypt(KeyId=self.key["arn"], Plaintext=b"k")
        for state in ("Unavailable", "Updating", "Creating", "PendingImport"):
            self.aws.admin(f"/admin/keys/{self.key['key_id']}/state", {"state": state})
            meta = self.kms.describe_key(KeyId="alias/k8s")["KeyMetadata"]
            self.assertEqual(meta["KeyState"], state)
            self.assertFalse(meta["Enabled"])
            for call in (lambda: self.kms.encrypt(KeyId=self.key["arn"], Plaintext=b"k"),
                         lambda: self.kms.decrypt(CiphertextBlob=out["CiphertextBlob"])):
                with self.assertRaises(ClientError) as ctx:
                    call()
                self.assertEqual(code_of(ctx), "KMSInvalidStateException")
                self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"],
                                 409)
        self.aws.admin(f"/admin/keys/{self.key['key_id']}/state", {"state": "Enabled"})
        self.assertEqual(self.kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"], b"k")

    def test_unknown_key_is_not_found(self):
        with self.assertRaises(ClientError) as ctx:
            self.kms.describe_key(KeyId="alias/nope")
        self.assertEqual(code_of(ctx), "NotFoundException")

    def test_wrong_secret_key_fails_signature_check(self):
        bad = self.aws.boto3_client("kms", secret_key="not-the-secret", retries=NO_RETRIES)
        with self.assertRaises(ClientError) as ctx:
            bad.describe_key(KeyId="alias/k8s")
        self.assertEqual(code_of(ctx), "InvalidSignatureException")  # Namespace stripped.

    def test_unknown_access_key_is_unrecognized_client(self):
        bad = self.aws.boto3_client("kms", access_key="AKIDUNKNOWN", retries=NO_RETRIES)
        with self.assertRaises(ClientError) as ctx:
            bad.describe_key(KeyId="alias/k8s")
        self.assertEqual(code_of(ctx), "UnrecognizedClientException")

    def test_session_token_is_required_and_checked_for_temporary_credentials(self):
        self.aws.admin("/admin/credentials", {"access_key": "ASIATEMP", "secret": "s3cr3t",
                                              "token": "tok", "expires_in": 600})
        good = self.aws.boto3_client("kms", "ASIATEMP", "s3cr3t", "tok", retries=NO_RETRIES)
        self.assertEqual(good.describe_key(KeyId="alias/k8s")["KeyMetadata"]["Arn"],
                         self.key["arn"])
        self.assertTrue(self.aws.requests()[-1]["token"])
        wrong = self.aws.boto3_client("kms", "ASIATEMP", "s3cr3t", "other", retries=NO_RETRIES)
        with self.assertRaises(ClientError) as ctx:
            wrong.describe_key(KeyId="alias/k8s")
        self.assertEqual(code_of(ctx), "UnrecognizedClientException")
        self.aws.admin("/admin/credentials/expire", {"access_key": "ASIATEMP"})
        with self.assertRaises(ClientError) as ctx:
            good.describe_key(KeyId="alias/k8s")
        self.assertEqual(code_of(ctx), "ExpiredTokenException")

    def test_access_denied_for_a_denied_operation(self):
        self.aws.admin("/admin/deny", {"ops": ["Decrypt"]})
        out = self.kms.encrypt(KeyId=self.key["arn"], Plaintext=b"k")
        with self.assertRaises(ClientError) as ctx:
            self.kms.decrypt(CiphertextBlob=out["CiphertextBlob"])
        self.assertEqual(code_of(ctx), "AccessDeniedException")

    def test_throttling_is_retried_by_boto3_standard_mode(self):
        self.aws.admin("/admin/faults", {"service": "kms", "op": "DescribeKey",
                                         "kind": "throttle", "count": 1})
        retrying = self.aws.boto3_client("kms", retries={"mode": "standard", "total_max_attempts": 3})
        self.assertEqual(retrying.describe_key(KeyId="alias/k8s")["KeyMetadata"]["Arn"],
                         self.key["arn"])

    def test_injected_faults_have_aws_codes_and_status(self):
        cases = [("throttle", "ThrottlingException", 400),
                 ("internal", "KMSInternalException", 500),
                 ("dependency-timeout", "DependencyTimeoutException", 503),
                 ("http500", "InternalFailure", 500)]
        for kind, code, status in cases:
            self.aws.admin("/admin/faults", {"service": "kms", "kind": kind, "count": 1})
            with self.assertRaises(ClientError) as ctx:
                self.kms.describe_key(KeyId="alias/k8s")
            self.assertEqual(code_of(ctx), code, kind)
            self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], status)

    def test_dropped_connection_is_a_connection_error(self):
        from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
        self.aws.admin("/admin/faults", {"service": "kms", "kind": "drop", "count": 1})
        with self.assertRaises((ConnectionClosedError, EndpointConnectionError)):
            self.kms.describe_key(KeyId="alias/k8s")

    def test_sts_assume_role_with_web_identity_issues_usable_credentials(self):
        role = "arn:aws:iam::111122223333:role/kms-plugin"
        self.aws.admin("/admin/sts", {"role_arn": role, "token": "jwt-token", "duration": 900})
        sts = self.aws.boto3_client("sts", retries=NO_RETRIES)
        out = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="test-session",
                                                WebIdentityToken="jwt-token")
        creds = out["Credentials"]
        kms = self.aws.boto3_client("kms", creds["AccessKeyId"], creds["SecretAccessKey"],
                                    creds["SessionToken"], retries=NO_RETRIES)
        self.assertEqual(kms.describe_key(KeyId="alias/k8s")["KeyMetadata"]["Arn"],
                         self.key["arn"])
        with self.assertRaises(ClientError) as ctx:
            sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="test-session",
                                              WebIdentityToken="wrong")
        self.assertEqual(code_of(ctx), "InvalidIdentityToken")

    def test_botocore_container_provider_reads_the_container_endpoint(self):
        from botocore.credentials import ContainerProvider
        self.aws.admin("/admin/container", {"path": "/v1/credentials",
                                            "token": "pod-identity-token"})
        # Debian's botocore 1.29 predates AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE; the token
        # variable sends the same header.
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.aws.http + "/v1/credentials",
               "AWS_CONTAINER_AUTHORIZATION_TOKEN": "pod-identity-token"}
        creds = ContainerProvider(environ=env).load().get_frozen_credentials()
        kms = self.aws.boto3_client("kms", creds.access_key, creds.secret_key, creds.token,
                                    retries=NO_RETRIES)
        self.assertEqual(kms.describe_key(KeyId="alias/k8s")["KeyMetadata"]["Arn"],
                         self.key["arn"])

    def test_botocore_instance_metadata_provider_uses_imdsv2(self):
        from botocore.credentials import InstanceMetadataProvider
        from botocore.utils import InstanceMetadataFetcher
        self.aws.admin("/admin/imds", {"role": "node-role"})
        fetcher = InstanceMetadataFetcher(timeout=2, num_attempts=1,
                                          config={"ec2_metadata_service_endpoint": self.aws.http,
                                                  "ec2_metadata_v1_disabled": True})
        creds = InstanceMetadataProvider(iam_role_fetcher=fetcher).load()
        self.assertIsNotNone(creds)
        frozen = creds.get_frozen_credentials()
        kms = self.aws.boto3_client("kms", frozen.access_key, frozen.secret_key, frozen.token,
                                    retries=NO_RETRIES)
        self.assertEqual(kms.describe_key(KeyId="alias/k8s")["KeyMetadata"]["Arn"],
                         self.key["arn"])
        ops = [r["op"] for r in self.aws.requests() if r["service"] == "imds"]
        self.assertEqual(ops[:3], ["token", "role", "credentials"])

    def test_request_log_holds_no_secrets(self):
        out = self.kms.encrypt(KeyId="alias/k8s", Plaintext=b"very-secret-plaintext")
        self.kms.decrypt(CiphertextBlob=out["CiphertextBlob"])
        log = repr(self.aws.requests())
        self.assertNotIn("very-secret-plaintext", log)
        self.assertNotIn(base64.b64encode(b"very-secret-plaintext").decode(), log)
        self.assertNotIn("wJalrXUtnFEMI", log)


if __name__ == "__main__":
    unittest.main()
