"""State of the fake AWS server (fake_aws_server.py): keys with their key material, credentials,
injected faults and the request log, shared by every service module under one lock; and the
error types the services raise.
"""

import base64
import datetime
import re
import secrets
import threading
import time
import uuid

DEFAULT_ACCESS_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BLOB_MAGIC = b"FKMS\x01"
ISO = "%Y-%m-%dT%H:%M:%SZ"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.strftime(ISO)


class AwsError(Exception):
    def __init__(self, code, status, message):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


class DropConnection(Exception):
    pass


# The KMS model's HTTP status per error code (aws-sdk-go-v2 kms.json).
def kms_error(code, message):
    status = {
        "NotFoundException": 400, "DisabledException": 409, "KMSInvalidStateException": 409,
        "InvalidCiphertextException": 400, "IncorrectKeyException": 400,
        "AccessDeniedException": 400, "ThrottlingException": 400,
        "KMSInternalException": 500, "DependencyTimeoutException": 503,
        "ValidationException": 400, "LimitExceededException": 400,
        "InvalidKeyUsageException": 400, "UnsupportedOperationException": 400,
        "ConflictException": 409, "InvalidArnException": 400,
        "UnknownOperationException": 400, "SerializationException": 400,
    }.get(code, 400)
    return AwsError(code, status, message)


# ------------------------------------------------------------------------------------------------
# State

class Key:
    def __init__(self, region, account, report_material_ids=True):
        self.key_id = str(uuid.uuid4())
        self.arn = f"arn:aws:kms:{region}:{account}:key/{self.key_id}"
        self.state = "Enabled"
        self.created = time.time()
        self.report_material_ids = report_material_ids
        self.materials = []  # [{"id", "secret", "date", "type"}]; last is current
        self.add_material(None)

    def add_material(self, rotation_type):
        self.materials.append({
            "id": secrets.token_hex(32),
            "secret": secrets.token_bytes(32),
            "date": time.time(),
            "type": rotation_type,
        })

    @property
    def current(self):
        return self.materials[-1]


class State:
    def __init__(self, region, account):
        self.region = region
        self.account = account
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.keys = {}
            self.aliases = {}
            self.creds = {DEFAULT_ACCESS_KEY: {"secret": DEFAULT_SECRET, "token": None,
                                               "expires": None}}
            self.deny_ops = set()
            self.faults = []
            self.requests = []
            self.sts = None
            self.container = None
            self.imds = None
            self.imds_tokens = {}

    def issue_temporary(self, duration):
        akid = "ASIA" + secrets.token_hex(8).upper()
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = "FQoG" + base64.b64encode(secrets.token_bytes(96)).decode()
        expires = utcnow() + datetime.timedelta(seconds=duration)
        with self.lock:
            self.creds[akid] = {"secret": secret, "token": token, "expires": expires}
        return akid, secret, token, expires

    def resolve_key(self, key_id):
        with self.lock:
            if key_id.startswith("alias/"):
                target = self.aliases.get(key_id[len("alias/"):])
            elif key_id.startswith("arn:"):
                m = re.fullmatch(r"arn:aws:kms:([^:]+):(\d+):(key|alias)/(.+)", key_id)
                if not m or m.group(1) != self.region or m.group(2) != self.account:
                    raise kms_error("NotFoundException", f"Key '{key_id}' does not exist")
                target = m.group(4) if m.group(3) == "key" else self.aliases.get(m.group(4))
            else:
                target = key_id
            key = self.keys.get(target) if target else None
            if key is None:
                raise kms_error("NotFoundException", f"Key '{key_id}' does not exist")
            return key

    def take_fault(self, service, op):
        with self.lock:
            for f in self.faults:
                if f["service"] == service and f["op"] in ("*", op) and f["count"] != 0:
                    if f["count"] > 0:
                        f["count"] -= 1
                    return dict(f)
        return None

    def log(self, entry):
        with self.lock:
            self.requests.append(entry)
