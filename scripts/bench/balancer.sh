#!/usr/bin/env bash
# PostgreSQL through the balancer (issue 5, Performance; floors of issue 11): pgbench -S with kept
# connections (-c 8), with a new connection per transaction (-C -c 4) and with one client on one kept
# connection (-c 1, its average latency), against one PostgreSQL primary, directly and through the
# tunnelmesh balancer, a plain tunnelmesh forward (and one to a service without preconnect), stunnel4,
# ssh -L, pgpool-II and HAProxy, in one run.
#
# Usage: scripts/bench/balancer.sh [--write] [--skip-build] [--legs LIST] [--modes LIST] [--duration S]
#                                  [--rounds N] [--scale N] [--preconnect N] [--keep]
#   --write       also replace the pgbench section of BENCHMARKS.md
#   --skip-build  use the meshd/meshctl already in ${BIN:-$SCRATCH/release}
#   --legs        comma-separated subset of direct,balancer,forward,cold,stunnel,ssh,pgpool,haproxy
#                 (default all; cold = a forward to the same PostgreSQL through a service without
#                 preconnect, on the same two meshd)
#   --modes       comma-separated subset of the pgbench modes (default S,C,L, all three):
#                   S = -S -c 8 -j 2 (kept connections; TPS),
#                   C = -S -C -c 4 (a new connection per transaction; TPS, connection time),
#                   L = -S -c 1 (one client, one kept connection; pgbench's latency average)
#   --duration S  seconds per pgbench run (default 20)
#   --rounds N    runs per leg and mode, taken in turns across legs and modes; the table shows the
#                 median (default 3)
#   --scale N     pgbench -i scale factor (default 10)
#   --preconnect N  the postgres service's preconnect, which the balancer and forward legs use
#                 (default 2; 0 for none)
#   --keep        keep the temporary directories (logs, configs, pgbench output) for inspection
# Environment: SCRATCH (SwiftPM scratch path, default .build-bench), BIN (where meshd and meshctl
# are), BUILD_MODE (what a prebuilt BIN is, named in the results; default: guessed from its path),
# SWIFT_BUILD_FLAGS (extra `swift build` arguments, split at spaces; also named in the results),
# MESHD_LABEL (what the meshd is, e.g. the commit a prebuilt BIN came from; default: this tree's
# `git describe`, which is wrong for a BIN built from another commit).
#
# Everything listens on 127.0.0.x only; every process started here is stopped on exit; the system's
# PostgreSQL, sshd, stunnel, pgpool2 and haproxy services are never touched (we run our own with
# throwaway data, keys and configs). Missing Debian packages are installed with apt-get.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/processes.sh"
source "$HERE/postgres.sh"
source "$HERE/packages.sh"
source "$HERE/mesh-setup.sh"
source "$HERE/stunnel-pair.sh"
source "$HERE/ssh-forward.sh"
source "$HERE/workdir.sh"

ALL_LEGS="direct,balancer,forward,cold,stunnel,ssh,pgpool,haproxy"
ALL_MODES="S,C,L"
WRITE=0 SKIP_BUILD=0 KEEP=0 LEGS=$ALL_LEGS MODE_LIST=$ALL_MODES DURATION=20 ROUNDS=3 SCALE=10 PRECONNECT=2
while [ $# -gt 0 ]; do
    case "$1" in
        --write) WRITE=1 ;;
        --skip-build) SKIP_BUILD=1 ;;
        --keep) KEEP=1 ;;
        --legs) LEGS="${2:-}"; shift ;;
        --duration) DURATION="${2:-}"; shift ;;
        --rounds) ROUNDS="${2:-}"; shift ;;
        --scale) SCALE="${2:-}"; shift ;;
        --modes) MODE_LIST="${2:-}"; shift ;;
        --preconnect) PRECONNECT="${2:-}"; shift ;;
        -h|--help) sed -n '2,/^$/p' "$0"; exit 0 ;;
        *) echo "balancer.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$DURATION" "$ROUNDS" "$SCALE"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "balancer.sh: --duration/--rounds/--scale take positive whole numbers, got '$n'" >&2; exit 2; }
