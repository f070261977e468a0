#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/sigv4_fuzzer.cc from AWS's signing test suite
(shared/testdata/sigv4, beside the repository). Each seed encodes one case's request in the
fuzzer's FuzzedDataProvider layout: from the front method, path, query, then name and value of
each header (a backslash is doubled, a string ends with "\\" + "|"), the body last; at the end
the header count and the flags byte (0x01 normalize, 0x02 sign the session token, 0x04 sign the
body hash, 0x08 with a session token, 0x10 add a Host header). The fuzzer's own session token
is used. Run from the repository root: python3 fuzz/corpus/make_sigv4_seeds.py"""
import json, os, sys

SUITE = os.path.join("..", "shared", "testdata", "sigv4")
OUT = os.path.join("fuzz", "corpus", "sigv4_fuzzer")
CASES = ["get-header-key-duplicate", "get-header-value-multiline", "get-header-value-trim",
         "get-relative-relative-unnormalized", "get-slash-dot-slash-normalized",
         "get-slashes-unnormalized", "get-space-normalized", "get-unreserved", "get-utf8",
         "get-vanilla-query-order-encoded", "get-vanilla-utf8-query",
         "get-vanilla-with-session-token", "post-header-key-sort", "post-sts-header-after",
         "post-sts-header-before", "post-vanilla-empty-query-value",
         "post-x-www-form-urlencoded-parameters"]


def fdp_string(b):
    return b.replace(b"\\", b"\\\\") + b"\\|"


def parse(text):
    lines = text.split(b"\n")
    method, rest = lines[0].split(b" ", 1)
    uri = rest.rsplit(b" ", 1)[0]
    path, _, query = uri.partition(b"?")
    headers, i = [], 1
    while i < len(lines) and lines[i]:
        line = lines[i]
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1][1] += b"\n" + line
        else:
            name, _, value = line.partition(b":")
            headers.append([name, value])
        i += 1
    return method, path, query, headers, b"\n".join(lines[i + 1:])


def main():
    if not os.path.isdir(SUITE):
        sys.exit(f"no {SUITE}: run from the repository root, with shared/ beside it")
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        d = os.path.join(SUITE, case)
        ctx = json.load(open(os.path.join(d, "context.json")))
        method, path, query, headers, body = parse(open(os.path.join(d, "request.txt"), "rb").read())
        flags = (0x01 if ctx.get("normalize") else 0) | (0x04 if ctx.get("sign_body") else 0)
        if ctx["credentials"].get("token"):
            flags |= 0x08 | (0 if ctx.get("omit_session_token") else 0x02)
        assert len(headers) <= 12
        seed = fdp_string(method) + fdp_string(path) + fdp_string(query)
        for name, value in headers:
            seed += fdp_string(name) + fdp_string(value)
        seed += body + bytes([len(headers), flags])
        open(os.path.join(OUT, case), "wb").write(seed)
    print(f"{len(CASES)} seeds in {OUT}")


main()
