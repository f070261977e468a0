"""Independent clients against the fake Google Cloud server (fake_gcp_server.py).

Debian's python3-google-auth 1.5.1 (a client written by Google, not by us) obtains tokens from
the fake:
  - from a service-account key file: it signs its own RS256 JWT (padded base64url segments,
    aud = the file's token_uri), which the fake verifies;
  - from the metadata server (GCE_METADATA_ROOT / GCE_METADATA_IP, read when google.auth is
    imported, hence set before the import), including google.auth.default()'s probe;
and AuthorizedSession encrypts and decrypts with those tokens (its 401 refresh included).

google-auth 1.5.1 predates workload identity federation: it cannot speak `external_account`, STS
token exchange or IAM Credentials impersonation. Those parts are tested here FROM THE PUBLISHED
SPEC (RFC 8693 token exchange as sts.googleapis.com documents it; IAM Credentials
generateAccessToken; remote-kms-apis.md §5.7 c) with hand-written requests, not by an
independent client.

Run: /usr/bin/python3 -m unittest -v fake_gcp_server_test (from tests/gcp)."""

import base64
import json
import os
import tempfile
import unittest
import warnings

import requests

from fake_gcp_harness import FakeGcp

KEY = "projects/fake-project/locations/global/keyRings/ring/cryptoKeys/kek"
SCOPE = "https://www.googleapis.com/auth/cloudkms"
GCP = None


def setUpModule():
    global GCP
    GCP = FakeGcp()
    port = GCP.info["http_port"]
    os.environ["GCE_METADATA_ROOT"] = f"127.0.0.1:{port}"  # read at import by google-auth 1.5.1
    os.environ["GCE_METADATA_IP"] = f"127.0.0.1:{port}"
    os.environ["REQUESTS_CA_BUNDLE"] = GCP.ca_file       # its own token requests' session too
    os.environ["CLOUDSDK_CONFIG"] = tempfile.mkdtemp(prefix="no-gcloud-")
    os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(proxy, None)


def tearDownModule():
    GCP.close()


def b64(data):
    return base64.b64encode(data).decode()


def crc32c(data):
    from fake_gcp_state import crc32c as impl
    return impl(data)


