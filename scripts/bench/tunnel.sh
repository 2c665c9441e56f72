#!/usr/bin/env bash
# Loopback tunnel benchmark (issue 2, Performance; issue 11 item 4): bulk throughput, 1-byte
# round-trip latency (and the CPU time the path's own processes spend per round trip) and the cost
# of a new connection, for direct TCP, tunnelmesh in both stream directions, stunnel4 (TLS 1.3) and
# ssh -L (the autossh data path), in one run, through the same measuring client and server
# (tcpbench.py). Three more rungs split tunnelmesh's cost by layer: a pair of bare SwiftNIO relays
# (scripts/bench/nio-relay: the four hops with no TLS and no framing, the floor under any NIO data
# path), the same pair with meshd's TLS handler between them (TLS, but no HTTP/2 and no streams),
# and that with HTTP/2 DATA frames written and parsed by hand on the TLS link (the least a framed
# tunnel can cost: no HTTP/2 state, no stream table, no flow control).
#
# Usage: scripts/bench/tunnel.sh [--write] [--skip-build] [--paths LIST] [--bytes N] [--repeat N]
#                                [--count N] [--warmup N] [--connects N] [--keep]
#   --write       also replace the tunnel section of BENCHMARKS.md (of $BENCHMARKS_MD if set)
#   --skip-build  use the meshd/meshctl already in ${BIN:-.build/release} and the nio-relay already
#                 in ${RELAY_BIN:-.build-nio-relay/release} (built otherwise, release mode)
#   --paths LIST  comma-separated, from (and by default) direct,nio-relay,nio-relay-tls,nio-relay-frame,
#                 tunnelmesh,tunnelmesh-reverse,stunnel,ssh.
#                 Both tunnelmesh paths use the same two meshd, n1 dialing n2: tunnelmesh is a forward
#                 on n1 to a service on n2 (the dialer opens the streams), tunnelmesh-reverse a forward
#                 on n2 to a service on n1 (reverse streams: n2 asks n1 for each over the control stream).
#                 tunnelmesh-baseline (on by default when BASELINE_BIN is set): the tunnelmesh path
#                 through a second meshd pair built from ${BASELINE_BIN}, for a before/after in one run
#   --bytes N     bytes per bulk run (default 1 GiB)
#   --repeat N    runs of each measurement per path, taken in turns across paths (default 5); the
#                 table shows the median of the bulk runs and percentiles over the pooled samples
#   --count N     1-byte round trips per path, split over the runs, each run on a new connection
#                 after --warmup N more (defaults 20000 and 1000)
#   --connects N  new connections per path, split over the runs, opened one after another (each:
#                 connect, 1 byte, its echo, close), each run after 10 untimed ones (default 2000)
#   --keep        keep the temporary directory (logs, configs) for inspection
#
# Everything listens on 127.0.0.x only; every process started here is stopped on exit; the system
# sshd and stunnel services are never touched (we run our own with throwaway keys and configs).

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TCPBENCH=("python3" "$HERE/tcpbench.py")
source "$HERE/processes.sh"
source "$HERE/packages.sh"
source "$HERE/mesh-setup.sh"
source "$HERE/stunnel-pair.sh"
source "$HERE/ssh-forward.sh"
source "$HERE/workdir.sh"
BG_TIMEOUT=600   # start_bg's bound on each tunnel end and the measuring server

WRITE=0 SKIP_BUILD=0 KEEP=0
ALL_PATHS="direct,nio-relay,nio-relay-tls,nio-relay-frame,tunnelmesh,tunnelmesh-baseline,tunnelmesh-reverse,stunnel,ssh"
PATHS="${ALL_PATHS/,tunnelmesh-baseline/}"
[ -n "${BASELINE_BIN:-}" ] && PATHS="$ALL_PATHS"
BYTES=$((1 << 30)) REPEAT=5 COUNT=20000 WARMUP=1000 CONNECTS=2000
CONNECT_WARMUP=10   # untimed new connections before each connect run
while [ $# -gt 0 ]; do
    case "$1" in
        --paths|--bytes|--repeat|--count|--warmup|--connects)
            [ $# -ge 2 ] || { echo "tunnel.sh: $1 needs a value (see --help)" >&2; exit 2; } ;;
    esac
    case "$1" in
        --write) WRITE=1 ;;
        --skip-build) SKIP_BUILD=1 ;;
        --keep) KEEP=1 ;;
        --paths) PATHS="$2"; shift ;;
        --bytes) BYTES="$2"; shift ;;
        --repeat) REPEAT="$2"; shift ;;
        --count) COUNT="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --connects) CONNECTS="$2"; shift ;;
        -h|--help) sed -n '2,/^$/p' "$0"; exit 0 ;;
        *) echo "tunnel.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for n in "$BYTES" "$REPEAT" "$COUNT" "$WARMUP" "$CONNECTS"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "tunnel.sh: --bytes/--repeat/--count/--warmup/--connects take whole numbers, got '$n'" >&2; exit 2; }
