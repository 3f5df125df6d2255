#!/usr/bin/env python3
"""baton with many sessions: does the work per request stay flat as the store grows?

    bench/scale.py                       # 10^3, 10^5, 10^6 live sessions, both stores, sweep test
    bench/scale.py --quick               # 10^3 and 10^5, 10^5 expired: a smoke run
    bench/scale.py --baton target/release/baton --stores redis --sizes 1000,20000

Every population is written straight into the store, in the exact layout the broker writes (SQLite:
one bulk transaction into the file the broker created; Redis: pipelined commands under a prefix of
this run's own), then a sample of it is read back through the HTTP API with its cookie, which
proves the layout equal to the real one. All the brokers of one store run at once and take turns
round by round, so each size's throughput is compared with the smallest size's in the same run:
the table prints ratios. Then the sweep test: live traffic on a broker whose store also holds
10^6 sessions that all expire at one instant; p99 latency before that instant against p99 while
the store deletes them. See bench/README.md. Python 3.11 standard library only; needs wrk and a
Redis server (a missing Redis fails the Redis rows loudly).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (the servers, wrk and Redis helpers are shared)
from compare import LUA, TRUSTED, Procs, Redis, git, note, request, say, version  # noqa: E402

IDLE_MS = 1800 * 1000  # the broker's default idle and absolute timeouts (config/baton.toml)
ABSOLUTE_MS = 43200 * 1000
VALUE = "v" * 36  # one 36-byte value per session, as in the memory figure
SAMPLE = 20  # bulk sessions read back through the API per population
COOKIES = 20000  # session ids wrk picks from at random (the rest of a population is still there)


def uptime() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def new_id() -> str:
    """A session id as `SessionId::generate` makes it: 32 random bytes, base64url, 43 chars."""
    return urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def id_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


@dataclass
class Population:
    """What was written: how many sessions, and the ids of a random subset of them."""
    n: int
    cookies: list[str] = field(default_factory=list)
    bytes_on_store: int = 0  # file size (SQLite) or used_memory growth (Redis)


def sessions(n: int, keep: int):
    """(session id, kept?) n times; the first `keep` are the ones wrk and the check use."""
    for i in range(n):
        yield new_id(), i < keep


def short(sid: str) -> str:
    """How the Redis store names an id (`short_name` in src/session/redis/mod.rs): 128 bits of its hash, base64url."""
    return urlsafe_b64encode(bytes.fromhex(id_hash(sid)[:32])).decode().rstrip("=")


# --- SQLite: one transaction into the schema the broker created --------------------------------

# Schema step 4: `sweep_at` starts at the session's expiry (`SqliteStore::create`).
INSERT_SESSION = ("INSERT INTO sessions (uid, created_at, last_seen, expires_at, sweep_at, vals) "
                  "VALUES (?,?,?,?,?,?)")


def sqlite_fill(path: Path, n: int, created: int, keep: int) -> list[str]:
    """Inserts n sessions created (and last seen) at `created`, each with one id and one value,
    exactly as `SqliteStore::create` then `set_value` leave them."""
    expires = min(created + IDLE_MS, created + ABSOLUTE_MS)
    vals = json.dumps({"chat": VALUE}, separators=(",", ":"))
    kept: list[str] = []
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        with db:
            rows_s, rows_i = [], []
            for sid, k in sessions(n, keep):
                uid = secrets.token_hex(16)
                rows_s.append((uid, created, created, expires, expires, vals))
                rows_i.append((id_hash(sid), uid))
                if k:
                    kept.append(sid)
                if len(rows_s) >= 50000:
                    db.executemany(INSERT_SESSION, rows_s)
                    db.executemany("INSERT INTO session_ids VALUES (?,?)", rows_i)
                    rows_s, rows_i = [], []
            db.executemany(INSERT_SESSION, rows_s)
            db.executemany("INSERT INTO session_ids VALUES (?,?)", rows_i)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return kept


def sqlite_count(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    finally:
        db.close()


def sqlite_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


# --- Redis: pipelined commands of the store's own layout (src/session/redis/mod.rs) -------------

def resp(*args: str) -> bytes:
    return b"".join([f"*{len(args)}\r\n".encode()] +
                    [f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args])


def redis_layout(prefix: str, sid: str, created: int, now: int) -> list[bytes]:
    """The commands `create.lua` then `set_value.lua` leave the effect of, for one session whose id
    is `sid`, created and last seen at `created`, as seen at `now` (prelude.lua: `link`, `put`)."""
    tag = sid[:4]
    uid = f"{tag}.{secrets.token_hex(16)}"
    base = f"{prefix}{{{tag}}}"
    h = short(sid)
    s = f"{base}s:{uid}"
    hash_ttl = min(created + IDLE_MS, created + ABSOLUTE_MS) - now
    id_ttl = created + ABSOLUTE_MS - now
    return [
        resp("HSET", s, "c", str(created), "l", str(created), f"i{tag}:{h}", "", "v:chat", VALUE),
        resp("PEXPIRE", s, str(hash_ttl)),
        resp("SET", f"{base}i:{h}", uid, "PX", str(id_ttl)),
    ]


def redis_fill(redis: Redis, prefix: str, n: int, created: int, keep: int) -> list[str]:
    host, port = redis.addr
    kept: list[str] = []
    p = subprocess.Popen(["redis-cli", "-h", host, "-p", str(port), "--pipe"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    now = int(time.time() * 1000)
    batch: list[bytes] = []
    for sid, k in sessions(n, keep):
        batch += redis_layout(prefix, sid, created, now)
        if k:
            kept.append(sid)
        if len(batch) >= 50000:
            p.stdin.write(b"".join(batch))
            batch = []
    p.stdin.write(b"".join(batch))
    out, _ = p.communicate()
    text = out.decode(errors="replace")
    if p.returncode != 0 or not re.search(r"errors: 0,", text):
        raise SystemExit(f"redis-cli --pipe failed: {text[-500:]}")
    return kept


def redis_memory(redis: Redis) -> int:
    info = redis.call("INFO", "memory")
    return int(re.search(r"used_memory:(\d+)", info)[1])


def redis_usage_per_session(redis: Redis, prefix: str, sids: list[str]) -> tuple[float, float]:
    """MEMORY USAGE (bytes) and key count per session over `sids`, found through their id keys:
    unlike used_memory, no other client of a shared Redis moves this figure."""
    total, keys = 0, 0
    for sid in sids:
        tag = sid[:4]
        idk = f"{prefix}{{{tag}}}i:{short(sid)}"
        uid = redis.call("GET", idk)
        if uid is None:
            raise SystemExit(f"no id key for a bulk session ({idk[:40]}...)")
        found = [idk] + [k for k in (f"{prefix}{{{tag}}}s:{uid}",) if redis.call("EXISTS", k) == "1"]
        keys += len(found)
        total += sum(int(redis.call("MEMORY", "USAGE", k, "SAMPLES", "0") or 0) for k in found)
    return total / len(sids), keys / len(sids)


# --- the broker ---------------------------------------------------------------------------------

def start(procs: Procs, binary: str, tmp: Path, name: str, store: str, redis_url: str,
          prefix: str, sweep_secs: int = 60) -> compare.Baton:
    b = compare.start_baton(procs, binary, tmp, name, store, redis_url, prefix)
    if sweep_secs != 60:  # the sweep test: restart with a short sweep interval
        procs.stop(b.proc)
        conf = tmp / f"{name}.toml"
        conf.write_text(conf.read_text().replace("[store]\n", f"[store]\nsweep_interval_secs = {sweep_secs}\n"))
        env = dict(os.environ, BATON_LOG="warn")
        p = procs.start(name, [binary, "serve", "--config", str(conf)], env=env)
        compare.wait_ready(p, b.port, "/readyz")
        b.proc = p
    return b


def restart(procs: Procs, binary: str, tmp: Path, b: compare.Baton) -> None:
    procs.stop(b.proc)
    env = dict(os.environ, BATON_LOG="warn")
    b.proc = procs.start(b.name, [binary, "serve", "--config", str(tmp / f"{b.name}.toml")], env=env)
    compare.wait_ready(b.proc, b.port, "/readyz")


def check_sample(b: compare.Baton, sids: list[str]) -> None:
    """Each bulk session reads back through the API with its cookie, with its value."""
    for sid in sids[:SAMPLE]:
        status, _, body = request(b.port, "GET", "/v1/session",
                                  {"Origin": TRUSTED, "Cookie": f"{compare.COOKIE}={sid}"})
        got = json.loads(body).get("values") if status == 200 else None
        if got != {"chat": VALUE}:
            raise SystemExit(f"{b.name}: a bulk-loaded session did not read back: {status} {body[:200]!r}")


def populate(procs, binary, tmp, store, size, redis, redis_url, prefix, created=None,
             keep=COOKIES, extra: tuple[int, int] | None = None, sweep_secs: int = 60,
             name: str = ""):
    """A broker whose store holds `size` live sessions (and, with `extra` = (n, instant), n more
    that all expire at that instant); the store is written while the broker is stopped."""
    name = name or f"{store}-{size}" + ("-sweep" if extra else "")
    created = created or int(time.time() * 1000)
    b = start(procs, binary, tmp, name, store, redis_url, prefix, sweep_secs)
    procs.stop(b.proc)  # the schema now exists (SQLite); write behind the broker's back
    pop = Population(size)
    t0 = time.monotonic()
    mem0 = redis_memory(redis) if store == "redis" else 0
    if store == "sqlite":
        pop.cookies = sqlite_fill(tmp / f"{name}.db", size, created, keep)
        if extra:
            doomed = sqlite_fill(tmp / f"{name}.db", extra[0], extra[1] - IDLE_MS, SAMPLE)
        pop.bytes_on_store = sqlite_bytes(tmp / f"{name}.db")
    else:
        pop.cookies = redis_fill(redis, prefix, size, created, keep)
        if extra:
            doomed = redis_fill(redis, prefix, extra[0], extra[1] - IDLE_MS, SAMPLE)
        pop.bytes_on_store = redis_memory(redis) - mem0
    note(f"  {name}: {size + (extra[0] if extra else 0):,} sessions written in {time.monotonic() - t0:.1f} s")
    restart(procs, binary, tmp, b)
    check_sample(b, pop.cookies)
    if extra:
        # Read back too; those read are touched, so they outlive the instant (SAMPLE of 10^6).
        check_sample(b, doomed)
    b.writers = tmp / f"{name}-cookies.txt"
    b.writers.write_text("".join(c + "\n" for c in pop.cookies))
    return b, pop


# --- wrk ----------------------------------------------------------------------------------------

@dataclass
class Result:
    rps: float
    p99_ms: float
    problems: list[str]


def wrk(port: int, mode: str, cookies: Path, seconds: int, connections: int) -> Result:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
            "-s", str(LUA / "random.lua"), f"http://127.0.0.1:{port}", "--",
            mode, str(cookies), VALUE, f"Origin: {TRUSTED}"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout + r.stderr
    problems = []
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    statuses = {int(c): int(n) for c, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)}
    if r.returncode != 0 or not total or not p99:
        problems.append(f"wrk failed: {out.strip()[-300:]}")
    if bad := {c: n for c, n in statuses.items() if not 200 <= c < 300}:
        problems.append("non-2xx " + ", ".join(f"{c}x{n}" for c, n in sorted(bad.items())))
    if sock := re.search(r"Socket errors: (.*)", out):
        problems.append("socket errors " + sock[1])
    if problems:
        return Result(0.0, 0.0, problems)
    secs = float(total[2]) * {"ms": 1e-3, "s": 1, "m": 60}[total[3]]
    p99_ms = float(p99[1]) * {"us": 1e-3, "ms": 1, "s": 1e3}[p99[2]]
    return Result(int(total[1]) / secs, p99_ms, [])


# --- the two measurements -----------------------------------------------------------------------

def throughput(brokers: list[tuple[compare.Baton, Population]], rounds: int, seconds: float,
               connections: int) -> None:
    """Round after round, every size and mode once, the order rotating; ratios to the first size
    within each round, and their median."""
    modes = ("get", "put")
    runs = {(pop.n, m): [] for _, pop in brokers for m in modes}
    for r in range(rounds + 1):  # round 0 warms every broker up and is not counted
        order = brokers[r % len(brokers):] + brokers[:r % len(brokers)]
        for b, pop in order:
            for m in modes:
                res = wrk(b.port, m, b.writers, seconds, connections)
                if res.problems:
                    raise SystemExit(f"{b.name} {m}: {'; '.join(res.problems)}")
                if r:
                    runs[(pop.n, m)].append(res.rps)
    base = brokers[0][1].n
    say(f"| sessions | GET req/s | GET ratio to {base:,} (per round) | PUT req/s | PUT ratio (per round) | store bytes / session |")
    say("|---:|---:|---|---:|---|---:|")
    for _, pop in brokers:
        cells = []
        for m in modes:
            mine, ref = runs[(pop.n, m)], runs[(base, m)]
            ratios = [a / b for a, b in zip(mine, ref)]
            cells += [f"{statistics.median(mine):,.0f}",
                      f"**{statistics.median(ratios):.2f}** ({' '.join(f'{x:.2f}' for x in ratios)})"]
        say(f"| {pop.n:,} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | {pop.bytes_on_store / max(pop.n, 1):,.0f} |")


def sweep_test(procs, binary, tmp, store, live, doomed, redis, redis_url, prefix, seconds,
               connections, lead: float, max_seconds: int) -> None:
    """Live traffic (GET and PUT at random over `live` sessions) in back-to-back runs, while
    `doomed` other sessions all expire at one instant `lead` seconds after the broker is ready;
    p99 of the runs before it against the runs while the store deletes them."""
    at = int(time.time() * 1000) + 10**9  # placeholder; the instant is set once written
    # Writing 10^6 sessions takes a while: aim the instant after the write plus the lead.
    est = doomed / 15000 + 10  # 10^6 took 45 s on a loaded 2-core machine (40,000/s when idle)
    at = int((time.time() + est + lead) * 1000)
    b, pop = populate(procs, binary, tmp, store, live, redis, redis_url, prefix,
                      extra=(doomed, at), sweep_secs=1)
    left = at / 1000 - time.time()
    if left < seconds * 2:
        raise SystemExit(f"sweep test: the store took too long to write; {left:.1f} s left before the instant")
    before: list[Result] = []
    while time.time() + seconds < at / 1000:
        before.append(wrk(b.port, "mix", b.writers, seconds, connections))
    time.sleep(max(0.0, at / 1000 - time.time()))
    during: list[Result] = []
    t0 = time.monotonic()
    gone, left = None, 0
    while time.monotonic() - t0 < max_seconds:
        during.append(wrk(b.port, "mix", b.writers, seconds, connections))
        left = sqlite_count(tmp / f"{b.name}.db") if store == "sqlite" else redis_left(redis, prefix)
        if left <= live + SAMPLE:
            gone = time.monotonic() - t0
            break
    for res in before + during:
        if res.problems:
            raise SystemExit(f"sweep test {store}: {'; '.join(res.problems)}")
    base = statistics.median(r.p99_ms for r in before)
    worst = max(r.p99_ms for r in during)
    say(f"| {store} | {live:,} live, {doomed:,} expiring | {len(before)} x {seconds} s: p99 "
        f"{' '.join(f'{r.p99_ms:.1f}' for r in before)} ms | {len(during)} x {seconds} s: p99 "
        f"{' '.join(f'{r.p99_ms:.1f}' for r in during)} ms | "
        f"{'all deleted in %.0f s' % gone if gone is not None else f'{doomed + live - left:,} deleted in {max_seconds} s'} | "
        f"**{worst / base:.2f}** | {statistics.median(r.rps for r in before):,.0f} / "
        f"{statistics.median(r.rps for r in during):,.0f} |")
    procs.stop(b.proc)


def redis_left(redis: Redis, prefix: str) -> int:
    """Session hashes left under `prefix` (a SCAN: slow, but only between runs)."""
    n, cursor = 0, "0"
    while True:
        cursor, keys = redis.call("SCAN", cursor, "MATCH", prefix + "*s:*", "COUNT", "10000")
        n += sum(1 for k in keys if "}s:" in k)
        if cursor == "0":
            return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: sizes 10^3 and 10^5, 10^5 expiring, 1 round")
    ap.add_argument("--baton", default=str(compare.REPO / "target/release/baton"))
    ap.add_argument("--stores", default="sqlite,redis")
    ap.add_argument("--sizes", help="live sessions per broker, comma-separated (default 1000,100000,1000000)")
    ap.add_argument("--doomed", type=int, help="sessions expiring at once in the sweep test (default 10^6; 0: no sweep test)")
    ap.add_argument("--rounds", type=int, help="rounds of the throughput table (default 3)")
    ap.add_argument("--sweep-seconds", type=int, default=60, help="longest the sweep test measures after the instant (default 60)")
    ap.add_argument("--seconds", type=int, help="seconds per wrk run (default 3)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--cookies", type=int, default=COOKIES,
                    help="sessions the throughput runs pick from, per size (default 20,000; a size "
                         "smaller than that uses all of its own): the same for every size compares "
                         "stores of different sizes under the same traffic")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    ap.add_argument("--memory", action="store_true", help="only the Redis bytes and keys per session (20,000 sessions)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    sizes = [int(x) for x in (a.sizes or ("1000,100000" if a.quick else "1000,100000,1000000")).split(",")]
    doomed = a.doomed if a.doomed is not None else (100000 if a.quick else 1000000)
    rounds = a.rounds or (1 if a.quick else 3)
    seconds = a.seconds or (2 if a.quick else 3)
    stores = a.stores.split(",")
    binary = str(Path(a.baton).resolve())
    if not Path(binary).exists():
        raise SystemExit(f"no broker at {binary}: cargo build --release, or --baton PATH")
    if not shutil.which("wrk"):
        raise SystemExit("missing wrk: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="baton-scale-"))
    procs = Procs(tmp)
    redis = Redis(a.redis_url)
    run_prefix = f"bs{os.getpid()}{secrets.token_hex(2)}:"
    redis_used = False
    try:
        say(f"# baton scale, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {uptime()}")
        say(f"- baton {version([binary, '--version'])} ({binary}), HEAD {git('rev-parse', '--short', 'HEAD')}; "
            f"{version(['wrk', '-v'])}; {tmp} on {compare.fstype(tmp)}")
        if "redis" in stores:
            try:
                redis.call("PING")
            except OSError as e:
                raise SystemExit(f"Redis at {a.redis_url} is not reachable ({e}): start it, or --stores sqlite")
            redis_used = True
            rv = re.search(r"redis_version:(\S+)", redis.call("INFO", "server"))[1]
            say(f"- Redis {rv} at {a.redis_url}, keys under {run_prefix}")
        if a.memory:
            # A prefix as long as the default ("baton:"): key names are part of the figure.
            short = f"m{secrets.token_hex(2)}:"
            if redis.call("SCAN", "0", "MATCH", short + "*", "COUNT", "100000")[1]:
                raise SystemExit(f"keys under {short} exist already: run again")
            run_prefix = short
            b, pop = populate(procs, binary, tmp, "redis", 20000, redis, a.redis_url, short)
            per, keys = redis_usage_per_session(redis, short, pop.cookies[:2000])
            say(f"- Redis, 20,000 sessions with one 36-byte value: used_memory grew "
                f"{pop.bytes_on_store / 20000:,.0f} B/session; MEMORY USAGE {per:,.0f} B/session "
                f"over 2,000 of them, {keys:.2f} keys/session (load {uptime()})")
            return
        for store in stores:
            say()
            say(f"## {store}: throughput by live sessions (load average {uptime()})")
            brokers = []
            for i, n in enumerate(sizes):
                brokers.append(populate(procs, binary, tmp, store, n, redis, a.redis_url,
                                        f"{run_prefix}{i}:", keep=a.cookies))
            if store == "redis":
                per, keys = redis_usage_per_session(redis, f"{run_prefix}0:", brokers[0][1].cookies[:1000])
                say(f"- MEMORY USAGE per session: {per:,.0f} B, {keys:.2f} keys (1,000 sessions)")
            for b, _ in brokers:
                say(f"- {b.name}: broker RSS {compare.rss_kib(b.proc.pid) / 1024:,.0f} MiB")
            throughput(brokers, rounds, seconds, a.connections)
            for b, pop in brokers:
                say(f"- {b.name}: broker RSS after the runs {compare.rss_kib(b.proc.pid) / 1024:,.0f} MiB "
                    f"({compare.rss_kib(b.proc.pid) * 1024 / pop.n:,.0f} B per live session)")
            for b, _ in brokers:
                procs.stop(b.proc)
            say(f"- load average after: {uptime()}")
        if doomed:
            say()
            say(f"## live traffic while {doomed:,} expired sessions are deleted (load average {uptime()})")
            say("| store | population | before the instant | after it, until all are gone | sweep | p99 ratio (worst after / median before) | req/s before / after |")
            say("|---|---|---|---|---|---:|---|")
            for store in stores:
                sweep_test(procs, binary, tmp, store, 1000, doomed, redis, a.redis_url,
                           f"{run_prefix}sw:", seconds, a.connections, lead=4 * seconds,
                           max_seconds=a.sweep_seconds)
            say(f"- load average after: {uptime()}")
    finally:
        compare.clean_up(procs, tmp, a.keep, redis if redis_used else None, run_prefix)


if __name__ == "__main__":
    main()
