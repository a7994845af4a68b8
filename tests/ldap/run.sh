#!/usr/bin/env bash
# The LDAP tests (issue 7) against a real OpenLDAP slapd on 127.0.0.1:
#   1. cargo test --test ldap       the backend: StartTLS/ldaps, attributes, groups, escaping, down
#   2. tests/integration/test_ldap.py   slixmpp signs in to amphi through the directory
# Installs slapd, ldap-utils and openssl with apt when missing (as root), and the Python test
# packages through scripts/test.sh's deps phase when its venv is missing.
#
#   tests/ldap/run.sh                 both
#   PYTEST_ARGS="-k injection" tests/ldap/run.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v slapd >/dev/null || missing+=(slapd)
command -v ldapadd >/dev/null || missing+=(ldap-utils)
command -v openssl >/dev/null || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "install ${missing[*]} (apt-get install slapd ldap-utils openssl)" >&2; exit 1; }
    echo "==> apt-get install ${missing[*]}"
    apt-get update -qq
    # slapd's package scripts start no daemon here (no init system) and need no answers.
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

VENV="$ROOT/.test-work/venv"
[ -x "$VENV/bin/pytest" ] || scripts/test.sh deps

echo "==> cargo build -p amphi; cargo test -p amphi --test ldap"
cargo build -p amphi
cargo test -p amphi --test ldap

echo "==> pytest tests/integration/test_ldap.py"
export AMPHI_BIN="${AMPHI_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/amphi}"
mkdir -p "$ROOT/.test-work"
"$VENV/bin/python" -m pytest "$ROOT/tests/integration/test_ldap.py" -q --basetemp="$ROOT/.test-work/pytest-ldap" \
    -o cache_dir="$ROOT/.test-work/pytest-cache" ${PYTEST_ARGS:-}
