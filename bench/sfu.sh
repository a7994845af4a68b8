#!/usr/bin/env bash
# The SFU benchmark: the same synthetic call through amphi's focus and SFU (Jingle) and
# through a Janus VideoRoom (REST API), one after the other on loopback, then one table with
# amphi's ratio to Janus.
#
#   bench/sfu.sh                 full size, release builds
#   bench/sfu.sh --smoke         tiny call, debug builds, under a minute: the CI check
#
# Options:
#   --servers amphi,janus   which SFUs, in table order (the first is compared)
#   --publishers N --subscribers N --video-pps N --audio-pps N --duration SECS
#                           the load (default 4 publishers x (50 audio + 150 video pkt/s),
#                           20 subscribers receiving all, 10 s measured after 3 s warm-up)
#   --work-dir DIR          configs, logs, results (default /tmp/amphi-sfu-bench[-smoke])
#   --profile P             cargo profile of amphi and amphi-bench (default release; smoke debug)
#   --amphi BIN             use this amphi binary instead of building one
#   --ports X,J             amphi's client port (and the next one), Janus's HTTP port
#                           (default 5322,18088)
#
# Every peer is a str0m client in amphi-bench (ICE, DTLS-SRTP, RTCP, TWCC) on 127.0.0.1.
# Janus runs from the Debian package with a generated config: HTTP transport and VideoRoom
# only, no TURN/STUN, no session timeout, ICE on 127.0.0.1 only (bench/janus-loopback.c,
# preloaded, because Janus skips loopback interfaces when gathering candidates).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0 SERVERS=amphi,janus WORK="" PROFILE="" AMPHI="" PORTS=5322,18088
declare -A LOAD=()
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) SMOKE=1; shift ;;
    --servers) SERVERS=$2; shift 2 ;;
    --work-dir) WORK=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --amphi) AMPHI=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --ports) PORTS=$2; shift 2 ;;
    --publishers|--subscribers|--video-pps|--audio-pps|--duration|--warmup-secs|--video-bytes|--audio-bytes)
      LOAD[$1]=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$SMOKE" = 1 ]; then
  : "${WORK:=/tmp/amphi-sfu-bench-smoke}" "${PROFILE:=debug}"
  declare -A SIZE=([--publishers]=2 [--subscribers]=3 [--video-pps]=100 [--warmup-secs]=1 [--duration]=2)
  MAX_SECS=50
else
  : "${WORK:=/tmp/amphi-sfu-bench}" "${PROFILE:=release}"
  declare -A SIZE=([--publishers]=4 [--subscribers]=20 [--video-pps]=150 [--warmup-secs]=3 [--duration]=10)
  MAX_SECS=300
