"""Admin API of the fake Vault server (http_port, JSON bodies); see fake_vault_server.py."""

import json

from fake_vault_state import TransitKey, VaultError


def _key(st, req):
    k = (req.get("namespace", "").strip("/"), req.get("mount", "transit"), req["name"])
    if k not in st.keys:
        raise VaultError(404, "no such key")
    return st.keys[k]


def handle(handler, method, path, body):
    st = handler.state
    req = json.loads(body or b"{}") if method == "POST" else {}
    with st.lock:
        if method == "GET" and path == "/admin/requests":
            return handler.send_json(200, {"requests": list(st.requests)})
        if method == "GET" and path == "/admin/stats":
            return handler.send_json(200, {"renewals": st.renewals})
        if method != "POST":
            raise VaultError(404, "unknown admin call")
        if path == "/admin/reset":
            root = st.root
            st.reset()
            st.tokens = {root.id: root}
            st.root = root
            return handler.send_json(200, {})
        if path == "/admin/keys":
            mount = req.get("mount", "transit")
            st.mounts.add(mount)
            key = TransitKey(req["name"])
            st.keys[(req.get("namespace", "").strip("/"), mount, req["name"])] = key
            return handler.send_json(200, {"latest_version": key.latest_version})
        if path == "/admin/keys/rotate":
            key = _key(st, req)
            key.rotate()
            return handler.send_json(200, {"latest_version": key.latest_version})
        if path == "/admin/keys/config":
            key = _key(st, req)
            key.min_decryption_version = int(req["min_decryption_version"])
            return handler.send_json(200, key.info())
        if path == "/admin/keys/disable":
            _key(st, req).disabled = bool(req.get("disabled", True))
            return handler.send_json(200, {})
        if path == "/admin/keys/delete":
            key = _key(st, req)
            st.keys = {k: v for k, v in st.keys.items() if v is not key}
            return handler.send_json(200, {})
        if path == "/admin/tokens":
            token = st.issue(**st.token_params(req))
            return handler.send_json(200, {"token": token.id, "accessor": token.accessor})
        if path == "/admin/tokens/revoke":  # {"token"} or {"all": true} (every non-root token)
            for token in st.tokens.values():
                if token.id == req.get("token") or (req.get("all") and not token.root):
                    token.revoked = True
            return handler.send_json(200, {})
        if path == "/admin/approle":
            st.approle[req.get("mount", "approle")] = req
            return handler.send_json(200, {})
        if path == "/admin/k8s":
            st.k8s[req.get("mount", "kubernetes")] = req
            return handler.send_json(200, {})
        if path == "/admin/seal":
            st.sealed = bool(req.get("sealed", True))
            return handler.send_json(200, {})
        if path == "/admin/faults":
            st.faults.append({"kind": str(req["kind"]), "count": int(req.get("count", 1)),
                              "path": req.get("path", "*")})
            return handler.send_json(200, {})
        if path == "/admin/faults/clear":
            st.faults = []
            return handler.send_json(200, {})
        if path == "/admin/requests/clear":
            st.requests = []
            return handler.send_json(200, {})
    raise VaultError(404, "unknown admin call")
