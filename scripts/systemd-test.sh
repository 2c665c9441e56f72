#!/usr/bin/env bash
# Tests the Debian package under a real systemd: boots a Debian 12 container (systemd-nspawn,
# systemd as PID 1, its own network namespace with only a loopback), installs the .deb there and
# checks socket activation, Type=notify, the watchdog, reload, an upgrade without a refused
# connection, and the journal. Every check prints a PASS or FAIL line.
#
# Usage: scripts/systemd-test.sh [--skip-build] [--deb FILE --upgrade-deb FILE] [--require]
#   (no option)     builds two packages with scripts/package.sh: the release build, then the same
#                   binaries as a higher version for the upgrade
#   --skip-build    passed to scripts/package.sh: package the release binaries already built
#   --deb FILE --upgrade-deb FILE
#                   test these packages instead (the second a higher version of the first)
#   --require       a machine that cannot boot the container is a failure, not a skip
#   --keep-logs     keep the run directory (logs, journal) even when everything passed
# Exit status: 0 every check passed, 1 a check failed, 77 skipped (the reason printed), 2 usage.
#
# Needs root, systemd-nspawn (systemd-container) and debootstrap (scripts/test-packages.sh
# installs both). The root file system is debootstrapped once from the Debian mirror this
# machine's apt sources name and cached in /var/cache/tunnelmesh-test (SYSTEMD_TEST_CACHE),
# keyed by its package list; each run boots it read-only under a throwaway tmpfs overlay.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
. scripts/systemd-test/rootfs.sh
. scripts/systemd-test/container.sh

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "systemd-test.sh: $*" >&2; exit 2; }

skip_build=()
deb1=""
deb2=""
require=0
keep_logs=0
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-build) skip_build=(--skip-build); shift ;;
    --deb) [ $# -ge 2 ] || die "--deb needs a file"; deb1="$2"; shift 2 ;;
    --upgrade-deb) [ $# -ge 2 ] || die "--upgrade-deb needs a file"; deb2="$2"; shift 2 ;;
    --require) require=1; shift ;;
    --keep-logs) keep_logs=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (try --help)" ;;
  esac
done
if [ -n "$deb1$deb2" ] && { [ -z "$deb1" ] || [ -z "$deb2" ]; }; then
  die "--deb and --upgrade-deb go together (the second is installed over the first)"
fi
for deb in $deb1 $deb2; do
  [ -f "$deb" ] || die "--deb/--upgrade-deb: no file $deb"
done

# Checks and phases ------------------------------------------------------------------------------

