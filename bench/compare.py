#!/usr/bin/env python3
"""baton next to nginx on this machine, in one run: prints ratios (baton / nginx).

    bench/compare.py            # full run, about 9 minutes
    bench/compare.py --quick    # smoke run, about a minute
    bench/compare.py --baton target/release/baton   # a given binary, no cargo build

Both servers run at once. The rows are measured round after round, each round running every row
once as an nginx/baton pair (nginx first in odd rounds, baton first in even ones), so that both
servers see the same machine; the table gives the median of the per-pair ratios. A run in which
any response was not 2xx, or wrk saw a socket error, is reported as failed, never as a number.
See bench/README.md. Python 3.11 standard library only; needs wrk, nginx and, for the Redis
rows, a Redis server.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LUA = HERE / "wrk"
TRUSTED = "http://shop.localhost:8081"
# The unpartitioned cookie's name, from the corpus that holds it for every test (src/cookie.rs
# is its home).
COOKIE = json.loads((HERE.parent / "tests" / "data" / "cookies.json").read_text())["unpartitioned"]
VALUE_BYTES = 88  # {"value":"<88 bytes>"} is a 100-byte body
TICK = os.sysconf("SC_CLK_TCK")
CLIENT_BOUND = 0.8  # wrk's CPU use (cores) from which the client, not the server, sets the pace
# --one-core: servers on CPU 0, wrk on CPU 1 (taskset), nginx with one worker; empty: no pinning.
PIN_SERVER: list[str] = []
PIN_CLIENT: list[str] = []


def say(*args) -> None:
    print(*args, flush=True)


def note(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- processes we start (and only those) ------------------------------------------------------

def clean_up(procs: "Procs", tmp: Path, keep: bool, redis: "Redis | None" = None, prefix: str = "") -> None:
    """What every bench script does last: stop its processes, delete its Redis keys (when it
    wrote any, under `prefix`), and remove its temp dir unless asked to keep it."""
    procs.stop_all()
    if redis is not None:
        try:
            note(f"deleted {redis.delete_prefix(prefix)} Redis keys under {prefix}")
        except (OSError, RuntimeError) as e:
            note(f"could not delete Redis keys under {prefix}: {e}")
    if keep:
        note(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


class Procs:
    """Every long-running process this script starts, each in its own process group, so that
    stopping one (nginx: master and workers) never touches anything else."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        p = subprocess.Popen(PIN_SERVER + argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
        p.name, p.log = name, self.tmp / f"{name}.log"
        self.running.append(p)
        return p

    def stop(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if p in self.running:
            self.running.remove(p)

    def stop_all(self) -> None:
        for p in reversed(list(self.running)):
            self.stop(p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.headers, r.read()
    finally:
        c.close()


def wait_ready(p: subprocess.Popen, port: int, path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if p.poll() is not None:
            break
        try:
            if request(port, "GET", path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{p.name} did not become ready on port {port}:\n{p.log.read_text()[-2000:]}")


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of these processes (all their threads), in clock ticks."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def pids_named(comm: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == comm:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- Redis, just enough RESP to check it is there and delete our keys -------------------------

class Redis:
    def __init__(self, url: str):
        m = re.fullmatch(r"redis://([^:/]+)(?::(\d+))?/?", url)
        if not m:
            raise SystemExit(f"--redis-url: only redis://host[:port] is supported here, not {url}")
        self.addr = (m[1], int(m[2] or 6379))

    def call(self, *args: str):
        with socket.create_connection(self.addr, timeout=5) as s:
            s.sendall(b"".join([f"*{len(args)}\r\n".encode()] +
                               [f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args]))
            return self._read(s.makefile("rb"))

    def _read(self, f):
        line = f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self._read(f) for _ in range(int(rest))]
        raise RuntimeError(f"unexpected Redis reply {line!r}")

    def delete_prefix(self, prefix: str) -> int:
        deleted, cursor = 0, "0"
        while True:
            cursor, keys = self.call("SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000")
            if keys:
                deleted += int(self.call("DEL", *keys))
            if cursor == "0":
                return deleted


# --- the two servers ---------------------------------------------------------------------------

NGINX_CONF = """\
{user}worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ text/html html; text/javascript js; application/json json; }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=100 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_errors on;
    gzip_static on;
    client_body_temp_path {tmp}/nginx-tmp/body;
    proxy_temp_path {tmp}/nginx-tmp/proxy;
    fastcgi_temp_path {tmp}/nginx-tmp/fastcgi;
    uwsgi_temp_path {tmp}/nginx-tmp/uwsgi;
    scgi_temp_path {tmp}/nginx-tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
    }}
}}
"""


def start_nginx(procs: Procs, tmp: Path) -> tuple[int, list[int]]:
    port = free_port()
    (tmp / "nginx-tmp").mkdir()
    # As root, the workers would otherwise switch to an unprivileged user that cannot read tmp.
    user = "user root;\n" if os.geteuid() == 0 else ""
    workers = "1" if PIN_SERVER else "auto"
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, workers=workers))
    p = procs.start("nginx", ["nginx", "-p", str(tmp), "-e", str(tmp / "nginx-error.log"),
                              "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"])
    wait_ready(p, port, "/iframe.html")
    return port, [p.pid] + children(p.pid)


@dataclass
class Baton:
    name: str
    port: int
    proc: subprocess.Popen
    reader: str = ""  # session id for the GET rows
    writers: Path | None = None  # file of Cookie header values (`name=id`), one per client


def start_baton(procs: Procs, binary: str, tmp: Path, name: str, store: str,
                redis_url: str = "", redis_prefix: str = "") -> Baton:
    port = free_port()
    secret = urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    if store == "sqlite":
        store_conf = f'backend = "sqlite"\nsqlite_path = "{tmp / name}.db"\n'
    else:
        store_conf = f'backend = "redis"\nredis_url = "{redis_url}"\nredis_prefix = "{redis_prefix}"\n'
    conf = tmp / f"{name}.toml"
    conf.write_text(
        f'[server]\nlisten = "127.0.0.1:{port}"\npublic_origin = "http://broker.localhost:{port}"\n'
        f"rate_limit_per_minute = 0\n\n"
        f'[trust]\norigins = ["{TRUSTED}"]\n\n'
        f"[store]\n{store_conf}\n"
        f'[[handoff.keys]]\nkid = "bench"\nsecret = "{secret}"\n')
    env = dict(os.environ, BATON_LOG="warn")
    p = procs.start(name, [binary, "serve", "--config", str(conf)], env=env)
    wait_ready(p, port, "/readyz")
    return Baton(name, port, p)


def new_session(port: int, value: str) -> str:
    status, headers, body = request(
        port, "PUT", "/v1/session/chat",
        {"Origin": TRUSTED, "Content-Type": "application/json"},
        f'{{"value":"{value}"}}'.encode())
    for c in headers.get_all("Set-Cookie") or []:
        m = re.match(rf"{re.escape(COOKIE)}=([^;]+)", c)
        if status == 200 and m:
            return m[1]
    raise SystemExit(f"PUT /v1/session/chat did not create a session: {status} {body[:200]!r}")


def prepare_sessions(b: Baton, tmp: Path, clients: int) -> None:
    b.reader = new_session(b.port, "r" * VALUE_BYTES)
    b.writers = tmp / f"{b.name}-cookies.txt"
    b.writers.write_text("".join(f"{COOKIE}={new_session(b.port, 'w')}\n" for _ in range(clients)))


def print_served(nginx_port: int, baton_port: int, auth: dict) -> None:
    """What each server actually sends for each row, checked once before any load."""
    br = {"Accept-Encoding": "gzip, deflate, br"}
    checks = [("/iframe.html", {}, "/iframe.html"), ("/cookie-provider.js", {}, "/cookie-provider.js"),
              ("/cookie-provider.js", br, "/cookie-provider.js"), ("/session.json", auth, "/v1/session")]
    say("What each server sends (checked before the load):")
    say()
    say("| request | nginx | baton |")
    say("|---|---|---|")
    for npath, headers, bpath in checks:
        cells = []
        for port, path in ((nginx_port, npath), (baton_port, bpath)):
            status, h, body = request(port, "GET", path, headers)
            if status != 200:
                raise SystemExit(f"GET {path} on port {port}: {status}")
            cells.append(f"{status}, {len(body):,} bytes, {h.get('Content-Encoding') or 'identity'}")
        asked = " (Accept-Encoding: gzip, deflate, br)" if headers is br else ""
        say(f"| GET {bpath}{asked} | {cells[0]} | {cells[1]} |")
    say()


# --- wrk ---------------------------------------------------------------------------------------

@dataclass
class Run:
    """One or more wrk runs against one server, added up."""
    requests: int = 0
    seconds: float = 0.0  # as wrk measured them
    server_s: float = 0.0  # the server's CPU time
    extra_s: float = 0.0  # Redis's CPU time (Redis rows)
    client_s: float = 0.0  # wrk's CPU time
    creates: int = 0  # mixed.lua: sessions created
    problems: list[str] = field(default_factory=list)  # empty: every response 2xx, no socket error

    def __iadd__(self, o: Run) -> Run:
        self.requests += o.requests
        self.seconds += o.seconds
        self.server_s += o.server_s
        self.extra_s += o.extra_s
        self.client_s += o.client_s
        self.creates += o.creates
        self.problems += o.problems
        return self

    @property
    def errors(self) -> str:
        return "; ".join(dict.fromkeys(self.problems))

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds and not self.problems else 0.0

    @property
    def server_us(self) -> float:  # server CPU per request, microseconds
        return self.server_s / max(self.requests, 1) * 1e6

    @property
    def extra_us(self) -> float:
        return self.extra_s / max(self.requests, 1) * 1e6

    @property
    def wrk_cpu(self) -> float:  # the client's CPU use, in cores
        return self.client_s / self.seconds if self.seconds else 0.0


@dataclass
class Target:
    port: int
    pids: list[int]  # the server's processes, for CPU accounting
    script: str  # in bench/wrk/
    args: list[str]  # the script's arguments
    extra_pids: list[int] = field(default_factory=list)  # Redis


class Wrk:
    def __init__(self, procs: Procs, connections: int):
        self.procs, self.connections = procs, connections

    def start(self, t: Target, seconds: int) -> subprocess.Popen:
        argv = PIN_CLIENT + ["wrk", "-t1", f"-c{self.connections}", f"-d{seconds}s", "--timeout", "5s",
                "-s", str(LUA / t.script), f"http://127.0.0.1:{t.port}", "--", *t.args]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        p.name = "wrk"
        self.procs.running.append(p)
        return p

    def finish(self, p: subprocess.Popen, seconds: int) -> Run:
        """Waits for wrk and parses what it printed."""
        out, _ = p.communicate(timeout=seconds + 60)
        self.procs.running.remove(p)
        r = Run()
        total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m|h)\b", out)
        statuses = {int(c): int(n) for c, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)}
        if p.returncode != 0 or not total:
            r.problems.append(f"wrk failed (exit {p.returncode}): {out.strip()[-300:]}")
        elif not statuses:
            r.problems.append("no STATUS lines from the Lua script")
        if bad := {c: n for c, n in statuses.items() if not 200 <= c < 300}:
            r.problems.append("non-2xx " + ", ".join(f"{c}x{n}" for c, n in sorted(bad.items())))
        if sock := re.search(r"Socket errors: (.*)", out):
            r.problems.append("socket errors " + sock[1])
        if (shared := re.search(r"^SHARED (\d+)$", out, re.M)) and int(shared[1]):
            r.problems.append(f"{shared[1]} requests shared a cookie with one in flight")
        if creates := re.search(r"^CREATES (\d+)$", out, re.M):
            r.creates = int(creates[1])
        if total:
            unit = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}[total[3]]
            r.requests, r.seconds = int(total[1]), float(total[2]) * unit
        return r

    def run(self, t: Target, seconds: int) -> Run:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0, extra0 = cpu_ticks(t.pids), cpu_ticks(t.extra_pids)
        r = self.finish(self.start(t, seconds), seconds)
        cpu1, extra1 = cpu_ticks(t.pids), cpu_ticks(t.extra_pids)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        r.server_s, r.extra_s = (cpu1 - cpu0) / TICK, (extra1 - extra0) / TICK
        r.client_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return r


