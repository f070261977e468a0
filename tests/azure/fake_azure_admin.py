"""Admin API of the fake Azure server (http_port, JSON bodies); see fake_azure_server.py."""

import json

from fake_azure_state import AzureError, Key


def _key(st, req):
    key = st.keys.get(req.get("name"))
    if key is None:
        raise AzureError(404, "KeyNotFound", "no such key")
    return key


def _bundle(key, base):
    return {"name": key.name, "kty": key.kty, "version": key.current.id,
            "kid": f"{base}/keys/{key.name}/{key.current.id}",
            "versions": [v.id for v in key.versions]}


def handle(handler, method, path, body):
    st = handler.state
    base = handler.server.vault_base
    req = json.loads(body or b"{}") if method == "POST" else {}
    with st.lock:
        if method == "GET" and path == "/admin/requests":
            return handler.send_json(200, {"requests": list(st.requests)})
        if method == "GET" and path == "/admin/seeds":
            return handler.send_json(200, {"seeds": list(st.seeds)})
        if method == "GET" and path == "/admin/counts":
            return handler.send_json(200, {"counts": dict(st.counts)})
        if method != "POST":
            raise AzureError(404, "NotFound", "unknown admin call")
        if path == "/admin/reset":
            st.reset()
            return handler.send_json(200, {})
        if path == "/admin/keys":  # {"name", "kty"?, "key_ops"?}
            key = Key(req["name"], req.get("kty", "RSA"), req.get("key_ops"))
            st.keys[key.name] = key
            return handler.send_json(200, _bundle(key, base))
        if path == "/admin/keys/rotate":
            key = _key(st, req)
            key.rotate()
            return handler.send_json(200, _bundle(key, base))
        if path == "/admin/keys/enable":  # {"name", "version"?, "enabled": bool}; all versions
            key = _key(st, req)          # when no version is named
            targets = [key.version(req["version"])] if req.get("version") else key.versions
            for v in targets:
                v.enabled = bool(req.get("enabled", True))
            return handler.send_json(200, _bundle(key, base))
        if path == "/admin/keys/delete":
            _key(st, req)
            del st.keys[req["name"]]
            return handler.send_json(200, {})
        if path == "/admin/resource":  # {"resource"}: the challenge's resource and the audience
            st.resource = req["resource"].rstrip("/")
            return handler.send_json(200, {})
        if path == "/admin/entra":  # {"client_id", "secret"?, "assertion"?, "expires_in"?}
            st.apps[req["client_id"]] = {k: req.get(k) for k in ("secret", "assertion")}
            st.apps[req["client_id"]]["expires_in"] = int(req.get("expires_in", 3599))
            return handler.send_json(200, {})
        if path == "/admin/imds":  # {"enabled"?, "client_ids"?, "expires_in"?}
            st.imds.update({k: req[k] for k in ("enabled", "client_ids", "expires_in")
                            if k in req})
            return handler.send_json(200, {})
        if path == "/admin/tokens":  # {"resource"?, "expires_in"?} -> {"token"} (test clients)
            token = st.issue_token(req.get("resource", st.resource), "admin", "admin",
                                   int(req.get("expires_in", 3600)))
            return handler.send_json(200, {"token": token})
        if path == "/admin/tokens/revoke":  # every token issued so far stops working
            st.tokens = {}
            return handler.send_json(200, {})
        if path == "/admin/deny":  # {"ops": ["get", "wrapkey", ...]}: 403 ForbiddenByRbac
            st.deny = set(req.get("ops", []))
            return handler.send_json(200, {})
        if path == "/admin/faults":  # {"kind": "429|500|503|drop", "count": N (-1: until
            st.faults.append({"kind": str(req["kind"]),  # cleared), "op": "*"|op,
                              "count": int(req.get("count", 1)),  # "retry_after"?}
                              "op": req.get("op", "*"),
                              "retry_after": req.get("retry_after")})
            return handler.send_json(200, {})
        if path == "/admin/faults/clear":
            st.faults = []
            return handler.send_json(200, {})
        if path == "/admin/requests/clear":
            st.requests = []
            st.counts = {}
            return handler.send_json(200, {})
    raise AzureError(404, "NotFound", "unknown admin call")