fi
for k in "${!LOAD[@]}"; do SIZE[$k]=${LOAD[$k]}; done
ARGS=()
for k in "${!SIZE[@]}"; do ARGS+=("$k" "${SIZE[$k]}"); done
IFS=, read -r AMPHI_PORT JANUS_PORT <<<"$PORTS"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
log() { printf '== %s\n' "$*" >&2; }
want() { case ",$SERVERS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# --- build and install -------------------------------------------------------------------
cargo_flags=()
[ "$PROFILE" = debug ] || cargo_flags+=(--profile "$PROFILE")
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
log "building amphi-bench ($PROFILE)"
(cd "$ROOT" && cargo build -q -p amphi-bench "${cargo_flags[@]}")
BENCH=$TARGET_DIR/$PROFILE/amphi-bench
if want amphi && [ -z "$AMPHI" ]; then
  log "building amphi ($PROFILE)"
  (cd "$ROOT" && cargo build -q -p amphi "${cargo_flags[@]}")
  AMPHI=$TARGET_DIR/$PROFILE/amphi
fi
if want janus && ! command -v janus >/dev/null; then
  log "installing janus from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends janus >/dev/null
fi
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
if want janus; then
  # Keeps Janus's ICE on 127.0.0.1 (it never gathers loopback addresses by itself).
  mkdir -p "$WORK"
  gcc -shared -fPIC -O2 -Wall -o "$WORK/janus-loopback.so" "$ROOT/bench/janus-loopback.c" -ldl
fi

CERT=$WORK/cert
if [ ! -f "$CERT/key.pem" ]; then
  mkdir -p "$CERT"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost" \
    -keyout "$CERT/key.pem" -out "$CERT/cert.pem" 2>/dev/null
fi

# --- servers -----------------------------------------------------------------------------
SERVER_PID="" SERVER_NAME=""
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  log "stopping $SERVER_NAME"
  kill "$SERVER_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM HUP PIPE

start_amphi() {
  local d=$WORK/amphi
  if [ ! -x "$AMPHI" ]; then log "no amphi binary at $AMPHI"; return 1; fi
  port_open "$AMPHI_PORT" && { log "port $AMPHI_PORT is in use: pass --ports"; return 1; }
  rm -rf "$d" && mkdir -p "$d/data"
  cat >"$d/amphi.toml" <<EOF
[server]
domain = "localhost"
data_dir = "$d/data"
log_level = "warn"

[c2s]
starttls_listen = ["127.0.0.1:$AMPHI_PORT"]
direct_tls_listen = ["127.0.0.1:$((AMPHI_PORT + 1))"]

[tls]
cert = "$CERT/cert.pem"
key = "$CERT/key.pem"

[auth]
registration = true
scram_iterations = 4096

[media]
enabled = true
listen = "127.0.0.1:0"
last_n = 0
EOF
  "$AMPHI" --config "$d/amphi.toml" serve >"$d/amphi.log" 2>&1 &
  SERVER_PID=$! PORT=$AMPHI_PORT
  wait_port "$PORT" 30
}

start_janus() {
  local d=$WORK/janus lib=/usr/lib/x86_64-linux-gnu/janus
  port_open "$JANUS_PORT" && { log "port $JANUS_PORT is in use: pass --ports"; return 1; }
  rm -rf "$d" && mkdir -p "$d"
  # Every plugin but the VideoRoom and every transport but HTTP is disabled.
  local plugins="" transports="" f
  for f in "$lib"/plugins/lib*.so; do
    [[ $f == *videoroom* ]] || plugins+=${plugins:+,}$(basename "$f")
  done
  for f in "$lib"/transports/lib*.so; do
    [[ $f == *http* ]] || transports+=${transports:+,}$(basename "$f")
  done
  cat >"$d/janus.jcfg" <<EOF
# Generated by bench/sfu.sh: VideoRoom over the HTTP transport, loopback only.
general: {
	configs_folder = "$d"
	plugins_folder = "$lib/plugins"
	transports_folder = "$lib/transports"
	events_folder = "$lib/events"
	loggers_folder = "$lib/loggers"
	debug_level = 3
	interface = "127.0.0.1"
	session_timeout = 0
	hide_dependencies = true
}
media: {
	ipv6 = false
	rtp_port_range = "30000-39999"
}
nat: {
	nice_debug = false
	ice_enforce_list = "lo"
	ignore_mdns = true
}
plugins: {
	disable = "$plugins"
}
transports: {
	disable = "$transports"
}
loggers: {
	disable = "libjanus_jsonlog.so"
}
events: {
	broadcast = false
}
EOF
  cat >"$d/janus.transport.http.jcfg" <<EOF
general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = $JANUS_PORT
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
}
EOF
  printf 'general: {\n}\n' >"$d/janus.plugin.videoroom.jcfg"
  LD_PRELOAD=$WORK/janus-loopback.so janus -F "$d" -C "$d/janus.jcfg" >"$d/janus.log" 2>&1 &
  SERVER_PID=$! PORT=$JANUS_PORT
  wait_port "$PORT" 30
}

# --- run ---------------------------------------------------------------------------------
read -r load1 _ </proc/loadavg
log "load average $load1 before starting"
RESULTS=$WORK/results-$(date +%Y%m%d-%H%M%S).jsonl
failed=0 started=$(date +%s)
for server in ${SERVERS//,/ }; do
  SERVER_NAME=$server
  log "starting $server"
  if ! "start_$server"; then
    log "$server did not start; see $WORK/$server/"
    stop_server
    failed=$((failed + 1))
    continue
  fi
  log "$server is up (pid $SERVER_PID)"
  if ! "$BENCH" --label "$server" --port "$AMPHI_PORT" --server-pid "$SERVER_PID" --json "$RESULTS" \
      --cache "$WORK/$server/accounts.json" --max-secs "$MAX_SECS" \
      sfu --sfu "$server" --janus "127.0.0.1:$JANUS_PORT" "${ARGS[@]}"; then
    log "FAILED: sfu on $server"
    failed=$((failed + 1))
  fi
  stop_server
done

echo
[ -f "$RESULTS" ] && "$BENCH" table --servers "$SERVERS" "$RESULTS" | tee "$WORK/table.md"
echo
echo "results: $RESULTS ($(($(date +%s) - started)) s)"
echo "sfu bench: $failed failed"
[ "$failed" = 0 ]