done
if [ "$REPEAT" -lt 1 ] || [ "$COUNT" -lt "$REPEAT" ] || [ "$CONNECTS" -lt "$REPEAT" ] || [ "$BYTES" -lt 1 ]; then
    echo "tunnel.sh: need --repeat >= 1, --count and --connects >= --repeat, and --bytes >= 1" >&2; exit 2
fi
if [ $((CONNECTS / REPEAT + CONNECT_WARMUP)) -gt 100000 ]; then
    echo "tunnel.sh: at most 100,000 connections per connect run (--connects / --repeat)" >&2; exit 2
fi
IFS=, read -ra _wanted <<<"$PATHS"
[ ${#_wanted[@]} -gt 0 ] || { echo "tunnel.sh: --paths names no path" >&2; exit 2; }
for n in "${_wanted[@]}"; do
    [[ ",$ALL_PATHS," == *",$n,"* ]] || { echo "tunnel.sh: unknown path '$n' in --paths (known: $ALL_PATHS)" >&2; exit 2; }
done

BIN=${BIN:-.build/release}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
RELAY_BIN=${RELAY_BIN:-.build-nio-relay/release}
case "$RELAY_BIN" in /*) ;; *) RELAY_BIN="$ROOT/$RELAY_BIN" ;; esac

make_workdir tunnel

# wait_echo HOST:PORT SECONDS PID... : wait until a 1-byte echo crosses the path (a listening port
# alone does not prove the tunnel behind it is up); give up early if one of the PIDs has exited.
wait_echo() {
    local addr="$1" deadline=$((SECONDS + $2)) pid out; shift 2
    while [ $SECONDS -lt $deadline ]; do
        out=$(timeout 5 "${TCPBENCH[@]}" probe --connect "$addr" --timeout 1 2>&1) && return 0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null || { ECHO_ERROR="a process of the path exited"; return 1; }; done
    done
    ECHO_ERROR=$(tail -1 <<<"$out")
    return 1
}

# Result files, one directory per path, read by report.py.
ORDER=0
path_dir() { local d; d=$(ls -d "$RESULTS"/*-"$1" 2>/dev/null | head -1); echo "$d"; }
new_path() { ORDER=$((ORDER + 1)); mkdir -p "$RESULTS/$ORDER-$1"; }
unavailable() { log "$1: not available: $2"; printf '%s\n' "$2" >"$(path_dir "$1")/unavailable"; }
note() { printf '%s\n' "$2" >>"$(path_dir "$1")/notes"; }

# Paths that are set up and ready, in table order, with the address the client connects to.
READY=()
declare -A ADDR PATH_PIDS
# ready NAME HOST:PORT [PID...] : the path is measured through HOST:PORT; PIDs are its own processes,
# whose CPU time (theirs and their descendants') per round trip the latency runs report.
ready() { READY+=("$1"); ADDR[$1]="$2"; PATH_PIDS[$1]="${*:3}"; log "$1: ready at $2"; }
is_ok() { [ ! -e "$(path_dir "$1")/unavailable" ]; }

# One bulk run through one path; a failure marks the path unavailable.
bulk() {
    local name="$1" round="$2" out
    if ! out=$(timeout 120 "${TCPBENCH[@]}" throughput --connect "${ADDR[$name]}" --bytes "$BYTES" 2>&1); then
        unavailable "$name" "bulk run $round failed: $(tail -1 <<<"$out")"; return
    fi
    printf '%s\n' "$out" >>"$(path_dir "$name")/throughput.jsonl"
    log "$name: $out"
}

# One latency run of COUNT/REPEAT round trips (on a fresh connection, after its own warm-up); the
# report pools the raw samples of all runs of a path for its percentiles.
latency() {
    local name="$1" round="$2" out dir pid cpu=()
    dir=$(path_dir "$name")
    for pid in ${PATH_PIDS[$name]}; do cpu+=(--cpu-of "$pid"); done
    if ! out=$(timeout 120 "${TCPBENCH[@]}" latency --connect "${ADDR[$name]}" --count "$((COUNT / REPEAT))" \
            --warmup "$WARMUP" --raw "$dir/latency.raw" "${cpu[@]}" 2>&1); then
        unavailable "$name" "latency run $round failed: $(tail -1 <<<"$out")"; return
    fi
    printf '%s\n' "$out" >>"$dir/latency.jsonl"
    log "$name: $out"
}

# One run of CONNECTS/REPEAT new connections, one after another (after CONNECT_WARMUP untimed
# ones); the report pools the raw connect-to-echo times of all runs of a path for its percentiles.
connects() {
    local name="$1" round="$2" out dir pid cpu=()
    dir=$(path_dir "$name")
    for pid in ${PATH_PIDS[$name]}; do cpu+=(--cpu-of "$pid"); done
    if ! out=$(timeout 120 "${TCPBENCH[@]}" connect --connect "${ADDR[$name]}" --count "$((CONNECTS / REPEAT))" \
            --warmup "$CONNECT_WARMUP" --timeout 110 --raw "$dir/connect.raw" "${cpu[@]}" 2>&1); then
        unavailable "$name" "connect run $round failed: $(tail -1 <<<"$out")"; return
    fi
    printf '%s\n' "$out" >>"$dir/connect.jsonl"
    log "$name: $out"
}

# All paths stay up together and take turns, round by round, so that a change in background load
# during the run hits every path alike instead of whichever happened to run at that moment.
measure_all() {
    local round name
    for round in $(seq "$REPEAT"); do
        for name in "${READY[@]}"; do is_ok "$name" && bulk "$name" "$round"; done
    done
    for round in $(seq "$REPEAT"); do
        for name in "${READY[@]}"; do is_ok "$name" && latency "$name" "$round"; done
    done
    for round in $(seq "$REPEAT"); do
        for name in "${READY[@]}"; do is_ok "$name" && connects "$name" "$round"; done
    done
}

want() { [[ ",$PATHS," == *",$1,"* ]]; }

# --- system packages -------------------------------------------------------------------------------

ensure_packages() {
    local wanted=(openssl)
    want stunnel && wanted+=(stunnel4)
    want ssh && wanted+=(openssh-server openssh-client)
    install_missing_packages "${wanted[@]}"
}

# --- the measuring server, shared by every path -------------------------------------------------------

start_sink() {
    SINK_PORT=$(free_port 127.0.0.1)
    start_bg "$T/sink.log" "${TCPBENCH[@]}" serve --listen "127.0.0.1:$SINK_PORT"
    SINK_PID=$BG_PID
    wait_listen 127.0.0.1 "$SINK_PORT" 5 "$SINK_PID" || { log "tcpbench server did not start: $(cat "$T/sink.log")"; exit 1; }
}

# --- paths ------------------------------------------------------------------------------------------

path_direct() {
    new_path direct
    ready direct "127.0.0.1:$SINK_PORT"
}

build_mesh() {
    [ $SKIP_BUILD = 1 ] && return 0
    local product
    for product in meshd meshctl; do
        log "swift build -c release --product $product"
        # In the background so that a signal interrupts `wait` and cleanup stops the build at once.
        build_release "$ROOT" .build "$T/build-$product.log" "$product"
        if ! wait "$BUILD_PID"; then
            MESH_BUILD_ERROR="swift build --product $product failed: $(build_failure "$T/build-$product.log")"
            return 1
        fi
    done
}

# start_mesh DIR BINDIR: both tunnelmesh paths share one pair of meshd (from BINDIR, working in
# $T/DIR); n1 dials n2 (its name sorts lower). n2 serves "bench" to n1, and a forward on n1 opens
# it: the dialer opens those streams itself. n1 serves "bench-r" to n2, and a forward on n2 opens
# it: reverse streams, each asked of n1 by n2 over the tunnel's control stream. Both services are
# the same measuring server. Leaves MESH_PIDS (n1, n2), MESH_FWD and MESH_FWD_REVERSE, or MESH_ERROR.
MESH_PIDS=() MESH_ERROR=""
start_mesh() {
    if [ -n "${MESH_BUILD_ERROR:-}" ]; then MESH_ERROR="$MESH_BUILD_ERROR"; return 1; fi
    local meshd="$2/meshd" meshctl="$2/meshctl" m="$T/$1" n
    for n in "$meshd" "$meshctl"; do
        [ -x "$n" ] || { MESH_ERROR="$n is not built"; return 1; }
    done
    mkdir -p "$m/run"
    make_mesh_pki "$meshctl" "$m/pki" bench n1 n2 || { MESH_ERROR="$MESH_PKI_ERROR"; return 1; }
    local p1 p2
    p1=$(free_port 127.0.1.1); p2=$(free_port 127.0.1.2)
    MESH_FWD=$(free_port 127.0.0.1)
    for _ in $(seq 10); do   # two picks in a row may coincide
        MESH_FWD_REVERSE=$(free_port 127.0.0.1)
        [ "$MESH_FWD_REVERSE" != "$MESH_FWD" ] && [ "$MESH_FWD_REVERSE" != "$SINK_PORT" ] && break
    done
    cat >"$m/mesh.json" <<EOF
{ "mesh": "bench",
  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
  "nodes": { "n1": { "address": "127.0.1.1:$p1", "control": "run/n1.sock" },
             "n2": { "address": "127.0.1.2:$p2", "control": "run/n2.sock" } },
  "services": { "bench": { "on": { "n2": "127.0.0.1:$SINK_PORT" }, "allow": ["n1"] },
                "bench-r": { "on": { "n1": "127.0.0.1:$SINK_PORT" }, "allow": ["n2"] } },
  "forwards": [ { "on": "n1", "listen": "127.0.0.1:$MESH_FWD", "to": "bench@n2" },
                { "on": "n2", "listen": "127.0.0.1:$MESH_FWD_REVERSE", "to": "bench-r@n1" } ] }
EOF
    local pid1 pid2
    start_bg "$m/n2.log" "$meshd" --config "$m/mesh.json" --node n2; pid2=$BG_PID
    start_bg "$m/n1.log" "$meshd" --config "$m/mesh.json" --node n1; pid1=$BG_PID
    MESH_PIDS=("$pid1" "$pid2")
    if [ $SKIP_BUILD = 1 ] || [ "$2" != "$BIN" ]; then
        MESH_VERSION="meshd prebuilt in $2"
    else
        MESH_VERSION="meshd $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    fi
}

# mesh_path NAME FORWARD-PORT DESCRIPTION [DIR] : the path through one of the two forwards of the
# meshd pair in $T/DIR (default mesh), ready once a byte echoes through it.
mesh_path() {
    local name="$1" fwd="$2" what="$3" m="$T/${4:-mesh}"
    new_path "$name"
    if [ -n "$MESH_ERROR" ]; then unavailable "$name" "$MESH_ERROR"; return; fi
    if ! wait_echo "127.0.0.1:$fwd" 10 "${MESH_PIDS[@]}"; then
        local why="forward 127.0.0.1:$fwd gave no echo within 10 s: $ECHO_ERROR"
        kill -0 "${MESH_PIDS[0]}" 2>/dev/null || why="meshd n1 exited: $(tail -1 "$m/n1.log")"
        kill -0 "${MESH_PIDS[1]}" 2>/dev/null || why="meshd n2 exited: $(tail -1 "$m/n2.log")"
        unavailable "$name" "$why"
        [ $KEEP = 1 ] || { log "n1.log:"; tail -5 "$m/n1.log" >&2; log "n2.log:"; tail -5 "$m/n2.log" >&2; }
        return
    fi
    note "$name" "$MESH_VERSION, $what"
    ready "$name" "127.0.0.1:$fwd" "${MESH_PIDS[@]}"
}

# The baseline meshd pair first, so the main pair's MESH_* variables are the ones left set.
path_baseline() {
    start_mesh mesh-baseline "$BASELINE_BIN"
    mesh_path tunnelmesh-baseline "${MESH_FWD:-}" \
        "the tunnelmesh path (forward on n1 → bench@n2) through a second meshd pair, the baseline build" mesh-baseline
    MESH_PIDS=() MESH_ERROR=""
}

paths_tunnelmesh() {
    start_mesh mesh "$BIN"
    want tunnelmesh && mesh_path tunnelmesh "${MESH_FWD:-}" \
        "n1 127.0.1.1 dials n2 127.0.1.2; forward on n1 127.0.0.1:${MESH_FWD:-} → bench@n2: streams towards the accepting node, opened by the dialer"
    want tunnelmesh-reverse && mesh_path tunnelmesh-reverse "${MESH_FWD_REVERSE:-}" \
        "the same two meshd; forward on n2 127.0.0.1:${MESH_FWD_REVERSE:-} → bench-r@n1: reverse streams towards the dialing node, each asked for over the control stream"
    # Neither path came up: stop the meshd now rather than let them share the cores with the others.
    local up=0 name
    for name in tunnelmesh tunnelmesh-reverse; do want "$name" && is_ok "$name" && up=1; done
    [ $up = 0 ] && [ ${#MESH_PIDS[@]} -gt 0 ] && stop_pids "${MESH_PIDS[@]}"
    return 0
}

path_stunnel() {
    new_path stunnel
    command -v stunnel4 >/dev/null || { unavailable stunnel "stunnel4 is not installed (see apt log)"; return; }
    local d="$T/stunnel" sport cport
    sport=$(free_port 127.0.2.2); cport=$(free_port 127.0.0.1)
    start_stunnel_pair "$d" "$cport" 127.0.2.2 "$sport" "127.0.0.1:$SINK_PORT" \
        || { unavailable stunnel "certificate generation failed: $(tail -1 "$d/pki.log")"; return; }
    if ! wait_echo "127.0.0.1:$cport" 10 "$STUNNEL_SERVER_PID" "$STUNNEL_CLIENT_PID"; then
        unavailable stunnel "no echo through stunnel within 10 s: $ECHO_ERROR; server log: $(tail -1 "$d/server.log")"
        stop_pids "$STUNNEL_SERVER_PID" "$STUNNEL_CLIENT_PID"; return
    fi
    note stunnel "stunnel $(stunnel_version), TLS 1.3 negotiated cipher suite: $(stunnel_cipher "$d"); ECDSA P-256 certificates, verifyChain + CRL on both sides, TCP_NODELAY"
    ready stunnel "127.0.0.1:$cport" "$STUNNEL_SERVER_PID" "$STUNNEL_CLIENT_PID"
}

path_ssh() {
    new_path ssh
    [ -x /usr/sbin/sshd ] || { unavailable ssh "/usr/sbin/sshd is not installed (see apt log)"; return; }
    command -v ssh >/dev/null || { unavailable ssh "ssh is not installed (see apt log)"; return; }
    local d="$T/ssh" fwd
    fwd=$(free_port 127.0.0.1)
    SSHD_PID="" SSH_PID=""
    if ! start_ssh_forward "$d" "$fwd" 127.0.0.1 "$SINK_PORT"; then
        unavailable ssh "$SSH_ERROR"; stop_pids "$SSHD_PID"; return
    fi
    if ! wait_echo "127.0.0.1:$fwd" 10 "$SSHD_PID" "$SSH_PID"; then
        unavailable ssh "no echo through ssh -L within 10 s: $ECHO_ERROR; $(ssh_failure "$d")"
        stop_pids "$SSHD_PID" "$SSH_PID"; return
    fi
    note ssh "$(ssh -V 2>&1 | cut -d, -f1), ssh -N -L to a private sshd, default ciphers; negotiated: $(ssh_cipher "$d")"
    ready ssh "127.0.0.1:$fwd" "$SSHD_PID" "$SSH_PID"
}

build_relay() {
    [ $SKIP_BUILD = 1 ] && return 0
    log "swift build -c release (scripts/bench/nio-relay)"
    BG_TIMEOUT=3600 start_bg "$T/build-nio-relay.log" env TUNNELMESH_BENCH_PRODUCTS=1 \
        swift build -c release --static-swift-stdlib --package-path "$HERE/nio-relay" --scratch-path "$ROOT/.build-nio-relay"
    wait "$BG_PID" || { RELAY_ERROR="building nio-relay failed: $(build_failure "$T/build-nio-relay.log")"; return 1; }
}

# relay_path NAME DESCRIPTION [tls|frame] : two chained nio-relay processes, client → 127.0.0.1 →
# 127.0.3.2 → the server; with tls, the link between them is meshd's TLS handler with the mesh's
# certificates; with frame, that link also carries HTTP/2 DATA frames.
relay_path() {
    local name="$1" what="$2" tls="${3:-}" r="$T/$1" front back pid1 pid2
    new_path "$name"
    [ -z "${RELAY_ERROR:-}" ] || { unavailable "$name" "$RELAY_ERROR"; return; }
    [ -x "$RELAY_BIN/nio-relay" ] || { unavailable "$name" "$RELAY_BIN/nio-relay is not built"; return; }
    local front_tls=() back_tls=()
    mkdir -p "$r"
    if [ -n "$tls" ]; then
        make_mesh_pki "$BIN/meshctl" "$r/pki" bench n1 n2 || { unavailable "$name" "$MESH_PKI_ERROR"; return; }
        front_tls=(--tls-connect "$r/pki:n1"); back_tls=(--tls-listen "$r/pki:n2")
        [ "$tls" = frame ] && { front_tls+=(--frame); back_tls+=(--frame); }
    fi
    front=$(free_port 127.0.0.1); back=$(free_port 127.0.3.2)
    start_bg "$r/back.log" "$RELAY_BIN/nio-relay" --listen "127.0.3.2:$back" --connect "127.0.0.1:$SINK_PORT" "${back_tls[@]}"; pid2=$BG_PID
    start_bg "$r/front.log" "$RELAY_BIN/nio-relay" --listen "127.0.0.1:$front" --connect "127.0.3.2:$back" "${front_tls[@]}"; pid1=$BG_PID
    if ! wait_echo "127.0.0.1:$front" 10 "$pid1" "$pid2"; then
        unavailable "$name" "no echo through the relays within 10 s: $ECHO_ERROR; $(tail -1 "$r/front.log") $(tail -1 "$r/back.log")"
        stop_pids "$pid1" "$pid2"; return
    fi
    note "$name" "$what"
    ready "$name" "127.0.0.1:$front" "$pid1" "$pid2"
}

# --- run ------------------------------------------------------------------------------------------------

ensure_packages
if want tunnelmesh || want tunnelmesh-reverse || want nio-relay-tls || want nio-relay-frame; then build_mesh || log "$MESH_BUILD_ERROR"; fi
if want nio-relay || want nio-relay-tls || want nio-relay-frame; then build_relay || log "$RELAY_ERROR"; fi

BUSY=""
if awk '{exit !($1 >= 0.5)}' /proc/loadavg; then
    BUSY=" Other work was running on the machine (see load average): compare paths within this run, not across runs."
fi
cat >"$T/header.md" <<EOF
Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r), $(openssl version | cut -d' ' -f1-2), $(python3 --version); load average at start: $(cut -d' ' -f1-3 /proc/loadavg).
EOF

start_sink
log "measuring server on 127.0.0.1:$SINK_PORT; results in $T"
want direct && path_direct
want nio-relay && relay_path nio-relay \
    "two bare SwiftNIO relays (scripts/bench/nio-relay), one event loop each, no TLS, no framing: 127.0.0.1 → 127.0.3.2 → the server"
want nio-relay-tls && relay_path nio-relay-tls \
    "the same two relays with meshd's TLS handler (MeshTLS OpenSSLHandler, mutual authentication with meshctl pki certificates) between them: TLS, no HTTP/2, no streams" tls
want nio-relay-frame && relay_path nio-relay-frame \
    "the TLS relays again, each message also framed as an HTTP/2 DATA frame (header and payload in one buffer, one TLS record) and unframed by hand on the far side: no HTTP/2 state, stream table or flow control" frame
if want tunnelmesh-baseline; then
    [ -n "${BASELINE_BIN:-}" ] || { echo "tunnel.sh: the tunnelmesh-baseline path needs BASELINE_BIN" >&2; exit 2; }
    path_baseline
fi
{ want tunnelmesh || want tunnelmesh-reverse; } && paths_tunnelmesh
want stunnel && path_stunnel
want ssh && path_ssh
measure_all

printf '%s\n' "$(cat "$T/header.md") Load average at end: $(cut -d' ' -f1-3 /proc/loadavg).$BUSY" >"$T/header.md"
args=(--results "$RESULTS" --header "$T/header.md"
      --bytes "$BYTES" --repeat "$REPEAT" --count "$COUNT" --warmup "$WARMUP"
      --connects "$CONNECTS" --connect-warmup "$CONNECT_WARMUP")
[ $WRITE = 1 ] && args+=(--write "${BENCHMARKS_MD:-$ROOT/BENCHMARKS.md}")
python3 "$HERE/report.py" "${args[@]}"
