#!/usr/bin/env bash
# Installs what the test suite needs and is not part of the Rust toolchain: the three browser
# engines Debian ships (Chromium; Firefox ESR; WebKitGTK's WebDriver and MiniBrowser, run under
# Xvfb), openssl for the WebKit tests' https certificate, and the npm packages (playwright-core,
# puppeteer-core, terser, typescript). Idempotent and quick when all is there. Redis: the contract
# and multi-node tests need `redis-server` (the test hosts run one at 127.0.0.1:6379; the
# multi-node test starts its own), the Sentinel and Cluster tests `redis-sentinel` and `redis-cli`.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/firefox-esr ] || need_apt+=(firefox-esr)
[ -x /usr/bin/WebKitWebDriver ] || need_apt+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null 2>&1 || need_apt+=(xvfb)
command -v xauth >/dev/null 2>&1 || need_apt+=(xauth)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The GMS load-balancer configurations (deploy/gms/) are tested with Debian's own balancers; nginx
# needs its njs module to add `Partitioned` to cookies.
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_http_js_module.so ] || need_apt+=(libnginx-mod-http-js)
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The high-availability tests (tests/integration/redis_ha.rs) start sentinels and build a cluster.
[ -x /usr/bin/redis-sentinel ] || need_apt+=(redis-sentinel)
[ -x /usr/bin/redis-cli ] || need_apt+=(redis-tools)
# The production image (scripts/image.sh, tests/image/): podman, run with runc (Debian's crun
# fails on cgroups in hybrid mode).
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
[ -x /usr/sbin/runc ] || need_apt+=(runc)
# The identity snippets' test runs Java from the JDK.
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
apt_install() {
  echo "setup: installing $* with apt-get"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@"
}
[ ${#need_apt[@]} -eq 0 ] || apt_install "${need_apt[@]}"

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.package-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

# Python tools from PyPI, each set pinned in a requirements file and kept in a venv of its own,
# (re)built only when its pins change.
venv() { # venv DIR REQUIREMENTS WHAT
  local dir=$1 req=$2 want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  [ "$(cat "$dir/.requirements.sha" 2>/dev/null)" = "$want" ] && return 0
  echo "setup: installing $3 ($req) into $dir"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  if ! python3 -m venv "$dir" >/dev/null 2>&1; then
    # Debian's python3 keeps venv (ensurepip) in a package of its own.
    rm -rf "$dir"
    apt_install python3-venv
    python3 -m venv "$dir"
  fi
  "$dir/bin/pip" install -q --disable-pip-version-check --no-input -r "$req"
  echo "$want" > "$dir/.requirements.sha"
}
cache=$HOME/.cache/baton
# The OpenAPI conformance run (scripts/schemathesis.sh): Schemathesis and openapi-spec-validator.
venv "${BATON_SCHEMATHESIS_VENV:-$cache/schemathesis}" tests/openapi/requirements.txt schemathesis
# The identity snippets' test (tests/identity/): PyJWT (Java runs from the JDK, Node from npm).
venv "${BATON_IDENTITY_VENV:-$cache/identity-py}" tests/identity/requirements.txt PyJWT
# The deploy/ validators (tests/image/deploy.test.mjs).
venv "${BATON_DEPLOY_VENV:-$cache/deploy-validate}" tests/image/requirements.txt "the deploy/ validators"

# The contract suite needs the Redis at 127.0.0.1:6379 (or BATON_TEST_REDIS_URL).
if [ -z "${BATON_TEST_REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "setup: starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
