# Background processes for the benchmark scripts (sourced, not run): start with a time bound,
# remember the pid, wait for a listener with a deadline, stop them all on exit, and read how much
# CPU a process and its children used.
#
# The sourcing script calls bench_cleanup_processes from its EXIT trap. Nothing here kills by
# name: only pids this script started.

PIDS=()          # every background process started through start_bg, stopped by bench_cleanup_processes
EXIT_HOOKS=()    # commands that stop what needs more than a signal (a daemonized server), run first

# on_exit CMD : run CMD (a string, eval'd) at cleanup, before the background processes are signalled;
# hooks run newest first, so a server registered before its proxies is stopped after them.
on_exit() { EXIT_HOOKS+=("$1"); }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# is_our_child PID : PID is still a child of this shell, not an unrelated process that got the pid
# after ours exited and was reaped (this machine runs many builds and tests at once).
is_our_child() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "$(cut -d' ' -f2 <<<"$stat")" = "$$" ]
}

# stop_pids PID... : TERM, up to 2 s of grace, then KILL, for those still our children; reaps them.
stop_pids() {
    local pid ours=()
    for pid in "$@"; do is_our_child "$pid" && ours+=("$pid"); done
    set -- "${ours[@]}"
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 20); do
        local alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    return 0
}

bench_cleanup_processes() {
    local i
    for ((i = ${#EXIT_HOOKS[@]} - 1; i >= 0; i--)); do eval "${EXIT_HOOKS[$i]}"; done
    EXIT_HOOKS=()
    [ -n "${RUNNING_PID:-}" ] && stop_pids "$RUNNING_PID"
    [ ${#PIDS[@]} -gt 0 ] && stop_pids "${PIDS[@]}"
    PIDS=()
    return 0
}

# start_bg LOGFILE CMD... : run CMD in the background, killed after BG_TIMEOUT seconds (default 1800)
# at the latest; its pid is left in BG_PID and remembered for cleanup.
start_bg() {
    local logfile="$1"; shift
    timeout "${BG_TIMEOUT:-1800}" "$@" >"$logfile" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# run_bounded SECONDS OUTFILE CMD... : run CMD in the foreground of the script but as a background
# job, so that a signal to the script interrupts the wait and cleanup stops CMD at once; returns
# CMD's exit status (124 when it ran out of time).
run_bounded() {
    local seconds="$1" outfile="$2" rc; shift 2
    timeout "$seconds" "$@" >"$outfile" 2>&1 &
    RUNNING_PID=$!
    wait "$RUNNING_PID"; rc=$?
    RUNNING_PID=""
    return $rc
}

# free_port HOST : a port nobody listens on right now (the kernel's pick for an ephemeral bind).
free_port() {
    python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$1"
}

# wait_listen HOST PORT SECONDS PID : wait until something accepts on HOST:PORT (and PID still runs).
wait_listen() {
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$4" 2>/dev/null || return 1
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# cpu_ticks PID... : clock ticks (USER_HZ) of CPU used so far by these processes, their live
# descendants, and the children they have already reaped. Processes that come and go between two
# readings without being reaped by a process in the set (rare here) are missed.
cpu_ticks() {
    python3 - "$@" <<'EOF'
import os, sys
def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    # After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return int(fields[1]), sum(int(x) for x in fields[11:15])
procs = {}
for name in os.listdir("/proc"):
    if name.isdigit():
        s = stat(name)
        if s:
            procs[int(name)] = s
children = {}
for pid, (ppid, _) in procs.items():
    children.setdefault(ppid, []).append(pid)
seen, todo, total = set(), [int(p) for p in sys.argv[1:]], 0
while todo:
    pid = todo.pop()
    if pid in seen or pid not in procs:
        continue
    seen.add(pid)
    total += procs[pid][1]
    todo.extend(children.get(pid, []))
print(total)
EOF
}