passed=0
failed=0
pass() { echo "PASS  $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
note() { echo "      $*"; }
# abort WHAT : a failure the later checks cannot go on from.
abort() { fail "$*"; exit 1; }
# check DESCRIPTION CMD... : PASS when CMD exits 0, else FAIL with the end of its output.
check() {
  local what="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    pass "$what"
  else
    fail "$what: $(printf '%s' "$out" | tail -n 5 | tr '\n' ' ' | cut -c1-400)"
  fi
}

phase_names=()
phase_seconds=()
phase_name=""
phase_started=$SECONDS
phase() {
  if [ -n "$phase_name" ]; then
    phase_names+=("$phase_name")
    phase_seconds+=($((SECONDS - phase_started)))
  fi
  phase_name="$1"
  phase_started=$SECONDS
  [ -n "$1" ] && echo "== $1"
}

# skip REASON : this machine cannot run the tests; says why and exits 77 (1 with --require).
skip() {
  echo "systemd-test.sh: SKIPPED: $*"
  [ "$require" -eq 1 ] && { echo "systemd-test.sh: --require: a skip is a failure"; exit 1; }
  exit 77
}

# wait_until SECONDS CMD... : polls CMD every 0.2 s until it succeeds; 1 if it never did.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

# What the tests look at inside the container -----------------------------------------------------

share_in=/srv/tunnelmesh-test
client() { cx /usr/bin/python3 "$share_in/echo-client.py" "$@"; }
meshd_prop() { cx systemctl show --property="$1" --value meshd.service; }
meshd_is() { [ "$(cx systemctl is-active meshd.service)" = "$1" ]; }
# ActiveState/SubState (`show --value` prints properties in its own order, not the one asked).
meshd_state() { echo "$(meshd_prop ActiveState)/$(meshd_prop SubState)"; }
# The socket unit systemd listens on ADDRESS with (generated, so found rather than named).
socket_unit_for() {
  cx systemctl list-sockets --all --no-legend --plain | awk -v a="$1" '$1 == a { print $2; exit }'
}
# control_answers [meshctl options] : the agent answered `meshctl status`, whatever it said.
control_answers() {
  local rc=0
  cx meshctl "$@" status --json >/dev/null 2>&1 || rc=$?
  # 0 all peers up, 1 degraded: both are answers; 3 is "agent unreachable".
  [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ]
}
# journal_has UNIT TEXT (read whole: `journalctl | grep -q` under pipefail fails on SIGPIPE).
journal_has() { grep -q -- "$2" <<<"$(cx journalctl --no-pager --output=cat -u "$1")"; }

# Preconditions: what decides between running and skipping ---------------------------------------

[ "$(id -u)" -eq 0 ] || skip "not root (systemd-nspawn needs root to boot a container)"
for tool in systemd-nspawn debootstrap nsenter dpkg-deb curl; do
  command -v "$tool" >/dev/null || skip "no $tool on this machine (scripts/test-packages.sh installs it)"
done
if ! grep -q -E ' /sys/fs/cgroup(/unified|/systemd)? cgroup2? ' /proc/self/mounts; then
  skip "no cgroup hierarchy systemd can use at /sys/fs/cgroup (neither cgroup2 nor a name=systemd v1 hierarchy is mounted)"
fi

run="$(mktemp -d /var/tmp/tunnelmesh-systemd-test.XXXXXX)"
share="$run/share"
mkdir -p "$share/debs"
cleanup() {
  if [ -n "$CONTAINER_NSPAWN_PID" ]; then
    cx journalctl --no-pager >"$run/journal.txt" 2>&1 || true
    container_stop
  fi
  if [ "$failed" -eq 0 ] && [ "$keep_logs" -eq 0 ]; then
    rm -rf "$run"
  else
    echo "systemd-test.sh: logs, the container's journal and console are in $run"
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The packages -------------------------------------------------------------------------------------

phase "packages"
if [ -z "$deb1" ]; then
  [ -x scripts/package.sh ] || die "no scripts/package.sh to build the package with (or pass --deb and --upgrade-deb)"
  . scripts/test-packages.sh
  install_package_tools systemd-test.sh
  # Two versions of the same binaries: the upgrade replaces the files and restarts meshd all the
  # same. --fast (xz -1) because these packages live for one run. package.sh prints the .deb last.
  built() { tail -n 1 "$run/package-$1.log"; }
  scripts/package.sh --output "$share/debs" --version 0.1.0+systemdtest.1 --fast "${skip_build[@]}" \
    2>&1 | tee "$run/package-1.log" || abort "scripts/package.sh failed (its output is above)"
  scripts/package.sh --output "$share/debs" --version 0.1.0+systemdtest.2 --fast --skip-build \
    2>&1 | tee "$run/package-2.log" || abort "scripts/package.sh --skip-build failed (its output is above)"
  deb1="$(built 1)"
  deb2="$(built 2)"
else
  cp "$deb1" "$deb2" "$share/debs/"
  deb1="$share/debs/$(basename "$deb1")"
  deb2="$share/debs/$(basename "$deb2")"
fi
version1="$(dpkg-deb --field "$deb1" Version)" || die "$deb1: not a Debian package"
version2="$(dpkg-deb --field "$deb2" Version)" || die "$deb2: not a Debian package"
dpkg --compare-versions "$version2" gt "$version1" || die "the upgrade package ($version2) is not newer than the first ($version1)"
echo "packages: $(basename "$deb1"), $(basename "$deb2")"
cp scripts/systemd-test/echo-client.py "$share/"
chmod -R a+rX "$share"

# The root file system: systemd, what the tests run inside, and whatever the package depends on,
# so that installing it needs no network (the container has none).
phase "root file system"
root_packages=(systemd systemd-sysv dbus iproute2 procps python3 socat openssl)
# Depends and Pre-Depends of both packages, versions and alternatives dropped (the first kept).
for deb in "$deb1" "$deb2"; do
  for field in Depends Pre-Depends; do
    while read -r name; do
      [ -n "$name" ] && root_packages+=("$name")
    done < <(dpkg-deb --field "$deb" "$field" | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g')
  done
done
rootfs_prepare "${root_packages[@]}"
case $? in
  0) ;;
  3) skip "$ROOTFS_SKIP" ;;
  *) abort "building the root file system (debootstrap)" ;;
