#!/usr/bin/env bash
# Cross-check: run every conformance scenario against Prosody and ejabberd (Debian packages) and,
# when AMPHI_BIN is set, against amphi; print a scenario × server table.
#
# Exit status is non-zero if amphi fails any scenario, or a reference server fails a scenario that
# conformance/expectations.toml does not list for it (each entry cites the spec it deviates from).
#
# Servers run on loopback only, as foreground processes in their own process groups, with
# generated configs in a temporary directory; all are stopped on exit.
#
# Environment (all optional):
#   AMPHI_BIN         amphi binary to test as well (e.g. target/debug/amphi)
#   CONFORMANCE_BIN   runner binary (default: built with cargo)
#   SERVERS           subset to run, default "prosody ejabberd amphi" (amphi only with AMPHI_BIN)
#   PROSODY_PORT=15222 EJABBERD_PORT=25222 AMPHI_PORT=5222   STARTTLS ports (direct TLS = +1)
#   JOBS=4            scenarios run at once per server
#   DIRECT_TLS=1      connect with direct TLS (XEP-0368, port + 1) instead of STARTTLS
#   MECHANISM=...     force a SASL mechanism (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN)
#   KEEP_WORK=1       keep the temporary directory (configs, logs, results) for inspection
#   Arguments: scenario files or directories (default: conformance/scenarios)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
prosody_port=${PROSODY_PORT:-15222}
ejabberd_port=${EJABBERD_PORT:-25222}
amphi_port=${AMPHI_PORT:-5222}
jobs=${JOBS:-4}
servers=${SERVERS:-"prosody ejabberd amphi"}
if [ $# -gt 0 ]; then scenarios=("$@"); else scenarios=("$here/scenarios"); fi

started=$(date +%s)
work=$(mktemp -d /tmp/conformance-crosscheck.XXXXXX)
chmod 755 "$work"   # the ejabberd user must reach its own directory inside
pgids=()

cleanup() {
    local pgid
    for pgid in "${pgids[@]}"; do
        kill -TERM -- "-$pgid" 2>/dev/null || true
    done
    for pgid in "${pgids[@]}"; do
        for _ in $(seq 50); do
            kill -0 -- "-$pgid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pgid" 2>/dev/null || true
    done
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

log() { echo "crosscheck: $*"; }

# Starts "$@" in a new process group (setsid), output to $1's log; remembers the group to kill.
start_group() {
    local name=$1
    shift
    setsid "$@" >"$work/$name.log" 2>&1 &
    pgids+=("$!")
}

# Waits until something listens on 127.0.0.1:$2, or gives up after $3 seconds.
wait_port() {
    local name=$1 port=$2 limit=$3 i
    for ((i = 0; i < limit * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "$name did not listen on port $port within ${limit}s; last log lines:"
    tail -n 20 "$work/$name.log" "$work/$name"/*.log 2>/dev/null | sed 's/^/    /' || true
    return 1
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

want() { [[ " $servers " == *" $1 "* ]]; }

# One self-signed certificate for the reference servers (clients do not verify it).
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 2 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 644 "$work/key.pem"

start_prosody() {
    local dir=$work/prosody
    mkdir -p "$dir/data"
    # Each scenario registers fresh accounts by XEP-0077; loopback is on Prosody's registration
    # allowlist by default, so no throttle applies.
    cat >"$dir/prosody.cfg.lua" <<EOF
run_as_root = true
pidfile = "$dir/prosody.pid"
data_path = "$dir/data"
log = { warn = "$dir/prosody.log" }
interfaces = { "127.0.0.1" }
c2s_ports = { $prosody_port }
c2s_direct_tls_ports = { $((prosody_port + 1)) }
modules_disabled = { "s2s" }
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "register"; "ping"; "version"; "uptime";
  "lastactivity"; "vcard"; "offline"; "server_contact_info"; "posix";
}
c2s_require_encryption = true
allow_registration = true
authentication = "internal_hashed"
certificates = "$work"
ssl = { key = "$work/key.pem", certificate = "$work/cert.pem" }
contact_info = { admin = { "xmpp:admin@localhost", "mailto:admin@localhost" } }
VirtualHost "localhost"
Component "conference.localhost" "muc"
  modules_enabled = { "muc_mam" }
EOF
    start_group prosody prosody -F --config "$dir/prosody.cfg.lua"
    wait_port prosody "$prosody_port" 20
}

start_ejabberd() {
    local dir=$work/ejabberd
    mkdir -p "$dir/spool" "$dir/logs"
    cat "$work/cert.pem" "$work/key.pem" >"$dir/server.pem"
    cp /etc/ejabberd/inetrc "$dir/inetrc" 2>/dev/null || true
    # ERL_DIST_PORT makes the node listen on a fixed port without epmd, so nothing is left
    # running after the node stops; the node name keeps clear of a system ejabberd.
    cat >"$dir/ejabberdctl.cfg" <<EOF
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
ERLANG_NODE=conformance$ejabberd_port@localhost
ERL_DIST_PORT=$((ejabberd_port + 77))
EJABBERD_PID_PATH=$dir/ejabberd.pid
EOF
    cat >"$dir/ejabberd.yml" <<EOF
loglevel: warning
log_rotate_count: 0
hosts:
  - localhost
certfiles:
  - "$dir/server.pem"
listen:
  -
    port: $ejabberd_port
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    starttls_required: true
  -
    port: $((ejabberd_port + 1))
    ip: "127.0.0.1"
    module: ejabberd_c2s
    tls: true
auth_method: internal
auth_password_format: scram
# Every scenario registers accounts from 127.0.0.1: no per-IP registration delay.
registration_timeout: infinity
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  register:
    allow: all
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 1000
modules:
  mod_disco:
    server_info:
      -
        modules: all
        name: "admin-addresses"
        urls: ["xmpp:admin@localhost", "mailto:admin@localhost"]
  mod_last: {}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_ping: {}
  mod_register:
    access: register
    ip_access: all
  mod_roster:
    versioning: true
  mod_vcard:
    search: false
  mod_version: {}
  mod_mam: {}
  mod_muc:
    host: "conference.localhost"
    access_create: all
    access_persistent: all
    default_room_options:
      mam: true
EOF
    chown -R ejabberd:ejabberd "$dir"
    # ejabberdctl would `su` to the ejabberd user when started as root, and su -c starts a new
    # session that escapes our process group; dropping privileges with setpriv keeps it inside.
    local as_ejabberd=()
    if [ "$(id -u)" = 0 ]; then
        as_ejabberd=(setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$dir")
    fi
    start_group ejabberd "${as_ejabberd[@]}" ejabberdctl \
        --config-dir "$dir" --ctl-config "$dir/ejabberdctl.cfg" --config "$dir/ejabberd.yml" \
        --spool "$dir/spool" --logs "$dir/logs" foreground
    wait_port ejabberd "$ejabberd_port" 40
}

start_amphi() {
    local dir=$work/amphi
    mkdir -p "$dir/data"
    # Registration and failure throttles are raised: the suite signs up ~130 accounts from
    # 127.0.0.1 in a few seconds.
    cat >"$dir/config.toml" <<EOF
[server]
domain = "localhost"
data_dir = "$dir/data"
log_level = "warn"

[c2s]
starttls_listen = ["127.0.0.1:$amphi_port"]
direct_tls_listen = ["127.0.0.1:$((amphi_port + 1))"]

[auth]
registration = true
max_registrations_per_ip = 1000000
max_failures_per_ip = 1000000

[http]
listen = ["127.0.0.1:$((amphi_port + 58))"]
tls_listen = ["127.0.0.1:$((amphi_port + 59))"]

[contact]
admin = ["xmpp:admin@localhost", "mailto:admin@localhost"]
EOF
    start_group amphi "$AMPHI_BIN" --config "$dir/config.toml" serve
    wait_port amphi "$amphi_port" 30
}

if [ -z "${CONFORMANCE_BIN:-}" ]; then
    log "building the runner"
    (cd "$root" && cargo build -q -p conformance)
    CONFORMANCE_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/conformance
fi
"$CONFORMANCE_BIN" check "${scenarios[@]}" >/dev/null

run_list=()
for s in prosody ejabberd amphi; do
    want "$s" || continue
    if [ "$s" = amphi ] && [ -z "${AMPHI_BIN:-}" ]; then
        log "AMPHI_BIN not set: amphi is not tested"
        continue
    fi
    run_list+=("$s")
done

declare -A port=([prosody]=$prosody_port [ejabberd]=$ejabberd_port [amphi]=$amphi_port)
declare -A up=()
for s in "${run_list[@]}"; do
    if ! port_free "${port[$s]}"; then
        log "port ${port[$s]} for $s is already in use: set ${s^^}_PORT"
        continue
    fi
    if "start_$s"; then up[$s]=1; else log "$s failed to start"; fi
done

# Runs of the three servers overlap: most of a run is waiting for stanzas and quiet periods.
run_args=(--host 127.0.0.1 --domain localhost --create-accounts ibr --jobs "$jobs")
port_offset=0
if [ "${DIRECT_TLS:-0}" = 1 ]; then
    run_args+=(--direct-tls)
    port_offset=1
fi
if [ -n "${MECHANISM:-}" ]; then run_args+=(--mechanism "$MECHANISM"); fi
declare -A pids=()
for s in "${run_list[@]}"; do
    [ -n "${up[$s]:-}" ] || continue
    "$CONFORMANCE_BIN" run "${run_args[@]}" --port $((port[$s] + port_offset)) \
        --results "$work/$s.results" "${scenarios[@]}" >"$work/$s.run" 2>&1 &
    pids[$s]=$!
done
for s in "${!pids[@]}"; do
    wait "${pids[$s]}" || true
    log "$s: $(tail -n 1 "$work/$s.run")"
done

# Failure details of every server, for the log.
for s in "${run_list[@]}"; do
    [ -f "$work/$s.run" ] || continue
    if grep -q '^FAIL' "$work/$s.run"; then
        echo "---- $s failures ----"
        awk '/^FAIL/{p=1} /^PASS/{p=0} /^[0-9]+ passed, [0-9]+ failed$/{p=0} p' "$work/$s.run"
    fi
done

# A server that did not start has no results file: its cells are MISSING, which fails.
columns=()
for s in "${run_list[@]}"; do columns+=("$s=$work/$s.results"); done
status=0
if [ ${#columns[@]} -eq 0 ]; then
    log "no server was selected"
    status=1
else
    "$CONFORMANCE_BIN" table --expectations "$here/expectations.toml" \
        --scenarios "${scenarios[@]}" -- "${columns[@]}" || status=1
fi
log "took $(($(date +%s) - started))s"
exit $status
