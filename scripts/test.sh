#!/usr/bin/env bash
# Installs what the tests need (Debian packages), builds, and runs the test suite.
# Usage: scripts/test.sh [--quick] [extra `swift test` arguments, e.g. --filter MeshConfigTests]
#   (no flag)  the whole suite: what CI and README mean by "the tests" (~5 min of tests on 2 cores).
#   --quick    everything but IntegrationTests: the unit targets (in-process only) and ProcessTests
#              (meshctl, one or two meshd, openssl, PostgreSQL, systemd tools, one at a time), under
#              3 minutes after a build; the multi-node scenarios (partitions, crash loops, the soak,
#              floods, the balancer end to end) are IntegrationTests and run only in the whole suite.
# The whole suite then runs scripts/systemd-test.sh: the Debian package (a release build) under a
# real systemd in a container; it is skipped, with the reason, where the container cannot boot.
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
# One test process at a time: the multi-process tests start several meshd, PostgreSQL and openssl
# processes each, and two such suites at once on a 2-core machine starve each other (a tunnel
# pushing 64 MB through 1,000 streams in a debug build was seen to go quiet past its 3 s liveness).
swift test --skip-build "${scope[@]}" "$@"

if [ ${#scope[@]} -gt 0 ] || [ $# -gt 0 ]; then
  echo "test.sh: not running scripts/systemd-test.sh (the whole suite only: it builds the release package)"
  exit 0
fi
rc=0
scripts/systemd-test.sh || rc=$?
case $rc in
  0) ;;
  77) echo "test.sh: scripts/systemd-test.sh was SKIPPED on this machine (the reason is above)" ;;
  *) exit "$rc" ;;
esac
