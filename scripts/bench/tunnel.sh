#!/usr/bin/env bash
# Loopback tunnel benchmark (issue 2, Performance): bulk throughput and 1-byte round-trip latency
# for direct TCP, tunnelmesh, stunnel4 (TLS 1.3) and ssh -L (the autossh data path), in one run,
# through the same measuring client and server (tcpbench.py).
#
# Usage: scripts/bench/tunnel.sh [--write] [--skip-build] [--paths direct,tunnelmesh,stunnel,ssh]
#                                [--bytes N] [--repeat N] [--count N] [--warmup N] [--keep]
#   --write       also replace the tunnel section of BENCHMARKS.md
#   --skip-build  use the meshd/meshctl already in ${BIN:-.build/release}
#   --repeat N    bulk runs per path, taken in turns across paths; the table shows the median (default 5)
#   --keep        keep the temporary directory (logs, configs) for inspection
#
# Everything listens on 127.0.0.x only; every process started here is stopped on exit; the system
# sshd and stunnel services are never touched (we run our own with throwaway keys and configs).

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TCPBENCH=("python3" "$HERE/tcpbench.py")

WRITE=0 SKIP_BUILD=0 KEEP=0
PATHS="direct,tunnelmesh,stunnel,ssh"
BYTES=$((1 << 30)) REPEAT=5 COUNT=20000 WARMUP=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --write) WRITE=1 ;;
        --skip-build) SKIP_BUILD=1 ;;
        --keep) KEEP=1 ;;
        --paths) PATHS="$2"; shift ;;
        --bytes) BYTES="$2"; shift ;;
        --repeat) REPEAT="$2"; shift ;;
        --count) COUNT="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "tunnel.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for n in "$BYTES" "$REPEAT" "$COUNT" "$WARMUP"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "tunnel.sh: --bytes/--repeat/--count/--warmup take whole numbers, got '$n'" >&2; exit 2; }
done
if [ "$REPEAT" -lt 1 ] || [ "$COUNT" -lt "$REPEAT" ] || [ "$BYTES" -lt 1 ]; then
    echo "tunnel.sh: need --repeat >= 1, --count >= --repeat and --bytes >= 1" >&2; exit 2
fi

BIN=${BIN:-.build/release}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac

T=$(mktemp -d /tmp/bench-tunnel.XXXXXX)
RESULTS="$T/results"
mkdir -p "$RESULTS"
PIDS=()          # every background process we started, stopped by cleanup
POLICY_RC_CREATED=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_pids() {
    local pid
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

cleanup() {
    [ ${#PIDS[@]} -gt 0 ] && stop_pids "${PIDS[@]}"
    [ $POLICY_RC_CREATED = 1 ] && rm -f /usr/sbin/policy-rc.d
    if [ $KEEP = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
trap '' PIPE     # a closed stdout/stderr must not kill us before cleanup has run

# start_bg LOGFILE CMD... : run CMD in the background (bounded by timeout), remember its pid in BG_PID.
start_bg() {
    local logfile="$1"; shift
    timeout 600 "$@" >"$logfile" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

free_port() { "${TCPBENCH[@]}" free-port --host "$1"; }

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

# wait_echo HOST:PORT SECONDS PID... : wait until a 1-byte echo crosses the path (a listening port
# alone does not prove the tunnel behind it is up); give up early if one of the PIDs has exited.
wait_echo() {
    local addr="$1" deadline=$((SECONDS + $2)) pid out; shift 2
    while [ $SECONDS -lt $deadline ]; do
        out=$(timeout 5 "${TCPBENCH[@]}" probe --connect "$addr" --timeout 1 2>&1) && return 0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null || { ECHO_ERROR="a process of the path exited"; return 1; }; done
    done
    ECHO_ERROR=$(tail -1 <<<"$out")
    return 1
}

# Result files, one directory per path, read by report.py.
ORDER=0
path_dir() { local d; d=$(ls -d "$RESULTS"/*-"$1" 2>/dev/null | head -1); echo "$d"; }
new_path() { ORDER=$((ORDER + 1)); mkdir -p "$RESULTS/$ORDER-$1"; }
unavailable() { log "$1: not available: $2"; printf '%s\n' "$2" >"$(path_dir "$1")/unavailable"; }
note() { printf '%s\n' "$2" >>"$(path_dir "$1")/notes"; }

# Paths that are set up and ready, in table order, with the address the client connects to.
READY=()
declare -A ADDR
ready() { READY+=("$1"); ADDR[$1]="$2"; log "$1: ready at $2"; }
is_ok() { [ ! -e "$(path_dir "$1")/unavailable" ]; }

# One bulk run through one path; a failure marks the path unavailable.
bulk() {
    local name="$1" round="$2" out
    if ! out=$(timeout 120 "${TCPBENCH[@]}" throughput --connect "${ADDR[$name]}" --bytes "$BYTES" 2>&1); then
        unavailable "$name" "bulk run $round failed: $(tail -1 <<<"$out")"; return
    fi
    printf '%s\n' "$out" >>"$(path_dir "$name")/throughput.jsonl"
    log "$name: $out"
}

# One latency run of COUNT/REPEAT round trips (on a fresh connection, after its own warm-up); the
# report pools the raw samples of all runs of a path for its percentiles.
latency() {
    local name="$1" round="$2" out dir
    dir=$(path_dir "$name")
    if ! out=$(timeout 120 "${TCPBENCH[@]}" latency --connect "${ADDR[$name]}" --count "$((COUNT / REPEAT))" \
            --warmup "$WARMUP" --raw "$dir/latency.raw" 2>&1); then
        unavailable "$name" "latency run $round failed: $(tail -1 <<<"$out")"; return
    fi
    printf '%s\n' "$out" >>"$dir/latency.jsonl"
    log "$name: $out"
}

# All paths stay up together and take turns, round by round, so that a change in background load
# during the run hits every path alike instead of whichever happened to run at that moment.
measure_all() {
    local round name
    for round in $(seq "$REPEAT"); do
        for name in "${READY[@]}"; do is_ok "$name" && bulk "$name" "$round"; done
    done
    for round in $(seq "$REPEAT"); do
        for name in "${READY[@]}"; do is_ok "$name" && latency "$name" "$round"; done
    done
}

want() { [[ ",$PATHS," == *",$1,"* ]]; }

# --- system packages -------------------------------------------------------------------------------

ensure_packages() {
    local missing=()
    want stunnel && ! command -v stunnel4 >/dev/null && missing+=(stunnel4)
    want ssh && [ ! -x /usr/sbin/sshd ] && missing+=(openssh-server)
    want ssh && ! command -v ssh >/dev/null && missing+=(openssh-client)
    command -v openssl >/dev/null || missing+=(openssl)
    [ ${#missing[@]} = 0 ] && return 0
    log "installing ${missing[*]}"
    # Keep the package's own sshd/stunnel service from starting: we run private instances only.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
    fi
    timeout 300 apt-get update -qq >"$T/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}" >>"$T/apt.log" 2>&1 \
        || log "apt-get install ${missing[*]} failed: $(tail -1 "$T/apt.log")"
    if [ $POLICY_RC_CREATED = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
}

# --- the measuring server, shared by every path -------------------------------------------------------

start_sink() {
    SINK_PORT=$(free_port 127.0.0.1)
    start_bg "$T/sink.log" "${TCPBENCH[@]}" serve --listen "127.0.0.1:$SINK_PORT"
    SINK_PID=$BG_PID
    wait_listen 127.0.0.1 "$SINK_PORT" 5 "$SINK_PID" || { log "tcpbench server did not start: $(cat "$T/sink.log")"; exit 1; }
}

# --- paths ------------------------------------------------------------------------------------------

path_direct() {
    new_path direct
    ready direct "127.0.0.1:$SINK_PORT"
}

build_mesh() {
    [ $SKIP_BUILD = 1 ] && return 0
    local product
    for product in meshd meshctl; do
        log "swift build -c release --product $product"
        # In the background so that a signal interrupts `wait` and cleanup stops the build at once.
        (cd "$ROOT" && exec timeout 3600 swift build -c release --product "$product") >"$T/build-$product.log" 2>&1 &
        PIDS+=("$!")
        if ! wait "$!"; then
            MESH_BUILD_ERROR="swift build --product $product failed: $(grep -m1 'error:' "$T/build-$product.log" || tail -1 "$T/build-$product.log")"
            return 1
        fi
    done
}

path_tunnelmesh() {
    new_path tunnelmesh
    if [ -n "${MESH_BUILD_ERROR:-}" ]; then unavailable tunnelmesh "$MESH_BUILD_ERROR"; return; fi
    local meshd="$BIN/meshd" meshctl="$BIN/meshctl" m="$T/mesh" n out
    for n in "$meshd" "$meshctl"; do
        [ -x "$n" ] || { unavailable tunnelmesh "$n is not built"; return; }
    done
    mkdir -p "$m/pki" "$m/run"
    if ! out=$(timeout 30 "$meshctl" pki init --mesh bench --dir "$m/pki" 2>&1); then
        unavailable tunnelmesh "meshctl pki init failed: $(tail -1 <<<"$out")"; return
    fi
    for n in n1 n2; do
        if ! out=$(timeout 30 "$meshctl" pki issue "$n" --dir "$m/pki" 2>&1); then
            unavailable tunnelmesh "meshctl pki issue $n failed: $(tail -1 <<<"$out")"; return
        fi
    done
    local p1 p2 fwd
    p1=$(free_port 127.0.1.1); p2=$(free_port 127.0.1.2); fwd=$(free_port 127.0.0.1)
    cat >"$m/mesh.json" <<EOF
{ "mesh": "bench",
  "tls": { "ca": "pki/ca.pem", "cert": "pki/{node}.pem", "key": "pki/{node}.key", "crl": "pki/crl.pem" },
  "nodes": { "n1": { "address": "127.0.1.1:$p1", "control": "run/n1.sock" },
             "n2": { "address": "127.0.1.2:$p2", "control": "run/n2.sock" } },
  "services": { "bench": { "on": { "n2": "127.0.0.1:$SINK_PORT" }, "allow": ["n1"] } },
  "forwards": [ { "on": "n1", "listen": "127.0.0.1:$fwd", "to": "bench@n2" } ] }
EOF
    local pid1 pid2
    start_bg "$m/n2.log" "$meshd" --config "$m/mesh.json" --node n2; pid2=$BG_PID
    start_bg "$m/n1.log" "$meshd" --config "$m/mesh.json" --node n1; pid1=$BG_PID
    if ! wait_echo "127.0.0.1:$fwd" 10 "$pid1" "$pid2"; then
        local why="forward 127.0.0.1:$fwd gave no echo within 10 s: $ECHO_ERROR"
        kill -0 "$pid1" 2>/dev/null || why="meshd n1 exited: $(tail -1 "$m/n1.log")"
        kill -0 "$pid2" 2>/dev/null || why="meshd n2 exited: $(tail -1 "$m/n2.log")"
        unavailable tunnelmesh "$why"
        [ $KEEP = 1 ] || { log "n1.log:"; tail -5 "$m/n1.log" >&2; log "n2.log:"; tail -5 "$m/n2.log" >&2; }
        stop_pids "$pid1" "$pid2"; return
    fi
    note tunnelmesh "meshd $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), n1 127.0.1.1 → n2 127.0.1.2, forward 127.0.0.1:$fwd"
    ready tunnelmesh "127.0.0.1:$fwd"
}

# ECDSA P-256 CA, server and client certificates and an empty CRL, the same shape meshctl issues.
make_stunnel_pki() {
    local d="$1" n
    (
        cd "$d" || exit 1
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 2 \
            -keyout ca.key -out ca.pem -subj /CN=bench-stunnel-ca \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign || exit 1
        for n in server client; do
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
                -keyout "$n.key" -out "$n.csr" -subj "/CN=stunnel-$n" || exit 1
            printf 'subjectAltName=DNS:stunnel-%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' "$n" >"$n.ext"
            openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 2 \
                -extfile "$n.ext" -out "$n.pem" || exit 1
        done
        : >index.txt; echo 01 >crlnumber
        printf '[ca]\ndefault_ca=bench\n[bench]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=2\n' >ca.cnf
        openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out crl.pem || exit 1
    ) >"$d/pki.log" 2>&1
}

path_stunnel() {
    new_path stunnel
    command -v stunnel4 >/dev/null || { unavailable stunnel "stunnel4 is not installed (see apt log)"; return; }
    local d="$T/stunnel" sport cport out
    mkdir -p "$d"
    make_stunnel_pki "$d" || { unavailable stunnel "certificate generation failed: $(tail -1 "$d/pki.log")"; return; }
    sport=$(free_port 127.0.2.2); cport=$(free_port 127.0.0.1)
    # Same guarantees as the mesh: TLS 1.3 only, both sides present and verify certificates against
    # the CA and CRL, the client checks the server's name. Default cipher suites.
    local common="sslVersion = TLSv1.3
CAfile = $d/ca.pem
CRLfile = $d/crl.pem
verifyChain = yes
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1"
    cat >"$d/server.conf" <<EOF
foreground = yes
pid =
syslog = no
debug = info
[bench]
accept = 127.0.2.2:$sport
connect = 127.0.0.1:$SINK_PORT
cert = $d/server.pem
key = $d/server.key
requireCert = yes
$common
EOF
    cat >"$d/client.conf" <<EOF
foreground = yes
pid =
syslog = no
debug = info
[bench]
client = yes
accept = 127.0.0.1:$cport
connect = 127.0.2.2:$sport
cert = $d/client.pem
key = $d/client.key
checkHost = stunnel-server
$common
EOF
    local spid cpid
    start_bg "$d/server.log" stunnel4 "$d/server.conf"; spid=$BG_PID
    start_bg "$d/client.log" stunnel4 "$d/client.conf"; cpid=$BG_PID
    if ! wait_echo "127.0.0.1:$cport" 10 "$spid" "$cpid"; then
        unavailable stunnel "no echo through stunnel within 10 s: $ECHO_ERROR; server log: $(tail -1 "$d/server.log")"
        stop_pids "$spid" "$cpid"; return
    fi
    local cipher
    cipher=$(grep -o -m1 'TLSv1\.3 ciphersuite: [A-Z0-9_]*' "$d/client.log" | awk '{print $3}')
    STUNNEL_CIPHER=${cipher:-unknown}
    note stunnel "stunnel $(stunnel4 -version 2>&1 | awk '/^stunnel [0-9]/{print $2; exit}'), TLS 1.3 negotiated cipher suite: ${STUNNEL_CIPHER}; ECDSA P-256 certificates, verifyChain + CRL on both sides, TCP_NODELAY"
    ready stunnel "127.0.0.1:$cport"
}

path_ssh() {
    new_path ssh
    [ -x /usr/sbin/sshd ] || { unavailable ssh "/usr/sbin/sshd is not installed (see apt log)"; return; }
    command -v ssh >/dev/null || { unavailable ssh "ssh is not installed (see apt log)"; return; }
    local d="$T/ssh" port fwd user out
    mkdir -p "$d"; chmod 700 "$d"
    user=$(id -un)
    ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$d/host_key" || { unavailable ssh "ssh-keygen failed"; return; }
    ssh-keygen -q -t ed25519 -N '' -C bench-user -f "$d/user_key" || { unavailable ssh "ssh-keygen failed"; return; }
    port=$(free_port 127.0.0.1); fwd=$(free_port 127.0.0.1)
    # The throwaway key may only forward to the benchmark server.
    printf 'restrict,port-forwarding,permitopen="127.0.0.1:%s" %s\n' "$SINK_PORT" "$(cat "$d/user_key.pub")" >"$d/authorized_keys"
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$d/host_key.pub")" >"$d/known_hosts"
    cat >"$d/sshd_config" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
AllowUsers $user
PidFile none
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding local
X11Forwarding no
PermitTTY no
LogLevel INFO
EOF
    # sshd insists on its privilege-separation directory (normally made by the ssh service unit).
    [ -d /run/sshd ] || { mkdir -p /run/sshd && chmod 755 /run/sshd; }
    local spid cpid
    start_bg "$d/sshd.log" /usr/sbin/sshd -D -e -f "$d/sshd_config"; spid=$BG_PID
    if ! wait_listen 127.0.0.1 "$port" 5 "$spid"; then
        unavailable ssh "private sshd did not start: $(tail -1 "$d/sshd.log")"; stop_pids "$spid"; return
    fi
    start_bg "$d/ssh.log" ssh -v -N -F /dev/null -p "$port" -i "$d/user_key" \
        -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$d/known_hosts" -o ExitOnForwardFailure=yes \
        -L "127.0.0.1:$fwd:127.0.0.1:$SINK_PORT" "$user@127.0.0.1"
    cpid=$BG_PID
    if ! wait_echo "127.0.0.1:$fwd" 10 "$spid" "$cpid"; then
        unavailable ssh "no echo through ssh -L within 10 s: $ECHO_ERROR; $(grep -m1 -iE 'denied|error|refused' "$d/ssh.log" || tail -1 "$d/ssh.log")"
        stop_pids "$spid" "$cpid"; return
    fi
    local cipher
    cipher=$(grep -o -m1 'kex: client->server cipher: [^ ]*' "$d/ssh.log" | awk '{print $4}')
    SSH_CIPHER=${cipher:-unknown}
    note ssh "$(ssh -V 2>&1 | cut -d, -f1), ssh -N -L to a private sshd, default ciphers; negotiated: ${SSH_CIPHER}"
    ready ssh "127.0.0.1:$fwd"
}

# --- run ------------------------------------------------------------------------------------------------

ensure_packages
if want tunnelmesh; then build_mesh || log "$MESH_BUILD_ERROR"; fi

BUSY=""
if awk '{exit !($1 >= 0.5)}' /proc/loadavg; then
    BUSY=" Other work was running on the machine (see load average): compare paths within this run, not across runs."
fi
cat >"$T/header.md" <<EOF
Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r), $(openssl version | cut -d' ' -f1-2), $(python3 --version); load average at start: $(cut -d' ' -f1-3 /proc/loadavg).
EOF

start_sink
log "measuring server on 127.0.0.1:$SINK_PORT; results in $T"
want direct && path_direct
want tunnelmesh && path_tunnelmesh
want stunnel && path_stunnel
want ssh && path_ssh
measure_all

printf '%s\n' "$(cat "$T/header.md") Load average at end: $(cut -d' ' -f1-3 /proc/loadavg).$BUSY" >"$T/header.md"
args=(--results "$RESULTS" --header "$T/header.md"
      --bytes "$BYTES" --repeat "$REPEAT" --count "$COUNT" --warmup "$WARMUP")
[ $WRITE = 1 ] && args+=(--write "$ROOT/BENCHMARKS.md")
python3 "$HERE/report.py" "${args[@]}"
