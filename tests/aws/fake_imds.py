"""Instance and container credentials of the fake AWS server, plain HTTP as on AWS: the container
credentials endpoint (GET <path> set with POST /admin/container, optional Authorization token)
and IMDSv2 (PUT /latest/api/token, then /latest/meta-data/iam/security-credentials/<role>).
"""

import secrets
import time

from fake_aws_state import AwsError, iso, utcnow


def _creds_json(state, duration, extra=None):
    akid, secret, token, expires = state.issue_temporary(duration)
    doc = {"AccessKeyId": akid, "SecretAccessKey": secret, "Token": token,
           "Expiration": iso(expires)}
    doc.update(extra or {})
    return akid, doc


def handle_container(handler, method, path, headers):
    state = handler.state
    cfg = state.container
    if method != "GET" or cfg is None or path != cfg["path"]:
        raise AwsError("NotFound", 404, "no such path")
    handler.apply_fault("container", "GET")
    if cfg.get("token") is not None and headers.get("authorization") != cfg["token"]:
        raise AwsError("AccessDenied", 401, "bad authorization token")
    akid, doc = _creds_json(state, cfg.get("duration", 3600),
                            {"AccountId": state.account,
                             "RoleArn": f"arn:aws:iam::{state.account}:role/pod"})
    state.log({"service": "container", "op": "GET", "issued": akid,
               "authorized": "authorization" in headers})
    handler.send_json(200, doc)


def handle_imds(handler, method, path, headers):
    state = handler.state
    cfg = state.imds
    if cfg is None:
        raise AwsError("NotFound", 404, "no instance metadata here")
    handler.apply_fault("imds", method)
    if path == "/latest/api/token":
        if method != "PUT":
            raise AwsError("MethodNotAllowed", 405, "PUT only")
        ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            raise AwsError("BadRequest", 400, "bad TTL")
        token = secrets.token_urlsafe(32)
        with state.lock:
            state.imds_tokens[token] = time.time() + int(ttl)
        state.log({"service": "imds", "op": "token"})
        return handler.send(200, token, "text/plain",
                            {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    token = headers.get("x-aws-ec2-metadata-token")
    with state.lock:
        valid = token is not None and state.imds_tokens.get(token, 0) > time.time()
    if not valid:
        raise AwsError("Unauthorized", 401, "IMDSv2 token required")
    prefix = "/latest/meta-data/iam/security-credentials/"
    if path == prefix:
        state.log({"service": "imds", "op": "role"})
        return handler.send(200, cfg["role"], "text/plain")
    if path == prefix + cfg["role"]:
        akid, doc = _creds_json(state, cfg.get("duration", 3600),
                                {"Code": "Success", "Type": "AWS-HMAC",
                                 "LastUpdated": iso(utcnow())})
        state.log({"service": "imds", "op": "credentials", "issued": akid})
        return handler.send_json(200, doc)
    raise AwsError("NotFound", 404, "no such metadata")
