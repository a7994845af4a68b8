#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every check in order and stops at
# the first failure. CI runs it through .ci/run (Debian 12, root, CI=true, no stdin).
#
#   scripts/test.sh                  all phases
#   scripts/test.sh integration      only the named phases (deps is always run first)
#   TEST_SERVER=prosody scripts/test.sh integration   the integration suite against Prosody
#   PYTEST_ARGS="-k hostile -x" scripts/test.sh integration
#
# Phases: deps fmt clippy test build integration media web conformance bench
# Dependencies land in .test-work/ (git-ignored): a Python venv with the pinned packages of
# tests/integration/requirements.txt, reinstalled only when that file changes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/.test-work"
VENV="$WORK/venv"
REQUIREMENTS="$ROOT/tests/integration/requirements.txt"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export AMPHI_BIN="${AMPHI_BIN:-$TARGET_DIR/debug/amphi}"
export DEBIAN_FRONTEND=noninteractive
APT_PACKAGES=(prosody ejabberd slapd ldap-utils openssl coturn janus gcc)
ALL_PHASES=(fmt clippy test build integration media web conformance bench)

RUN_START=$SECONDS
TIMINGS=()

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

# run_phase NAME HINT COMMAND...: run, time, and on failure name the phase and what to do.
# (Inside a function called this way `set -e` is off: the functions below return on error.)
run_phase() {
    local name="$1" hint="$2"
    shift 2
    say "$name: $*"
    local start=$SECONDS status=0
    "$@" || status=$?
    local took=$((SECONDS - start))
    TIMINGS+=("$(printf '%-12s %4ds' "$name" "$took")")
    if [ "$status" -ne 0 ]; then
        die "phase '$name' (exit $status, after ${took}s): $hint"
    fi
    printf '==> %s ok (%ds)\n' "$name" "$took"
}

install_apt() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && { echo "apt: ${APT_PACKAGES[*]} already installed"; return 0; }
    [ "$(id -u)" -eq 0 ] || { echo "need root to install: apt-get install ${missing[*]}"; return 1; }
    # Installing must not start system-wide daemons (the tests run their own on free ports).
    local guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        guard=1
    fi
    local status=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } || status=$?
    [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
    return "$status"
}

install_python() {
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        rm -rf "$VENV"
        mkdir -p "$WORK"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            # Debian's own python3 needs python3-venv for ensurepip.
            rm -rf "$VENV"
            [ "$(id -u)" -eq 0 ] || { echo "python3 -m venv failed: install python3-venv"; return 1; }
            apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv || return 1
            python3 -m venv "$VENV" || return 1
        fi
    fi
    local want have=""
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    [ -f "$VENV/.requirements.sha256" ] && have="$(cat "$VENV/.requirements.sha256")"
    if [ "$want" != "$have" ]; then
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQUIREMENTS" || return 1
        echo "$want" >"$VENV/.requirements.sha256"
    fi
    echo "python: $("$VENV/bin/python" --version), $("$VENV/bin/python" -m pip freeze --disable-pip-version-check | grep -ci -e slixmpp -e pytest) pinned test packages"
}

deps() {
    install_apt && install_python
}

integration() {
    [ -x "$AMPHI_BIN" ] || [ "${TEST_SERVER:-amphi}" != amphi ] || {
        echo "no server binary at $AMPHI_BIN (run the build phase)"; return 1; }
    # shellcheck disable=SC2086 # PYTEST_ARGS is a list of words on purpose
    "$VENV/bin/python" -m pytest "$ROOT/tests/integration" -q --basetemp="$WORK/pytest" \
        -o cache_dir="$WORK/pytest-cache" ${PYTEST_ARGS:-}
}

media() {
    # Calls through the focus with aiortc media peers (their own venv: aiortc's wheels).
    local venv="$WORK/venv-media" req="$ROOT/tests/media/requirements.txt" want have=""
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    [ -f "$venv/.requirements.sha256" ] && have="$(cat "$venv/.requirements.sha256")"
    if [ "$want" != "$have" ]; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" || return 1
        echo "$want" >"$venv/.requirements.sha256"
    fi
    "$venv/bin/python" -m pytest "$ROOT/tests/media" -q --basetemp="$WORK/pytest-media" -o cache_dir="$WORK/pytest-cache"
}

conformance() {
    # The scenarios against amphi, Prosody and ejabberd; amphi must pass all of them, the
    # references may only fail where conformance/expectations.toml records why.
    cargo build --quiet -p conformance || return 1
    AMPHI_BIN="$AMPHI_BIN" bash "$ROOT/conformance/crosscheck.sh"
}

bench() {
    # The benchmark harness at smoke size, so it never rots: every workload against amphi and
    # Prosody (full-size runs: bench/run.sh, results in bench/RESULTS.md).
    bash "$ROOT/bench/run.sh" --smoke --fresh --servers amphi,prosody || return 1
    # The SFU beside Janus (full size: bench/sfu.sh).
    bash "$ROOT/bench/sfu.sh" --smoke --amphi "$AMPHI_BIN"
}

run() {
    case "$1" in
        fmt) run_phase fmt "run 'cargo fmt --all' and commit the result" cargo fmt --all -- --check ;;
        clippy) run_phase clippy "fix the warnings above (they are errors here)" \
            cargo clippy --workspace --all-targets --quiet -- -D warnings ;;
        test) run_phase test "a Rust test failed: see its output above" cargo test --workspace --quiet ;;
        build) run_phase build "the amphi binary does not build" cargo build --quiet --bin amphi ;;
        integration) run_phase integration \
            "see the failing tests above (each shows the server log of its own time span); logs in $WORK/pytest" \
            integration ;;
        web) run_phase web "the web client suite failed: see tests/web/screenshots and the output above" \
            bash "$ROOT/tests/web/run.sh" ;;
        media) run_phase media "a call test failed: see the output above" media ;;
        conformance) run_phase conformance "the conformance suite failed" conformance ;;
        bench) run_phase bench "the bench smoke run failed" bench ;;
        *) die "unknown phase '$1' (phases: ${ALL_PHASES[*]})" ;;
    esac
}

phases=("$@")
[ "${#phases[@]}" -eq 0 ] && phases=("${ALL_PHASES[@]}")
for p in "${phases[@]}"; do
    case " ${ALL_PHASES[*]} deps " in *" $p "*) ;; *) die "unknown phase '$p' (phases: ${ALL_PHASES[*]})" ;; esac
done

run_phase deps "could not install the test dependencies (apt: ${APT_PACKAGES[*]}; pip: $REQUIREMENTS)" deps
for p in "${phases[@]}"; do
    [ "$p" = deps ] || run "$p"
done

say "timings"
printf '  %s\n' "${TIMINGS[@]}"
printf 'all phases passed in %ds\n' "$((SECONDS - RUN_START))"
