# The Debian packages the test suite needs (sourced by test.sh and sanitize.sh, not run).
#
# install_test_packages WHO : installs whichever of them is missing, with one `apt-get update`
# first; WHO names the calling script in the one line it prints.

install_test_packages() {
  local need=()
  command -v openssl >/dev/null || need+=(openssl)
  dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
  dpkg -s libsystemd-dev >/dev/null 2>&1 || need+=(libsystemd-dev)
  # libpq, the role probe's PostgreSQL client (CLibPQ).
  dpkg -s libpq-dev >/dev/null 2>&1 || need+=(libpq-dev)
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
  # PatroniTests run a real etcd and a real Patroni managing PostgreSQL.
  command -v patroni >/dev/null || need+=(patroni)
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v etcdctl >/dev/null || need+=(etcd-client)
  if [ ${#need[@]} -gt 0 ]; then
    echo "$1: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}
