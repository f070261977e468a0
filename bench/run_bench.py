#!/usr/bin/python3
"""Serving-path benchmark (issue 8): the built kms-plugin against an empty gRPC server (the floor).

    bench/run_bench.py BUILD_DIR [--quick] [--rounds N] [--aws | --no-aws] [--no-apis]
                                 [--apis-only] [--out DIR] [--keep]

BUILD_DIR holds kms-plugin, bench/floor_server and bench/load_client (scripts/dev.sh bench builds
them in build-release). The plugin is a black box: its command line, its sockets, its /metrics.
Phases: start-up, memory, floor-vs-plugin matrix (Status, Encrypt, warm Decrypt at c = 1, 8, 32,
128; floor and plugin alternate burst by burst; medians of the rounds), cold Decrypt, the AWS
backend against tests/aws/fake_aws_server.py, and the three gRPC APIs of floor_server. Writes
OUT/latest.json, OUT/latest.md, OUT/latest.png; prints PASS/FAIL per target; exit 1 if any fails.
See bench/README.md.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_aws  # noqa: E402
import bench_report as report  # noqa: E402
from bench_proc import (BenchError, Server, free_port, make_keyed_records,  # noqa: E402
                        memory, metric_sum, run_load, warmup)

CONC = (1, 8, 32, 128)
TARGET_CONC = (8, 32, 128)

# Calls per burst by concurrency; warm-up max(200, 4c) on top. Full: about 5 min on 2 cores.
FULL = {"rounds": 3, "calls": {1: 8000, 8: 20000, 32: 20000, 128: 20000}, "mem_calls": 100_000,
        "starts": 5, "cold_keys": 16, "cold_per_key": 256, "apis_rounds": 2}
QUICK = {"rounds": 1, "calls": {1: 1500, 8: 4000, 32: 4000, 128: 4000}, "mem_calls": 20_000,
         "starts": 3, "cold_keys": 8, "cold_per_key": 128, "apis_rounds": 1}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def describe(r):
    return (f"{r['ops_per_s']:8.0f} ops/s  p50 {r['p50_ms']:7.3f}  p99 {r['p99_ms']:7.3f} ms  "
            f"cpu {r.get('cpu_us_per_call', 0):6.1f} us  ctx {r.get('ctx_switches_per_call', 0):5.2f}"
            f"  thr+{r.get('threads_created', 0)}  err {report.fmt_errors(r['errors'])}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.cfg = dict(QUICK if args.quick else FULL)
        if args.rounds:
            self.cfg["rounds"] = args.rounds
        b = os.path.abspath(args.build_dir)
        self.plugin_bin = args.plugin or os.path.join(b, "kms-plugin")
        self.floor_bin = os.path.join(b, "bench", "floor_server")
        self.client = os.path.join(b, "bench", "load_client")
        for path in (self.plugin_bin, self.floor_bin, self.client):
            if not os.access(path, os.X_OK):
                raise BenchError(f"missing {path}: build kms-plugin floor_server load_client")
        self.tmp = tempfile.mkdtemp(prefix="kms-bench-")
        self.servers = []
        self.targets = report.Targets()
        self.res = {"machine": report.machine(),
                    "config": {"mode": "quick" if args.quick else "full", **self.cfg,
                               "plugin": self.plugin_bin, "tmp": self.tmp}}

    # ---- servers ---------------------------------------------------------------------------------
    def floor(self, name="floor", api="sync", extra=()):
        sock = os.path.join(self.tmp, f"{name}.sock")
        s = Server(name, [self.floor_bin, "--listen", "unix://" + sock, "--api", api] + list(extra),
                   sock, self.client)
        self.servers.append(s)
        return s

    def plugin(self, name="plugin", extra=(), env=None, local=True):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, mode=0o700, exist_ok=True)
        sock = os.path.join(d, "kms.sock")
        argv = [self.plugin_bin, "serve", "--listen", "unix://" + sock, "--log-level", "warn"]
        if local:
            argv += ["--kms", "local", "--local-keyring", os.path.join(d, "keyring.json"),
                     "--local-keyring-create"]
        s = Server(name, argv + list(extra), sock, self.client, env=env,
                   log_path=os.path.join(d, "plugin.log"))
        self.servers.append(s)
        return s

    def stop_all(self):
        for s in self.servers:
            s.stop()

    # ---- phases ----------------------------------------------------------------------------------
    def startup(self):
        log("== start-up: exec -> first OK Status")
        p = self.plugin("startup")
        first = p.start()
        p.stop()
        runs = []
        stops = []
        for _ in range(self.cfg["starts"]):
            runs.append(p.start())
            stops.append(p.stop() * 1e3)
        f = self.floor("floor-startup")
        floor_runs = []
        for _ in range(self.cfg["starts"]):
            floor_runs.append(f.start())
            f.stop()
        s = {"plugin_ms": statistics.median(runs), "plugin_runs_ms": runs,
             "plugin_first_ms": first, "floor_ms": statistics.median(floor_runs),
             "floor_runs_ms": floor_runs, "plugin_idle_sigterm_exit_ms": statistics.median(stops),
             "plugin_idle_sigterm_exit_runs_ms": stops}
        log(f"   plugin {s['plugin_ms']:.1f} ms (first start {first:.1f}), floor {s['floor_ms']:.1f}")
        self.res["startup"] = s
        self.targets.check("plugin exec -> ready <= 100 ms", s["plugin_ms"] <= 100,
                           f"median {s['plugin_ms']:.1f} ms over {len(runs)} restarts")
        self.targets.check("plugin idle SIGTERM -> exit <= 1 s", max(stops) <= 1000,
                           f"median {statistics.median(stops):.1f} ms, max {max(stops):.1f} ms")

    def memory_phase(self, floor, plugin):
        n = self.cfg["mem_calls"]
        log(f"== memory: idle, then {n} calls (Status, Encrypt, Decrypt thirds at c=32)")
        out = {}
        for s in (floor, plugin):
            time.sleep(0.5)
            rss0, thr0 = memory(s.pid)
            rec = os.path.join(self.tmp, f"{s.name}-mem.rec")
            errors = {}
            for method in ("status", "encrypt", "decrypt"):
                r = run_load(self.client, s, method, 32, n // 3, 0, sample=False,
                             record=rec if method == "encrypt" else None,
                             replay=rec if method == "decrypt" else None)
                for k, v in r["errors"].items():
                    errors[k] = errors.get(k, 0) + v
            time.sleep(0.5)
            rss1, thr1 = memory(s.pid)
            out[s.name] = {"rss_idle_kb": rss0, "threads_idle": thr0, "rss_after_kb": rss1,
                           "threads_after": thr1, "calls": 3 * (n // 3), "errors": errors}
            log(f"   {s.name}: RSS {rss0 / 1024:.1f} MB idle ({thr0} threads), "
                f"{rss1 / 1024:.1f} MB after ({thr1} threads); errors {report.fmt_errors(errors)}")
        self.res["memory"] = out
        for when in ("idle", "after"):
            f, p = out["floor"][f"rss_{when}_kb"], out["plugin"][f"rss_{when}_kb"]
            self.targets.check(f"plugin RSS <= floor RSS + 3 MB ({when})", p <= f + 3 * 1024,
                               f"plugin {p / 1024:.1f} MB, floor {f / 1024:.1f} MB, "
                               f"+{(p - f) / 1024:.1f} MB")

    def matrix(self, floor, plugin):
        log(f"== floor vs plugin: {self.cfg['rounds']} rounds, alternating burst by burst")
        bursts = {}
        rec = {s.name: os.path.join(self.tmp, f"{s.name}-warm.rec") for s in (floor, plugin)}
        rec_c = 8
        for rnd in range(self.cfg["rounds"]):
            for method in report.METHODS:
                for i, c in enumerate(CONC):
                    order = (floor, plugin) if (rnd + i) % 2 == 0 else (plugin, floor)
                    for s in order:
                        record = rec[s.name] if method == "encrypt" and c == rec_c and rnd == 0 \
                            else None
                        replay = rec[s.name] if method == "decrypt" else None
                        r = run_load(self.client, s, method, c, self.cfg["calls"][c], warmup(c),
                                     record=record, replay=replay)
                        bursts.setdefault((s.name, method, c), []).append(r)
                        log(f"   r{rnd + 1} {method:7s} c={c:<3d} {s.name:6s} {describe(r)}")
        rows = []
        for method in report.METHODS:
            for c in CONC:
                f = report.median_cell(bursts[("floor", method, c)])
                p = report.median_cell(bursts[("plugin", method, c)])
                rows.append({"method": method, "c": c, "floor": f, "plugin": p,
                             "ops_ratio": report.ratio(p["ops_per_s"], f["ops_per_s"]),
                             "p99_ratio": report.ratio(p["p99_ms"], f["p99_ms"]),
                             "cpu_ratio": report.ratio(p["cpu_us_per_call"], f["cpu_us_per_call"]),
                             "bursts": {"floor": bursts[("floor", method, c)],
                                        "plugin": bursts[("plugin", method, c)]}})
        self.res["matrix"] = rows
        for r in rows:
            name = f"{r['method']} c={r['c']}"
            if r["c"] in TARGET_CONC:
                self.targets.check(f"{name} throughput >= 0.9x floor", r["ops_ratio"] >= 0.9,
                                   f"{r['plugin']['ops_per_s']:.0f} vs "
                                   f"{r['floor']['ops_per_s']:.0f} ops/s = {r['ops_ratio']:.2f}x")
                self.targets.check(f"{name} p99 <= 1.3x floor", r["p99_ratio"] <= 1.3,
                                   f"{r['plugin']['p99_ms']:.3f} vs {r['floor']['p99_ms']:.3f} ms"
                                   f" = {r['p99_ratio']:.2f}x")
            self.targets.check(f"{name} plugin 0 errors", r["plugin"]["errors_total"] == 0,
                               report.fmt_errors(r["plugin"]["errors"]) +
                               f" of {r['plugin']['calls_total']} calls")
            if r["floor"]["errors_total"]:
                self.targets.check(f"{name} floor 0 errors (the run is not valid otherwise)",
                                   False, report.fmt_errors(r["floor"]["errors"]))

    def cold_decrypt(self):
        k, m = self.cfg["cold_keys"], self.cfg["cold_per_key"]
        port = free_port()
        p = self.plugin("cold", extra=["--health-addr", f"127.0.0.1:{port}"])
        log(f"== cold Decrypt: {k} data keys x {m} objects, restart before each pass")
        p.start()
        records = make_keyed_records(self.client, p, k, m, os.path.join(self.tmp, "cold"))
        passes = []
        for c in TARGET_CONC:
            p.restart()
            u0 = metric_sum(port, "kms_plugin_kms_calls_total", operation="unwrap")
            r = run_load(self.client, p, "decrypt", c, k * m, 0, replay=records)
            u1 = metric_sum(port, "kms_plugin_kms_calls_total", operation="unwrap")
            r.update({"c": c, "unwraps": u1 - u0})
            passes.append(r)
            log(f"   c={c:<3d} {describe(r)}  unwraps {u1 - u0:.0f}")
            self.targets.check(f"cold Decrypt c={c}: exactly {k} unwraps", u1 - u0 == k,
                               f"{u1 - u0:.0f} unwraps for {k} data keys")
            self.targets.check(f"cold Decrypt c={c}: 0 errors", r["errors_total"] == 0,
                               report.fmt_errors(r["errors"]) + f" of {k * m} calls")
        p.stop()
        self.res["cold_decrypt"] = {"keys": k, "per_key": m, "passes": passes}

    def apis(self):
        rounds = self.cfg["apis_rounds"]
        log(f"== gRPC APIs: floor_server sync / async (1 and nproc threads) / callback, "
            f"{rounds} round(s)")
        servers = [self.floor("api-sync", "sync"),
                   self.floor("api-async1", "async", ["--threads", "1"]),
                   self.floor("api-async", "async"),
                   self.floor("api-callback", "callback")]
        for s in servers:
            s.start()
        bursts = {}
        rec = os.path.join(self.tmp, "api.rec")
        for rnd in range(rounds):
            for method in report.METHODS:
                for i, c in enumerate(CONC):
                    shift = (rnd + i) % len(servers)
                    for s in servers[shift:] + servers[:shift]:
                        record = rec if method == "encrypt" and c == 8 and rnd == 0 \
                            and s is servers[0] else None
                        r = run_load(self.client, s, method, c, self.cfg["calls"][c], warmup(c),
                                     record=record, replay=rec if method == "decrypt" else None)
                        bursts.setdefault((s.name, method, c), []).append(r)
                        log(f"   r{rnd + 1} {method:7s} c={c:<3d} {s.name:12s} {describe(r)}")
        rows = []
        for method in report.METHODS:
            for c in CONC:
                for s in servers:
                    rows.append({"method": method, "c": c, "api": s.name[4:],
                                 "result": report.median_cell(bursts[(s.name, method, c)])})
        for s in servers:
            s.stop()
        self.res["apis"] = rows

    # ---- run -------------------------------------------------------------------------------------
    def run(self):
        t0 = time.monotonic()
        try:
            if not self.args.apis_only:
                self.startup()
                floor, plugin = self.floor(), self.plugin()
                floor.start()
                plugin.start()
                self.memory_phase(floor, plugin)
                self.matrix(floor, plugin)
                floor.stop()
                plugin.stop()
                self.cold_decrypt()
                if self.want_aws():
                    self.res["aws"] = bench_aws.run(self, log)
                elif self.args.aws is None:
                    self.res["aws"] = {"skipped": "python3-boto3 / botocore / cryptography "
                                       "missing", "latency_ms": bench_aws.LATENCY_MS}
            if not self.args.no_apis:
                self.apis()
        finally:
            self.stop_all()
        self.res["elapsed_s"] = time.monotonic() - t0
        return self.finish()

    def want_aws(self):
        if self.args.aws is False:
            return False
        ok = bench_aws.available()
        if self.args.aws and not ok:
            raise BenchError("--aws needs python3-boto3, python3-botocore, python3-cryptography")
        return ok

    def finish(self):
        out = os.path.abspath(self.args.out)
        os.makedirs(out, exist_ok=True)
        self.res["target_lines"] = self.targets.lines()
        self.res["targets"] = self.targets.items
        self.res["pass"] = self.targets.ok
        with open(os.path.join(out, "latest.json"), "w") as f:
            json.dump(self.res, f, indent=1)
        if "matrix" in self.res:
            report.write_markdown(os.path.join(out, "latest.md"), self.res)
            warning = report.write_chart(os.path.join(out, "latest.png"), self.res)
            if warning:
                log("   " + warning)
        elif "apis" in self.res:
            with open(os.path.join(out, "latest-apis.md"), "w") as f:
                f.write("\n".join(report.apis_markdown(self.res["apis"])) + "\n")
        print("\n".join(self.res["target_lines"]))
        print(f"{'PASS' if self.targets.ok else 'FAIL'}: {sum(t['ok'] for t in self.targets.items)}"
              f"/{len(self.targets.items)} targets; {self.res['elapsed_s']:.0f} s; results in {out}")
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return 0 if self.targets.ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("--quick", action="store_true", help="about 1 minute smoke run")
    ap.add_argument("--rounds", type=int, help="alternating rounds per cell (median)")
    ap.add_argument("--aws", dest="aws", action="store_true", default=None,
                    help="run the AWS phase (default: when python3-boto3 is installed)")
    ap.add_argument("--no-aws", dest="aws", action="store_false")
    ap.add_argument("--no-apis", action="store_true", help="skip the gRPC API comparison")
    ap.add_argument("--apis-only", action="store_true", help="only the gRPC API comparison")
    ap.add_argument("--plugin", help="kms-plugin binary (default BUILD_DIR/kms-plugin)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    try:
        return Bench(args).run()
    except BenchError as e:
        log(f"run_bench: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