@dataclass
class Row:
    work: str
    nginx: Target
    baton: Target | None
    skip: str = ""
    runs: list[tuple[Run, Run]] = field(default_factory=list)


def measure(rows: list[Row], wrk: Wrk, rounds: int, seconds: int, warmup: int) -> None:
    """Round after round over all rows, so that each row's pairs are spread over the whole run.
    Within a pair, the servers take turns in 1-second wrk runs (nginx, baton, baton, nginx, ...
    in odd rounds; baton first in even ones), so a burst of load from another process hits both
    sides of a pair alike."""
    live = [r for r in rows if not r.skip]
    for row in live:
        note(f"warm-up: {row.work}")
        wrk.run(row.nginx, warmup)
        wrk.run(row.baton, warmup)
    for i in range(rounds):
        for row in live:
            n, b = Run(), Run()
            for k in range(seconds):
                if (i + k) % 2 == 0:
                    n += wrk.run(row.nginx, 1)
                    b += wrk.run(row.baton, 1)
                else:
                    b += wrk.run(row.baton, 1)
                    n += wrk.run(row.nginx, 1)
            row.runs.append((n, b))
            note(f"round {i + 1}/{rounds}: {row.work}: nginx {n.rps:.0f} {n.errors}  baton {b.rps:.0f} {b.errors}")


