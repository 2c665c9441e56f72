# Release builds of meshd/meshctl and throwaway mesh PKIs for the benchmark scripts (sourced, not
# run; needs processes.sh).

# build_release ROOT SCRATCH LOG PRODUCT... : start `swift build -c release --static-swift-stdlib`
# of each product, one after the other, in the background (bounded to an hour; stopped with the
# other processes on exit), with the extra arguments in the array BUILD_ARGS if set. Leaves
# BUILD_PID; the build's exit status is that of `wait $BUILD_PID`. The Swift runtime is linked in,
# as in the binaries the Debian package ships (scripts/package.sh): measured with the pinned TLS
# relay pair (BENCHMARKS.md, "Reading the tunnel numbers"), the shared runtime costs ~5 % more CPU per
# message, mostly `__tls_get_addr` for the runtime's thread-local state.
build_release() {
    local root="$1" scratch="$2" logfile="$3" cmd="" product extra=" --static-swift-stdlib"; shift 3
    [ -n "${BUILD_ARGS+set}" ] && [ ${#BUILD_ARGS[@]} -gt 0 ] && extra+=$(printf ' %q' "${BUILD_ARGS[@]}")
    for product in "$@"; do
        cmd+="swift build -c release --scratch-path $(printf '%q' "$scratch") --product $(printf '%q' "$product")$extra && "
    done
    BG_TIMEOUT=3600 start_bg "$logfile" bash -c "cd $(printf '%q' "$root") && ${cmd}true"
    BUILD_PID=$BG_PID
}

# build_failure LOG : the first compiler error of a failed build (and, when the compiler itself
# crashed, the pass and function it crashed in), or the log's last line.
build_failure() {
    local error crash
    error=$(grep -m1 'error:' "$1") || { tail -n 1 "$1"; return; }
    crash=$(grep -m1 -o 'While running pass .*' "$1")
    echo "$error${crash:+ ($crash)}"
}

# make_mesh_pki MESHCTL DIR MESH NODE... : a CA and one certificate per node with `meshctl pki`.
# Returns 1 with MESH_PKI_ERROR set when a step fails.
make_mesh_pki() {
    local meshctl="$1" dir="$2" mesh="$3" out n; shift 3
    mkdir -p "$dir"
    if ! out=$(timeout 30 "$meshctl" pki init --mesh "$mesh" --dir "$dir" 2>&1); then
        MESH_PKI_ERROR="meshctl pki init failed: $(tail -1 <<<"$out")"; return 1
    fi
    for n in "$@"; do
        if ! out=$(timeout 30 "$meshctl" pki issue "$n" --dir "$dir" 2>&1); then
            MESH_PKI_ERROR="meshctl pki issue $n failed: $(tail -1 <<<"$out")"; return 1
        fi
    done
}
