#!/usr/bin/env bash
# Builds one libFuzzer target (Tests/Fuzz/, -sanitize=fuzzer,address) and runs it.
#
# Usage: scripts/fuzz.sh TARGET SECONDS     fuzz TARGET for SECONDS
#        scripts/fuzz.sh --merge TARGET     fold what runs found into the committed corpus, minimized
# TARGET: mesh-config (the mesh.json loader), front-door (the balancer's PostgreSQL front door),
#         tls (the OpenSSL handler), tunnel-frames (HTTP/2 frames from an authenticated peer: our
#         frame handler and TunnelStreams). The entry points are in Tests/MeshFuzzTargets.
#
# The committed corpus, Tests/FuzzCorpus/TARGET/, is read, never written, by a run: new interesting
# inputs land in a scratch corpus and crashers in a scratch artifacts directory (both under
# Tests/Fuzz/.build/fuzz-work/TARGET, or $FUZZ_WORK/TARGET). `swift test --filter FuzzReplayTests`
# replays the committed corpus without the fuzzer runtime.
# Environment: FUZZ_SCRATCH (the build's scratch path, default Tests/Fuzz/.build), FUZZ_WORK (see above),
# FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2" or "-only_ascii=1").
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

merge=no
if [ "${1:-}" = "--merge" ]; then merge=yes; shift; fi
target="${1:-}"
case "$target" in
  mesh-config) product=FuzzMeshConfig ;;
  front-door) product=FuzzFrontDoor ;;
  tls) product=FuzzTLS ;;
  tunnel-frames) product=FuzzTunnelFrames ;;
  *) usage ;;
esac
if [ $merge = no ]; then
  seconds="${2:-}"
  [[ "$seconds" =~ ^[0-9]+$ ]] || usage
fi

# The main package offers the entry points as a product (MeshFuzzTargets) only with this set.
export TUNNELMESH_FUZZ_PRODUCTS=1

scratch="${FUZZ_SCRATCH:-$PWD/Tests/Fuzz/.build}"
work="${FUZZ_WORK:-$scratch/fuzz-work}/$target"
committed="$PWD/Tests/FuzzCorpus/$target"
found="$work/corpus"
artifacts="$work/artifacts"
mkdir -p "$found" "$artifacts"

# -parse-as-library: the executables have no main; libFuzzer's runtime supplies it.
swift build -c debug --package-path Tests/Fuzz --scratch-path "$scratch" --product "$product" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
binary="$(swift build -c debug --package-path Tests/Fuzz --scratch-path "$scratch" --show-bin-path)/$product"

dict=()
[ -f "Tests/Fuzz/$target.dict" ] && dict=(-dict="Tests/Fuzz/$target.dict")

if [ $merge = yes ]; then
  # Named inputs (seed-*, crash-*: hand-made seeds and fixed crashers) are kept as they are; the
  # rest is replaced by a minimal set of inputs that keeps all the coverage of everything seen.
  merged="$work/merged"
  rm -rf "$merged" && mkdir -p "$merged"
  find "$committed" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'crash-*' \) -exec cp {} "$merged/" \;
  "$binary" -merge=1 "${dict[@]}" "$merged" "$committed" "$found"
  find "$committed" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'crash-*' -delete
  find "$merged" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'crash-*' -exec cp {} "$committed/" \;
  echo "fuzz.sh: $committed now holds $(find "$committed" -type f | wc -l) inputs ($(du -sh "$committed" | cut -f1)); commit them."
  exit 0
fi

echo "fuzz.sh: $product for ${seconds}s; new inputs -> $found, crashers -> $artifacts"
status=0
# The first corpus directory is the one libFuzzer writes new inputs to.
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "${dict[@]}" ${FUZZ_ARGS:-} "$found" "$committed" || status=$?

crashers=$(find "$artifacts" -maxdepth 1 -type f | wc -l)
echo "fuzz.sh: $(find "$found" -type f | wc -l) new inputs in $found; $crashers crashers in $artifacts"
if [ "$crashers" -gt 0 ]; then
  echo "fuzz.sh: reproduce one with: $binary ARTIFACT"
  echo "fuzz.sh: after fixing, keep it as a regression input: cp ARTIFACT $committed/crash-<what-it-was>"
fi
echo "fuzz.sh: to keep the new coverage: scripts/fuzz.sh --merge $target"
exit $status