def fmt_rps(x: float) -> str:
    return f"{x:,.0f}"


def report(rows: list[Row]) -> None:
    say("| work | nginx req/s | baton req/s | ratio | pair ratios |")
    say("|---|---:|---:|---:|---|")
    cpu_lines = []
    for row in rows:
        if row.skip:
            say(f"| {row.work} | | | skipped: {row.skip} | |")
            continue
        clean = [(n, b) for n, b in row.runs if not n.errors and not b.errors]
        failed = [(n, b) for n, b in row.runs if n.errors or b.errors]
        if not clean:
            who, r = next((w, r) for n, b in failed for w, r in (("nginx", n), ("baton", b)) if r.errors)
            say(f"| {row.work} | | | **failed** ({len(failed)}/{len(row.runs)} pairs) | {who}: {r.errors[:300]} |")
            continue
        ratios = [b.rps / n.rps for n, b in clean]
        pairs = " ".join(f"{x:.2f}" for x in ratios)
        if statistics.median(b.wrk_cpu for _, b in clean) >= CLIENT_BOUND:
            pairs += f" (wrk >= {CLIENT_BOUND:.0%} of a core in baton's runs: client-bound)"
        if failed:
            pairs += f" (+{len(failed)} failed pair(s): " + "; ".join(
                sorted({r.errors for n, b in failed for r in (n, b) if r.errors}))[:200] + ")"
        say(f"| {row.work} | {fmt_rps(statistics.median(n.rps for n, _ in clean))} "
            f"| {fmt_rps(statistics.median(b.rps for _, b in clean))} "
            f"| **{statistics.median(ratios):.2f}** | {pairs} |")
        med = lambda xs: statistics.median(list(xs))  # noqa: E731
        n_us, b_us, r_us = (med(n.server_us for n, _ in clean), med(b.server_us for _, b in clean),
                            med(b.extra_us for _, b in clean))
        cpu_lines.append(
            f"| {row.work} | {n_us:.1f} | {b_us:.1f}"
            + (f" + Redis {r_us:.1f}" if row.baton.extra_pids else "")
            + f" | {n_us / (b_us + r_us):.2f}"
            + f" | {med(n.wrk_cpu for n, _ in clean):.0%} / {med(b.wrk_cpu for _, b in clean):.0%} |")
    say()
    say("Where the time goes: server CPU per request (user + system from /proc, all threads and")
    say("workers, Redis's too in the Redis rows; medians), its ratio nginx / baton (comparable to the")
    say("throughput ratio, and less sensitive to a busy machine), and how busy the wrk client was")
    say("(100% = one core: from about 80% the client, not the server, sets the pace).")
    say()
    say("| work | nginx µs CPU/req | baton µs CPU/req | CPU ratio | wrk CPU, nginx / baton run |")
    say("|---|---:|---:|---:|---:|")
    for line in cpu_lines:
        say(line)


