# The benchmark run's temporary directory and what is undone on exit (sourced, not run; needs
# processes.sh and packages.sh).

# make_workdir NAME : T, a new directory /tmp/bench-NAME.XXXXXX, with RESULTS=$T/results in it. On
# exit, also after INT, TERM or HUP: the exit hooks run, every process started through start_bg is
# stopped, a policy-rc.d we created is removed, and T is deleted (kept and named when KEEP=1).
make_workdir() {
    T=$(mktemp -d "/tmp/bench-$1.XXXXXX")
    RESULTS="$T/results"
    mkdir -p "$RESULTS"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM HUP
    trap '' PIPE     # a closed stdout/stderr must not kill us before cleanup has run
}

bench_cleanup() {
    bench_cleanup_processes
    bench_cleanup_packages
    if [ "${KEEP:-0}" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
}
