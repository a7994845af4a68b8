#!/usr/bin/env bash
# The web client's test suite: installs what it needs, then runs node's test runner.
#   tests/web/run.sh                 everything (type check, HTTP, browser, @xmpp/client)
#   tests/web/run.sh e2e/web.test.js one file
# Uses target/debug/amphi (or $AMPHI_BIN), /usr/bin/chromium (or $CHROMIUM) and a Python
# with slixmpp ($PYTHON, else the integration suite's venv, else python3).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$HERE"
export DEBIAN_FRONTEND=noninteractive

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    echo "==> installing chromium (Debian package)"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! command -v node >/dev/null; then
    echo "node is missing: apt-get install nodejs npm" >&2
    exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "==> npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
# The test OpenID providers (tests/oidc/, for e2e/sso.test.js) have their own packages.
if [ ! -d ../oidc/node_modules ] || [ ../oidc/package-lock.json -nt ../oidc/node_modules/.package-lock.json ]; then
    echo "==> npm ci (tests/oidc)"
    (cd ../oidc && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.test-work/venv/bin/python" ]; then PYTHON="$ROOT/.test-work/venv/bin/python"; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c 'import slixmpp' 2>/dev/null; then
    echo "==> making a venv with slixmpp for the TCP peer"
    python3 -m venv "$HERE/.venv"
    "$HERE/.venv/bin/pip" install -q slixmpp==1.17.0
    PYTHON="$HERE/.venv/bin/python"
fi
export PYTHON
export AMPHI_BIN="${AMPHI_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/amphi}"
if [ ! -x "$AMPHI_BIN" ]; then
    (cd "$ROOT" && cargo build -p amphi)
fi
rm -f screenshots/*.png
if [ $# -eq 0 ]; then
    # The whole suite also checks the test providers themselves (their tampering modes).
    echo "==> tests/oidc: the test OpenID providers"
    (cd ../oidc && node --test providers.test.js)
fi
# --experimental-websocket: @xmpp/client needs the WebSocket global (built into Node 22+).
exec node --experimental-websocket --test --test-concurrency=1 "${@:-e2e/}"