# --- memory ------------------------------------------------------------------------------------

def memory(procs: Procs, binary: str, tmp: Path, wrk: Wrk, seconds: int) -> None:
    b = start_baton(procs, binary, tmp, "baton-memory", "sqlite")
    cookies = tmp / "memory-cookies.txt"
    cookies.write_text("".join(f"{COOKIE}={new_session(b.port, 'm')}\n" for _ in range(64)))
    time.sleep(1)
    start = rss_kib(b.proc.pid)
    note(f"memory: {seconds} s of mixed load on SQLite")
    p = wrk.start(Target(b.port, [b.proc.pid], "mixed.lua", [str(cookies), TRUSTED]), seconds)
    t0, samples = time.monotonic(), []  # (seconds since the load started, KiB)
    while p.poll() is None:
        time.sleep(1 - (time.monotonic() - t0) % 1)
        if p.poll() is None:
            samples.append((time.monotonic() - t0, rss_kib(b.proc.pid)))
    r = wrk.finish(p, seconds)
    db = sum(f.stat().st_size for f in tmp.glob("baton-memory.db*"))
    procs.stop(b.proc)

    mib = lambda k: f"{k / 1024:.1f} MiB"  # noqa: E731
    say(f"Memory: baton's RSS (/proc VmRSS, sampled every second) during {seconds} s of mixed load on "
        f"SQLite, {wrk.connections} connections; every 10 requests: 4 session reads, 2 writes, "
        f"1 new session, 3 static assets:")
    say()
    if r.errors:
        say(f"- **the load had errors**: {r.errors}")
    else:
        say(f"- load: {fmt_rps(r.rps)} req/s, every response 2xx; {r.creates:,} sessions created, "
            f"database {db / 2**20:.1f} MiB at the end")
    if not samples:
        say("- no samples")
        return
    say(f"- RSS: start {mib(start)}, end {mib(samples[-1][1])}, max {mib(max(k for _, k in samples))}")
    third = seconds / 3
    middle = [k for t, k in samples if third <= t < 2 * third]
    last = [k for t, k in samples if t >= 2 * third]
    if middle and last:
        ratio = max(last) / max(middle)
        say(f"- {'flat' if ratio <= 1.10 else '**growing**'}: max over the last third "
            f"({2 * third:.0f}-{seconds} s) {mib(max(last))} = {ratio:.2f} x the max over "
            f"{third:.0f}-{2 * third:.0f} s ({mib(max(middle))}); flat means <= 1.10")
    say("- every second (MiB): " + " ".join(f"{k / 1024:.0f}" for _, k in samples))


