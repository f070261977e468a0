"""STS of the fake AWS server (query protocol, Action=AssumeRoleWithWebIdentity): accepts the
role and token set with POST /admin/sts and issues temporary credentials that KMS then accepts.
"""

import re
import uuid
from urllib.parse import parse_qs

from fake_aws_state import AwsError, iso


def handle(handler, headers, body):
    """Serves one STS call on `handler`."""
    state = handler.state
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("Version") != "2011-06-15":
        raise AwsError("InvalidAction", 400, "Could not find operation")
    handler.apply_fault("sts", "AssumeRoleWithWebIdentity")
    cfg = state.sts
    if cfg is None or form.get("RoleArn") != cfg["role_arn"]:
        raise AwsError("AccessDenied", 403, "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    if form.get("WebIdentityToken") != cfg["token"]:
        raise AwsError("InvalidIdentityToken", 400, "Incorrect token audience")
    name = form.get("RoleSessionName", "")
    if not re.fullmatch(r"[\w+=,.@-]{2,64}", name):
        raise AwsError("ValidationError", 400, "RoleSessionName is invalid")
    akid, secret, token, expires = state.issue_temporary(cfg.get("duration", 3600))
    state.log({"service": "sts", "op": "AssumeRoleWithWebIdentity",
               "role_arn": cfg["role_arn"], "session": name, "issued": akid})
    xml = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:kube-system:kms-plugin</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::{state.account}:assumed-role/kms-plugin/{name}</Arn>
      <AssumedRoleId>AROAEXAMPLE:{name}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{akid}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{iso(expires)}</Expiration>
    </Credentials>
    <Provider>arn:aws:iam::{state.account}:oidc-provider/oidc.example</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""
    handler.send(200, xml, "text/xml")


def send_error(handler, e):
    """An STS error as AWS sends it: an XML ErrorResponse."""
    xml = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
           f'<Type>Sender</Type><Code>{e.code}</Code><Message>{e.message}</Message>'
           f'</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>')
    handler.send(e.status, xml, "text/xml")
