#!/usr/bin/env bash
# Scale (issue 6): 10,000 idle streams through one tunnel (RSS per stream of both meshd), a 32-node
# full mesh on this machine (time until all 496 tunnels are up, idle CPU and RSS per node), and
# reconnection storms (all 32 stopped with SIGTERM, or killed with SIGKILL, and started again at once:
# time until the mesh is whole again).
#
# Usage: scripts/bench/scale.sh [--write] [--skip-build] [--parts streams,mesh] [--streams N]
#                               [--nodes N] [--idle S] [--storms N] [--keep]
#   --write       also replace the scale section of BENCHMARKS.md
#   --skip-build  use the meshd/meshctl already in ${BIN:-$SCRATCH/release}
#   --parts       streams (idle streams), mesh (full mesh, idle and storms); default both
#   --streams N   idle streams through the tunnel (default 10000)
#   --busy N      of those, how many then carry 4 MiB each way, one after the other (default 20)
#   --nodes N     meshd processes in the full mesh, on 127.61.0.1..N (default 32)
#   --idle S      seconds over which idle CPU is measured (default 60)
#   --storms N    restarts of the whole mesh of each kind, SIGTERM and SIGKILL (default 2)
#   --ping-interval D  the mesh's tunnel.ping_interval (default: meshd's, 1s)
#   --keep        keep the temporary directory (logs, configs, results) for inspection
# Environment: SCRATCH (SwiftPM scratch path, default .build-bench), BIN (where meshd and meshctl are),
# MESHD_LABEL (what that meshd is, e.g. the commit it was built from; default: this tree's `git describe`).
#
# Everything listens on 127.0.0.0/8 only; every process started here is stopped on exit, by pid.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCALE=("python3" "$HERE/scale.py")
source "$HERE/processes.sh"
source "$HERE/packages.sh"
source "$HERE/mesh-setup.sh"
source "$HERE/workdir.sh"

WRITE=0 SKIP_BUILD=0 KEEP=0 PARTS="streams,mesh" STREAMS=10000 BUSY=20 NODES=32 IDLE=60 STORMS=2 PING_INTERVAL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --write) WRITE=1 ;;
        --skip-build) SKIP_BUILD=1 ;;
        --keep) KEEP=1 ;;
        --parts) PARTS="${2:-}"; shift ;;
        --streams) STREAMS="${2:-}"; shift ;;
        --busy) BUSY="${2:-}"; shift ;;
        --nodes) NODES="${2:-}"; shift ;;
        --idle) IDLE="${2:-}"; shift ;;
        --storms) STORMS="${2:-}"; shift ;;
        --ping-interval) PING_INTERVAL="${2:-}"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "scale.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$STREAMS" "$NODES" "$IDLE"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "scale.sh: --streams/--nodes/--idle take positive whole numbers, got '$n'" >&2; exit 2; }
done
for n in "$STORMS" "$BUSY"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "scale.sh: --storms/--busy take whole numbers, got '$n'" >&2; exit 2; }
done
[ "$NODES" -ge 2 ] && [ "$NODES" -le 254 ] || { echo "scale.sh: --nodes must be 2..254 (one 127.61.0.x address each)" >&2; exit 2; }
for part in ${PARTS//,/ }; do
    [[ ",streams,mesh," == *",$part,"* ]] || { echo "scale.sh: unknown part '$part' in --parts (known: streams,mesh)" >&2; exit 2; }
done
want() { [[ ",$PARTS," == *",$1,"* ]]; }

SCRATCH=${SCRATCH:-.build-bench}
BIN=${BIN:-$SCRATCH/release}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac

# meshd keeps one socket per stream on each side (the client's on the forward side, the service's
# on the serving side) and the echo server one per stream: all need more than the usual 1,024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((STREAMS + 256)) ]; then
    echo "scale.sh: the open-files limit ($(ulimit -n), hard $(ulimit -Hn)) is too low for $STREAMS streams" >&2; exit 2
fi

make_workdir scale

# main_pid PID : the process start_bg's `timeout` wrapper runs (meshd itself), whose RSS and CPU we
# read and which SIGKILL must reach (killing the wrapper would leave meshd running).
main_pid() {
    local child="" _
    for _ in $(seq 50); do
        child=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}')
        [ -n "$child" ] && { echo "$child"; return 0; }
        sleep 0.02
    done
    return 1
}

