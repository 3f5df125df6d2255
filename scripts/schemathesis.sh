#!/usr/bin/env bash
# OpenAPI conformance: checks the real broker binary against docs/openapi.yaml.
#
#   scripts/schemathesis.sh [BATON_BINARY]      (default: $BATON_BIN, else target/debug/baton)
#
# 1. validates docs/openapi.yaml (openapi-spec-validator);
# 2. starts the binary on a free port with a fresh SQLite file, a handoff and an identity key, no rate
#    limit, trusting https://shop.example.com and https://*.example.org (public origin
#    https://broker.example.com: only header values, the run itself is plain http on 127.0.0.1);
# 3. writes the run's copy of the spec with those origins filled in (tests/openapi/instantiate.py);
# 4. runs Schemathesis on every operation with every check (tests/openapi/schemathesis.toml):
#    examples, coverage, fuzzing and stateful phases (links: GET -> PUT -> handoff -> redeem);
# 5. walks the fixed scenarios random generation rarely reaches (tests/openapi/scenarios.py):
#    real sessions by cookie and by page key, handoff and redeem, conflict, limits, assets.
#
# Schemathesis and its dependencies are pinned in tests/openapi/requirements.txt and installed by
# scripts/setup.sh into $BATON_SCHEMATHESIS_VENV (default ~/.cache/baton/schemathesis). Exits
# non-zero on any failure, and when the binary or Schemathesis is missing. Settings:
#   BATON_ST_EXAMPLES   examples per operation and phase (default 200)
#   BATON_ST_SEED       Schemathesis seed, to replay a run (it prints its seed)
#   BATON_ST_WORKERS    concurrent Schemathesis workers (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bin=${1:-${BATON_BIN:-$root/target/debug/baton}}
venv=${BATON_SCHEMATHESIS_VENV:-$HOME/.cache/baton/schemathesis}
examples=${BATON_ST_EXAMPLES:-200}
workers=${BATON_ST_WORKERS:-2}

fail() {
  echo "schemathesis.sh: $*" >&2
  exit 1
}
[ -x "$bin" ] || fail "broker binary $bin not found or not executable: build it (cargo build) or pass its path"
[ -x "$venv/bin/schemathesis" ] || fail "schemathesis is not installed in $venv: run scripts/setup.sh"
want=$(sha256sum tests/openapi/requirements.txt | cut -d' ' -f1)
[ "$(cat "$venv/.requirements.sha" 2>/dev/null)" = "$want" ] ||
  fail "$venv does not hold the versions pinned in tests/openapi/requirements.txt: run scripts/setup.sh"
py=$venv/bin/python

started=$SECONDS
echo "schemathesis.sh: $("$venv/bin/schemathesis" --version), openapi-spec-validator $("$py" -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))')"
"$venv/bin/openapi-spec-validator" docs/openapi.yaml

tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-schemathesis.XXXXXX")
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The origins of the spec's examples, so that its examples are valid requests here too.
public=https://broker.example.com
origin_a=https://shop.example.com      # an exact trusted origin
origin_b=https://support.example.org   # matched by the wildcard
max_values=8
max_value_bytes=16384
cat >"$tmp/baton.toml" <<EOF
[server]
listen = "127.0.0.1:0"
public_origin = "$public"
rate_limit_per_minute = 0
[trust]
origins = ["$origin_a", "https://*.example.org"]
[session]
max_values = $max_values
max_value_bytes = $max_value_bytes
[store]
backend = "sqlite"
sqlite_path = "$tmp/baton.db"
[[handoff.keys]]
kid = "conformance"
secret = "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
[identity]
subject_secret = "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
[[identity.keys]]
kid = "conformance"
secret = "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
EOF

# Text logs at info whatever the environment says: the port is read from the start-up line.
BATON_LOG__FORMAT=text RUST_LOG=info BATON_LOG=info "$bin" serve --config "$tmp/baton.toml" >"$tmp/broker.log" 2>&1 &
broker_pid=$!
# The start-up line names the bound address: `baton is listening listen=127.0.0.1:PORT ...`.
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*baton is listening listen=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/broker.log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$broker_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  cat "$tmp/broker.log" >&2
  fail "the broker did not start (its log is above)"
fi
base=http://127.0.0.1:$port
echo "schemathesis.sh: broker $bin at $base"

"$py" tests/openapi/instantiate.py docs/openapi.yaml "$tmp/openapi.run.yaml" "$public" "$origin_a" "$origin_b"

seed_args=()
[ -n "${BATON_ST_SEED:-}" ] && seed_args=(--seed "$BATON_ST_SEED")
status=0
# In the output, "Failed to extract data from response" lists are expected, not failures: each
# link carries both a cookie and a page key, and an answer gives one of them only.
(
  cd "$tmp"
  timeout 600 "$venv/bin/schemathesis" --config-file "$root/tests/openapi/schemathesis.toml" \
    run "$tmp/openapi.run.yaml" --url "$base" --checks all --max-examples "$examples" \
    --workers "$workers" --request-timeout 20 --no-color "${seed_args[@]}"
) || status=$?

timeout 300 "$py" tests/openapi/scenarios.py "$tmp/openapi.run.yaml" "$base" "$public" "$origin_a" "$origin_b" \
  "$max_values" "$max_value_bytes" || status=1

if ! kill -0 "$broker_pid" 2>/dev/null; then
  echo "schemathesis.sh: the broker exited during the run; its log:" >&2
  cat "$tmp/broker.log" >&2
  status=1
elif grep -qE '^[0-9TZ:.-]+ +ERROR ' "$tmp/broker.log"; then
  echo "schemathesis.sh: the broker logged errors:" >&2
  grep -E '^[0-9TZ:.-]+ +ERROR ' "$tmp/broker.log" >&2
  status=1
fi

if [ "$status" -ne 0 ]; then
  fail "FAILED (after $((SECONDS - started)) s; BATON_ST_SEED=<the seed printed above> replays the generated part)"
fi
echo "schemathesis.sh: the broker conforms to docs/openapi.yaml ($((SECONDS - started)) s)"
