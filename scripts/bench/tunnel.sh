#!/usr/bin/env bash
# Loopback tunnel benchmark (issue 2, Performance): bulk throughput and 1-byte round-trip latency
# for direct TCP, tunnelmesh, stunnel4 (TLS 1.3) and ssh -L (the autossh data path), in one run,
# through the same measuring client and server (tcpbench.py).
#
# Usage: scripts/bench/tunnel.sh [--write] [--skip-build] [--paths direct,tunnelmesh,stunnel,ssh]
#                                [--bytes N] [--repeat N] [--count N] [--warmup N] [--keep]
#   --write       also replace the tunnel section of BENCHMARKS.md
#   --skip-build  use the meshd/meshctl already in ${BIN:-.build/release}
#   --repeat N    bulk runs per path, taken in turns across paths; the table shows the median (default 5)
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
PATHS="direct,tunnelmesh,stunnel,ssh"
BYTES=$((1 << 30)) REPEAT=5 COUNT=20000 WARMUP=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --write) WRITE=1 ;;
        --skip-build) SKIP_BUILD=1 ;;
        --keep) KEEP=1 ;;
        --paths) PATHS="$2"; shift ;;
        --bytes) BYTES="$2"; shift ;;
        --repeat) REPEAT="$2"; shift ;;
        --count) COUNT="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "tunnel.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for n in "$BYTES" "$REPEAT" "$COUNT" "$WARMUP"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "tunnel.sh: --bytes/--repeat/--count/--warmup take whole numbers, got '$n'" >&2; exit 2; }
done
if [ "$REPEAT" -lt 1 ] || [ "$COUNT" -lt "$REPEAT" ] || [ "$BYTES" -lt 1 ]; then
    echo "tunnel.sh: need --repeat >= 1, --count >= --repeat and --bytes >= 1" >&2; exit 2
fi

BIN=${BIN:-.build/release}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac

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
declare -A ADDR
ready() { READY+=("$1"); ADDR[$1]="$2"; log "$1: ready at $2"; }
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
    local name="$1" round="$2" out dir
    dir=$(path_dir "$name")
    if ! out=$(timeout 120 "${TCPBENCH[@]}" latency --connect "${ADDR[$name]}" --count "$((COUNT / REPEAT))" \
            --warmup "$WARMUP" --raw "$dir/latency.raw" 2>&1); then
        unavailable "$name" "latency run $round failed: $(tail -1 <<<"$out")"; return
    fi
    printf '%s\n' "$out" >>"$dir/latency.jsonl"
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

path_tunnelmesh() {
    new_path tunnelmesh
    if [ -n "${MESH_BUILD_ERROR:-}" ]; then unavailable tunnelmesh "$MESH_BUILD_ERROR"; return; fi
    local meshd="$BIN/meshd" meshctl="$BIN/meshctl" m="$T/mesh" n
    for n in "$meshd" "$meshctl"; do
        [ -x "$n" ] || { unavailable tunnelmesh "$n is not built"; return; }
    done
    mkdir -p "$m/run"
    make_mesh_pki "$meshctl" "$m/pki" bench n1 n2 || { unavailable tunnelmesh "$MESH_PKI_ERROR"; return; }
    local p1 p2 fwd
    p1=$(free_port 127.0.1.1); p2=$(free_port 127.0.1.2); fwd=$(free_port 127.0.0.1)
    cat >"$m/mesh.json" <<EOF
{ "mesh": "bench",
  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
  "nodes": { "n1": { "address": "127.0.1.1:$p1", "control": "run/n1.sock" },
             "n2": { "address": "127.0.1.2:$p2", "control": "run/n2.sock" } },
  "services": { "bench": { "on": { "n2": "127.0.0.1:$SINK_PORT" }, "allow": ["n1"] } },
  "forwards": [ { "on": "n1", "listen": "127.0.0.1:$fwd", "to": "bench@n2" } ] }
EOF
    local pid1 pid2
    start_bg "$m/n2.log" "$meshd" --config "$m/mesh.json" --node n2; pid2=$BG_PID
    start_bg "$m/n1.log" "$meshd" --config "$m/mesh.json" --node n1; pid1=$BG_PID
    if ! wait_echo "127.0.0.1:$fwd" 10 "$pid1" "$pid2"; then
        local why="forward 127.0.0.1:$fwd gave no echo within 10 s: $ECHO_ERROR"
        kill -0 "$pid1" 2>/dev/null || why="meshd n1 exited: $(tail -1 "$m/n1.log")"
        kill -0 "$pid2" 2>/dev/null || why="meshd n2 exited: $(tail -1 "$m/n2.log")"
        unavailable tunnelmesh "$why"
        [ $KEEP = 1 ] || { log "n1.log:"; tail -5 "$m/n1.log" >&2; log "n2.log:"; tail -5 "$m/n2.log" >&2; }
        stop_pids "$pid1" "$pid2"; return
    fi
    note tunnelmesh "meshd $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), n1 127.0.1.1 → n2 127.0.1.2, forward 127.0.0.1:$fwd"
    ready tunnelmesh "127.0.0.1:$fwd"
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
    ready stunnel "127.0.0.1:$cport"
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
    ready ssh "127.0.0.1:$fwd"
}

# --- run ------------------------------------------------------------------------------------------------

ensure_packages
if want tunnelmesh; then build_mesh || log "$MESH_BUILD_ERROR"; fi

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
want tunnelmesh && path_tunnelmesh
want stunnel && path_stunnel
want ssh && path_ssh
measure_all

printf '%s\n' "$(cat "$T/header.md") Load average at end: $(cut -d' ' -f1-3 /proc/loadavg).$BUSY" >"$T/header.md"
args=(--results "$RESULTS" --header "$T/header.md"
      --bytes "$BYTES" --repeat "$REPEAT" --count "$COUNT" --warmup "$WARMUP")
[ $WRITE = 1 ] && args+=(--write "$ROOT/BENCHMARKS.md")
python3 "$HERE/report.py" "${args[@]}"