esac

phase "boot"
container_boot "$ROOTFS" "$run" "$share"
case $? in
  0) ;;
  # The pristine root failed to boot before anything of ours ran in it: this machine cannot.
  3) skip "$CONTAINER_SKIP" ;;
  *) abort "booting the container" ;;
esac
failed_at_boot="$(cx systemctl list-units --failed --plain --no-legend | awk '{ print $1 }' | sort)"
[ -n "$failed_at_boot" ] && note "units failed at boot before the package (not counted): $(echo $failed_at_boot)"

# 1. Install ---------------------------------------------------------------------------------------

phase "1. install"
apt_install() {
  # Bounded: postinst's try-restart waits for meshd's stop (TimeoutStopSec=30s) and start.
  cx timeout 300 env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confold "$share_in/debs/$(basename "$1")"
}
if apt_install "$deb1" >"$run/install.log" 2>&1; then
  pass "apt-get install ./$(basename "$deb1") with no network (its dependencies were in the root)"
else
  abort "apt-get install ./$(basename "$deb1"): $(tail -n 5 "$run/install.log" | tr '\n' ' ')"
fi
check "user meshd exists" cx getent passwd meshd
unit_file="$(meshd_prop FragmentPath)"
packaged_unit="$(dpkg-deb --fsys-tarfile "$deb1" | tar -xO ".$unit_file" 2>/dev/null)"
# Unconfigured, the only drop-in is the generator's: no node is named, so meshd.service must not start.
no_node_dropin=/run/systemd/generator/meshd.service.d/50-no-node-named.conf
if [ -n "$packaged_unit" ] && [ "$(cx cat "$unit_file")" = "$packaged_unit" ] && [ "$(meshd_prop DropInPaths)" = "$no_node_dropin" ]; then
  pass "systemctl cat meshd.service is the packaged unit ($unit_file) plus the generator's no-node drop-in"
else
  fail "meshd.service comes from ${unit_file:-nowhere}, not the package's file, or its drop-ins are not just $no_node_dropin: $(meshd_prop DropInPaths)"
fi
if cx systemctl start meshd.service && meshd_is inactive && [ "$(meshd_prop ConditionResult)" = no ]; then
  pass "systemctl start meshd on a node with no name: skipped by the drop-in's condition, not failed"
else
  fail "systemctl start meshd with no node named: $(cx systemctl is-active meshd.service), ConditionResult=$(meshd_prop ConditionResult)"
fi
failed_now="$(cx systemctl list-units --failed --plain --no-legend | awk '{ print $1 }' | sort)"
new_failures="$(comm -13 <(echo "$failed_at_boot") <(echo "$failed_now") | grep . || true)"
if [ -z "$new_failures" ]; then
  pass "the unconfigured install left no failed unit (meshd.service $(cx systemctl is-active meshd.service))"
else
  fail "the unconfigured install left failed units: $(echo $new_failures)"
fi

# 2. Configure two nodes; the generator writes app1's sockets -------------------------------------

