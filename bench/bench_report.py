"""Reporting for run_bench.py: machine description, medians, targets, Markdown and the chart."""

import datetime
import os
import platform
import statistics

METHODS = ("status", "encrypt", "decrypt")
NUMERIC = ("ops_per_s", "p50_ms", "p99_ms", "max_ms", "cpu_us_per_call", "ctx_switches_per_call",
           "threads_created", "threads_exited", "threads", "max_threads", "rss_kb", "wall_s")


def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo")
                      if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
    }


def median_cell(bursts):
    """Medians of the numeric fields over the rounds of one cell; errors summed."""
    out = {"rounds": len(bursts)}
    for key in NUMERIC:
        values = [b[key] for b in bursts if key in b]
        if values:
            out[key] = statistics.median(values)
    errors = {}
    for b in bursts:
        for code, n in b.get("errors", {}).items():
            errors[code] = errors.get(code, 0) + n
    out["errors"] = errors
    out["errors_total"] = sum(errors.values())
    out["calls_total"] = sum(b.get("calls", 0) for b in bursts)
    return out


def ratio(a, b):
    return a / b if b else float("inf")


class Targets:
    def __init__(self):
        self.items = []

    def check(self, name, ok, detail):
        self.items.append({"name": name, "ok": bool(ok), "detail": detail})

    @property
    def ok(self):
        return all(t["ok"] for t in self.items)

    def lines(self):
        return [f"{'PASS' if t['ok'] else 'FAIL'}  {t['name']}: {t['detail']}" for t in self.items]


def fmt_errors(errors):
    return ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "0"


