"""Admin API of the fake Google Cloud server (http_port, JSON bodies); see fake_gcp_server.py."""

import json
import time

from fake_gcp_state import CryptoKey, GcpError, new_service_account_key


def _version(st, req):
    name = req["name"]
    key_name, _, n = name.partition("/cryptoKeyVersions/")
    key = st.key(key_name)
    if not n.isdigit() or int(n) not in key.versions:
        raise GcpError(404, "NOT_FOUND", f"{name} not found.")
    return key, int(n)


def handle(handler, method, path, body):
    st = handler.state
    req = json.loads(body or b"{}") if method == "POST" else {}
    with st.lock:
        if method == "GET" and path == "/admin/requests":
            return handler.send_json(200, {"requests": list(st.requests)})
        if method == "GET" and path == "/admin/stats":
            return handler.send_json(200, {"ops": dict(st.stats), "tokens": len(st.tokens)})
        if method != "POST":
            raise GcpError(404, "NOT_FOUND", "unknown admin call")
        if path == "/admin/reset":
            st.reset()
            return handler.send_json(200, {})
        if path == "/admin/keys":  # {"name": CryptoKey name} -> the key (version 1 primary)
            st.keys[req["name"]] = CryptoKey(req["name"])
            return handler.send_json(200, st.keys[req["name"]].json())
        if path == "/admin/keys/rotate":  # {"name"}: new version made primary
            key = st.key(req["name"])
            key.primary = key.add_version()
            return handler.send_json(200, key.json())
        if path == "/admin/keys/get":  # {"name"} -> the CryptoKey with every version
            key = st.key(req["name"])
            out = key.json()
            out["versions"] = [key.version_json(n) for n in sorted(key.versions)]
            return handler.send_json(200, out)
        if path == "/admin/versions/state":  # {"name": version name, "state": "DISABLED", ...}
            key, n = _version(st, req)
            key.versions[n]["state"] = str(req["state"])
            return handler.send_json(200, key.version_json(n))
        if path == "/admin/deny":  # {"ops": {"encrypt": "*" | identity, ...}}; {} clears
            st.denied = dict(req.get("ops", {}))
            return handler.send_json(200, {})
        if path == "/admin/faults":  # {"op": "*"|op, "kind": "503|429|500|drop", "count": N}
            st.faults.append({"op": req.get("op", "*"), "kind": str(req["kind"]),
                              "count": int(req.get("count", 1))})
            return handler.send_json(200, {})
        if path == "/admin/faults/clear":
            st.faults, st.corrupt = [], []
            return handler.send_json(200, {})
        if path == "/admin/corrupt":  # {"field": answer field, "count": N}
            st.corrupt.append({"field": str(req["field"]), "count": int(req.get("count", 1))})
            return handler.send_json(200, {})
        if path == "/admin/tokens/expire":  # every issued access token stops working (401)
            for record in st.tokens.values():
                record["expires"] = time.time() - 1
            return handler.send_json(200, {})
        if path == "/admin/token-lifetime":  # {"seconds"}: lifetime of tokens issued from now
            st.token_lifetime = int(req["seconds"])
            return handler.send_json(200, {})
        if path == "/admin/sts":  # {"subject_token"}: one more subject token STS accepts
            st.sts_subject_tokens.add(req["subject_token"])
            return handler.send_json(200, {})
        if path == "/admin/service-accounts":  # {"email"} -> a fresh key file's JSON
            sa, info = new_service_account_key(req["email"], req.get("token_uri")
                                               or sorted(st.token_uris)[0])
            st.service_accounts[sa.email] = sa
            return handler.send_json(200, info)
        if path == "/admin/requests/clear":
            st.requests, st.stats = [], {}
            return handler.send_json(200, {})
    raise GcpError(404, "NOT_FOUND", "unknown admin call")
