#!/usr/bin/env bash
# Automatic failover (issue 13, Performance): how long writes are refused, and how many acknowledged
# commits are lost, when every process on the primary's node is killed -9, and during a planned
# `patronictl switchover`, for Patroni 3.0 + etcd 3.4 + PostgreSQL 15 with HAProxy 2.6 (the anchor)
# and with every cross-node byte carried by tunnelmesh and the writer going through meshd's `rw`
# balancer, in one run, legs taking turns round by round.
#
# Usage: scripts/bench/failover.sh [--write] [--skip-build] [--legs LIST] [--rounds N] [--switchovers N] [--keep]
#   --write          also replace the failover section of BENCHMARKS.md
#   --skip-build     use the meshd/meshctl already in ${BIN:-$SCRATCH/release}
#   --legs           comma-separated subset of haproxy,mesh (default both)
#   --rounds N       measured kill rounds per leg (default 4; 0 for none)
#   --switchovers N  measured switchover rounds per leg (default 3; 0 for none)
#   --keep           keep the temporary directory (every node's logs, the writer's acknowledgements)
# Environment: SCRATCH (SwiftPM scratch path, default .build-bench), BIN (where meshd and meshctl
# are), SWIFT_BUILD_FLAGS (extra `swift build` arguments), FO_PROBE_INTERVAL (the postgres
# service's probe_interval in the mesh leg, default 500ms).
#
# The bed (scripts/bench/failover-bed.sh): network namespaces db1 db2 db3 app1 on a bridge in a hub
# namespace, 10.231.13.N; nothing in the root namespace, nothing outside 127.0.0.0/8 and the
# namespaces. Settings of both legs: examples/patroni (ttl 20, loop_wait 5, retry_timeout 5,
# synchronous_mode on). The writer inserts a numbered row every 20 ms through app1's
# 127.0.0.1:6432, reconnecting after any error, and records every acknowledged id. Each round
# builds the cluster from scratch, kills the leader's namespace, and waits for 5 s of writes. Each
# switchover round builds it from scratch too and runs `patronictl switchover --leader L --candidate S
# --force` to the synchronous standby S; writes refused = the longest gap between acknowledged writes
# until 2 s after S's first. Round r runs the kill rounds, then the switchover rounds, of every leg.
# Patroni is scripts/test-packages.sh's TEST_PATRONI_VERSION from PyPI (installed when missing):
# Debian 12's 3.0.2 has a split-brain bug (Patroni PR #2689).
# Needs root (namespaces). Every process started here is stopped and every namespace deleted on
# exit, Ctrl-C and failure included.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/processes.sh"
source "$HERE/packages.sh"
source "$HERE/mesh-setup.sh"
source "$HERE/workdir.sh"
source "$HERE/failover-bed.sh"

ALL_LEGS="haproxy,mesh"
WRITE=0 SKIP_BUILD=0 KEEP=0 LEGS=$ALL_LEGS ROUNDS=4 SWITCHOVERS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --write) WRITE=1 ;;
        --skip-build) SKIP_BUILD=1 ;;
        --keep) KEEP=1 ;;
        --legs) LEGS="${2:-}"; shift ;;
        --rounds) ROUNDS="${2:-}"; shift ;;
        --switchovers) SWITCHOVERS="${2:-}"; shift ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "failover.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$ROUNDS" =~ ^[0-9]+$ ]] || { echo "failover.sh: --rounds takes a whole number, got '$ROUNDS'" >&2; exit 2; }