# record PART NAME JSON : keep one result line for the report.
record() { printf '%s\n' "$3" >>"$RESULTS/$1-$2.jsonl"; log "$1 $2: $3"; }
fail() { printf '%s\n' "$2" >>"$RESULTS/$1-failed"; log "$1: $2"; }

# --- 1: idle streams through one tunnel ----------------------------------------------------------------------

part_streams() {
    local m="$T/streams" echo_port fwd papp pdb out
    mkdir -p "$m/run"
    make_mesh_pki "$BIN/meshctl" "$m/pki" bench app1 db1 || { fail streams "$MESH_PKI_ERROR"; return; }
    echo_port=$(free_port 127.0.0.1); fwd=$(free_port 127.0.0.1)
    papp=$(free_port 127.60.0.1); pdb=$(free_port 127.60.0.2)
    cat >"$m/mesh.json" <<EOF
{ "mesh": "bench",
  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
  "tunnel": { "max_streams_per_peer": $((STREAMS + 1000)) },
  "nodes": { "app1": { "address": "127.60.0.1:$papp", "control": "run/app1.sock" },
             "db1":  { "address": "127.60.0.2:$pdb", "control": "run/db1.sock" } },
  "services": { "echo": { "on": { "db1": "127.0.0.1:$echo_port" }, "allow": ["app1"] } },
  "forwards": [ { "on": "app1", "listen": "127.0.0.1:$fwd", "to": "echo@db1" } ] }
EOF
    start_bg "$m/echo.log" "${SCALE[@]}" echo --listen "127.0.0.1:$echo_port"
    local echo_pid; echo_pid=$(main_pid "$BG_PID") || { fail streams "the echo server did not start"; return; }
    local db app
    start_bg "$m/db1.log" "$BIN/meshd" --config "$m/mesh.json" --node db1; db=$(main_pid "$BG_PID")
    start_bg "$m/app1.log" "$BIN/meshd" --config "$m/mesh.json" --node app1; app=$(main_pid "$BG_PID")
    if [ -z "$db" ] || [ -z "$app" ]; then fail streams "meshd did not start: $(tail -n 1 "$m/db1.log" "$m/app1.log")"; return; fi
    log "streams: app1 (pid $app) → db1 (pid $db), forward 127.0.0.1:$fwd → echo 127.0.0.1:$echo_port; opening $STREAMS"
    if ! run_bounded 600 "$m/streams.out" "${SCALE[@]}" streams --connect "127.0.0.1:$fwd" --count "$STREAMS" \
            --server-pid "$echo_pid" --pids "$app,$db" --busy "$BUSY"; then
        fail streams "$(tail -n 1 "$m/streams.out"); app1: $(tail -n 1 "$m/app1.log"); db1: $(tail -n 1 "$m/db1.log")"
    else
        record streams run "$(tail -n 1 "$m/streams.out")"
    fi
    stop_pids "${PIDS[@]}"
}

# --- 2 and 3: a full mesh, idle, then restarted all at once ----------------------------------------------------

node_name() { printf 'n%02d' "$1"; }

write_mesh_config() {
    local m="$1" i sep=""
    {
        printf '{ "mesh": "scale",\n  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },\n'
        [ -n "$PING_INTERVAL" ] && printf '  "tunnel": { "ping_interval": "%s" },\n' "$PING_INTERVAL"
        printf '  "nodes": {'
        for i in $(seq "$NODES"); do
            printf '%s\n    "%s": { "address": "127.61.0.%d:%d", "control": "run/%s.sock" }' \
                "$sep" "$(node_name "$i")" "$i" "$(free_port "127.61.0.$i")" "$(node_name "$i")"
            sep=","
        done
        printf '\n  }\n}\n'
    }>"$m/mesh.json"
}

# start_mesh PHASE : every node's meshd, started one right after the other, logging to
# log/PHASE/; MESH_PIDS are the meshd pids.
start_mesh() {
    local m="$T/mesh" i wrappers=()
    mkdir -p "$m/log/$1"
    for i in $(seq "$NODES"); do
        start_bg "$m/log/$1/$(node_name "$i").log" "$BIN/meshd" --config "$m/mesh.json" --node "$(node_name "$i")"
        wrappers+=("$BG_PID")
    done
    MESH_PIDS=()
    for i in "${wrappers[@]}"; do MESH_PIDS+=("$(main_pid "$i")"); done
    MESH_WRAPPERS=("${wrappers[@]}")
}

