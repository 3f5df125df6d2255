#!/usr/bin/env bash
# Every benchmark in one run, one after another on the same machine, everything they print kept
# in one file: README's Performance figures come from one such run, so they share one machine
# state and one noise row. About 35 minutes; run it on a machine doing nothing else.
#
#   bench/all.sh [OUT]      # OUT defaults to bench-run-<UTC time>.txt in the current directory
#   QUICK=1 bench/all.sh    # every script's --quick form, a few minutes (a smoke run, not figures)
#
# Builds the release binary first and runs every script against it (bench/README.md says what
# each measures). Stops at the first script that fails.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-bench-run-$(date -u +%Y%m%dT%H%M%SZ).txt}")
cd "$repo"
cargo build --release --locked --quiet
bin="$repo/target/release/baton"
if [ -z "${QUICK:-}" ]; then
  pairs=(--rounds 3 --seconds 3) quick=() acks=()
else
  pairs=(--quick) quick=(--quick) acks=(--rounds 2 --seconds 1)
fi

step() { # step NAME CMD...: runs CMD, its output to the terminal and to $out, the load beside it
  local name=$1
  shift
  {
    echo
    echo "=== $name: $* (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  } | tee -a "$out"
  "$@" 2>&1 | tee -a "$out"
}

{
  echo "baton benchmarks, one run: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'), $(date -u +%FT%TZ)"
  echo "machine: $(nproc) cores, $(uname -r)"
} | tee "$out"
step "baton next to nginx" python3 bench/compare.py --baton "$bin" "${pairs[@]}"
step "baton next to nginx, one core each" python3 bench/compare.py --one-core --baton "$bin" "${pairs[@]}"
step "10^3 to 10^6 sessions, and a sweep of 10^6" python3 bench/scale.py --baton "$bin" "${quick[@]}"
step "Redis memory per session" python3 bench/scale.py --memory --baton "$bin"
step "replica acknowledgements" python3 bench/acks.py --baton "$bin" "${acks[@]}"
step "restore in the browser next to a bare iframe" env BATON_BIN="$bin" node bench/browser.mjs "${quick[@]}"
echo "all figures in $out"