done
[[ "$PRECONNECT" =~ ^([0-9]|1[0-6])$ ]] || { echo "balancer.sh: --preconnect takes a whole number from 0 to 16, got '$PRECONNECT'" >&2; exit 2; }
for leg in ${LEGS//,/ }; do
    [[ ",$ALL_LEGS," == *",$leg,"* ]] || { echo "balancer.sh: unknown leg '$leg' in --legs (known: $ALL_LEGS)" >&2; exit 2; }
done
want() { [[ ",$LEGS," == *",$1,"* ]]; }

# The pgbench workloads the issues name: kept connections and a new connection per transaction
# (issue 5, TPS), and one client on one kept connection (issue 11, average latency).
declare -A MODE_ARGS=([S]="-S -c 8 -j 2" [C]="-S -C -c 4" [L]="-S -c 1")
MODES=()
for mode in ${MODE_LIST//,/ }; do
    [[ ",$ALL_MODES," == *",$mode,"* ]] || { echo "balancer.sh: unknown mode '$mode' in --modes (known: $ALL_MODES)" >&2; exit 2; }
    [[ " ${MODES[*]} " == *" $mode "* ]] || MODES+=("$mode")
done
[ ${#MODES[@]} -gt 0 ] || { echo "balancer.sh: --modes names no mode (known: $ALL_MODES)" >&2; exit 2; }

SCRATCH=${SCRATCH:-.build-bench}
BIN=${BIN:-$SCRATCH/release}
# Extra `swift build` arguments (word-split), e.g. a compiler workaround; named in the results.
read -r -a BUILD_ARGS <<<"${SWIFT_BUILD_FLAGS:-}"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
# BUILD_MODE in the environment names a prebuilt BIN's mode (e.g. "static release build of
# 9b97dbe"); otherwise it is guessed from BIN's last path component.
if [ -n "${BUILD_MODE:-}" ]; then
    BUILD_MODE="$BUILD_MODE ($BIN)"
else
    case "${BIN%/}" in
        */release) BUILD_MODE="release build (${BIN#"$ROOT"/}${SWIFT_BUILD_FLAGS:+, with \`$SWIFT_BUILD_FLAGS\`})" ;;
        */debug) BUILD_MODE="DEBUG build (${BIN#"$ROOT"/}): not comparable" ;;
        *) BUILD_MODE="build of unknown mode ($BIN; set BUILD_MODE)" ;;
    esac
fi

make_workdir balancer

# --- result files, one directory per leg in table order, read by pgbench_report.py -----------------------
# Each holds <mode>-<round>.out (pgbench's output; mode S, C or L), <mode>-<round>.meta (exit status,
# CPU of the leg's proxy processes during the run), notes (free text lines), unavailable (why it was
# not measured).

ORDER=0
declare -A LEG_DIR PORT PROXY_PIDS
for leg in ${ALL_LEGS//,/ }; do
    want "$leg" || continue
    ORDER=$((ORDER + 1)); LEG_DIR[$leg]="$RESULTS/$ORDER-$leg"; mkdir -p "${LEG_DIR[$leg]}"
done
READY=()
unavailable() { log "$1: not available: $2"; printf '%s\n' "$2" >"${LEG_DIR[$1]}/unavailable"; }
note() { printf '%s\n' "$2" >>"${LEG_DIR[$1]}/notes"; }
# ready LEG PORT [PROXY_PID...] : the leg answers SQL on 127.0.0.1:PORT; its CPU is that of the pids.
ready() {
    local leg="$1"; PORT[$leg]="$2"; shift 2
    PROXY_PIDS[$leg]="$*"
    READY+=("$leg")
    log "$leg: ready at 127.0.0.1:${PORT[$leg]}"
}

# --- a leg ready, or why not -----------------------------------------------------------------------------

# check_leg LEG SECONDS PID... : ready the leg once SQL goes through 127.0.0.1:LEG_PORT, otherwise
# mark it unavailable, with the reason passed through the function named by EXPLAIN when set.
check_leg() {
    local leg="$1" seconds="$2" why; shift 2
    PORT[$leg]=$LEG_PORT
    if wait_sql "$LEG_PORT" "$seconds" "$@"; then ready "$leg" "$LEG_PORT" "$@"; return 0; fi
    why="no SQL through 127.0.0.1:$LEG_PORT within $seconds s: ${SQL_ERROR:-no answer (psql timed out)}"
    [ -n "${EXPLAIN:-}" ] && why=$("$EXPLAIN" "$why")
    unavailable "$leg" "$why"
    return 1
}

# --- legs ---------------------------------------------------------------------------------------------------

leg_direct() {
    note direct "PostgreSQL $(pg_version) on 127.0.0.1:$PGPORT over TCP (pgbench -h 127.0.0.1), trust authentication"
    LEG_PORT=$PGPORT check_leg direct 5
}

# The balancer and the forward share one mesh: app (the balancer's rw listener and a forward) and db
# (serves "postgres" = our PostgreSQL, probes it as meshmon), each a meshd, one tunnel between them.
start_mesh() {
    [ -n "${MESH_ERROR:-}" ] && return 1
    [ -n "${MESH_APP_PID:-}" ] && return 0
    local m="$T/mesh" n
    for n in "$BIN/meshd" "$BIN/meshctl"; do
        [ -x "$n" ] || { MESH_ERROR="$n is not built"; return 1; }
    done
    mkdir -p "$m/run"
    make_mesh_pki "$BIN/meshctl" "$m/pki" bench app db || { MESH_ERROR=$MESH_PKI_ERROR; return 1; }
    local papp pdb
    papp=$(free_port 127.0.1.1); pdb=$(free_port 127.0.1.2)
    RW_PORT=$(free_port 127.0.0.1); FWD_PORT=$(free_port 127.0.0.1); COLD_PORT=$(free_port 127.0.0.1)
    cat >"$m/mesh.json" <<EOF
{ "mesh": "bench",
  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
  "nodes": { "app": { "address": "127.0.1.1:$papp", "control": "run/app.sock" },
             "db":  { "address": "127.0.1.2:$pdb", "control": "run/db.sock" } },
  "services": { "postgres": { "on": { "db": "127.0.0.1:$PGPORT" }, "allow": ["app"], "preconnect": $PRECONNECT,
                              "postgres": { "monitor_user": "meshmon", "database": "postgres" } },
                "postgres-cold": { "on": { "db": "127.0.0.1:$PGPORT" }, "allow": ["app"] } },
  "forwards": [ { "on": "app", "listen": "127.0.0.1:$FWD_PORT", "to": "postgres@db" },
                { "on": "app", "listen": "127.0.0.1:$COLD_PORT", "to": "postgres-cold@db" } ],
  "balancers": { "pg": { "service": "postgres", "on": { "app": { "rw": "127.0.0.1:$RW_PORT" } } } } }
EOF
    start_bg "$m/db.log" "$BIN/meshd" --config "$m/mesh.json" --node db; MESH_DB_PID=$BG_PID
    start_bg "$m/app.log" "$BIN/meshd" --config "$m/mesh.json" --node app; MESH_APP_PID=$BG_PID
    MESH_DESCRIPTION="meshd ${MESHD_LABEL:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}, app 127.0.1.1 → db 127.0.1.2"
}

# mesh_failure WHY : WHY, or which meshd exited and its last words; the last lines of both logs go
# to the terminal.
mesh_failure() {
    local m="$T/mesh" n
    for n in app db; do log "meshd $n log, last lines:"; tail -n 5 "$m/$n.log" >&2; done
    kill -0 "$MESH_APP_PID" 2>/dev/null || { echo "meshd app exited: $(tail -n 1 "$m/app.log")"; return; }
    kill -0 "$MESH_DB_PID" 2>/dev/null || { echo "meshd db exited: $(tail -n 1 "$m/db.log")"; return; }
    echo "$1; app's log: $(grep -v '^\s*$' "$m/app.log" | tail -n 1 | cut -c1-300)"
}

leg_balancer() {
    start_mesh || { unavailable balancer "$MESH_ERROR"; return; }
    # Routes only once db's first role report has crossed the tunnel.
    EXPLAIN=mesh_failure LEG_PORT=$RW_PORT check_leg balancer 30 "$MESH_APP_PID" "$MESH_DB_PID" && \
        note balancer "$MESH_DESCRIPTION; balancer pg, rw listener 127.0.0.1:$RW_PORT; service preconnect $PRECONNECT; CPU counts both meshd"
}

leg_forward() {
    start_mesh || { unavailable forward "$MESH_ERROR"; return; }
    EXPLAIN=mesh_failure LEG_PORT=$FWD_PORT check_leg forward 30 "$MESH_APP_PID" "$MESH_DB_PID" && \
        note forward "$MESH_DESCRIPTION; plain forward 127.0.0.1:$FWD_PORT → postgres@db (no startup-packet handling, no routing): the balancer minus its PostgreSQL front door; service preconnect $PRECONNECT; CPU counts both meshd"
}

leg_cold() {
    start_mesh || { unavailable cold "$MESH_ERROR"; return; }
    EXPLAIN=mesh_failure LEG_PORT=$COLD_PORT check_leg cold 30 "$MESH_APP_PID" "$MESH_DB_PID" && \
        note cold "$MESH_DESCRIPTION; plain forward 127.0.0.1:$COLD_PORT → postgres-cold@db, a service for the same PostgreSQL without preconnect: every stream connects when it arrives (the forward leg minus spare connections); CPU counts both meshd"
}

leg_stunnel() {
    command -v stunnel4 >/dev/null || { unavailable stunnel "stunnel4 is not installed (see the apt log)"; return; }
    local d="$T/stunnel"
    LEG_PORT=$(free_port 127.0.0.1)
    start_stunnel_pair "$d" "$LEG_PORT" 127.0.2.2 "$(free_port 127.0.2.2)" "127.0.0.1:$PGPORT" \
        || { unavailable stunnel "certificate generation failed: $(tail -1 "$d/pki.log")"; return; }
    check_leg stunnel 10 "$STUNNEL_CLIENT_PID" "$STUNNEL_SERVER_PID" && note stunnel "$(stunnel_description "$d")"
}

leg_ssh() {
    [ -x /usr/sbin/sshd ] || { unavailable ssh "/usr/sbin/sshd is not installed (see the apt log)"; return; }
    command -v ssh >/dev/null || { unavailable ssh "ssh is not installed (see the apt log)"; return; }
    local d="$T/ssh"
    LEG_PORT=$(free_port 127.0.0.1)
    start_ssh_forward "$d" "$LEG_PORT" 127.0.0.1 "$PGPORT" || { unavailable ssh "$SSH_ERROR"; return; }
    check_leg ssh 10 "$SSH_PID" "$SSHD_PID" && { note ssh "$(ssh_description "$d")"; return; }
    note ssh "$(ssh_failure "$d")"
}

# pgpool-II in raw mode (one backend, no load balancing, no replication checks), connection cache on
# (the default pool mode), no pool_hba: PostgreSQL's own trust authentication applies.
leg_pgpool() {
    [ -x /usr/sbin/pgpool ] || { unavailable pgpool "pgpool2 is not installed (see the apt log)"; return; }
    local d="$PGROOT/pgpool"
    mkdir -p "$d"; : >"$d/pcp.conf"; : >"$d/pool_hba.conf"; chown -R postgres: "$d"
    LEG_PORT=$(free_port 127.0.0.1)
    cat >"$d/pgpool.conf" <<CONF
backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = $LEG_PORT
socket_dir = '$d'
pcp_listen_addresses = ''
pcp_port = $(free_port 127.0.0.1)
pcp_socket_dir = '$d'
wd_ipc_socket_dir = '$d'
pid_file_name = '$d/pgpool.pid'
logdir = '$d'
backend_hostname0 = '127.0.0.1'
backend_port0 = $PGPORT
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'
load_balance_mode = off
health_check_period = 0
sr_check_period = 0
enable_pool_hba = off
pool_passwd = ''
log_destination = 'stderr'
CONF
    chown postgres: "$d/pgpool.conf"
    # pgpool forks its pool children; a fast shutdown of the parent (SIGINT) stops them with it, where
    # a KILL would leave them behind.
    on_exit "stop_pgpool '$d/pgpool.pid'"
    start_bg "$d/pgpool.log" setpriv --reuid=postgres --regid=postgres --init-groups -- \
        /usr/sbin/pgpool -n -D -f "$d/pgpool.conf" -F "$d/pcp.conf" -a "$d/pool_hba.conf"
    PGPOOL_PID=$BG_PID
    check_leg pgpool 20 "$PGPOOL_PID" && {
        note pgpool "pgpool-II $(/usr/sbin/pgpool --version 2>&1 | awk '{print $3}'), raw mode, one backend, connection_cache on, num_init_children 32, max_pool 4, no pool_hba (trust at PostgreSQL), plaintext"
        return
    }
    note pgpool "pgpool log: $(grep -m1 -E 'FATAL|ERROR' "$d/pgpool.log" || tail -1 "$d/pgpool.log")"
}

stop_pgpool() {
    local pid deadline=$((SECONDS + 15))
    [ -f "$1" ] || return 0
    pid=$(head -1 "$1" | tr -dc '0-9')
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && log "pgpool $pid did not stop within 15 s"
    return 0
}

leg_haproxy() {
    command -v haproxy >/dev/null || { unavailable haproxy "haproxy is not installed (see the apt log)"; return; }
    local d="$T/haproxy"
    mkdir -p "$d"
    LEG_PORT=$(free_port 127.0.0.1)
    cat >"$d/haproxy.cfg" <<CONF
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend pg
    bind 127.0.0.1:$LEG_PORT
    default_backend postgres
backend postgres
    server primary 127.0.0.1:$PGPORT
CONF
    start_bg "$d/haproxy.log" haproxy -db -f "$d/haproxy.cfg"
    check_leg haproxy 10 "$BG_PID" && \
        note haproxy "HAProxy $(haproxy -v | awk 'NR==1{print $3}'), mode tcp, one server, default threads, plaintext"
}

# --- measuring --------------------------------------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)

# run_pgbench LEG MODE ROUND : one pgbench run through the leg, its output and the CPU its proxy
# processes used meanwhile kept for the report.
run_pgbench() {
    local leg="$1" mode="$2" round="$3" dir="${LEG_DIR[$1]}" before after rc cpu=null
    before=$(cpu_ticks ${PROXY_PIDS[$leg]})
    # shellcheck disable=SC2086 # MODE_ARGS holds several arguments
    run_bounded $((DURATION + 60)) "$dir/$mode-$round.out" \
        "$PGBIN/pgbench" -n ${MODE_ARGS[$mode]} -T "$DURATION" -h 127.0.0.1 -p "${PORT[$leg]}" -U postgres bench
    rc=$?
    after=$(cpu_ticks ${PROXY_PIDS[$leg]})
    [ -n "${PROXY_PIDS[$leg]}" ] && cpu=$(awk -v a="$after" -v b="$before" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (a - b) / hz}')
    printf '{"rc": %d, "proxy_cpu_s": %s, "load": "%s"}\n' "$rc" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" >"$dir/$mode-$round.meta"
    local headline='^tps'; [ "$mode" = L ] && headline='^latency average'
    log "$leg pgbench ${MODE_ARGS[$mode]} round $round: $(grep -m1 "$headline" "$dir/$mode-$round.out" || echo "exit $rc: $(tail -1 "$dir/$mode-$round.out")")"
}

# Legs take turns run by run, so that a change in background load during the run falls on all of them
# alike instead of on whichever leg happened to be measured at that moment.
measure_all() {
    local round mode leg
    for round in $(seq "$ROUNDS"); do
        for mode in "${MODES[@]}"; do
            for leg in "${READY[@]}"; do run_pgbench "$leg" "$mode" "$round"; done
        done
    done
}

# --- run ---------------------------------------------------------------------------------------------------------

install_missing_packages openssl postgresql stunnel4 openssh-server openssh-client pgpool2 haproxy

if want balancer || want forward; then
    if [ $SKIP_BUILD = 0 ]; then
        log "building meshd and meshctl (release, --scratch-path $SCRATCH) in the background; log: $T/build.log"
        build_release "$ROOT" "$SCRATCH" "$T/build.log" meshd meshctl
    fi
fi

start_postgres balancer || exit 1
log "results in $T"
want direct && leg_direct
want stunnel && leg_stunnel
want ssh && leg_ssh
want pgpool && leg_pgpool
want haproxy && leg_haproxy
if [ -n "${BUILD_PID:-}" ]; then
    log "waiting for the release build (log: $T/build.log)"
    wait "$BUILD_PID" || MESH_ERROR="release build failed: $(build_failure "$T/build.log")"
fi
want balancer && leg_balancer
want forward && leg_forward
want cold && leg_cold

# A short unmeasured run warms PostgreSQL's buffers and the page cache for every leg alike.
if want direct && [ ! -e "${LEG_DIR[direct]}/unavailable" ]; then
    run_bounded 60 "$T/warm-up.log" "$PGBIN/pgbench" -n -S -c 8 -j 2 -T 5 -h 127.0.0.1 -p "$PGPORT" -U postgres bench
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
measure_all

CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') \
KERNEL="Linux $(uname -r)" POSTGRES="PostgreSQL $(pg_version)" OPENSSL=$(openssl version | cut -d' ' -f1-2) \
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg) MODE_S=${MODE_ARGS[S]} MODE_C=${MODE_ARGS[C]} MODE_L=${MODE_ARGS[L]} \
MEASURED="${MODES[*]}" \
BUILD_MODE=$BUILD_MODE STARTED=$STARTED LOAD_START=$LOAD_START DURATION=$DURATION ROUNDS=$ROUNDS SCALE=$SCALE \
python3 -c '
import json, os
e = os.environ
print(json.dumps({
    "date": e["STARTED"], "cpu": e["CPU_MODEL"], "cores": os.cpu_count(), "kernel": e["KERNEL"],
    "postgres": e["POSTGRES"], "openssl": e["OPENSSL"], "build": e["BUILD_MODE"],
    "load_start": e["LOAD_START"], "load_end": e["LOAD_END"],
    "duration": int(e["DURATION"]), "rounds": int(e["ROUNDS"]), "scale": int(e["SCALE"]),
    "modes": {"S": e["MODE_S"], "C": e["MODE_C"], "L": e["MODE_L"]},
    "measured_modes": e["MEASURED"].split()}, indent=1))' >"$T/machine.json"
args=(--results "$RESULTS" --machine "$T/machine.json")
[ $WRITE = 1 ] && args+=(--write "$ROOT/BENCHMARKS.md")
python3 "$HERE/pgbench_report.py" "${args[@]}"