[[ "$SWITCHOVERS" =~ ^[0-9]+$ ]] || { echo "failover.sh: --switchovers takes a whole number, got '$SWITCHOVERS'" >&2; exit 2; }
[ $((ROUNDS + SWITCHOVERS)) -gt 0 ] || { echo "failover.sh: --rounds and --switchovers are both 0: nothing to measure" >&2; exit 2; }
LEG_LIST=()
for leg in ${LEGS//,/ }; do
    [[ ",$ALL_LEGS," == *",$leg,"* ]] || { echo "failover.sh: unknown leg '$leg' in --legs (known: $ALL_LEGS)" >&2; exit 2; }
    LEG_LIST+=("$leg")
done
[ ${#LEG_LIST[@]} -gt 0 ] || { echo "failover.sh: --legs names no leg" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "failover.sh: needs root (network namespaces, PostgreSQL run as postgres)" >&2; exit 2; }

SCRATCH=${SCRATCH:-.build-bench}
BIN=${BIN:-$SCRATCH/release}
read -r -a BUILD_ARGS <<<"${SWIFT_BUILD_FLAGS:-}"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac

make_workdir failover
# Debian's patroni for the Python libraries the venv's Patroni uses (--system-site-packages).
install_missing_packages patroni etcd-server etcd-client haproxy postgresql python3-psycopg2 python3-venv iproute2 openssl
install_test_patroni failover.sh >&2
[ -x "$FO_PATRONI_BIN/patroni" ] || { log "Patroni $TEST_PATRONI_VERSION is not installed in ${FO_PATRONI_BIN%/bin}"; exit 1; }

if [[ ",$LEGS," == *",mesh,"* ]]; then
    if [ $SKIP_BUILD = 0 ]; then
        log "building meshd and meshctl (release, $SCRATCH; log $T/build.log)"
        build_release "$ROOT" "$SCRATCH" "$T/build.log" meshd meshctl
        wait "$BUILD_PID" || { log "release build failed: $(build_failure "$T/build.log")"; exit 1; }
    fi
    for f in "$BIN/meshd" "$BIN/meshctl"; do [ -x "$f" ] || { log "$f is not built (drop --skip-build or set BIN)"; exit 1; }; done
fi

FO_ROOT=$ROOT FO_BIN=$BIN
# The bench kills an etcd leader in every other round, in both legs (failover-bed.sh, fo_place_etcd_leader).
FO_BALANCE_ETCD=1
FO_STATE=$(mktemp -d /dev/shm/tunnelmesh-failover.XXXXXX)
chmod 755 "$FO_STATE"
on_exit 'rm -rf "$FO_STATE"'
FO_RESULTS="$RESULTS/rounds.jsonl"
FO_LOGS="$T/logs"
: >"$FO_RESULTS"
on_exit fo_bed_destroy
fo_bed_create || exit 1

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START_DATE=$(date -u +%Y-%m-%d)
log "legs ${LEG_LIST[*]}, $ROUNDS kill round(s) and $SWITCHOVERS switchover(s) each, taking turns; state in $FO_STATE, logs in $FO_LOGS"
for ((round = 1; round <= ROUNDS || round <= SWITCHOVERS; round++)); do
    # Alternate which leg goes first, so slow drifts in the machine's load fall on both alike.
    order=("${LEG_LIST[@]}")
    if [ $((round % 2)) = 0 ] && [ ${#order[@]} = 2 ]; then order=("${order[1]}" "${order[0]}"); fi
    for leg in "${order[@]}"; do
        [ "$round" -le "$ROUNDS" ] || continue
        if fo_round "$leg" "$round"; then
            log "$leg round $round: $("$FO_PYTHON" "$FO_PY" brief "$FO_LAST")"
        else
            log "$leg round $round: the bed did not come up (logs in $FO_LOGS/$leg-$round)"
            printf '{"kind": "kill", "leg": "%s", "round": %d, "failed": "the bed did not come up"}\n' "$leg" "$round" >>"$FO_RESULTS"
        fi
    done
    for leg in "${order[@]}"; do
        [ "$round" -le "$SWITCHOVERS" ] || continue
        if fo_switchover_round "$leg" "$round"; then
            log "$leg switchover $round: $("$FO_PYTHON" "$FO_PY" brief "$FO_LAST")"
        else
            log "$leg switchover $round: the bed did not come up (logs in $FO_LOGS/$leg-s$round)"
            printf '{"kind": "switchover", "leg": "%s", "round": %d, "failed": "the bed did not come up"}\n' "$leg" "$round" >>"$FO_RESULTS"
        fi
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$T/machine.json" <<EOF
import json, os, platform, subprocess, sys
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return "?"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
os_name = next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release") if l.startswith("PRETTY_NAME=")), "?")
json.dump({
    "date": "$START_DATE", "cores": os.cpu_count(), "cpu": cpu, "os": os_name, "kernel": platform.release(),
    "load_start": "$LOAD_START", "load_end": "$LOAD_END", "rounds": $ROUNDS, "switchovers": $SWITCHOVERS, "legs": "${LEG_LIST[*]}".split(),
    "patroni": out("$FO_PATRONI_BIN/patroni", "--version"), "etcd": out("etcd", "--version").splitlines()[0] if out("etcd", "--version") else "?",
    "haproxy": out("haproxy", "-v").splitlines()[0] if out("haproxy", "-v") else "?",
    "postgres": out("/usr/lib/postgresql/15/bin/postgres", "--version"),
    "probe_interval": "$FO_PROBE_INTERVAL",
    "command": "scripts/bench/failover.sh --rounds $ROUNDS --switchovers $SWITCHOVERS --legs $LEGS",
}, open(sys.argv[1], "w"))
EOF
echo
target=""
[ $WRITE = 1 ] && target="$ROOT/BENCHMARKS.md"
"$FO_PYTHON" "$FO_PY" section "$FO_RESULTS" "$T/machine.json" "$target"
[ $KEEP = 1 ] && log "kept $T (logs of every round in $FO_LOGS)"
exit 0