# --- main --------------------------------------------------------------------------------------

def version(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def fstype(path: Path) -> str:
    best = ("", "?")
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mnt, kind, *_ = line.split()
        if (str(path) + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best[0]):
            best = (mnt, kind)
    return f"{best[1]} ({best[0]})"


def git(*args: str) -> str:
    r = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "?"


def ensure_tools() -> None:
    missing = [t for t in ("nginx", "wrk") if not shutil.which(t)]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        note(f"installing {' '.join(missing)} with apt-get")
        subprocess.run(["apt-get", "update", "-q"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True)
    else:
        raise SystemExit(f"missing {' '.join(missing)}: sudo apt-get install {' '.join(missing)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 s runs, 2 rounds, 15 s memory")
    ap.add_argument("--baton", help="baton binary to use (default: cargo build --release, then target/release/baton)")
    ap.add_argument("--rounds", type=int, help="rounds, i.e. nginx/baton pairs per row (default 5; --quick 2)")
    ap.add_argument("--seconds", type=int, help="seconds per server in a pair, in 1 s runs (default 5; --quick 1)")
    ap.add_argument("--memory-seconds", type=int, help="mixed-load duration (default 60; --quick 15)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs)")
    ap.add_argument("--one-core", action="store_true",
                    help="servers pinned to CPU 0 (nginx with one worker), wrk to CPU 1: no row is client-bound")
    a = ap.parse_args()
    if a.one_core:
        if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
            raise SystemExit("--one-core needs 2 CPUs and taskset (util-linux)")
        PIN_SERVER[:] = ["taskset", "-c", "0"]
        PIN_CLIENT[:] = ["taskset", "-c", "1"]
    rounds = a.rounds or (2 if a.quick else 5)
    seconds = a.seconds or (1 if a.quick else 5)
    warmup = 1 if a.quick else 2
    mem_seconds = a.memory_seconds or (15 if a.quick else 60)

    ensure_tools()
    if a.baton:
        binary = str(Path(a.baton).resolve())
    else:
        note("cargo build --release")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        binary = str(REPO / "target/release/baton")

    # Signals end the run through the finally below, which stops everything started here.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: sys.exit(128 + s))
    tmp = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    procs = Procs(tmp)
    redis = Redis(a.redis_url)
    prefix = f"baton-bench-{os.getpid()}-{secrets.token_hex(4)}:"
    redis_used = False
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                    if l.startswith("model name")), "?")
        fs = fstype(tmp)
        say("# baton / nginx on this machine")
        say()
        say(f"- machine: nproc {len(os.sched_getaffinity(0))} ({cpu}), load average at start "
            f"{' '.join(load)}, temp dir (SQLite) on {fs}")
        say(f"- {version(['nginx', '-v'])}; {version(['wrk', '-v']).split(' [')[0]}; {version([binary, '--version'])} "
            f"({binary}, built {time.strftime('%Y-%m-%d %H:%M', time.localtime(os.stat(binary).st_mtime))}; "
            f"repo HEAD {git('rev-parse', '--short', 'HEAD')}"
            f"{' with uncommitted changes' if git('status', '--porcelain', '--', 'src', 'static', 'templates', 'Cargo.toml') else ''})")
        say(f"- wrk -t1 -c{a.connections}, loopback; {rounds} rounds, each measuring every row once as an "
            f"nginx/baton pair: {seconds} s per server, in 1 s wrk runs taking turns (+{warmup} s "
            f"warm-up per row and server); table: medians, ratio = median of the pair ratios")
        say()

        baton = start_baton(procs, binary, tmp, "baton-sqlite", "sqlite")
        try:
            if redis.call("PING") != "PONG":
                raise RuntimeError("no PONG")
            redis_used = True
            baton_r = start_baton(procs, binary, tmp, "baton-redis", "redis", a.redis_url, prefix)
            redis_pids = pids_named("redis-server")
        except (OSError, RuntimeError) as e:
            baton_r, redis_pids = None, []
            note(f"no Redis at {a.redis_url} ({e}): Redis rows skipped")

        # nginx serves what baton serves, byte for byte.
        www = tmp / "www"
        www.mkdir()
        for name in ("iframe.html", "cookie-provider.js"):
            status, _, body = request(baton.port, "GET", f"/{name}")
            assert status == 200, (name, status)
            (www / name).write_bytes(body)
        js = (www / "cookie-provider.js").read_bytes()
        (www / "cookie-provider.js.gz").write_bytes(gzip.compress(js, 9, mtime=0))
        for b in filter(None, (baton, baton_r)):
            prepare_sessions(b, tmp, a.connections)
        auth = lambda b: {"Origin": TRUSTED, "Cookie": f"{COOKIE}={b.reader}"}  # noqa: E731
        status, _, session_json = request(baton.port, "GET", "/v1/session", auth(baton))
        assert status == 200, status
        (www / "session.json").write_bytes(session_json)
        nginx_port, nginx_pids = start_nginx(procs, tmp)

        print_served(nginx_port, baton.port, auth(baton))
        if PIN_SERVER:
            say("One core each: nginx (1 worker), baton and its store's writer on CPU 0, wrk on CPU 1 "
                "(taskset; a shared Redis is not pinned).")
        else:
            say(f"nginx runs {len(nginx_pids) - 1} worker processes (`worker_processes auto`).")
        say("nginx has no brotli here (Debian's nginx has no brotli module): it sends the precompressed")
        say("cookie-provider.js.gz (gzip -9, `gzip_static on`); baton compresses each response itself.")
        say()

        def ng(path: str, *headers: str) -> Target:
            return Target(nginx_port, nginx_pids, "fixed.lua", ["GET", path, "", *headers])

        def bt(b: Baton | None, script: str, args: list[str]) -> Target | None:
            if b is None:
                return None
            extra = redis_pids if b is baton_r else []
            return Target(b.port, [b.proc.pid], script, args, extra)

        origin = f"Origin: {TRUSTED}"
        ae = "Accept-Encoding: gzip, deflate, br"
        no_redis = "" if baton_r else f"no Redis at {a.redis_url}"

        def get_session(b):
            return bt(b, "fixed.lua", ["GET", "/v1/session", "", origin, f"Cookie: {COOKIE}={b.reader}"]) if b else None

        def put_chat(b):
            return bt(b, "clients.lua", ["/v1/session/chat", str(b.writers), str(VALUE_BYTES), origin]) if b else None

        ref = ng("/session.json", origin, f"Cookie: {COOKIE}={baton.reader}")
        rows = [
            Row("GET /iframe.html", ng("/iframe.html"), bt(baton, "fixed.lua", ["GET", "/iframe.html", ""])),
            Row("GET /cookie-provider.js", ng("/cookie-provider.js"),
                bt(baton, "fixed.lua", ["GET", "/cookie-provider.js", ""])),
            Row("GET /cookie-provider.js, gzip/br asked (nginx: .gz; baton: br)", ng("/cookie-provider.js", ae),
                bt(baton, "fixed.lua", ["GET", "/cookie-provider.js", "", ae])),
            Row("GET /v1/session, SQLite", ref, get_session(baton)),
            Row("GET /v1/session, Redis", ref, get_session(baton_r), no_redis),
            Row(f"PUT /v1/session/chat, SQLite, {a.connections} clients", ref, put_chat(baton)),
            Row(f"PUT /v1/session/chat, Redis, {a.connections} clients", ref, put_chat(baton_r), no_redis),
            # nginx against itself, measured like every other row: how far from 1.00 noise alone
            # moves a ratio during this run.
            Row("noise check: nginx / nginx, GET /iframe.html (both columns nginx; ideally 1.00)",
                ng("/iframe.html"), ng("/iframe.html")),
        ]
        say("(nginx in the /v1 rows: GET of a static JSON file with the same bytes as baton's GET /v1/session.)")
        say()
        wrk = Wrk(procs, a.connections)
        measure(rows, wrk, rounds, seconds, warmup)
        report(rows)
        say()
        procs.stop_all()  # the memory run has the machine to itself
        memory(procs, binary, tmp, wrk, mem_seconds)
        say()
        say(f"- load average at the end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    finally:
        clean_up(procs, tmp, a.keep, redis if redis_used else None, prefix)


if __name__ == "__main__":
    main()
