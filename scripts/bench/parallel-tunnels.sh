#!/usr/bin/env bash
# What a second tunnel would buy `pgbench -S -c 8` (issue 11): a tunnel and all its streams live on
# one event loop, so between one application node and one database node meshd uses one core on
# each side. This runs the same eight clients (two pgbench -c 4 -j 1) three ways, taking turns:
# through one meshd pair (both pgbench on its forward: one tunnel), through two meshd pairs (one
# pgbench on each pair's forward: two tunnels, on separate processes and so separate cores), and
# directly; it prints the summed TPS and how idle the machine's CPUs were (/proc/stat) per run.
# A by-hand experiment for a design question, not a table of BENCHMARKS.md.
#
# Usage: BIN=DIR scripts/bench/parallel-tunnels.sh [--rounds N] [--duration S] [--scale N]
#   BIN         the directory with meshd and meshctl (required; nothing is built here)
#   --rounds N  rounds of the three ways (default 3); --duration S seconds per pgbench run (default 10)
#   --scale N   pgbench -i scale (default 10)
#
# Loopback only (127.0.0.1, 127.0.1.1-2, 127.0.4.1-2); every process started here is stopped on exit.

set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/processes.sh"
source "$HERE/postgres.sh"
source "$HERE/packages.sh"
source "$HERE/mesh-setup.sh"
source "$HERE/workdir.sh"

ROUNDS=3 DURATION=10 SCALE=10 KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="${2:?--rounds needs a value}"; shift ;;
        --duration) DURATION="${2:?--duration needs a value}"; shift ;;
        --scale) SCALE="${2:?--scale needs a value}"; shift ;;
        -h|--help) sed -n '2,/^$/p' "$0"; exit 0 ;;
        *) echo "parallel-tunnels.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for n in "$ROUNDS" "$DURATION" "$SCALE"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "parallel-tunnels.sh: --rounds, --duration and --scale take whole numbers >= 1, got '$n'" >&2; exit 2; }
done
[ -n "${BIN:-}" ] && [ -x "$BIN/meshd" ] && [ -x "$BIN/meshctl" ] \
    || { echo "parallel-tunnels.sh: set BIN to a directory with meshd and meshctl" >&2; exit 2; }

make_workdir parallel-tunnels
install_missing_packages postgresql
start_postgres parallel-tunnels || exit 1

# start_pair NAME N1-ADDRESS N2-ADDRESS : a mesh of its own (n1 dials n2), a forward on n1 to
# PostgreSQL on n2; leaves FWD[NAME].
declare -A FWD
start_pair() {
    local m="$T/$1" p1 p2
    mkdir -p "$m/run"
    make_mesh_pki "$BIN/meshctl" "$m/pki" "$1" n1 n2 || { log "$MESH_PKI_ERROR"; exit 1; }
    p1=$(free_port "$2"); p2=$(free_port "$3"); FWD[$1]=$(free_port 127.0.0.1)
    cat >"$m/mesh.json" <<JSON
{ "mesh": "$1", "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
  "nodes": { "n1": { "address": "$2:$p1", "control": "run/n1.sock" }, "n2": { "address": "$3:$p2", "control": "run/n2.sock" } },
  "services": { "postgres": { "on": { "n2": "127.0.0.1:$PGPORT" }, "allow": ["n1"] } },
  "forwards": [ { "on": "n1", "listen": "127.0.0.1:${FWD[$1]}", "to": "postgres@n2" } ] }
JSON
    local n1 n2
    BG_TIMEOUT=3600 start_bg "$m/n2.log" "$BIN/meshd" --config "$m/mesh.json" --node n2; n2=$BG_PID
    BG_TIMEOUT=3600 start_bg "$m/n1.log" "$BIN/meshd" --config "$m/mesh.json" --node n1; n1=$BG_PID
    wait_sql "${FWD[$1]}" 15 "$n1" "$n2" \
        || { log "no SQL through pair $1 within 15 s: $SQL_ERROR; n1's log: $(tail -1 "$m/n1.log")"; exit 1; }
}
start_pair a 127.0.1.1 127.0.1.2
start_pair b 127.0.4.1 127.0.4.2

idle_ticks() { awk '/^cpu /{print $5 + $6}' /proc/stat; }
total_ticks() { awk '/^cpu /{s = 0; for (i = 2; i <= NF; i++) s += $i; print s}' /proc/stat; }

# way NAME PORT1 PORT2 : two pgbench -c 4 -j 1 at once; prints their summed TPS and the CPUs' idle %.
way() {
    local i0 t0 i1 t1 tps
    i0=$(idle_ticks); t0=$(total_ticks)
    local first second
    run_bounded $((DURATION + 60)) "$T/$1-1.out" "$PGBIN/pgbench" -n -S -c 4 -j 1 -T "$DURATION" -h 127.0.0.1 -p "$2" -U postgres bench &
    first=$!
    run_bounded $((DURATION + 60)) "$T/$1-2.out" "$PGBIN/pgbench" -n -S -c 4 -j 1 -T "$DURATION" -h 127.0.0.1 -p "$3" -U postgres bench &
    second=$!
    wait "$first" "$second"   # not a bare `wait`: the meshd are our children too
    i1=$(idle_ticks); t1=$(total_ticks)
    tps=$(cat "$T/$1-1.out" "$T/$1-2.out" | awk '/^tps/{s += $3; n++} END {if (n == 2) printf "%.0f", s}')
    if [ -z "$tps" ]; then
        log "$1: a pgbench run gave no TPS: $(tail -n 1 "$T/$1-1.out") / $(tail -n 1 "$T/$1-2.out")"
        return
    fi
    printf '%-12s %8s TPS, CPUs idle %s %%\n' "$1" "$tps" "$(( (i1 - i0) * 100 / (t1 - t0) ))"
}
for round in $(seq "$ROUNDS"); do
    log "round $round"
    way one-tunnel "${FWD[a]}" "${FWD[a]}"
    way two-tunnels "${FWD[a]}" "${FWD[b]}"
    way direct "$PGPORT" "$PGPORT"
done
