#!/usr/bin/env bash
# Starts a local 3-node tunnelmesh from the top-level mesh.json on loopback addresses: a PostgreSQL
# primary (db1) and a streaming standby (db2), echo services, and app1 with the `pg` balancer. Shows
# traffic crossing the mesh, a write through `rw` and reads through `ro` landing on the standby,
# `meshctl backends` and the peer table, and stays up until Ctrl-C.
#   scripts/demo.sh           run the demo, keep it up
#   scripts/demo.sh --check   run the same steps, exit 0 when everything worked, 1 otherwise
#   scripts/demo.sh --failover [--check]   automatic failover instead (needs root): three database
#       nodes (PostgreSQL under Patroni, etcd, meshd) and app1, each in a network namespace, all their
#       node-to-node traffic through the mesh; a writer through `rw`, then every process on the
#       primary's node killed -9; prints how long writes were refused and how many acknowledged
#       commits were lost. --check exits 1 if writes never resumed or any acknowledged commit was lost.
#   DEMO_BUILD=debug scripts/demo.sh   use the debug build (quicker to build) instead of release
#   SWIFT_BUILD_FLAGS="--scratch-path DIR" scripts/demo.sh   build in DIR instead of .build
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
check=0 failover=0
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    --failover) failover=1 ;;
    *) echo "demo: unknown argument '$arg' (scripts/demo.sh [--failover] [--check])" >&2; exit 2 ;;
  esac
done

need=()
command -v openssl >/dev/null || need+=(openssl)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
dpkg -s libsystemd-dev >/dev/null 2>&1 || need+=(libsystemd-dev)
dpkg -s libpq-dev >/dev/null 2>&1 || need+=(libpq-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v socat >/dev/null || need+=(socat)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ $failover = 1 ]; then
  # Debian's patroni for its Python libraries; the Patroni that runs is the tests' (below).
  for pkg in patroni etcd-server etcd-client python3-psycopg2 python3-venv iproute2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "demo: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ $failover = 1 ]; then
  # Patroni $TEST_PATRONI_VERSION from PyPI in a venv, as the failover tests run it: Debian 12's 3.0.2
  # can overwrite a new leader's key after a partition heals (Patroni PR #2689).
  source "$top/scripts/test-packages.sh"
  install_test_patroni demo
fi

build=${DEMO_BUILD:-release}
# SWIFT_BUILD_FLAGS: extra `swift build` arguments, e.g. "--scratch-path .build-release".
read -r -a flags <<<"${SWIFT_BUILD_FLAGS:-}"
echo "demo: building $build binaries (first time takes a few minutes)"
swift build -c "$build" "${flags[@]}" --product meshd >/dev/null
swift build -c "$build" "${flags[@]}" --product meshctl >/dev/null
bin=$(swift build -c "$build" "${flags[@]}" --show-bin-path)

if [ $failover = 1 ]; then
  # The failover bed is the benchmark's (scripts/bench/failover-bed.sh): one round of its mesh leg.
  source "$top/scripts/bench/processes.sh"
  source "$top/scripts/bench/mesh-setup.sh"
  source "$top/scripts/bench/failover-bed.sh"
  [ "$(id -u)" = 0 ] || { echo "demo: --failover needs root (network namespaces; PostgreSQL runs as postgres)"; exit 2; }
  FO_ROOT=$top FO_BIN=$bin
  FO_STATE=$(mktemp -d /dev/shm/tunnelmesh-demo-failover.XXXXXX)
  chmod 755 "$FO_STATE"
  FO_RESULTS=$FO_STATE/results.jsonl
  FO_LOGS=$top/run/failover
  rm -rf "$FO_LOGS"
  trap 'fo_bed_destroy; bench_cleanup_processes; rm -rf "$FO_STATE"' EXIT
  trap 'exit 130' INT TERM HUP
  # demo_show LEG : the cluster as Patroni and as app1's balancer see it.
  demo_show() {
    local node
    for node in "${FO_DB_NODES[@]}"; do
      [ -n "$(ip netns pids "$(fo_ns "$node")" 2>/dev/null)" ] || continue
      echo "demo: patronictl list (on $node)"
      fo_as postgres "$node"
      timeout 10 "${FO_AS[@]}" "$FO_PATRONI_BIN/patronictl" -c "$FO_STATE/$node/etc/patroni.yml" list 2>&1 | sed 's/^/  /' || true
      break
    done
    echo "demo: meshctl backends (on app1)"
    "$FO_BIN/meshctl" --config "$FO_STATE/mesh.json" --node app1 backends 2>&1 | sed 's/^/  /' || true
  }
  FO_HOOK_BEFORE_KILL=demo_show FO_HOOK_RESUMED=demo_show
  echo "demo: network namespaces db1 db2 db3 app1 on a bridge (10.231.13.1-4); on each database node"
  echo "demo: PostgreSQL under Patroni and etcd on the node's own 127.0.1.N, reachable from the others only"
  echo "demo: through meshd (same_address services); a writer on app1 inserts a row every 20 ms through rw"
  fo_bed_create || { echo "demo: could not create the network namespaces"; exit 1; }
  if ! fo_round mesh 1; then
    echo "demo: the cluster did not come up (logs in run/failover)"; exit 1
  fi
  echo "demo: mesh.json of this bed: $FO_LOGS/mesh.json"
  cp "$FO_STATE/mesh.json" "$FO_LOGS/mesh.json" 2>/dev/null || true
  status=0
  "$FO_PYTHON" - "$FO_LAST" <<'PY' || status=$?
