#!/usr/bin/env bash
# Runs the same XMPP workloads against amphi, Prosody and ejabberd on loopback and prints one
# table with amphi's ratio to each peer.
#
#   bench/run.sh                 full sizes (about 20 minutes for three servers), release builds
#   bench/run.sh --smoke         tiny sizes (under a minute), debug builds: the CI check
#
# Options:
#   --servers amphi,prosody,ejabberd   which servers, in table order (the first is compared)
#   --workloads login,idle,message,muc,presence
#   --require LIST     servers whose workloads must all pass for exit status 0 (default: all run)
#   --work-dir DIR     configs, data, account caches, results (kept between runs so accounts
#                      are reused; default /tmp/amphi-bench or /tmp/amphi-bench-smoke)
#   --fresh            wipe the work dir first
#   --profile P        cargo profile of amphi and amphi-bench (default: release, smoke: debug)
#   --ports A,P,E      client ports of amphi, Prosody, ejabberd (default 5222,15222,25222; each
#                      server also uses the next port for direct TLS)
#   --baseline FILE    earlier results (JSON lines) to show next to this run's, e.g.
#                      --servers amphi --baseline bench/results/peers.jsonl
#   --archive          archive 1:1 messages (XEP-0313) on all three servers; by default none
#                      of them does (amphi's archive is on in its own default config)
#
# Every server gets the same ECDSA P-256 certificate, STARTTLS required, SCRAM-SHA-1 (the
# strongest mechanism Prosody 0.12's internal_hashed storage supports), 4096 PBKDF2 rounds,
# internal storage, in-band registration, and no rate limits or shapers, all on 127.0.0.1.
# Message archiving is configured the same on all three: off, or on with --archive.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0 SERVERS=amphi,prosody,ejabberd WORKLOADS=login,idle,message,muc,presence
REQUIRE="" WORK="" FRESH=0 PROFILE="" PORTS=5222,15222,25222 BASELINE="" ARCHIVE=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) SMOKE=1; shift ;;
    --servers) SERVERS=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --require) REQUIRE=$2; shift 2 ;;
    --work-dir) WORK=$2; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    --profile) PROFILE=$2; shift 2 ;;
    --ports) PORTS=$2; shift 2 ;;
    --baseline) BASELINE=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --archive) ARCHIVE=1; shift ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  : "${WORK:=/tmp/amphi-bench-smoke}" "${PROFILE:=debug}"
  MAX_SECS=40
else
  : "${WORK:=/tmp/amphi-bench}" "${PROFILE:=release}"
  MAX_SECS=900
fi
: "${REQUIRE:=$SERVERS}"
IFS=, read -r AMPHI_PORT PROSODY_PORT EJABBERD_PORT <<<"$PORTS"
[ "$FRESH" = 1 ] && rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
log() { printf '== %s\n' "$*" >&2; }

# Workload sizes.
declare -A ARGS
if [ "$SMOKE" = 1 ]; then
  ARGS=(
    [login]="--count 40 --concurrency 8"
    [idle]="--sizes 20,60 --settle-secs 0.5"
    [message]="--pairs 4 --window 4 --duration 1 --rate 200 --latency-duration 1"
    [muc]="--join-size 10 --join-repeats 2 --fanout-sizes 10,20 --messages 2"
    [presence]="--hubs 2 --contacts 5 --rounds 4 --duration 1"
  )
else
  ARGS=(
    [login]="--count 2000 --concurrency 64"
    [idle]="--sizes 1000,5000,10000 --settle-secs 5"
    [message]="--pairs 50 --window 32 --duration 10 --rate 2000 --latency-duration 10"
    [muc]="--join-size 400 --join-repeats 5 --fanout-sizes 100,1000 --messages 5"
    [presence]="--hubs 10 --contacts 100 --rounds 20 --duration 10"
  )
