#!/usr/bin/env bash
# Mutation testing of baton's security core: cargo-mutants changes the code one small way at a
# time (a `>` into `>=`, a `||` into `&&`, a function body into a constant…) and runs the tests;
# a change no test notices is a survivor, i.e. a rule nothing checks.
#
#   scripts/mutants.sh [cargo-mutants options]   e.g. `-e src/session/redis/mod.rs` leaves a file out
#   scripts/mutants.sh --report                  the figures and the check of the last run again
#
# Which files and tests: `.cargo/mutants.toml`. Needs `cargo install cargo-mutants --locked`, jq,
# and the Redis the store tests use. Prints, per file: mutants, caught, missed, unviable,
# timeouts; then compares the survivors with `mutants-accepted.txt` and exits non-zero when a
# survivor (or a timeout) is not listed there. Results stay in target/mutants/mutants.out.
set -euo pipefail
cd "$(dirname "$0")/.."

ACCEPTED=mutants-accepted.txt
OUT=target/mutants
# The mutants `.cargo/mutants.toml` asks for. cargo-mutants 27.1 applies no name filter
# (`examine_re`) to struct-field mutants, so it also tests one outside the functions named there
# in api.rs; those are reported apart and do not count.
IN_SCOPE='src/(origin|handoff|cookie)\.rs:|src/routes/extract\.rs:|src/session/(sqlite|redis)\.rs:|src/routes/api\.rs:.*\b(in|replace) (guard|caller_origin)\b'

for tool in cargo-mutants jq; do
  command -v "$tool" >/dev/null || {
    echo "$tool is missing (cargo-mutants: cargo install cargo-mutants --locked)" >&2
    exit 2
  }
done

if [[ ${1:-} != --report ]]; then
  start=$(date +%s)
  status=0
  cargo mutants --output "$OUT" --jobs 1 "$@" || status=$?
  echo "$(($(date +%s) - start))" >"$OUT/seconds"
  # 0: every mutant caught; 2: some missed; 3: some timed out. Anything else (a failing
  # baseline, a usage error) leaves nothing to compare.
  case $status in 0 | 2 | 3) ;; *)
    echo "cargo mutants failed (exit $status)" >&2
    exit "$status"
    ;;
  esac
fi

# One line per mutant: outcome, then its name without line and column (which move with every
# edit above them), e.g. `MissedMutant src/origin.rs: replace || with && in host_under`.
jq -r '.outcomes[] | select(.scenario != "Baseline") | "\(.summary) \(.scenario.Mutant.name)"' \
  "$OUT/mutants.out/outcomes.json" |
  sed -E 's/^([A-Za-z]+ [^:]+):[0-9]+:[0-9]+:/\1:/' >"$OUT/outcomes.txt"
grep -E "^[A-Za-z]+ ($IN_SCOPE)" "$OUT/outcomes.txt" >"$OUT/in-scope.txt" || true
grep -vE "^[A-Za-z]+ ($IN_SCOPE)" "$OUT/outcomes.txt" >"$OUT/out-of-scope.txt" || true

echo
printf '%-24s %8s %7s %7s %9s %9s\n' file mutants caught missed unviable timeouts
awk '{ split($2, f, ":"); n[f[1]]++; c[f[1], $1]++ }
  END { for (file in n) printf "%-24s %8d %7d %7d %9d %9d\n", file, n[file],
        c[file, "CaughtMutant"], c[file, "MissedMutant"], c[file, "Unviable"], c[file, "Timeout"] }' \
  "$OUT/in-scope.txt" | sort
seconds=$(cat "$OUT/seconds" 2>/dev/null || echo 0)
echo "run time: $((seconds / 60)) min $((seconds % 60)) s"
if [[ -s $OUT/out-of-scope.txt ]]; then
  echo "outside the examined functions, not counted:"
  sed 's/^/  /' "$OUT/out-of-scope.txt"
fi

# The survivors and timeouts against the list; a mutation that survives in two places is listed
# twice.
{ grep -E '^(MissedMutant|Timeout) ' "$OUT/in-scope.txt" || true; } | cut -d' ' -f2- | sort >"$OUT/survivors.txt"
{ grep -E '^(accepted|pending): ' "$ACCEPTED" || true; } | sed -E 's/^[a-z]+: //; s/  # .*$//' | sort >"$OUT/listed.txt"
unexplained=$(comm -23 "$OUT/survivors.txt" "$OUT/listed.txt")
stale=$(comm -13 "$OUT/survivors.txt" "$OUT/listed.txt")
if [[ -n $stale ]]; then
  echo
  echo "listed in $ACCEPTED but not surviving in this run (caught now, or not run):"
  echo "$stale" | sed 's/^/  /'
fi
if [[ -n $unexplained ]]; then
  echo
  echo "survivors not in $ACCEPTED (add a test that catches each, or list it with its reason):"
  echo "$unexplained" | sed 's/^/  /'
  exit 1
fi
echo
echo "every survivor is listed in $ACCEPTED ($(grep -c '^accepted: ' "$ACCEPTED" || true) accepted," \
  "$(grep -c '^pending: ' "$ACCEPTED" || true) pending in files owned elsewhere)"
