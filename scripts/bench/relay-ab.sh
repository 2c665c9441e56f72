#!/usr/bin/env bash
# A/B of two builds of scripts/bench/nio-relay (so of meshd's TLS handler, which it links) on the
# TLS relay pair, with everything pinned to one CPU: with no cross-CPU wake-ups the CPU time per
# round trip repeats to about 1 %, where the unpinned tunnel.sh paths move by 10-20 % from run to
# run. Prints each round's CPU µs per round trip (both relays, schedstat) and the medians; a ratio
# below 1 means B spends less. Use it to judge a change to the TLS path before a full tunnel.sh run.
#
# Usage: scripts/bench/relay-ab.sh A-RELAY B-RELAY [--rounds N] [--count N] [--frame] [--meshctl PATH]
#   A-RELAY, B-RELAY  two nio-relay binaries (e.g. built from two commits with
#                     TUNNELMESH_BENCH_PRODUCTS=1 swift build -c release --static-swift-stdlib
#                     --package-path scripts/bench/nio-relay --scratch-path DIR)
#   --rounds N        alternating rounds (default 8)
#   --count N         1-byte round trips per round (default 6000, after 300 untimed)
#   --frame           also frame each message as an HTTP/2 DATA frame (nio-relay --frame)
#   --meshctl PATH    the meshctl that makes the throwaway PKI (default .build/release/meshctl)
#
# Loopback only (127.0.0.1, 127.0.3.2); every process started here is stopped on exit.

set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/processes.sh"
source "$HERE/packages.sh"
source "$HERE/mesh-setup.sh"
source "$HERE/workdir.sh"

[ $# -ge 2 ] || { sed -n '2,/^$/p' "$0"; exit 2; }
A="$1" B="$2"; shift 2
ROUNDS=8 COUNT=6000 FRAME=() MESHCTL="$ROOT/.build/release/meshctl"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="${2:?--rounds needs a value}"; shift ;;
        --count) COUNT="${2:?--count needs a value}"; shift ;;
        --frame) FRAME=(--frame) ;;
        --meshctl) MESHCTL="${2:?--meshctl needs a value}"; shift ;;
        *) echo "relay-ab.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
for f in "$A" "$B" "$MESHCTL"; do [ -x "$f" ] || { echo "relay-ab.sh: $f is not an executable" >&2; exit 2; }; done
[[ "$ROUNDS$COUNT" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] && [ "$COUNT" -ge 1 ] || { echo "relay-ab.sh: --rounds and --count take whole numbers >= 1" >&2; exit 2; }

make_workdir relay-ab
make_mesh_pki "$MESHCTL" "$T/pki" bench n1 n2 || { echo "relay-ab.sh: $MESH_PKI_ERROR" >&2; exit 1; }
PIN=(taskset -c 0)
TCPBENCH=("${PIN[@]}" python3 "$HERE/tcpbench.py")
SINK=$(free_port 127.0.0.1)
BG_TIMEOUT=3600 start_bg "$T/sink.log" "${TCPBENCH[@]}" serve --listen "127.0.0.1:$SINK"
wait_listen 127.0.0.1 "$SINK" 5 "$BG_PID" || { echo "relay-ab.sh: the measuring server did not start" >&2; exit 1; }

# start_pair NAME BINARY : the front relay (TLS client) and the back relay (TLS server); leaves
# PORT[NAME] and PAIR[NAME] (both PIDs).
declare -A PORT PAIR
start_pair() {
    local front back pid1 pid2
    front=$(free_port 127.0.0.1)
    back=$(free_port 127.0.3.2)
    BG_TIMEOUT=3600 start_bg "$T/$1-back.log" "${PIN[@]}" "$2" --listen "127.0.3.2:$back" \
        --connect "127.0.0.1:$SINK" --tls-listen "$T/pki:n2" "${FRAME[@]}"; pid2=$BG_PID
    BG_TIMEOUT=3600 start_bg "$T/$1-front.log" "${PIN[@]}" "$2" --listen "127.0.0.1:$front" \
        --connect "127.0.3.2:$back" --tls-connect "$T/pki:n1" "${FRAME[@]}"; pid1=$BG_PID
    wait_listen 127.0.0.1 "$front" 5 "$pid1" && wait_listen 127.0.3.2 "$back" 5 "$pid2" \
        || { echo "relay-ab.sh: relay $1 did not start: $(tail -1 "$T/$1-front.log")" >&2; exit 1; }
    PORT[$1]=$front PAIR[$1]="$pid1 $pid2"
}
start_pair A "$A"
start_pair B "$B"

# One round on one pair: CPU µs per round trip of both relays (taskset's child is the relay).
round() {
    local cpu=() pid
    for pid in ${PAIR[$1]}; do cpu+=(--cpu-of "$pid"); done
    "${TCPBENCH[@]}" latency --connect "127.0.0.1:${PORT[$1]}" --count "$COUNT" --warmup 300 --timeout 60 "${cpu[@]}" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["cpu_us_per_rt"])'
}
for i in $(seq "$ROUNDS"); do echo "$(round A) $(round B)"; done | python3 -c '
import statistics, sys
rows = [tuple(map(float, line.split())) for line in sys.stdin if line.strip()]
if not rows:
    raise SystemExit("relay-ab.sh: no round finished")
a, b = [r[0] for r in rows], [r[1] for r in rows]
print("A CPU us/rt per round:", ", ".join(f"{v:g}" for v in a))
print("B CPU us/rt per round:", ", ".join(f"{v:g}" for v in b))
print(f"median A {statistics.median(a):.1f} us, B {statistics.median(b):.1f} us, B/A {statistics.median(b) / statistics.median(a):.3f}")'
