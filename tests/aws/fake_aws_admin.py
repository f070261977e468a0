"""Admin API of the fake AWS server (http_port, JSON bodies): keys and their states, credentials,
denied operations, injected faults, the STS / container / IMDS configuration and the request log.
See fake_aws_server.py for the list of calls.
"""

import datetime
import json
import re

from fake_aws_state import AwsError, Key, utcnow
from fake_kms import KEY_STATES


def handle(handler, method, path, body):
    """Serves one admin call on `handler`."""
    st = handler.state
    req = json.loads(body or b"{}") if method == "POST" else {}
    if method == "GET" and path == "/admin/requests":
        with st.lock:
            return handler.send_json(200, {"requests": list(st.requests)})
    if method != "POST":
        raise AwsError("NotFound", 404, "unknown admin call")
    with st.lock:
        if path == "/admin/reset":
            st.reset()
            return handler.send_json(200, {})
        if path == "/admin/keys":
            key = Key(st.region, st.account, req.get("report_material_ids", True))
            st.keys[key.key_id] = key
            if req.get("alias"):
                st.aliases[req["alias"]] = key.key_id
            return handler.send_json(200, {"key_id": key.key_id, "arn": key.arn,
                                    "material_id": key.current["id"]})
        m = re.fullmatch(r"/admin/keys/([^/]+)/state", path)
        if m:
            key = st.keys.get(m.group(1))
            if key is None:
                raise AwsError("NotFound", 404, "no such key")
            if req.get("state") not in KEY_STATES:
                raise AwsError("BadRequest", 400, "unknown key state")
            key.state = req["state"]
            return handler.send_json(200, {"state": key.state, "material_id": key.current["id"]})
        m = re.fullmatch(r"/admin/keys/([^/]+)/([a-z-]+)", path)
        if m:
            key = st.keys.get(m.group(1))
            if key is None:
                raise AwsError("NotFound", 404, "no such key")
            action = m.group(2)
            if action == "disable":
                key.state = "Disabled"
            elif action == "enable":
                key.state = "Enabled"
            elif action == "schedule-deletion":
                key.state = "PendingDeletion"
            elif action == "rotate":
                key.add_material("AUTOMATIC")
            else:
                raise AwsError("NotFound", 404, "unknown key action")
            return handler.send_json(200, {"state": key.state, "material_id": key.current["id"]})
        if path == "/admin/credentials":
            expires = None
            if req.get("expires_in") is not None:
                expires = utcnow() + datetime.timedelta(seconds=req["expires_in"])
            st.creds[req["access_key"]] = {"secret": req["secret"],
                                           "token": req.get("token"), "expires": expires}
            return handler.send_json(200, {})
        if path == "/admin/credentials/expire":
            st.creds[req["access_key"]]["expires"] = utcnow() - datetime.timedelta(seconds=1)
            return handler.send_json(200, {})
        if path == "/admin/deny":
            st.deny_ops = set(req.get("ops", []))
            return handler.send_json(200, {})
        if path == "/admin/faults":
            st.faults.append({"service": req.get("service", "kms"), "op": req.get("op", "*"),
                              "kind": req["kind"], "count": int(req.get("count", 1)),
                              "delay_ms": int(req.get("delay_ms", 0))})
            return handler.send_json(200, {})
        if path == "/admin/faults/clear":
            st.faults = []
            return handler.send_json(200, {})
        if path == "/admin/sts":
            st.sts = req
            return handler.send_json(200, {})
        if path == "/admin/container":
            st.container = req
            return handler.send_json(200, {})
        if path == "/admin/imds":
            st.imds = req
            return handler.send_json(200, {})
        if path == "/admin/requests/clear":
            st.requests = []
            return handler.send_json(200, {})
    raise AwsError("NotFound", 404, "unknown admin call")
