"""Processes for run_bench.py: the servers under test, /proc sampling, and load_client runs.

Everything here treats the servers as black boxes: a command line, a unix socket, a PID.
"""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# /proc sampling

def _read(path):
    with open(path) as f:
        return f.read()


def cpu_ticks(pid):
    """utime + stime of the whole process (includes threads that have exited), in clock ticks."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def status_fields(path):
    out = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def task_switches(pid):
    """{tid: voluntary + nonvoluntary context switches} over the live threads."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            st = status_fields(f"/proc/{pid}/task/{tid}/status")
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited between listdir and open
        out[int(tid)] = (int(st.get("voluntary_ctxt_switches", 0)) +
                         int(st.get("nonvoluntary_ctxt_switches", 0)))
    return out


def memory(pid):
    """(RSS in kB, thread count)."""
    st = status_fields(f"/proc/{pid}/status")
    return int(st["VmRSS"].split()[0]), int(st["Threads"])


class Snapshot:
    def __init__(self, pid):
        self.ticks = cpu_ticks(pid)
        self.switches = task_switches(pid)
        self.rss_kb, self.threads = memory(pid)


class BurstSampler:
    """Samples a server around one burst. CPU from /proc/PID/stat (exited threads included);
    context switches summed over /proc/PID/task/*/status, which only lists live threads: switches
    of threads that exit during the burst are NOT counted. Threads created during the burst are
    found by listing /proc/PID/task every 20 ms (a thread living < 20 ms can be missed)."""

    def __init__(self, pid):
        self.pid = pid
        self.before = Snapshot(pid)
        self.seen = set(self.before.switches)
        self.max_threads = self.before.threads
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        while not self._stop.wait(0.02):
            try:
                tids = os.listdir(f"/proc/{self.pid}/task")
            except FileNotFoundError:
                return
            self.seen.update(int(t) for t in tids)
            self.max_threads = max(self.max_threads, len(tids))

    def finish(self, calls):
        self._stop.set()
        self._thread.join()
        after = Snapshot(self.pid)
        self.seen.update(after.switches)
        switches = sum(n - self.before.switches.get(tid, 0) for tid, n in after.switches.items())
        created = self.seen - set(self.before.switches)
        calls = max(calls, 1)
        return {
            "cpu_us_per_call": (after.ticks - self.before.ticks) / CLK_TCK * 1e6 / calls,
            "ctx_switches_per_call": switches / calls,
            "threads_created": len(created),
            "threads_exited": len(self.seen - set(after.switches)),
            "threads": after.threads,
            "max_threads": max(self.max_threads, after.threads),
            "rss_kb": after.rss_kb,
        }


# ------------------------------------------------------------------------------------------------
# Servers

class Server:
    """A server under test: argv, its unix socket, optional extra environment."""

    def __init__(self, name, argv, sock, client, env=None, log_path=None):
        self.name, self.argv, self.sock, self.client = name, argv, sock, client
        self.env = env
        self.log_path = log_path or sock + ".log"
        self.proc = None
        self.calls = 0  # calls served since start (load bursts only)

    @property
    def target(self):
        return "unix://" + self.sock

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=10.0):
        """Starts the server; returns exec -> first OK Status in ms (measured by load_client)."""
        if self.proc is not None:
            raise BenchError(f"{self.name} already running")
        waiter = subprocess.Popen(
            [self.client, "--target", self.target, "--wait-ready", "--timeout", f"{timeout}s"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.05)  # let the waiter start polling before the server exists
        log = open(self.log_path, "ab")
        env = None if self.env is None else {**os.environ, **self.env}
        t0 = time.time_ns()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, env=env)
        log.close()
        out, err = waiter.communicate(timeout=timeout + 5)
        self.calls = 0
        try:
            info = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            info = {"ready": False, "last": err.strip()}
        if not info.get("ready"):
            self.stop()
            raise BenchError(f"{self.name} not ready within {timeout}s ({info.get('last')}); "
                             f"see {self.log_path}")
        return (info["ready_unix_ns"] - t0) / 1e6

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the seconds from the signal to the exit (None if not running)."""
        if self.proc is None:
            return None
        took = None
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
                took = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        return took

    def restart(self):
        self.stop()
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


# ------------------------------------------------------------------------------------------------
# load_client

def run_load(client, server, method, concurrency, calls, warmup, record=None, replay=None,
             extra=(), sample=True, timeout=600):
    """One burst against `server`; returns load_client's JSON plus the server-side sample."""
    if not server.alive():
        raise BenchError(f"{server.name} is not running (see {server.log_path})")
    argv = [client, "--target", server.target, "--method", method,
            "--concurrency", str(concurrency), "--calls", str(calls), "--warmup", str(warmup)]
    if record:
        argv += ["--record", record]
    if replay:
        argv += ["--replay", replay]
    argv += list(extra)
    sampler = BurstSampler(server.pid) if sample else None
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)
    side = sampler.finish(calls + warmup) if sampler else {}
    if proc.returncode != 0:
        raise BenchError(f"load_client failed ({proc.returncode}): {proc.stderr.strip()}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(side)
    server.calls += calls + warmup
    return result


def admin(client, server, op):
    proc = subprocess.run([client, "--target", server.target, "--admin", op],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        out = {"ok": False, "code": proc.stderr.strip()}
    if not out.get("ok"):
        raise BenchError(f"admin {op} on {server.name} failed: {out.get('code')}")
    return out


def metric_sum(port, name, **labels):
    """Sum of a Prometheus counter's samples whose labels include `labels`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warmup(c):
    """Warm-up calls (not counted) before a burst at concurrency c."""
    return max(200, 4 * c)


def make_keyed_records(client, server, keys, per_key, prefix):
    """`keys` distinct data keys (RotateDataKey between Encrypt batches), `per_key` recorded
    Encrypts under each; returns one record file ordered key by key."""
    files, wrapped = [], set()
    for i in range(keys):
        if i:
            admin(client, server, "rotate-data-key")
        path = f"{prefix}-{i}.rec"
        run_load(client, server, "encrypt", 8, per_key, 0, record=path, sample=False)
        with open(path) as f:
            wrapped.update(line.split("\t")[3] for line in f if line.strip())
        files.append(path)
    if len(wrapped) != keys:
        raise BenchError(f"expected {keys} distinct wrapped data keys, recorded {len(wrapped)}")
    out = prefix + "-all.rec"
    with open(out, "w") as dst:
        for path in files:
            with open(path) as src:
                dst.write(src.read())
    return out
