# Debian packages for the benchmark scripts (sourced, not run).
#
# install_missing_packages PKG... : install the Debian packages among PKG that dpkg does not list as
# installed, with one `apt-get update` first, and without letting their services start (we run
# private instances with throwaway configs; the system's sshd, stunnel, pgpool2, haproxy and
# PostgreSQL services are never touched). Failures are logged, not fatal: each leg then reports
# what it is missing. The sourcing script sets T and calls bench_cleanup_packages from its EXIT trap.

POLICY_RC_CREATED=0

bench_cleanup_packages() {
    [ $POLICY_RC_CREATED = 1 ] && rm -f /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=0
    return 0
}

install_missing_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} = 0 ] && return 0
    log "installing ${missing[*]} (apt log: $T/apt.log)"
    # policy-rc.d exiting 101 tells invoke-rc.d not to start the packages' services.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
    fi
    timeout 300 apt-get update -qq >"$T/apt.log" 2>&1 || log "apt-get update failed: $(tail -1 "$T/apt.log")"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${missing[@]}" >>"$T/apt.log" 2>&1 \
        || log "apt-get install ${missing[*]} failed: $(tail -1 "$T/apt.log")"
    bench_cleanup_packages
}
