#!/usr/bin/env bash
# Builds and runs the tests under AddressSanitizer or ThreadSanitizer.
# Usage: scripts/sanitize.sh address|thread [extra `swift test` arguments, e.g. --filter MeshTunnelTests]
#
# Each kind has its own scratch path (.build-asan, .build-tsan), so a sanitized build never mixes
# with a plain one. The integration tests start the meshd and meshctl built in that same scratch
# path, so the agent under test is sanitized too. Every sanitized process (the test runner and every
# meshd it starts) writes its reports to files under $SANITIZE_REPORTS (not to stderr, where a
# meshd's report would vanish into a test's log); the script prints them at the end and fails if
# there is any, even when every test passed.
#
# Environment: SANITIZE_REPORTS (default /tmp/tunnelmesh-sanitize/<kind>), SANITIZE_LEAKS=1 to turn
# on LeakSanitizer (off by default: see below), SANITIZE_JOBS (swift build -j).
set -euo pipefail
cd "$(dirname "$0")/.."

kind="${1:-}"
case "$kind" in
  address) scratch=.build-asan ;;
  thread) scratch=.build-tsan ;;
  *) echo "usage: scripts/sanitize.sh address|thread [swift test arguments]" >&2; exit 2 ;;
esac
shift

# The same system packages as scripts/test.sh: the tests start openssl, stunnel, PostgreSQL, systemd tools.
. scripts/test-packages.sh
install_test_packages sanitize.sh

# The sanitizer runtimes ship with the Swift toolchain (not a Debian package); say so if they are missing.
toolchain="$(dirname "$(readlink -f "$(command -v swift)")")"
short=$([ "$kind" = address ] && echo asan || echo tsan)
if ! compgen -G "$toolchain/../lib/swift/clang/lib/linux/libclang_rt.$short-*.a" >/dev/null; then
  echo "sanitize.sh: no libclang_rt.$short runtime in $toolchain/../lib/swift/clang/lib/linux; install a full Swift toolchain from swift.org" >&2
  exit 2
fi
symbolizer="$toolchain/llvm-symbolizer"

reports="${SANITIZE_REPORTS:-/tmp/tunnelmesh-sanitize/$kind}"
rm -rf "$reports"
mkdir -p "$reports"

# halt_on_error: the first report ends the process, so it cannot be lost in what follows and a
# sanitized meshd that hit one dies visibly (its test fails) instead of running on in a bad state.
# log_path: each process writes <reports>/report.<pid>.
# detect_leaks=0 by default: LeakSanitizer needs ptrace (not available in most containers: it then
# aborts every process at exit), and the Swift runtime's metadata caches and NIO's per-thread
# singletons are deliberately never freed, which it reports as leaks. SANITIZE_LEAKS=1 turns it on.
common="halt_on_error=1:log_path=$reports/report:external_symbolizer_path=$symbolizer"
if [ "$kind" = address ]; then
  export ASAN_OPTIONS="$common:detect_leaks=${SANITIZE_LEAKS:-0}:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1"
  export ASAN_SYMBOLIZER_PATH="$symbolizer"
else
  export TSAN_OPTIONS="$common:second_deadlock_stack=1:history_size=4"
  # Races reported inside code we do not build with TSan; each entry says why it is not ours.
  supp="$(pwd)/scripts/tsan-suppressions.txt"
  if [ -f "$supp" ]; then export TSAN_OPTIONS="$TSAN_OPTIONS:suppressions=$supp"; fi
fi

jobs=()
[ -n "${SANITIZE_JOBS:-}" ] && jobs=(-j "$SANITIZE_JOBS")
started=$(date +%s)
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch" "${jobs[@]}"
built=$(date +%s)
status=0
swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" "$@" || status=$?
finished=$(date +%s)

found=$(find "$reports" -type f -name 'report.*' | sort)
echo "sanitize.sh: $kind: build $((built - started)) s, tests $((finished - built)) s, swift test exit $status"
if [ -n "$found" ]; then
  echo "sanitize.sh: $(echo "$found" | wc -l) sanitizer report(s) in $reports:"
  for file in $found; do
    echo "=== $file"
    cat "$file"
  done
  exit 1
fi
echo "sanitize.sh: no $kind sanitizer reports"
exit "$status"