phase "2. configure"
# app1 runs under systemd from the package; db1, the peer serving echo, is a transient unit of
# its own (systemd-run): a second meshd with its own control socket, stopped with the container.
cat >"$share/mesh.json" <<'EOF'
{
  "mesh": "systemdtest",
  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
  "tunnel": { "ping_interval": "1s", "dead_after": 3, "backoff_max": "1s" },
  "nodes": {
    "app1": { "address": "127.0.1.1:7443" },
    "db1": { "address": "127.0.1.2:7443", "control": "/run/meshd-db1/control.sock" }
  },
  "services": {
    "echo": { "on": { "db1": "127.0.0.1:17001" }, "allow": ["app1"] }
  },
  "forwards": [
    { "on": "app1", "listen": "127.0.0.1:15001", "to": "echo@db1" }
  ]
}
EOF
# The reload's mesh.json: one more forward.
sed 's#^  "forwards": \[#&\n    { "on": "app1", "listen": "127.0.0.1:15002", "to": "echo@db1" },#' \
  "$share/mesh.json" >"$share/mesh-reload.json"
chmod a+r "$share"/*.json
configure() {
  # The CA stays on "the CA host" (/root/pki); each node gets the CA, the CRL and its own pair.
  cx meshctl pki init --mesh systemdtest --dir /root/pki \
    && cx meshctl pki issue app1 --dir /root/pki && cx meshctl pki issue db1 --dir /root/pki \
    && cx install -d -m 0750 -o root -g meshd /etc/meshd/pki \
    && cx install -m 0640 -o root -g meshd /root/pki/ca.pem /root/pki/crl.pem /root/pki/app1.pem \
      /root/pki/app1.key /root/pki/db1.pem /root/pki/db1.key /etc/meshd/pki/ \
    && cx install -m 0640 -o root -g meshd "$share_in/mesh.json" /etc/meshd/mesh.json \
    && cx sh -c 'printf "MESHD_NODE=app1\n" >/etc/meshd/meshd.env && chgrp meshd /etc/meshd/meshd.env && chmod 0640 /etc/meshd/meshd.env' \
    && cx meshctl check /etc/meshd/mesh.json --node app1
}
check "mesh.json for app1 and db1, certificates from meshctl pki, MESHD_NODE=app1 (meshctl check passes)" configure
check "systemctl daemon-reload" cx systemctl daemon-reload
check "with MESHD_NODE set, the generator's no-node drop-in is gone" test -z "$(meshd_prop DropInPaths)"
mesh_socket="$(cx systemctl cat meshd.socket 2>&1)"
if grep -q '^ListenStream=127.0.1.1:7443$' <<<"$mesh_socket" && grep -q '^FileDescriptorName=mesh$' <<<"$mesh_socket"; then
  pass "the generator wrote meshd.socket for app1's tunnel listener ($(head -n 1 <<<"$mesh_socket" | sed 's/^# //'))"
else
  fail "meshd.socket is not app1's tunnel listener 127.0.1.1:7443: $(head -c 300 <<<"$mesh_socket" | tr '\n' ' ')"
fi
# As README's "Install" says: enabled and started; starting meshd starts its sockets first.
check "systemctl enable --now meshd.service" cx systemctl enable --now meshd.service
forward_socket="$(socket_unit_for 127.0.0.1:15001)"
if [ -n "$forward_socket" ] && [ "$(cx systemctl is-active "$forward_socket")" = active ] \
  && [ "$(cx systemctl is-active meshd.socket)" = active ]; then
  pass "systemd listens on 127.0.1.1:7443 (meshd.socket) and 127.0.0.1:15001 ($forward_socket)"
else
  fail "the sockets are not listening: $(cx systemctl list-sockets --all --no-legend --plain | grep meshd | tr '\n' ';')"
fi
check "peer db1 (meshd, transient unit) and the echo service start" cx sh -c '
  systemd-run --quiet --unit=tm-echo /usr/bin/socat TCP-LISTEN:17001,bind=127.0.0.1,reuseaddr,fork PIPE &&
  systemd-run --quiet --unit=tm-peer-db1 --property=User=meshd --property=Group=meshd \
    --property=RuntimeDirectory=meshd-db1 /usr/bin/meshd --config /etc/meshd/mesh.json --node db1'
wait_until 30 control_answers --control /run/meshd-db1/control.sock \
  || fail "db1's control socket did not answer within 30 s: $(cx journalctl --no-pager -u tm-peer-db1 | tail -n 5)"

# 3. Socket activation ------------------------------------------------------------------------------

phase "3. socket activation"
# (systemctl's warning that the sockets can still activate meshd is what this phase wants.)
cx systemctl stop meshd.service 2>/dev/null
if meshd_is inactive && [ "$(cx systemctl is-active "$forward_socket")" = active ]; then
  pass "meshd.service stopped, its sockets still listening"
else
  fail "after systemctl stop meshd: meshd.service $(cx systemctl is-active meshd.service), $forward_socket $(cx systemctl is-active "$forward_socket")"
fi
# The client alone starts meshd: nothing else here starts it. It waits for meshd to start, dial
# db1 and carry its stream; meshd keeps a first client waiting up to handshake_timeout (5 s).
client once 127.0.0.1:15001 --timeout 30 >"$run/activation.out" 2>&1 &
activation_client=$!
if wait_until 20 meshd_is active; then
  pass "a connection to the forward 127.0.0.1:15001 started meshd.service (socket activation)"
else
  fail "meshd.service was not started by a connection within 20 s: $(meshd_prop ActiveState)"
fi
wait "$activation_client"
if grep -q '^ok' "$run/activation.out"; then
  pass "the client that connected before meshd ran was served: $(cat "$run/activation.out")"
else
  fail "the client that connected before meshd ran was not served: $(cat "$run/activation.out")"
fi
if journal_has meshd.service "adopting fd"; then
  pass "meshd adopted the sockets systemd passed ($(cx journalctl --no-pager --output=cat -u meshd.service | grep -c 'adopting fd') listeners)"
else
  fail "meshd's journal has no 'adopting fd' line: it bound the listeners itself"
fi

# 4. Type=notify ------------------------------------------------------------------------------------

phase "4. Type=notify"
cx systemctl stop meshd.service 2>/dev/null
if cx systemctl start meshd.service; then
  # Read at once: with Type=notify, start returned only after READY=1.
  state="$(meshd_state)"
  status_text="$(meshd_prop StatusText)"
  if control_answers; then answered=yes; else answered=no; fi
  if [ "$state" = active/running ] && [ -n "$status_text" ] && [ "$answered" = yes ]; then
    pass "systemctl start returned with meshd $state, status \"$status_text\", control socket answering"
  else
    fail "right after systemctl start: $state, status \"$status_text\", control socket answering: $answered"
  fi
else
  fail "systemctl start meshd.service failed: $(cx journalctl --no-pager -u meshd.service | tail -n 5)"
fi
check "meshd.service is Type=notify" test "$(meshd_prop Type)" = notify
if wait_until 15 cx meshctl status; then
  pass "app1's tunnel to db1 is up (meshctl status exit 0)"
else
  fail "app1's peers are not all up 15 s after start: $(cx meshctl status 2>&1 | tr '\n' ' ')"
fi

# 5. Watchdog ---------------------------------------------------------------------------------------

phase "5. watchdog"
restarts_before="$(meshd_prop NRestarts)"
frozen_pid="$(meshd_prop MainPID)"
check "meshd.service has WatchdogSec=10s" test "$(meshd_prop WatchdogUSec)" = 10s
frozen_at=$SECONDS
# Never `kill -STOP 0`: that would stop this script's own process group.
if [ "${frozen_pid:-0}" -gt 0 ]; then
  cx kill -STOP "$frozen_pid"
else
  fail "meshd.service has no main process to freeze"
fi
sleep 2
# A client during the frozen phase: the kernel queues it on systemd's socket.
client once 127.0.0.1:15001 --timeout 45 >"$run/frozen.out" 2>&1 &
frozen_client=$!
restarted() {
  local pid
  pid="$(meshd_prop MainPID)"
  [ "$pid" != 0 ] && [ "$pid" != "$frozen_pid" ] && meshd_is active
}
if wait_until 40 restarted; then
  pass "the frozen meshd (SIGSTOP, pid $frozen_pid) was killed and restarted after $((SECONDS - frozen_at)) s (pid $(meshd_prop MainPID))"
else
  fail "the frozen meshd was not restarted within 40 s: $(cx systemctl show --property=ActiveState,SubState,MainPID,Result meshd.service | tr '\n' ' ')"
fi
restarts_after="$(meshd_prop NRestarts)"
check "NRestarts went from $restarts_before to $((restarts_before + 1))" test "$restarts_after" = $((restarts_before + 1))
check "the journal shows the watchdog timeout" journal_has meshd.service "Watchdog timeout"
wait "$frozen_client"
if grep -q '^ok' "$run/frozen.out"; then
  pass "a client connecting while meshd was frozen was served after the restart: $(cat "$run/frozen.out")"
else
  fail "a client connecting while meshd was frozen was not served: $(cat "$run/frozen.out")"
fi
check "systemd held the sockets throughout ($forward_socket and meshd.socket still active)" \
  test "$(cx systemctl is-active meshd.socket "$forward_socket" | sort -u)" = active

# 6. Reload ----------------------------------------------------------------------------------------

phase "6. reload"
reload_pid="$(meshd_prop MainPID)"
cx install -m 0640 -o root -g meshd "$share_in/mesh-reload.json" /etc/meshd/mesh.json
check "systemctl reload meshd" cx systemctl reload meshd.service
if wait_until 15 client once 127.0.0.1:15002 --timeout 5; then
  pass "the forward the reload added (127.0.0.1:15002) serves"
else
  fail "the forward the reload added (127.0.0.1:15002) does not serve: $(client once 127.0.0.1:15002 --timeout 5)"
fi
check "the old forward still serves" client once 127.0.0.1:15001 --timeout 10
reload_status="$(cx meshctl status --json 2>/dev/null)"
if /usr/bin/python3 -c 'import json, sys; r = json.load(sys.stdin)["last_reload"]; sys.exit(0 if r["ok"] and r.get("summary") else 1)' <<<"$reload_status" 2>/dev/null; then
  pass "meshctl status shows the reload: $(/usr/bin/python3 -c 'import json, sys; r = json.load(sys.stdin)["last_reload"]; print(r["at"], r["summary"])' <<<"$reload_status")"
else
  fail "meshctl status does not show a successful reload: $(head -c 400 <<<"$reload_status")"
fi
state="$(meshd_state), pid $(meshd_prop MainPID)"
check "meshd.service is back to active/running, same process ($state)" test "$state" = "active/running, pid $reload_pid"
# README's "Regenerate": the new forward gets its socket unit, which the next restart of meshd
# (the upgrade's) starts; until then meshd holds the address itself.
check "systemctl daemon-reload after the new mesh.json" cx systemctl daemon-reload
new_forward_socket="$(socket_unit_for 127.0.0.1:15002)"
if [ -n "$new_forward_socket" ]; then
  pass "the generator wrote $new_forward_socket for the new forward ($(cx systemctl is-active "$new_forward_socket") while meshd binds it)"
else
  fail "no socket unit for the new forward 127.0.0.1:15002 after daemon-reload"
fi

# 7. Upgrade ---------------------------------------------------------------------------------------

phase "7. upgrade"
upgrade_pid="$(meshd_prop MainPID)"
cx rm -f /run/tm-upgrade-done
client loop 127.0.0.1:15001 --until /run/tm-upgrade-done --timeout 30 --max-seconds 180 >"$run/upgrade-loop.json" 2>&1 &
loop_client=$!
client hold 127.0.0.1:15002 --until /run/tm-upgrade-done --timeout 10 --max-seconds 180 >"$run/upgrade-hold.json" 2>&1 &
hold_client=$!
sleep 2
upgrade_started=$SECONDS
if apt_install "$deb2" >"$run/upgrade.log" 2>&1; then
  pass "apt-get install ./$(basename "$deb2") over $version1 ($((SECONDS - upgrade_started)) s)"
else
  fail "apt-get install ./$(basename "$deb2"): $(tail -n 5 "$run/upgrade.log" | tr '\n' ' ')"
fi
wait_until 30 meshd_is active
sleep 3
cx touch /run/tm-upgrade-done
wait "$loop_client" "$hold_client"
loop_result="$(cat "$run/upgrade-loop.json")"
loop_counts="$(/usr/bin/python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["attempts"], r["ok"], r["refused"])' <<<"$loop_result" 2>/dev/null)"
read -r attempts served refused <<<"${loop_counts:-0 0 -1}"
if [ "$attempts" -gt 0 ] && [ "$refused" -eq 0 ]; then
  pass "no connection refused during the upgrade: $attempts attempts, $served served, 0 refused ($loop_result)"
else
  fail "connections during the upgrade: $loop_result"
fi
[ "$served" = "$attempts" ] || note "not every attempt was served: $loop_result"
# The old meshd drains open streams for up to tunnel.shutdown_grace (10 s) before it exits, and
# new connections wait in the socket's queue meanwhile: that is the slowest attempt above.
# A stream open across the restart cannot survive it (its socket is the old process's); it must
# end with a reset, never a clean close a client could take for the end of the data.
held="$(cat "$run/upgrade-hold.json")"
case "$(/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["ended"])' <<<"$held" 2>/dev/null)" in
  reset | open) pass "the stream open across the upgrade was not silently cut: $held" ;;
  *) fail "the stream open across the upgrade: $held" ;;
esac
installed="$(cx dpkg-query --showformat='${Version}' --show tunnelmesh)"
check "dpkg has $version2 installed" test "$installed" = "$version2"
new_pid="$(meshd_prop MainPID)"
running_binary() {
  # The process runs the file now at /usr/bin/meshd, not the one the upgrade replaced.
  [ "$new_pid" != 0 ] && [ "$new_pid" != "$upgrade_pid" ] \
    && [ "$(cx stat -L --format=%d:%i "/proc/$new_pid/exe")" = "$(cx stat --format=%d:%i /usr/bin/meshd)" ]
}
check "the upgraded meshd runs (pid $upgrade_pid -> $new_pid, /proc/$new_pid/exe is the new /usr/bin/meshd)" running_binary
check "the restart started the new forward's socket unit ($new_forward_socket active)" \
  test "$(cx systemctl is-active "$new_forward_socket")" = active
check "the upgraded meshd adopted it (journal: listener forward-15002 adopting fd)" cx sh -c \
  "journalctl --no-pager --output=cat _PID=$new_pid | grep -q 'listener forward-15002: adopting fd'"

# 8. Journal ---------------------------------------------------------------------------------------

phase "8. journal"
check "journal: meshd's startup (READY=1)" journal_has meshd.service "systemd: READY=1"
check "journal: the reload (reloaded /etc/meshd/mesh.json)" journal_has meshd.service "reloaded /etc/meshd/mesh.json"
check "journal: the watchdog's kill and the restart" cx sh -c \
  'journalctl --no-pager --output=cat -u meshd.service | grep -A20 "Watchdog timeout" | grep -q "Scheduled restart job"'

phase ""
echo
echo "systemd-test.sh: $passed passed, $failed failed"
for i in "${!phase_names[@]}"; do
  printf '  %-22s %4d s\n' "${phase_names[$i]}" "${phase_seconds[$i]}"
done
[ "$failed" -eq 0 ]
