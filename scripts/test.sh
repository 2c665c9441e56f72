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
# MeshBalancerTests start real PostgreSQL servers (initdb, pg_basebackup) and run psql.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

swift build --build-tests
swift test --skip-build --parallel --num-workers 2 "$@"
