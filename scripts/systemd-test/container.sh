# The throwaway systemd-nspawn container scripts/systemd-test.sh tests in (sourced, not run).
#
# container_boot ROOTFS RUN_DIR SHARE_DIR : boots ROOTFS with systemd as PID 1, private network
#   (its own loopback only), SHARE_DIR bound read-only at /srv/tunnelmesh-test, the console's
#   output in RUN_DIR/console.log; waits (bounded) until the boot finished. ROOTFS stays as it
#   is: every write lands in a tmpfs over it (--volatile=overlay), gone when the container stops. Returns 3 with CONTAINER_SKIP
#   set when this machine cannot boot it (the caller skips), 1 on any other failure.
# cx CMD... : runs CMD inside the container as root, with a clean environment.
# container_stop : powers it off (bounded), killing what is left after 30 s.

CONTAINER_NSPAWN_PID=""
CONTAINER_INIT_PID=""
CONTAINER_DIR=""
CONTAINER_BOOT_SECONDS=90

cx() {
  nsenter --target "$CONTAINER_INIT_PID" --mount --uts --ipc --net --pid --cgroup -- \
    /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# The container's PID 1 as the host sees it: the process systemd-nspawn started in a new PID
# namespace, found by its namespace rather than by its name.
container_find_init() {
  local pid host_ns
  host_ns="$(readlink /proc/self/ns/pid)"
  for pid in $(pgrep -P "$CONTAINER_NSPAWN_PID"); do
    if [ "$(readlink "/proc/$pid/ns/pid" 2>/dev/null)" != "$host_ns" ] \
      && [ "$(cut -d' ' -f1 "/proc/$pid/comm" 2>/dev/null)" = systemd ]; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

container_boot() {
  local rootfs="$1" state deadline started=$SECONDS
  CONTAINER_DIR="$2"
  local share="$3"
  mkdir -p "$CONTAINER_DIR"
  # --keep-unit --register=no: there is no systemd on the host to make a scope or register the
  # machine with (nspawn fails with "Failed to open system bus" without them).
  # --volatile=overlay rather than a copy (32 s for the 306 MB root on this shared disk) or
  # --ephemeral (a copy too, off btrfs): nothing to remove afterwards, even after a kill.
  systemd-nspawn --directory="$rootfs" --volatile=overlay --machine="tunnelmesh-test-$$" \
    --keep-unit --register=no --boot --private-network --console=pipe \
    --bind-ro="$share:/srv/tunnelmesh-test" \
    </dev/null >"$CONTAINER_DIR/console.log" 2>&1 &
  CONTAINER_NSPAWN_PID=$!
  deadline=$((SECONDS + CONTAINER_BOOT_SECONDS))
  until CONTAINER_INIT_PID="$(container_find_init)"; do
    if ! kill -0 "$CONTAINER_NSPAWN_PID" 2>/dev/null; then
      CONTAINER_SKIP="systemd-nspawn exited before the container's systemd started: $(container_console_tail)"
      return 3
    fi
    if [ $SECONDS -ge $deadline ]; then
      CONTAINER_SKIP="the container's systemd did not start within ${CONTAINER_BOOT_SECONDS} s: $(container_console_tail)"
      return 3
    fi
    sleep 0.2
  done
  # "running" or "degraded" once the boot is over (the caller judges failed units itself);
  # until its bus is up, systemctl cannot even ask, so --wait alone is not enough.
  while :; do
    state="$(cx systemctl is-system-running 2>&1)" || true
    case "$state" in
      running | degraded)
        echo "container: systemd booted ($state) in $((SECONDS - started)) s, its PID 1 is host PID $CONTAINER_INIT_PID"
        return 0
        ;;
    esac
    if ! kill -0 "$CONTAINER_NSPAWN_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      CONTAINER_SKIP="the container's systemd did not finish booting within ${CONTAINER_BOOT_SECONDS} s (is-system-running: ${state:-no answer}): $(container_console_tail)"
      return 3
    fi
    sleep 0.5
  done
}

# The console's last lines on one line, for a skip or failure message.
container_console_tail() {
  tail -n 6 "$CONTAINER_DIR/console.log" 2>/dev/null | tr '\n' ' ' | tr -s ' ' | cut -c1-600
}

container_stop() {
  local deadline
  if [ -n "$CONTAINER_NSPAWN_PID" ] && kill -0 "$CONTAINER_NSPAWN_PID" 2>/dev/null; then
    # nspawn turns SIGTERM into SIGRTMIN+3 for a booted container: systemd's clean poweroff.
    kill -TERM "$CONTAINER_NSPAWN_PID" 2>/dev/null || true
    deadline=$((SECONDS + 30))
    while kill -0 "$CONTAINER_NSPAWN_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$CONTAINER_NSPAWN_PID" 2>/dev/null; then
      echo "container: no poweroff within 30 s; killing it" >&2
      # Killing the namespace's PID 1 kills every process in it.
      [ -n "$CONTAINER_INIT_PID" ] && kill -KILL "$CONTAINER_INIT_PID" 2>/dev/null
      kill -KILL "$CONTAINER_NSPAWN_PID" 2>/dev/null || true
    fi
    wait "$CONTAINER_NSPAWN_PID" 2>/dev/null || true
  fi
  CONTAINER_NSPAWN_PID=""
}
