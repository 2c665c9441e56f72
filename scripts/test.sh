#!/usr/bin/env bash
# Installs what the tests need (Debian packages), builds, and runs the whole test suite.
# Usage: scripts/test.sh [extra `swift test` arguments, e.g. --filter MeshConfigTests]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null || need+=(openssl)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
dpkg -s libsystemd-dev >/dev/null 2>&1 || need+=(libsystemd-dev)
# systemd-socket-activate and systemd-analyze, for MeshSystemdTests.
{ command -v systemd-socket-activate && command -v systemd-analyze; } >/dev/null || need+=(systemd)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v stunnel4 >/dev/null || need+=(stunnel4)
command -v socat >/dev/null || need+=(socat)
command -v ps >/dev/null || need+=(procps)
command -v curl >/dev/null || need+=(curl)
# `ip netns` for the network-namespace test bed (PartitionTests, IntegritySoakTests).
command -v ip >/dev/null || need+=(iproute2)
# MeshBalancerTests start real PostgreSQL servers (initdb, pg_basebackup) and run psql.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

swift build --build-tests
# One test process at a time: the multi-process tests start several meshd, PostgreSQL and openssl
# processes each, and two such suites at once on a 2-core machine starve each other (a tunnel
# pushing 64 MB through 1,000 streams in a debug build was seen to go quiet past its 3 s liveness).
swift test --skip-build "$@"
