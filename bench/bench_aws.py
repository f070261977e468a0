"""AWS phase of run_bench.py: `kms-plugin serve --kms aws` against tests/aws/fake_aws_server.py
(started as the tests start it: tests/aws/fake_aws_harness.py) with injected KMS latency.

Counts remote KMS calls from the fake server's request log: Encrypt bursts must make 0 remote
Encrypts (the data key is wrapped once, before the first call), and a cold start over K data
keys at c=64 must make exactly K remote Decrypts (concurrent misses coalesce).
"""

import importlib.util
import os
import sys

import bench_report as report
from bench_proc import make_keyed_records, run_load, warmup

LATENCY_MS = 5
AWS_CONC = (8, 32, 128)
COLD_C = 64
SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def available():
    return all(importlib.util.find_spec(m) for m in ("boto3", "botocore", "cryptography"))


def remote(aws, op):
    """KMS calls of operation `op` the fake server has received (failed ones included)."""
    return sum(1 for r in aws.requests() if r.get("service") == "kms" and r.get("op") == op)


def run(bench, log):
    sys.path.insert(0, os.path.join(SRC, "tests", "aws"))
    from fake_aws_harness import ACCESS_KEY, SECRET_KEY, FakeAws

    cfg = bench.cfg
    log(f"== AWS backend: fake AWS server, {LATENCY_MS} ms injected latency on every KMS call")
    out = {"latency_ms": LATENCY_MS, "encrypt": []}
    with FakeAws() as aws:
        aws.admin("/admin/keys", {"alias": "k8s"})
        aws.admin("/admin/faults", {"service": "kms", "op": "*", "kind": "latency",
                                    "count": -1, "delay_ms": LATENCY_MS})
        home = os.path.join(bench.tmp, "aws-home")
        os.makedirs(home, mode=0o700, exist_ok=True)
        env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
               "AWS_EC2_METADATA_DISABLED": "true", "HOME": home,
               "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "none"),
               "AWS_CONFIG_FILE": os.path.join(home, "none"),
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        extra = ["--kms", "aws", "--aws-key-id", "alias/k8s", "--aws-region", aws.region,
                 "--aws-endpoint", aws.https, "--aws-ca-file", aws.ca_file]
        p = bench.plugin("aws", extra=extra, env=env, local=False)
        p.start()
        local = {r["c"]: r["plugin"] for r in bench.res.get("matrix", [])
                 if r["method"] == "encrypt"}
        for c in AWS_CONC:
            bursts, remote_encrypts = [], 0
            for _ in range(cfg["rounds"]):
                e0 = remote(aws, "Encrypt")
                bursts.append(run_load(bench.client, p, "encrypt", c, cfg["calls"][c], warmup(c)))
                remote_encrypts += remote(aws, "Encrypt") - e0
            r = report.median_cell(bursts)
            lr = local.get(c, {"ops_per_s": 0.0, "p99_ms": 0.0})
            row = {"c": c, **r, "remote_encrypts": remote_encrypts,
                   "local_ops_per_s": lr["ops_per_s"], "local_p99_ms": lr["p99_ms"],
                   "ratio": report.ratio(r["ops_per_s"], lr["ops_per_s"])}
            out["encrypt"].append(row)
            log(f"   encrypt c={c:<3d} aws {report.fmt_errors(r['errors'])} errors, "
                f"{r['ops_per_s']:.0f} ops/s (local {lr['ops_per_s']:.0f}), p99 {r['p99_ms']:.3f}"
                f" ms, remote Encrypts {remote_encrypts}")
            bench.targets.check(f"aws encrypt c={c}: 0 remote Encrypts", remote_encrypts == 0,
                                f"{remote_encrypts} remote Encrypts for "
                                f"{r['calls_total']} plugin Encrypts")
            bench.targets.check(f"aws encrypt c={c}: 0 errors", r["errors_total"] == 0,
                                report.fmt_errors(r["errors"]))
        k, m = cfg["cold_keys"], cfg["cold_per_key"]
        records = make_keyed_records(bench.client, p, k, m, os.path.join(bench.tmp, "aws-cold"))
        p.restart()
        d0 = remote(aws, "Decrypt")
        r = run_load(bench.client, p, "decrypt", COLD_C, k * m, 0, replay=records)
        decrypts = remote(aws, "Decrypt") - d0
        p.stop()
        out["cold_start"] = {"keys": k, "per_key": m, "c": COLD_C, "remote_decrypts": decrypts,
                             **r}
        log(f"   cold start, {k} keys at c={COLD_C}: {decrypts} remote Decrypts, "
            f"{r['ops_per_s']:.0f} ops/s, errors {report.fmt_errors(r['errors'])}")
        bench.targets.check(f"aws cold start c={COLD_C}: exactly {k} remote Decrypts",
                            decrypts == k, f"{decrypts} remote Decrypts for {k} data keys")
        bench.targets.check(f"aws cold start c={COLD_C}: 0 errors", r["errors_total"] == 0,
                            report.fmt_errors(r["errors"]))
    return out
