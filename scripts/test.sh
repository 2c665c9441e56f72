#!/usr/bin/env bash
# Installs what the tests need (Debian packages), builds, and runs the test suite.
# Usage: scripts/test.sh [--quick] [extra `swift test` arguments, e.g. --filter MeshConfigTests]
#   (no flag)  the whole suite: what CI and README mean by "the tests" (~5 min of tests on 2 cores).
#   --quick    everything but IntegrationTests: the unit targets (in-process only) and ProcessTests
#              (meshctl, one or two meshd, openssl, PostgreSQL, systemd tools, one at a time), under
#              3 minutes after a build; the multi-node scenarios (partitions, crash loops, the soak,
#              floods, the balancer end to end) are IntegrationTests and run only in the whole suite.
# The whole suite also builds the Debian package (scripts/package.sh: a static-runtime release
# build, started beside the tests at low priority so the two share the machine's idle time), checks
# it (scripts/package-check.sh: contents, lintian, dpkg install/upgrade/purge in an overlay root) and
# runs it under a real systemd in a container (scripts/systemd-test.sh; skipped, with the reason,
# where the container cannot boot).
set -euo pipefail
cd "$(dirname "$0")/.."

scope=()
if [ "${1:-}" = "--quick" ]; then
  scope=(--skip IntegrationTests)
  shift
fi

. scripts/test-packages.sh
install_test_packages test.sh

swift build --build-tests

whole=1
if [ ${#scope[@]} -gt 0 ] || [ $# -gt 0 ]; then whole=0; fi
packaging=""
if [ $whole -eq 1 ]; then
  install_package_tools test.sh
  # Two packages of one build, the second a newer version for systemd-test.sh's upgrade. The
  # release build (~11 min of CPU) runs at nice 19 beside the suite, which mostly waits on the
  # processes it starts, instead of after it.
  packaging="$(mktemp -d /tmp/tunnelmesh-package.XXXXXX)"
  # Its own session, so a failed suite stops the whole build (swift, swiftc, dpkg-deb) with it.
  # A scratch path of its own: `swift test` holds .build's lock for the whole run.
  setsid -w nice -n 19 bash -c 'scripts/package.sh --output "$1" --version 0.1.0+test.1 --fast --scratch-path .build-package \
    && scripts/package.sh --output "$1" --version 0.1.0+test.2 --fast --skip-build --scratch-path .build-package' _ "$packaging" \
    >"$packaging/package.log" 2>&1 &
  package_pid=$!
  trap 'pkill -s $package_pid 2>/dev/null || true; rm -rf "$packaging"' EXIT
fi

# One test process at a time: the multi-process tests start several meshd, PostgreSQL and openssl
# processes each, and two such suites at once on a 2-core machine starve each other (a tunnel
# pushing 64 MB through 1,000 streams in a debug build was seen to go quiet past its 3 s liveness).
swift test --skip-build "${scope[@]}" "$@"

if [ $whole -eq 0 ]; then
  echo "test.sh: not building or testing the package (the whole suite only: it is a release build)"
  exit 0
fi
echo "test.sh: waiting for the package build (scripts/package.sh, started beside the tests)"
if ! wait $package_pid; then
  cat "$packaging/package.log"
  echo "test.sh: scripts/package.sh failed (its output is above)" >&2
  exit 1
fi
debs=("$packaging"/tunnelmesh_0.1.0+test.1-1_*.deb "$packaging"/tunnelmesh_0.1.0+test.2-1_*.deb)
for deb in "${debs[@]}"; do
  [ -f "$deb" ] || { cat "$packaging/package.log"; echo "test.sh: no $deb after scripts/package.sh" >&2; exit 1; }
done
scripts/package-check.sh "${debs[0]}"
rc=0
scripts/systemd-test.sh --deb "${debs[0]}" --upgrade-deb "${debs[1]}" || rc=$?
case $rc in
  0) ;;
  77) echo "test.sh: scripts/systemd-test.sh was SKIPPED on this machine (the reason is above)" ;;
  *) exit "$rc" ;;
esac
