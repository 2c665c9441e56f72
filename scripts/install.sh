#!/usr/bin/env bash
# Installs tunnelmesh on this machine: release binaries (meshd, meshctl), meshd.service and the
# socket-unit generator, an example config in /etc/meshd (never overwriting one that is there), and
# the `meshd` service user.
#
# Usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--skip-build] [--from DIR]
#   --prefix DIR   where binaries go: DIR/bin (default /usr/local); the service's ExecStart and the
#                  generator's meshctl follow it
#   --destdir DIR  stage everything under DIR (for packaging): no user is created, systemd is not
#                  told; /etc paths land in DIR/etc
#   --skip-build   do not run `swift build -c release`; take the binaries already built there
#   --from DIR     take meshd and meshctl from DIR (implies --skip-build)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix=/usr/local
destdir=""
build=1
from=""

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; destdir="$2"; shift 2 ;;
    --destdir=*) destdir="${1#*=}"; shift ;;
    --skip-build) build=0; shift ;;
    --from) [ $# -ge 2 ] || die "--from needs a directory"; from="$2"; build=0; shift 2 ;;
    --from=*) from="${1#*=}"; build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (try --help)" ;;
  esac
done
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path, not $prefix" ;; esac
if [ -n "$destdir" ]; then
  mkdir -p "$destdir"
  destdir="$(cd "$destdir" && pwd)"
fi
if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root to install into / (or pass --destdir DIR to stage the files)"
fi

if [ "$build" -eq 1 ]; then
  # The Swift runtime is linked in, so the binaries run on hosts without a Swift toolchain
  # (they need only libc, libstdc++, libssl3, libsystemd0 and libpq5).
  echo "==> building release binaries (swift build -c release --static-swift-stdlib)"
  (cd "$repo" && swift build -c release --static-swift-stdlib --product meshd \
    && swift build -c release --static-swift-stdlib --product meshctl)
fi
if [ -z "$from" ]; then
  from="$(cd "$repo" && swift build -c release --static-swift-stdlib --show-bin-path)"
fi
for binary in meshd meshctl; do
  [ -x "$from/$binary" ] || die "no $binary in $from: build it (drop --skip-build) or pass --from DIR"
done

bindir="$destdir$prefix/bin"
unitdir="$destdir/etc/systemd/system"
# The administrator's generator directory: /lib/systemd/system-generators belongs to packages.
generatordir="$destdir/etc/systemd/system-generators"
confdir="$destdir/etc/meshd"

echo "==> binaries to $bindir"
install -d -m 0755 "$bindir"
install -m 0755 "$from/meshd" "$from/meshctl" "$bindir/"

# Writes $1 to $2 (mode $3) with the installed paths of meshd and meshctl (the repository's
# /usr/local/bin/meshd and /usr/bin/meshctl), replacing the file in one rename.
install_rewritten() {
  sed -e "s#/usr/local/bin/meshd#$prefix/bin/meshd#g" -e "s#/usr/bin/meshctl#$prefix/bin/meshctl#g" "$1" > "$2.tmp"
  chmod "$3" "$2.tmp"
  mv "$2.tmp" "$2"
}

echo "==> meshd.service to $unitdir, the socket-unit generator to $generatordir"
install -d -m 0755 "$unitdir" "$generatordir"
install_rewritten "$repo/units/meshd.service" "$unitdir/meshd.service" 0644
install_rewritten "$repo/units/meshd-generator" "$generatordir/meshd-generator" 0755
# Socket units of earlier versions, written by hand per node, would shadow the generated ones
# (/etc/systemd/system wins over the generator's directory).
for old in "$unitdir"/meshd*.socket; do
  [ -e "$old" ] || continue
  echo "    note: $old is left from an earlier install and overrides the generated unit; remove it (meshctl units shows what is generated)"
done

echo "==> example config to $confdir"
install -d -m 0750 "$confdir" "$confdir/pki"
# The example is app1's, with each node's control socket left at its default
# (/run/meshd/control.sock, in the unit's RuntimeDirectory; /etc is read-only to the agent).
sed -E 's/, *"control": *"[^"]*"//' "$repo/mesh.json" > "$confdir/mesh.json.example"
chmod 0640 "$confdir/mesh.json.example"
if [ -e "$confdir/mesh.json" ]; then
  echo "    kept the existing $confdir/mesh.json (the example is mesh.json.example)"
else
  install -m 0640 "$confdir/mesh.json.example" "$confdir/mesh.json"
fi
if [ -e "$confdir/meshd.env" ]; then
  echo "    kept the existing $confdir/meshd.env"
else
  printf '%s\n' '# This node'"'"'s name in mesh.json, for meshd and its socket-unit generator, e.g. MESHD_NODE=db1.' \
    '# Until it is set (or tls.cert names one certificate) no socket units are generated.' \
    '#MESHD_NODE=' \
    '# More options for meshd (meshd.service: ExecStart=... $MESHD_OPTS), e.g. --log-level debug.' \
    '#MESHD_OPTS=' > "$confdir/meshd.env"
  chmod 0640 "$confdir/meshd.env"
fi

if [ -n "$destdir" ]; then
  echo "==> --destdir: not creating the meshd user and not reloading systemd (the package's scripts should)"
else
  if ! getent passwd meshd >/dev/null; then
    echo "==> creating system user meshd"
    useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin meshd
  fi
  # The agent reads its config and keys through group meshd; only root writes them.
  chown root:meshd "$confdir" "$confdir/pki" "$confdir/mesh.json" "$confdir/mesh.json.example" "$confdir/meshd.env"
  find "$confdir/pki" -type f -exec chown root:meshd {} + -exec chmod 0640 {} +
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
fi

cat <<EOF

tunnelmesh installed. Next steps on this node:
  1. Put the mesh's CA, this node's certificate and key, and the CRL in /etc/meshd/pki/
     (on the CA host: meshctl pki issue NODE --dir pki; copy ca.pem, crl.pem, NODE.pem, NODE.key),
     then: chown root:meshd /etc/meshd/pki/*; chmod 0640 /etc/meshd/pki/*
  2. Edit /etc/meshd/mesh.json (the same file on every node) and name this node in
     /etc/meshd/meshd.env: MESHD_NODE=NAME. Check it: meshctl check /etc/meshd/mesh.json --node NAME
  3. Generate its socket units: systemctl daemon-reload (meshctl units shows what it writes)
  4. Start it: systemctl enable --now meshd.service
     (starting meshd starts its sockets first; at boot sockets.target starts them)
  5. Look: systemctl status meshd 'meshd*.socket'; meshctl status; journalctl -u meshd
     Reload after editing mesh.json or renewing certificates: systemctl reload meshd
     (a listener added or moved: systemctl daemon-reload, then systemctl restart meshd)
EOF
