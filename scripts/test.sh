#!/usr/bin/env bash
# The whole test suite, as CI runs it: Rust unit and integration tests (SQLite and Redis store
# contract, HTTP API, handoff attacks, kill -9 durability, multi-node on Redis), the JavaScript
# build/size check, the shared origin corpus in JS, and the real-browser tests: headless Chromium
# (tests/browser/), then the same scenarios in Chromium, Firefox ESR and WebKitGTK in each of their
# cookie modes (tests/browser/engines/), one browser at a time. A missing browser or Redis fails
# the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo build (the broker and the demo)"
cargo build --locked --workspace
echo "== cargo test"
cargo test --locked --workspace --lib --bins --tests -- --test-threads=4
echo "== every README claim names tests that exist (docs/claims.md)"
node scripts/check-claims.mjs
echo "== no production file over 1,000 lines, no function over 80 (scripts/check-size.mjs)"
node scripts/check-size.mjs
echo "== JavaScript build and size budget"
node scripts/check-js.mjs
echo "== TypeScript types (static/cookie-provider.d.ts)"
npx --no-install tsc -p tests/types/tsconfig.json
echo "== origin corpus in JavaScript"
node --test tests/js/
echo "== identity snippets of docs/identity.md (Node, Python, Java), each checked by baton"
BATON_BIN="$PWD/target/debug/baton" node --test tests/identity/
echo "== OpenAPI conformance (schemathesis against the real binary)"
scripts/schemathesis.sh "$PWD/target/debug/baton"
echo "== GMS load-balancer configurations (nginx, HAProxy; Chromium with third-party cookies blocked)"
node --test --test-concurrency=1 tests/gms/
echo "== browser tests (Chromium; then Chromium, Firefox ESR and WebKitGTK in every cookie mode)"
BATON_BIN="$PWD/target/debug/baton" BATON_DEMO_BIN="$PWD/target/debug/baton-demo" node --test --test-concurrency=1 tests/browser/
echo "== the production image (scripts/image.sh: the Dockerfile built with podman) and deploy/"
scripts/image.sh
node --test --test-concurrency=1 tests/image/
echo "== all suites passed"
