#!/usr/bin/env bash
# Installs what the tests need (Debian packages), builds, and runs the whole test suite.
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter MeshConfigTests]
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/test-packages.sh
install_test_packages test.sh

swift build --build-tests
# One test process at a time: the multi-process tests start several meshd, PostgreSQL and openssl
# processes each, and two such suites at once on a 2-core machine starve each other (a tunnel
# pushing 64 MB through 1,000 streams in a debug build was seen to go quiet past its 3 s liveness).
swift test --skip-build "$@"
