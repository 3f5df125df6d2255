#!/usr/bin/env python3
"""What replica acknowledgements cost a node: PUT with replica_acks = 1 next to replica_acks = 0.

    bench/acks.py                          # 5 rounds of 3 s runs each, about a minute
    bench/acks.py --baton path/to/baton --rounds 3 --seconds 2

The script starts its own Redis primary and one replica on free loopback ports (redis-server,
no persistence), and two brokers on that primary: one with replica_acks = 0, one with
replica_acks = 1. They take turns in wrk runs of random PUTs over 1,000 sessions each, the order
swapping every round, and the script prints each round's ratio acks=1 / acks=0 and their median.
See bench/README.md. Python 3.11 standard library only; needs wrk and redis-server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402
import scale  # noqa: E402
from compare import Procs, Redis, git, say, version  # noqa: E402


def start_redis(procs: Procs, tmp: Path, name: str, primary: int | None = None) -> int:
    port = compare.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp)]
    if primary:
        argv += ["--replicaof", "127.0.0.1", str(primary)]
    procs.start(name, argv)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            info = Redis(f"redis://127.0.0.1:{port}").call("INFO", "replication")
            if not primary or "master_link_status:up" in info:
                return port
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{name} (redis-server on {port}) did not come up")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baton", default=str(compare.REPO / "target/release/baton"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    binary = str(Path(a.baton).resolve())
    for tool in ("wrk", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            raise SystemExit(f"missing {tool}: apt-get install {'redis-server' if 'redis' in tool else tool}")
    tmp = Path(tempfile.mkdtemp(prefix="baton-acks-"))
    procs = Procs(tmp)
    try:
        say(f"# baton replica acks, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {scale.uptime()}")
        say(f"- baton {version([binary, '--version'])} ({binary}), HEAD {git('rev-parse', '--short', 'HEAD')}; "
            f"{version(['redis-server', '--version'])}")
        primary = start_redis(procs, tmp, "redis-primary")
        start_redis(procs, tmp, "redis-replica", primary)
        url = f"redis://127.0.0.1:{primary}"
        redis = Redis(url)
        brokers = {}
        for acks in (0, 1):
            b, pop = scale.populate(procs, binary, tmp, "redis", 1000, redis, url, f"a{acks}:",
                                    name=f"acks{acks}")
            if acks:
                procs.stop(b.proc)
                conf = tmp / f"{b.name}.toml"
                conf.write_text(conf.read_text().replace(
                    "[store]\n", "[store]\nreplica_acks = 1\nreplica_ack_timeout_ms = 500\n"))
                scale.restart(procs, binary, tmp, b)
            brokers[acks] = b
        runs: dict[int, list[float]] = {0: [], 1: []}
        for r in range(a.rounds + 1):  # round 0 warms up and is not counted
            for acks in ((0, 1) if r % 2 else (1, 0)):
                b = brokers[acks]
                res = scale.wrk(b.port, "put", b.writers, a.seconds, a.connections)
                if res.problems:
                    raise SystemExit(f"replica_acks = {acks}: {'; '.join(res.problems)}")
                if r:
                    runs[acks].append(res.rps)
        ratios = [x / y for x, y in zip(runs[1], runs[0])]
        say(f"| PUT, {a.connections} connections, random over 1,000 sessions | req/s (median) |")
        say("|---|---:|")
        say(f"| replica_acks = 0 | {statistics.median(runs[0]):,.0f} |")
        say(f"| replica_acks = 1 | {statistics.median(runs[1]):,.0f} |")
        say(f"- ratio acks=1 / acks=0: **{statistics.median(ratios):.2f}** "
            f"(per round: {' '.join(f'{x:.2f}' for x in ratios)}); load average after: {scale.uptime()}")
    finally:
        compare.clean_up(procs, tmp, a.keep)


if __name__ == "__main__":
    main()
