# The Debian packages the test suite needs (sourced by test.sh, sanitize.sh and package-check.sh,
# not run).
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
  # FailoverTests run Patroni and etcd; Debian's patroni brings the Python libraries (psycopg2,
  # which the failover writer uses too), python3-venv the venv for the Patroni they run (below).
  command -v patroni >/dev/null || need+=(patroni)
  command -v etcd >/dev/null || need+=(etcd-server)
  command -v etcdctl >/dev/null || need+=(etcd-client)
  dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
  # `cloud-init schema` validates examples/ec2/cloud-init.yaml offline (CloudInitExampleTests).
  command -v cloud-init >/dev/null || need+=(cloud-init)
  # scripts/systemd-test.sh boots a Debian 12 container (systemd-nspawn) from a debootstrap root.
  command -v systemd-nspawn >/dev/null || need+=(systemd-container)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  install_missing "$1" "${need[@]}"
  install_test_patroni "$1"
}

# install_missing WHO PACKAGE... : one `apt-get update`, then installs the packages, if any.
install_missing() {
  local who="$1"
  shift
  [ $# -gt 0 ] || return 0
  echo "$who: installing $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The Patroni FailoverTests run: 3.0.4 from PyPI, on Debian's Python and libraries. Debian 12's
# 3.0.2 can overwrite a new leader's key after a partition heals (Patroni PR #2689, fixed in
# 3.0.3), which FailoverTests saw as two primaries in turn and lost commits; README's "Automatic
# failover" says the same to operators.
TEST_PATRONI_VERSION=3.0.4
TEST_PATRONI_BIN=/opt/tunnelmesh-test/patroni-$TEST_PATRONI_VERSION/bin
install_test_patroni() {
  [ -x "$TEST_PATRONI_BIN/patroni" ] && return 0
  echo "$1: installing Patroni $TEST_PATRONI_VERSION (PyPI) into ${TEST_PATRONI_BIN%/bin}"
  /usr/bin/python3 -m venv --system-site-packages "${TEST_PATRONI_BIN%/bin}"
  "$TEST_PATRONI_BIN/pip" install -q "patroni==$TEST_PATRONI_VERSION"
}

# install_package_tools WHO : what scripts/package.sh and scripts/package-check.sh need to build
# and check the .deb (dpkg-deb is dpkg's own): dpkg-shlibdeps from dpkg-dev, strip and objdump
# from binutils, lintian.
install_package_tools() {
  local need=()
  command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
  { command -v strip && command -v objdump; } >/dev/null || need+=(binutils)
  command -v lintian >/dev/null || need+=(lintian)
  # man(1) checks the pages render without a groff warning.
  command -v man >/dev/null || need+=(man-db)
  install_missing "$1" "${need[@]}"
}