fi
for w in ${WORKLOADS//,/ }; do
  [ -n "${ARGS[$w]+set}" ] || { echo "unknown workload $w (known: ${!ARGS[*]})" >&2; exit 2; }
done

# --- build and install -------------------------------------------------------------------
cargo_flags=(-p amphi-bench)
[ "$PROFILE" = debug ] || cargo_flags+=(--profile "$PROFILE")
log "building amphi-bench ($PROFILE)"
(cd "$ROOT" && cargo build -q "${cargo_flags[@]}")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH=$TARGET_DIR/$PROFILE/amphi-bench
AMPHI=$TARGET_DIR/$PROFILE/amphi

want() { case ",$SERVERS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
missing=()
want prosody && ! command -v prosody >/dev/null && missing+=(prosody)
want ejabberd && ! command -v ejabberdctl >/dev/null && missing+=(ejabberd)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

# Both the servers and the generator hold one descriptor per session.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

CERT=$WORK/cert
if [ ! -f "$CERT/key.pem" ]; then
  mkdir -p "$CERT"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,DNS:conference.localhost" \
    -keyout "$CERT/key.pem" -out "$CERT/cert.pem" 2>/dev/null
  chmod 644 "$CERT/key.pem"
fi

# --- servers -----------------------------------------------------------------------------
SERVER_PID="" WRAPPER_PID="" SERVER_NAME=""

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Refuses to start on a port someone else listens on: the run would measure the wrong server.
check_free() {
  local p
  for p in "$@"; do
    if port_open "$p"; then
      log "port $p is already in use (another server?): pass other ports with --ports"
      return 1
    fi
  done
}

wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    [ -n "$WRAPPER_PID" ] && ! kill -0 "$WRAPPER_PID" 2>/dev/null && return 1
    sleep 0.1
  done
  return 1
}

stop_server() {
  [ -n "$WRAPPER_PID" ] || return 0
  log "stopping $SERVER_NAME"
  kill "$SERVER_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  kill "$WRAPPER_PID" 2>/dev/null || true
  wait "$WRAPPER_PID" 2>/dev/null || true
  SERVER_PID="" WRAPPER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM HUP PIPE

start_amphi() {
  if [ ! -x "$AMPHI" ] || ! "$AMPHI" --help >/dev/null 2>&1; then
    log "skipping amphi: no working $AMPHI (cargo build -p amphi${PROFILE:+ --profile $PROFILE})"
    return 1
  fi
  local d=$WORK/amphi
  check_free "$AMPHI_PORT" $((AMPHI_PORT + 1)) || return 1
  mkdir -p "$d/data"
  cat >"$d/amphi.toml" <<EOF
[server]
domain = "localhost"
data_dir = "$d/data"
log_level = "warn"

[c2s]
starttls_listen = ["127.0.0.1:$AMPHI_PORT"]
direct_tls_listen = ["127.0.0.1:$((AMPHI_PORT + 1))"]
require_encryption = true
max_connections = 20000

[tls]
cert = "$CERT/cert.pem"
key = "$CERT/key.pem"

[auth]
registration = true
scram_iterations = 4096

[archive]
enabled = $([ "$ARCHIVE" = 1 ] && echo true || echo false)
EOF
  "$AMPHI" --config "$d/amphi.toml" serve >"$d/amphi.log" 2>&1 &
  WRAPPER_PID=$! SERVER_PID=$! PORT=$AMPHI_PORT
  wait_port "$PORT" 30
}

start_prosody() {
  local d=$WORK/prosody
  check_free "$PROSODY_PORT" $((PROSODY_PORT + 1)) || return 1
  mkdir -p "$d/data"
  cat >"$d/prosody.cfg.lua" <<EOF
-- Generated by bench/run.sh: comparable to amphi's defaults, no rate limits.
run_as_root = true
data_path = "$d/data"
log = { warn = "$d/prosody.log" }
interfaces = { "127.0.0.1" }
c2s_ports = { $PROSODY_PORT }
c2s_direct_tls_ports = { $((PROSODY_PORT + 1)) }
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "register"$([ "$ARCHIVE" = 1 ] && echo ', "mam"') }
default_archive_policy = true
modules_disabled = { "s2s" }
c2s_require_encryption = true
allow_registration = true
authentication = "internal_hashed"
default_iteration_count = 4096
storage = "internal"
ssl = { certificate = "$CERT/cert.pem", key = "$CERT/key.pem" }
VirtualHost "localhost"
Component "conference.localhost" "muc"
  restrict_room_creation = false
EOF
  prosody -F --config "$d/prosody.cfg.lua" >"$d/stdout.log" 2>&1 &
  WRAPPER_PID=$! SERVER_PID=$! PORT=$PROSODY_PORT
  wait_port "$PORT" 30
}

start_ejabberd() {
  local d=$WORK/ejabberd
  check_free "$EJABBERD_PORT" $((EJABBERD_PORT + 777)) || return 1
  mkdir -p "$d/conf" "$d/spool" "$d/logs"
  cp /etc/ejabberd/inetrc "$d/conf/" 2>/dev/null || true
  cat >"$d/conf/ejabberdctl.cfg" <<EOF
ERLANG_NODE=amphibench@localhost
ERL_DIST_PORT=$((EJABBERD_PORT + 777))
EJABBERD_PID_PATH=$d/ejabberd.pid
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EOF
  cat >"$d/conf/ejabberd.yml" <<EOF
# Generated by bench/run.sh: comparable to amphi's defaults, no shapers.
hosts: [localhost]
loglevel: warning
log_rotate_count: 0
certfiles: ["$CERT/cert.pem", "$CERT/key.pem"]
auth_method: [internal]
auth_password_format: scram
auth_scram_hash: sha
registration_timeout: infinity
shaper_rules:
  max_user_sessions: 10
  c2s_shaper: none
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
listen:
  - port: $EJABBERD_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    backlog: 128
    shaper: none
    access: c2s
modules:$([ "$ARCHIVE" = 1 ] && printf '\n  mod_mam:\n    default: always\n    db_type: mnesia')
  mod_disco: {}
  mod_offline: {}
  mod_ping: {}
  mod_roster: {}
  mod_register:
    ip_access: all
    access: register
  mod_muc:
    host: "conference.@HOST@"
    access_create: local
    max_users: 5000
    max_users_presence: 5000
    history_size: 20
    default_room_options:
      max_users: 5000
EOF
  chown -R ejabberd: "$d"
  rm -f "$d/ejabberd.pid"
  # As root, ejabberdctl would switch users with su, whose PAM session resets the descriptor
  # limit to 1024; setpriv switches without PAM, so ejabberd keeps this script's limit.
  HOME=$d setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
    ejabberdctl --config-dir "$d/conf" --spool "$d/spool" --logs "$d/logs" foreground >"$d/stdout.log" 2>&1 &
  WRAPPER_PID=$! PORT=$EJABBERD_PORT
  wait_port "$PORT" 90 || return 1
  SERVER_PID=$(cat "$d/ejabberd.pid" 2>/dev/null || true)
  [ -n "$SERVER_PID" ] || { log "ejabberd wrote no pid file"; return 1; }
}

# --- run ---------------------------------------------------------------------------------
read -r load1 _ </proc/loadavg
log "load average $load1 before starting$(awk -v l="$load1" 'BEGIN { if (l > 0.5) print " (busy machine: compare the \"other\" CPU in the table)" }')"
RESULTS=$WORK/results-$(date +%Y%m%d-%H%M%S).jsonl
passed=0 failed=0 skipped=0 started=$(date +%s)
for server in ${SERVERS//,/ }; do
  SERVER_NAME=$server
  log "starting $server"
  if ! "start_$server"; then
    log "$server did not start; see $WORK/$server/"
    stop_server
    n=$(tr ',' '\n' <<<"$WORKLOADS" | grep -c .)
    if [[ ",$REQUIRE," == *",$server,"* ]]; then failed=$((failed + n)); else skipped=$((skipped + n)); fi
    continue
  fi
  log "$server is up (pid $SERVER_PID, port $PORT)"
  for w in ${WORKLOADS//,/ }; do
    # shellcheck disable=SC2086 # the size arguments are meant to split
    if "$BENCH" --label "$server" --port "$PORT" --server-pid "$SERVER_PID" --mech SCRAM-SHA-1 \
        --cache "$WORK/$server/accounts.json" --json "$RESULTS" --max-secs "$MAX_SECS" \
        "$w" ${ARGS[$w]}; then
      passed=$((passed + 1))
    elif [[ ",$REQUIRE," == *",$server,"* ]]; then
      log "FAILED: $w on $server"
      failed=$((failed + 1))
    else
      log "failed (not required): $w on $server"
      skipped=$((skipped + 1))
    fi
  done
  stop_server
done

echo
inputs=() columns=$SERVERS
if [ -n "$BASELINE" ]; then
  inputs+=("$BASELINE")
  columns=amphi,prosody,ejabberd
fi
[ -f "$RESULTS" ] && inputs+=("$RESULTS")
[ ${#inputs[@]} -gt 0 ] && "$BENCH" table --servers "$columns" "${inputs[@]}" | tee "$WORK/table.md"
echo
echo "results: $RESULTS ($(($(date +%s) - started)) s)"
echo "bench: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