import json, sys
r = json.loads(sys.argv[1])
s = lambda v: "never" if v is None else f"{v:.1f} s"
print(f"demo: killed -9 every process on {r['killed']} (the primary{', also etcd' + chr(39) + 's leader' if r['etcd_leader_killed'] else ''})")
if r["writes_refused"] is None:
    print("demo: writes did NOT resume within 120 s")
else:
    print(f"demo: writes refused for {s(r['writes_refused'])}: Patroni promoted {r['new_primary']} {s(r['kill_to_promotion'])} after the kill, "
          f"the rw balancer routed the first write {s(r['after_promotion'])} later")
print(f"demo: {r['acked_lost']} acknowledged commits lost ({r['acked']} acknowledged; acks per node: "
      + ", ".join(f"{k} {v}" for k, v in sorted(r["acks_per_node"].items())) + ")")
if r["lost_ids"]:
    print(f"demo: lost ids: {r['lost_ids']}")
sys.exit(0 if r["writes_refused"] is not None and r["acked_lost"] == 0 and len(r["nodes_after_kill"]) == 1 else 1)
PY
  echo "demo: logs of every node in run/failover"
  if [ $check = 1 ]; then
    if [ $status = 0 ]; then echo "demo: check passed"; exit 0; else echo "demo: check FAILED"; exit 1; fi
  fi
  exit 0
fi

run=$top/run
rm -rf "$top/pki" "$run"
mkdir -p "$run"
pids=()
# PostgreSQL refuses to run as root: its clusters live in a directory the postgres user owns.
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgroot=$(mktemp -d /tmp/tunnelmesh-demo-pg.XXXXXX)
chown postgres: "$pgroot"
pg() { runuser -u postgres -- "$pgbin/$1" "${@:2}"; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for cluster in db2 db1; do
    [ -f "$pgroot/$cluster/postmaster.pid" ] && pg pg_ctl -D "$pgroot/$cluster" -m fast -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$pgroot"
}
trap cleanup EXIT INT TERM

configure_pg() {  # cluster port
  cat >>"$pgroot/$1/postgresql.conf" <<CONF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pgroot'
shared_buffers = 32MB
wal_receiver_status_interval = 1s
CONF
}
echo "demo: PostgreSQL primary for db1 on 127.0.0.1:55432, streaming standby for db2 on 127.0.0.1:55433"
pg initdb -D "$pgroot/db1" -U postgres --auth=trust -E UTF8 --no-sync --no-instructions >/dev/null
configure_pg db1 55432
pg pg_ctl -D "$pgroot/db1" -l "$pgroot/db1.log" -w start >/dev/null
pg psql -X -q -h "$pgroot" -p 55432 -U postgres -c "CREATE ROLE meshmon LOGIN; GRANT pg_monitor TO meshmon;" \
  -c "CREATE TABLE demo (id serial PRIMARY KEY, note text, at timestamptz DEFAULT now());"
