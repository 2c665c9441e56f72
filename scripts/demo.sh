#!/usr/bin/env bash
# Starts a local 3-node tunnelmesh from the top-level mesh.json on loopback addresses, shows traffic
# crossing it and the peer table, and stays up until Ctrl-C.
#   scripts/demo.sh           run the demo, keep it up
#   scripts/demo.sh --check   run the same steps, exit 0 when everything worked, 1 otherwise
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
check=0
[ "${1:-}" = "--check" ] && check=1

need=()
command -v openssl >/dev/null || need+=(openssl)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
dpkg -s libsystemd-dev >/dev/null 2>&1 || need+=(libsystemd-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v socat >/dev/null || need+=(socat)
if [ ${#need[@]} -gt 0 ]; then
  echo "demo: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "demo: building release binaries (first time takes a few minutes)"
swift build -c release --product meshd >/dev/null
swift build -c release --product meshctl >/dev/null
bin=$(swift build -c release --show-bin-path)

run=$top/run
rm -rf "$top/pki" "$run"
mkdir -p "$run"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

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

echo
if [ -x "$bin/meshctl" ] && "$bin/meshctl" --help 2>/dev/null | grep -q peers; then
  echo "demo: meshctl peers on app1"
  "$bin/meshctl" --config "$top/mesh.json" --node app1 peers || true
else
  echo "demo: peer state changes logged by app1:"
  grep -h 'peer ' "$run/app1.log" | sed 's/^/  /'
fi

if [ $check = 1 ]; then
  if [ $ok = 1 ]; then echo "demo: check passed"; exit 0; else echo "demo: check FAILED"; exit 1; fi
fi
echo
echo "demo: running; try: printf 'hi\\n' | socat - TCP:127.0.0.1:15001   (Ctrl-C to stop)"
wait
