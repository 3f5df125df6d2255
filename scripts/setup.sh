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
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} with apt-get"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.package-lock.sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

# The OpenAPI conformance run (scripts/schemathesis.sh): Schemathesis and openapi-spec-validator
# from PyPI, pinned in tests/openapi/requirements.txt, in a venv of their own, (re)built only when
# the pins change.
st_venv=${BATON_SCHEMATHESIS_VENV:-$HOME/.cache/baton/schemathesis}
st_want=$(sha256sum tests/openapi/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$st_venv/.requirements.sha" 2>/dev/null)" != "$st_want" ]; then
  echo "setup: installing schemathesis (tests/openapi/requirements.txt) into $st_venv"
  rm -rf "$st_venv"
  mkdir -p "$(dirname "$st_venv")"
  if ! python3 -m venv "$st_venv" >/dev/null 2>&1; then
    # Debian's python3 keeps venv (ensurepip) in a package of its own.
    rm -rf "$st_venv"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-venv
    python3 -m venv "$st_venv"
  fi
  "$st_venv/bin/pip" install -q --disable-pip-version-check --no-input -r tests/openapi/requirements.txt
  echo "$st_want" > "$st_venv/.requirements.sha"
fi

# The deploy/ validators (tests/image/deploy.test.mjs): pinned in tests/image/requirements.txt,
# in a venv of their own, (re)built only when the pins change.
dv_venv=${BATON_DEPLOY_VENV:-$HOME/.cache/baton/deploy-validate}
dv_want=$(sha256sum tests/image/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$dv_venv/.requirements.sha" 2>/dev/null)" != "$dv_want" ]; then
  echo "setup: installing the deploy/ validators (tests/image/requirements.txt) into $dv_venv"
  rm -rf "$dv_venv"
  mkdir -p "$(dirname "$dv_venv")"
  python3 -m venv "$dv_venv"
  "$dv_venv/bin/pip" install -q --disable-pip-version-check --no-input -r tests/image/requirements.txt
  echo "$dv_want" > "$dv_venv/.requirements.sha"
fi

# The contract suite needs the Redis at 127.0.0.1:6379 (or BATON_TEST_REDIS_URL).
if [ -z "${BATON_TEST_REDIS_URL:-}" ] && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "setup: starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