class GoogleAuthAgainstFakeTest(unittest.TestCase):
    def setUp(self):
        warnings.simplefilter("ignore", ResourceWarning)  # requests' pooled sockets.
        GCP.admin("/admin/reset")
        GCP.admin("/admin/requests/clear")
        GCP.admin("/admin/keys", {"name": KEY})

    def roundtrip(self, session):
        pt, aad = b"a data key of 32 bytes, really!!", b"kms-plugin/kubernetes-kms-v2:" + \
            KEY.encode()
        r = session.post(GCP.kms_url(KEY, "encrypt"), json={
            "plaintext": b64(pt), "plaintextCrc32c": str(crc32c(pt)),
            "additionalAuthenticatedData": b64(aad),
            "additionalAuthenticatedDataCrc32c": str(crc32c(aad))})
        self.assertEqual(r.status_code, 200, r.text)
        enc = r.json()
        self.assertEqual(enc["name"], KEY + "/cryptoKeyVersions/1")
        self.assertTrue(enc["verifiedPlaintextCrc32c"])
        self.assertTrue(enc["verifiedAdditionalAuthenticatedDataCrc32c"])
        ct = base64.b64decode(enc["ciphertext"])
        self.assertEqual(int(enc["ciphertextCrc32c"]), crc32c(ct))
        r = session.post(GCP.kms_url(KEY, "decrypt"), json={
            "ciphertext": enc["ciphertext"], "ciphertextCrc32c": str(crc32c(ct)),
            "additionalAuthenticatedData": b64(aad)})
        self.assertEqual(r.status_code, 200, r.text)
        dec = r.json()
        self.assertEqual(base64.b64decode(dec["plaintext"]), pt)
        self.assertEqual(int(dec["plaintextCrc32c"]), crc32c(pt))
        self.assertTrue(dec["usedPrimary"])
        r = session.post(GCP.kms_url(KEY, "decrypt"), json={
            "ciphertext": enc["ciphertext"], "additionalAuthenticatedData": b64(b"x")})
        self.assertEqual((r.status_code, r.json()["error"]["status"]), (400, "INVALID_ARGUMENT"))

    def test_service_account_key_file_jwt_is_verified_and_its_token_works(self):
        from google.auth.transport.requests import AuthorizedSession
        from google.oauth2 import service_account
        creds = service_account.Credentials.from_service_account_file(
            GCP.info["sa_key_file"], scopes=[SCOPE])
        session = AuthorizedSession(creds)
        self.roundtrip(session)
        tokens = [r for r in GCP.requests() if r["op"] == "token"]
        self.assertEqual(len(tokens), 1)
        self.assertEqual(tokens[0]["status"], 200)
        self.assertEqual(tokens[0]["identity"], GCP.info["sa_email"])
        self.assertTrue(tokens[0]["jwt_padded"])  # 1.5.1 pads its base64url segments.
        self.assertEqual(tokens[0]["aud"], f"{GCP.https}/token")
        kms = [r for r in GCP.requests() if r["op"] in ("encrypt", "decrypt")]
        self.assertEqual([r["identity"] for r in kms], [GCP.info["sa_email"]] * 3)
        # An expired token: AuthorizedSession sees 401, refreshes (a second JWT) and retries.
        GCP.admin("/admin/tokens/expire")
        self.roundtrip(session)
        self.assertEqual(GCP.ops()["token"], 2)

    def test_a_jwt_signed_by_another_key_is_refused(self):
        from google.auth import exceptions
        from google.auth.transport.requests import Request
        from google.oauth2 import service_account
        with open(GCP.info["sa_key_file"]) as f:
            info = json.load(f)
        other = GCP.admin("/admin/service-accounts", {"email": "other@x.iam.gserviceaccount.com"})
        info["private_key"] = other["private_key"]  # right e-mail and kid, wrong key
        creds = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        with self.assertRaises(exceptions.RefreshError) as cm:
            creds.refresh(Request())
        self.assertIn("invalid_grant", str(cm.exception))
        # The other account's own file works (token_uri on plain http, as 1.5.1 allows).
        other["token_uri"] = f"{GCP.http}/token"
        creds = service_account.Credentials.from_service_account_info(other, scopes=[SCOPE])
        creds.refresh(Request())
        self.assertTrue(creds.valid)

    def test_metadata_server_default_and_email_tokens_work(self):
        import google.auth
        from google.auth import compute_engine
        from google.auth.transport.requests import AuthorizedSession
        creds, project = google.auth.default(scopes=[SCOPE])  # probes GCE_METADATA_IP
        self.assertIsInstance(creds, compute_engine.Credentials)
        self.assertEqual(project, GCP.info["project"])
        session = AuthorizedSession(creds)
        self.roundtrip(session)
        self.assertEqual(creds.service_account_email, GCP.info["metadata_email"])
        kms = [r for r in GCP.requests() if r["op"] in ("encrypt", "decrypt")]
        self.assertEqual({r["identity"] for r in kms}, {GCP.info["metadata_email"]})
        # Without Metadata-Flavor the metadata server refuses.
        r = requests.get(f"{GCP.http}/computeMetadata/v1/instance/service-accounts/default/token")
        self.assertEqual(r.status_code, 403)
        self.assertEqual(r.headers["Metadata-Flavor"], "Google")

    def test_calls_without_a_valid_token_are_401(self):
        r = requests.post(GCP.kms_url(KEY, "encrypt"), json={"plaintext": b64(b"x")})
        self.assertEqual((r.status_code, r.json()["error"]["status"]), (401, "UNAUTHENTICATED"))
        r = requests.get(GCP.kms_url(KEY), headers={"Authorization": "Bearer ya29.forged"})
        self.assertEqual(r.status_code, 401)