def matrix_markdown(rows):
    out = ["| method | c | floor ops/s | plugin ops/s | ratio | p50 ms floor / plugin | "
           "p99 ms floor / plugin | p99 ratio | errors floor / plugin | CPU us/call floor / "
           "plugin | CPU ratio | ctx sw/call floor / plugin | threads created floor / plugin |",
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        f, p = r["floor"], r["plugin"]
        out.append(
            f"| {r['method']} | {r['c']} | {f['ops_per_s']:.0f} | {p['ops_per_s']:.0f} | "
            f"{r['ops_ratio']:.2f} | {f['p50_ms']:.3f} / {p['p50_ms']:.3f} | "
            f"{f['p99_ms']:.3f} / {p['p99_ms']:.3f} | {r['p99_ratio']:.2f} | "
            f"{fmt_errors(f['errors'])} / {fmt_errors(p['errors'])} | "
            f"{f['cpu_us_per_call']:.1f} / {p['cpu_us_per_call']:.1f} | {r['cpu_ratio']:.2f} | "
            f"{f['ctx_switches_per_call']:.2f} / {p['ctx_switches_per_call']:.2f} | "
            f"{f['threads_created']:.0f} / {p['threads_created']:.0f} |")
    return out


def apis_markdown(rows):
    out = ["| method | c | API | ops/s | p50 ms | p99 ms | CPU us/call | ctx sw/call | threads "
           "(max) | threads created | errors |",
           "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        m = r["result"]
        out.append(f"| {r['method']} | {r['c']} | {r['api']} | {m['ops_per_s']:.0f} | "
                   f"{m['p50_ms']:.3f} | {m['p99_ms']:.3f} | {m['cpu_us_per_call']:.1f} | "
                   f"{m['ctx_switches_per_call']:.2f} | {m['max_threads']:.0f} | "
                   f"{m['threads_created']:.0f} | {fmt_errors(m['errors'])} |")
    return out


def write_markdown(path, res):
    m = res["machine"]
    lines = ["# Serving-path benchmark: kms-plugin vs the gRPC floor", "",
             f"Machine: {m['cpu']}, {m['nproc']} CPUs, {m['memory_gib']} GiB, Linux "
             f"{m['kernel']}, {m['date']} (load average at start {' '.join(m['loadavg_at_start'])})."
             f" Mode: {res['config']['mode']}; medians of {res['config']['rounds']} alternating "
             f"rounds per cell.", ""]
    lines += ["## Targets", ""] + [f"- {t}" for t in res["target_lines"]] + [""]
    lines += ["## Floor vs plugin", "",
              "Floor: `floor_server --api sync` (empty KMS v2 server, grpc++ defaults, nothing "
              "else registered). Plugin: `kms-plugin serve --kms local --log-level warn`. One "
              "channel, c calls in flight, 3 s deadline. CPU/call = (utime+stime) delta of the "
              "server process / calls (includes exited threads); ctx switches/call = voluntary + "
              "nonvoluntary over live threads (switches of threads that exited during a burst are "
              "not counted; see threads created).", ""]
    lines += matrix_markdown(res["matrix"]) + [""]
    if res.get("memory"):
        mem = res["memory"]
        lines += ["## Memory and threads", "",
                  "| server | RSS idle MB | threads idle | RSS after MB | threads after | calls |",
                  "|---|--:|--:|--:|--:|--:|"]
        for name in ("floor", "plugin"):
            s = mem[name]
            lines.append(f"| {name} | {s['rss_idle_kb'] / 1024:.1f} | {s['threads_idle']} | "
                         f"{s['rss_after_kb'] / 1024:.1f} | {s['threads_after']} | "
                         f"{s['calls']} |")
        lines.append("")
    if res.get("startup"):
        s = res["startup"]
        lines += ["## Start-up (exec -> first OK Status)", "",
                  f"- plugin, local backend: median {s['plugin_ms']:.1f} ms over "
                  f"{len(s['plugin_runs_ms'])} restarts ({', '.join(f'{x:.1f}' for x in s['plugin_runs_ms'])});"
                  f" first start (creates the keyring) {s['plugin_first_ms']:.1f} ms",
                  f"- floor: median {s['floor_ms']:.1f} ms", ""]
    if res.get("cold_decrypt"):
        cd = res["cold_decrypt"]
        lines += ["## Cold Decrypt (restart before each pass)", "",
                  f"{cd['keys']} data keys x {cd['per_key']} objects, ordered key by key.", "",
                  "| c | ops/s | p50 ms | p99 ms | max ms | unwraps | errors |",
                  "|--:|--:|--:|--:|--:|--:|--:|"]
        for p in cd["passes"]:
            lines.append(f"| {p['c']} | {p['ops_per_s']:.0f} | {p['p50_ms']:.3f} | "
                         f"{p['p99_ms']:.3f} | {p['max_ms']:.3f} | {p['unwraps']:.0f} | "
                         f"{fmt_errors(p['errors'])} |")
        lines.append("")
    if res.get("aws"):
        a = res["aws"]
        lines += ["## AWS backend (fake AWS server, %d ms injected latency)" % a["latency_ms"], ""]
        if a.get("skipped"):
            lines += [f"Skipped: {a['skipped']}", ""]
        else:
            lines += ["| c | aws ops/s | local ops/s | ratio | aws p99 ms | local p99 ms | "
                      "remote Encrypts | errors |", "|--:|--:|--:|--:|--:|--:|--:|--:|"]
            for r in a["encrypt"]:
                lines.append(f"| {r['c']} | {r['ops_per_s']:.0f} | {r['local_ops_per_s']:.0f} | "
                             f"{r['ratio']:.2f} | {r['p99_ms']:.3f} | {r['local_p99_ms']:.3f} | "
                             f"{r['remote_encrypts']} | {fmt_errors(r['errors'])} |")
            cs = a["cold_start"]
            lines += ["", f"Cold start over {cs['keys']} keys at c={cs['c']}: "
                      f"{cs['remote_decrypts']} remote Decrypts, {cs['ops_per_s']:.0f} ops/s, "
                      f"p99 {cs['p99_ms']:.1f} ms, errors {fmt_errors(cs['errors'])}.", ""]
    if res.get("apis"):
        lines += ["## gRPC APIs (floor_server --api sync|async|callback)", ""]
        lines += apis_markdown(res["apis"]) + [""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def write_chart(path, res):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib missing (apt-get install python3-matplotlib): no chart"
    rows = res["matrix"]
    fig, axes = plt.subplots(2, len(METHODS), figsize=(5 * len(METHODS), 8), squeeze=False)
    for col, method in enumerate(METHODS):
        mine = [r for r in rows if r["method"] == method]
        cs = [r["c"] for r in mine]
        for name, style in (("floor", "o--"), ("plugin", "s-")):
            axes[0][col].plot(cs, [r[name]["ops_per_s"] for r in mine], style, label=name)
            axes[1][col].plot(cs, [r[name]["p99_ms"] for r in mine], style, label=name)
        for row, label in ((0, "ops/s"), (1, "p99 ms")):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_xticks(cs, [str(c) for c in cs])
            ax.set_xlabel("concurrency (calls in flight)")
            ax.set_ylabel(label)
            ax.set_title(f"{method}: {label}")
            ax.grid(True, alpha=0.3)
            ax.legend()
        axes[0][col].set_ylim(bottom=0)
        axes[1][col].set_yscale("log")
    m = res["machine"]
    fig.suptitle(f"kms-plugin vs gRPC floor - {m['cpu']}, {m['nproc']} CPUs, {m['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