# mesh_sockets : every node's control socket, comma-separated.
mesh_sockets() {
    local i sockets=""
    for i in $(seq "$NODES"); do sockets+="$T/mesh/run/$(node_name "$i").sock,"; done
    echo "${sockets%,}"
}

# start_whole_mesh PHASE RESULT : start every meshd and time, from just before the first start, until
# every node sees every peer up (bounded). The poller starts first, so that it sees the mesh from
# its first moment, not from whenever the starts were done.
start_whole_mesh() {
    local out="$T/mesh/$1.out" poller deadline=$((SECONDS + 60))
    start_bg "$out" "${SCALE[@]}" mesh --sockets "$(mesh_sockets)" --since-file "$T/mesh/$1.since" --timeout 60
    poller=$BG_PID
    # On a busy machine Python can take seconds to start: the clock starts once it polls.
    until grep -q polling "$out" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
    date +%s.%N >"$T/mesh/$1.since.tmp" && mv "$T/mesh/$1.since.tmp" "$T/mesh/$1.since"
    start_mesh "$1"
    RUNNING_PID=$poller; wait "$poller"; RUNNING_PID=""
    record mesh "$2" "$(tail -n 1 "$out")"
}

# stop_mesh SIGNAL : send SIGNAL to every meshd at once and wait (bounded) for all to be gone.
stop_mesh() {
    local pid deadline=$((SECONDS + 30)) alive
    for pid in "${MESH_PIDS[@]}"; do kill "-$1" "$pid" 2>/dev/null; done
    while [ $SECONDS -lt $deadline ]; do
        alive=0
        for pid in "${MESH_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && alive=1; done
        if [ $alive = 0 ]; then
            for pid in "${MESH_WRAPPERS[@]}"; do wait "$pid" 2>/dev/null; done   # reaped quietly, no "Killed" lines
            return 0
        fi
        sleep 0.05
    done
    log "mesh: some meshd still ran 30 s after SIG$1"
}

part_mesh() {
    local m="$T/mesh" i names=() since
    mkdir -p "$m/run" "$m/log"
    for i in $(seq "$NODES"); do names+=("$(node_name "$i")"); done
    log "mesh: issuing $NODES certificates"
    make_mesh_pki "$BIN/meshctl" "$m/pki" scale "${names[@]}" || { fail mesh "$MESH_PKI_ERROR"; return; }
    write_mesh_config "$m"
    log "mesh: starting $NODES meshd on 127.61.0.1-$NODES"
    start_whole_mesh start start
    local pids
    pids=$(IFS=,; echo "${MESH_PIDS[*]}")
    log "mesh: idle for $IDLE s"
    run_bounded $((IDLE + 60)) "$m/idle.out" "${SCALE[@]}" idle --pids "$pids" --seconds "$IDLE" --sockets "$(mesh_sockets)"
    record mesh idle "$(tail -n 1 "$m/idle.out")"
    local round signal
    for round in $(seq "$STORMS"); do
        for signal in TERM KILL; do
            log "mesh: storm $round, SIG$signal to all $NODES, then all started again"
            since=$(date +%s.%N)
            stop_mesh "$signal"
            record mesh "stop-$signal" "{\"stop_s\": $(awk -v a="$(date +%s.%N)" -v b="$since" 'BEGIN{printf "%.2f", a - b}')}"
            start_whole_mesh "storm-$round-$signal" "storm-$signal"
        done
    done
}

# --- run -----------------------------------------------------------------------------------------------------

if [ $SKIP_BUILD = 0 ]; then
    log "building meshd and meshctl (release, --scratch-path $SCRATCH); log: $T/build.log"
    build_release "$ROOT" "$SCRATCH" "$T/build.log" meshd meshctl
    wait "$BUILD_PID" || { log "release build failed: $(build_failure "$T/build.log")"; exit 1; }
fi
for n in "$BIN/meshd" "$BIN/meshctl"; do [ -x "$n" ] || { log "$n is not built"; exit 1; }; done

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
log "results in $T"
want streams && part_streams
want mesh && part_mesh

args=(--results "$RESULTS" --started "$STARTED" --load-start "$LOAD_START"
      --commit "${MESHD_LABEL:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}"
      --streams "$STREAMS" --nodes "$NODES" --idle "$IDLE" --parts "$PARTS" --ping-interval "${PING_INTERVAL:-1s}")
[ $WRITE = 1 ] && args+=(--write "$ROOT/BENCHMARKS.md")
python3 "$HERE/scale_report.py" "${args[@]}"