class WorkloadIdentityFederationFromTheSpecTest(unittest.TestCase):
    """STS token exchange + impersonation by hand-written requests: google-auth 1.5.1 has no
    external_account support (see the module docstring)."""

    def setUp(self):
        GCP.admin("/admin/reset")
        GCP.admin("/admin/keys", {"name": KEY})
        GCP.admin("/admin/sts", {"subject_token": "eyJ.k8s-sa-token.sig"})

    def sts(self, subject="eyJ.k8s-sa-token.sig", audience=None):
        return requests.post(f"{GCP.https}/v1/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "audience": audience or GCP.info["sts_audience"],
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "subject_token": subject,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"})

    def test_sts_then_impersonation_gives_a_token_for_the_service_account(self):
        r = self.sts()
        self.assertEqual(r.status_code, 200, r.text)
        answer = r.json()
        self.assertEqual(answer["token_type"], "Bearer")
        self.assertEqual(answer["issued_token_type"],
                         "urn:ietf:params:oauth:token-type:access_token")
        self.assertGreater(int(answer["expires_in"]), 0)  # a string, as STS may send it
        email = GCP.info["impersonated_email"]
        r = requests.post(
            f"{GCP.https}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            headers={"Authorization": "Bearer " + answer["access_token"]},
            json={"scope": ["https://www.googleapis.com/auth/cloud-platform"],
                  "lifetime": "3600s", "delegates": []})
        self.assertEqual(r.status_code, 200, r.text)
        token = r.json()["accessToken"]
        self.assertRegex(r.json()["expireTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        r = requests.get(GCP.kms_url(KEY), headers={"Authorization": "Bearer " + token})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["primary"]["name"], KEY + "/cryptoKeyVersions/1")
        self.assertEqual([q["identity"] for q in GCP.requests() if q["op"] == "get"], [email])

    def test_sts_refuses_an_unknown_subject_token_or_audience(self):
        r = self.sts(subject="eyJ.someone-else.sig")
        self.assertEqual((r.status_code, r.json()["error"]), (400, "invalid_grant"))
        r = self.sts(audience="//iam.googleapis.com/projects/1/other")
        self.assertEqual((r.status_code, r.json()["error"]), (400, "invalid_target"))

    def test_impersonation_needs_a_bearer_token(self):
        email = GCP.info["impersonated_email"]
        r = requests.post(
            f"{GCP.https}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            json={"scope": ["https://www.googleapis.com/auth/cloud-platform"]})
        self.assertEqual(r.status_code, 401)


class CloudKmsShapesTest(unittest.TestCase):
    """Rotation, version states, CRC checks and injected faults, with a metadata token."""

    def setUp(self):
        GCP.admin("/admin/reset")
        GCP.admin("/admin/keys", {"name": KEY})
        r = requests.get(f"{GCP.http}/computeMetadata/v1/instance/service-accounts/default/token",
                         headers={"Metadata-Flavor": "Google"})
        self.auth = {"Authorization": "Bearer " + r.json()["access_token"]}

    def post(self, url, body):
        return requests.post(url, json=body, headers=self.auth)

    def test_rotation_versions_and_disabled_versions(self):
        ct1 = self.post(GCP.kms_url(KEY, "encrypt"), {"plaintext": b64(b"one")}).json()
        v2 = self.post(f"{GCP.https}/v1/{KEY}/cryptoKeyVersions", {}).json()
        self.assertEqual((v2["name"], v2["state"]), (KEY + "/cryptoKeyVersions/2", "ENABLED"))
        key = self.post(GCP.kms_url(KEY, "updatePrimaryVersion"),
                        {"cryptoKeyVersionId": "2"}).json()
        self.assertEqual(key["primary"]["name"], v2["name"])
        ct2 = self.post(GCP.kms_url(KEY, "encrypt"), {"plaintext": b64(b"two")}).json()
        self.assertEqual(ct2["name"], v2["name"])
        dec = self.post(GCP.kms_url(KEY, "decrypt"), {"ciphertext": ct1["ciphertext"]}).json()
        self.assertEqual((base64.b64decode(dec["plaintext"]), dec.get("usedPrimary", False)),
                         (b"one", False))
        r = requests.patch(f"{GCP.https}/v1/{ct1['name']}?updateMask=state",
                           json={"state": "DISABLED"}, headers=self.auth)
        self.assertEqual(r.json()["state"], "DISABLED")
        r = self.post(GCP.kms_url(KEY, "decrypt"), {"ciphertext": ct1["ciphertext"]})
        self.assertEqual((r.status_code, r.json()["error"]["status"]),
                         (400, "FAILED_PRECONDITION"))
        # Decrypt takes only the CryptoKey name.
        r = self.post(GCP.kms_url(ct2["name"], "decrypt"), {"ciphertext": ct2["ciphertext"]})
        self.assertEqual(r.status_code, 404)

    def test_crc_mismatch_in_a_request_is_400_and_corruption_is_injected_once(self):
        r = self.post(GCP.kms_url(KEY, "encrypt"), {"plaintext": b64(b"x"),
                                                    "plaintextCrc32c": "12345"})
        self.assertEqual((r.status_code, r.json()["error"]["status"]), (400, "INVALID_ARGUMENT"))
        GCP.admin("/admin/corrupt", {"field": "ciphertextCrc32c"})
        bad = self.post(GCP.kms_url(KEY, "encrypt"), {"plaintext": b64(b"x")}).json()
        good = self.post(GCP.kms_url(KEY, "encrypt"), {"plaintext": b64(b"x")}).json()
        for answer, ok in ((bad, False), (good, True)):
            ct = base64.b64decode(answer["ciphertext"])
            self.assertEqual(int(answer["ciphertextCrc32c"]) == crc32c(ct), ok)

    def test_faults_and_denials_have_google_rpc_status(self):
        GCP.admin("/admin/faults", {"op": "encrypt", "kind": "503", "count": 1})
        GCP.admin("/admin/faults", {"op": "encrypt", "kind": "429", "count": 1})
        codes = [self.post(GCP.kms_url(KEY, "encrypt"), {"plaintext": b64(b"x")}).status_code
                 for _ in range(3)]
        self.assertEqual(codes, [503, 429, 200])
        GCP.admin("/admin/deny", {"ops": {"encrypt": "*"}})
        r = self.post(GCP.kms_url(KEY, "encrypt"), {"plaintext": b64(b"x")})
        self.assertEqual((r.status_code, r.json()["error"]["status"]), (403, "PERMISSION_DENIED"))
        r = requests.get(GCP.kms_url(KEY + "-missing"), headers=self.auth)
        self.assertEqual((r.status_code, r.json()["error"]["status"]), (404, "NOT_FOUND"))

    def test_the_request_log_holds_no_secret(self):
        self.post(GCP.kms_url(KEY, "encrypt"), {"plaintext": b64(b"top secret plaintext")})
        log = json.dumps(GCP.requests())
        self.assertNotIn(self.auth["Authorization"][len("Bearer "):], log)
        self.assertNotIn(b64(b"top secret plaintext"), log)


if __name__ == "__main__":
    unittest.main()