pg pg_basebackup -h 127.0.0.1 -p 55432 -U postgres -D "$pgroot/db2" -R -X stream -c fast
configure_pg db2 55433
pg pg_ctl -D "$pgroot/db2" -l "$pgroot/db2.log" -w start >/dev/null

echo "demo: creating a throwaway PKI in pki/ with meshctl pki"
"$bin/meshctl" pki init --mesh demo --dir "$top/pki" >/dev/null
for node in db1 db2 app1; do "$bin/meshctl" pki issue "$node" --dir "$top/pki" >/dev/null; done

echo "demo: starting echo services for db1 (127.0.0.1:17001) and db2 (127.0.0.1:17002)"
socat TCP-LISTEN:17001,bind=127.0.0.1,reuseaddr,fork EXEC:cat &
pids+=($!)
socat TCP-LISTEN:17002,bind=127.0.0.1,reuseaddr,fork EXEC:cat &
pids+=($!)

for node in db1 db2 app1; do
  "$bin/meshd" --config "$top/mesh.json" --node "$node" 2>"$run/$node.log" &
  pids+=($!)
done
echo "demo: started meshd for db1, db2, app1 (logs in run/*.log)"

ok=1
up=0
for _ in $(seq 1 100); do
  if [ "$(grep -c 'peer .* up' "$run"/*.log | awk -F: '{s+=$2} END {print s}')" -ge 6 ]; then up=1; break; fi
  sleep 0.1
done
if [ $up = 1 ]; then echo "demo: all 3 tunnels are up"; else echo "demo: tunnels did not all come up within 10 s"; ok=0; fi

for port in 15001 15002; do
  target=$([ $port = 15001 ] && echo db1 || echo db2)
  reply=$(printf 'hello through the mesh to %s\n' "$target" | timeout 5 socat -t 2 - TCP:127.0.0.1:$port || true)
  if [ "$reply" = "hello through the mesh to $target" ]; then
    echo "demo: app1 127.0.0.1:$port -> echo@$target: \"$reply\""
  else
    echo "demo: no echo through 127.0.0.1:$port (got \"$reply\")"; ok=0
  fi
done

psql_at() {  # port sql...
  "$pgbin/psql" -X -q -A -t -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}
# The balancer routes once both database nodes' first role reports have crossed the tunnels.
routed=0
for _ in $(seq 1 100); do
  if [ "$(psql_at 6432 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] &&
     [ "$(psql_at 6433 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ]; then routed=1; break; fi
  sleep 0.1
done
if [ $routed = 1 ]; then
  note="written through rw at $(date +%T)"
  id=$(psql_at 6432 "INSERT INTO demo (note) VALUES ('$note') RETURNING id")
  echo "demo: app1 127.0.0.1:6432 (rw) -> $(psql_at 6432 "SELECT CASE WHEN pg_is_in_recovery() THEN 'a standby' ELSE 'the primary' END || ' on port ' || current_setting('port')"): inserted row $id"
  seen=""
  for _ in $(seq 1 50); do
    seen=$(psql_at 6433 "SELECT note FROM demo WHERE id = $id" 2>/dev/null || true)
    [ -n "$seen" ] && break
    sleep 0.1
  done
  echo "demo: app1 127.0.0.1:6433 (ro) -> $(psql_at 6433 "SELECT CASE WHEN pg_is_in_recovery() THEN 'a standby' ELSE 'the primary' END || ' on port ' || current_setting('port')"): reads \"$seen\""
  [ "$seen" = "$note" ] || { echo "demo: the standby did not show the row written through rw"; ok=0; }
else
  echo "demo: the balancer did not route rw to the primary and ro to the standby within 10 s"; ok=0
fi

echo
echo "demo: meshctl backends on app1"
"$bin/meshctl" --config "$top/mesh.json" --node app1 backends || true
echo
echo "demo: meshctl peers on app1"
"$bin/meshctl" --config "$top/mesh.json" --node app1 peers || true

if [ $check = 1 ]; then
  if [ $ok = 1 ]; then echo "demo: check passed"; exit 0; else echo "demo: check FAILED"; exit 1; fi
fi
echo
echo "demo: running; try: psql -h 127.0.0.1 -p 6432 -U postgres   (rw; 6433 for ro; Ctrl-C to stop)"
wait
