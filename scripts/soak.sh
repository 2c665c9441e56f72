#!/usr/bin/env bash
# The integrity soak, longer than the 25 s scripts/test.sh gives it: 64 concurrent streams of
# checksummed random payloads through forwards across a mesh of four network namespaces, while
# nodes are killed (-9), cut off and restarted. Prints the RESULT soak line (completed, errored,
# truncated, corrupted, stalled); fails on any truncation, corruption or stall. Needs root (or
# CAP_NET_ADMIN) for `ip netns`; skips otherwise.
# Usage: scripts/soak.sh [SECONDS (default 600)] [SEED]   (a SEED replays the same fault schedule)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
export SOAK_SECONDS="$seconds"
if [ -n "${2:-}" ]; then export SOAK_SEED="$2"; fi
command -v ip >/dev/null || { echo "soak.sh: needs iproute2 (ip netns)" >&2; exit 2; }
swift build --build-tests ${SWIFT_BUILD_FLAGS:-}
log="${TMPDIR:-/tmp}/tunnelmesh-soak-$$.log"
status=0
swift test --skip-build ${SWIFT_BUILD_FLAGS:-} --filter IntegritySoakTests >"$log" 2>&1 || status=$?
grep -E '^(RESULT|soak|Test Case)|: error: ' "$log" || true
echo "soak.sh: full output in $log; exit $status"
exit "$status"
