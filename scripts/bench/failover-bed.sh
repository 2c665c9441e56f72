# The Patroni + etcd + PostgreSQL failover bed (sourced, not run; needs processes.sh), shared by
# scripts/bench/failover.sh and `scripts/demo.sh --failover`.
#
# Four network namespaces, db1 db2 db3 app1, each with a veth on a bridge that lives in a hub
# namespace of its own, addresses 10.231.13.N/24 (N = 1..4): nothing is configured in the root
# namespace and no packet leaves the namespaces or 127.0.0.0/8. Each node's files (PostgreSQL data,
# sockets, etcd data, configs, logs) live in $FO_STATE/NODE on /dev/shm: namespaces share one file
# system, so nothing may sit at a fixed path.
#
# Two legs, the same Patroni and etcd settings (examples/patroni, rendered by plain string
# replacement):
#   haproxy  the anchor: etcd, Patroni and PostgreSQL on the bed addresses 10.231.13.N, HAProxy on
#            app1 (127.0.0.1:6432) checking Patroni's /primary every 1 s, fall 3
#   mesh     every service on its node's own loopback 127.0.1.N, every cross-node byte through
#            meshd (same_address services), the writer through meshd's `rw` balancer on app1
#            (127.0.0.1:6432); only meshd's port 10.231.13.N:7443 is reachable from another node
#
# Patroni is the one scripts/test-packages.sh pins for the tests (TEST_PATRONI_VERSION, from PyPI in
# a venv on Debian's Python): Debian 12's 3.0.2 can overwrite a new leader's key after a partition
# heals (Patroni PR #2689). The caller installs it first (install_test_patroni WHO).
#
# The caller sets FO_ROOT (repository), FO_BIN (meshd, meshctl), FO_STATE (an empty directory,
# ideally on /dev/shm) and FO_RESULTS (a file of JSON lines, one per measured round), then calls
# fo_bed_create, registers fo_bed_destroy with on_exit, and runs fo_round LEG N (a kill) and
# fo_switchover_round LEG N (a planned switchover) as often as wanted.

source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/test-packages.sh"

FO_SUBNET=10.231.13
FO_LOOPBACK=127.0.1
FO_MESH_PORT=7443
FO_DB_NODES=(db1 db2 db3)
FO_APP=app1
FO_NODES=("${FO_DB_NODES[@]}" "$FO_APP")
FO_PREFIX="tmfo$$"
FO_PROBE_INTERVAL=${FO_PROBE_INTERVAL:-500ms}
FO_PYTHON=/usr/bin/python3   # Debian's, which has python3-psycopg2 (not a python3 earlier on PATH)
FO_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/failover_bed.py"
FO_PATRONI_BIN=$TEST_PATRONI_BIN   # patroni and patronictl
FO_NAMESPACES=()

# fo_ns NODE : the namespace NODE lives in.
fo_ns() { echo "$FO_PREFIX-$1"; }

# fo_index NODE : 1 for db1 ... 4 for app1 (the last byte of its addresses).
fo_index() {
    local i
    for i in "${!FO_NODES[@]}"; do [ "${FO_NODES[$i]}" = "$1" ] && { echo $((i + 1)); return 0; }; done
    return 1
}

# fo_in NODE CMD... : run CMD inside NODE's namespace.
fo_in() { local node="$1"; shift; ip netns exec "$(fo_ns "$node")" "$@"; }

# fo_as USER NODE : sets FO_AS to the command prefix that runs a program inside NODE's namespace as
# USER (PostgreSQL refuses root; etcd needs no privileges), with HOME in the node's own directory
# so nothing reads root's files. A prefix, not a function, so start_bg's `timeout` can run it.
fo_as() {
    FO_AS=(ip netns exec "$(fo_ns "$2")" setpriv --reuid="$1" --regid="$1" --init-groups -- env HOME="$FO_STATE/$2")
}

# fo_sweep_stale : deletes tmfo<pid>-* namespaces whose script is gone (killed before its trap
# ran); namespaces of live scripts and every other name are left alone.
fo_sweep_stale() {
    local name pid
    for name in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        [[ "$name" =~ ^tmfo([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        [ "$pid" = $$ ] && continue
        kill -0 "$pid" 2>/dev/null && continue
        log "removing stale namespace $name (its script $pid is gone)"
        fo_kill_namespace "$name"
        ip netns del "$name" 2>/dev/null || true
    done
}

# fo_bed_create : the hub with its bridge and one namespace per node. Returns 1 (with a reason
# logged) when namespaces cannot be made here; what was made is deleted by fo_bed_destroy.
fo_bed_create() {
    command -v ip >/dev/null || { log "failover bed: needs iproute2's ip"; return 1; }
    fo_sweep_stale
    local hub node ns i
    hub=$(fo_ns hub)
    ip netns add "$hub" || { log "failover bed: cannot create network namespaces (needs root)"; return 1; }
    FO_NAMESPACES+=("$hub")
    ip -n "$hub" link set lo up
    ip -n "$hub" link add br0 type bridge
    ip -n "$hub" link set br0 up
    for node in "${FO_NODES[@]}"; do
        ns=$(fo_ns "$node"); i=$(fo_index "$node")
        ip netns add "$ns" || return 1
        FO_NAMESPACES+=("$ns")
        ip -n "$ns" link set lo up
        ip -n "$hub" link add "p$i" type veth peer name eth0 netns "$ns"
        ip -n "$hub" link set "p$i" master br0
        ip -n "$hub" link set "p$i" up
        ip -n "$ns" addr add "$FO_SUBNET.$i/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

# fo_kill_namespace NS : kill -9 every process in NS until none is left (at most ~5 s). Everything
# in our namespaces is ours, including PostgreSQL's postmaster, which Patroni detaches.
fo_kill_namespace() { fo_kill_namespace_loud "$@" 3>&2 2>/dev/null; }
# (quiet: bash reports each start_bg wrapper whose child died of SIGKILL as "Killed" on stderr)
fo_kill_namespace_loud() {
    local pids
    for _ in $(seq 100); do
        pids=$(ip netns pids "$1" 2>/dev/null) || return 0
        [ -z "$pids" ] && return 0
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null || true
        sleep 0.05
    done
    log "failover bed: processes left in $1 after 5 s: $(ip netns pids "$1" | tr '\n' ' ')" 2>&3
}

# A PostgreSQL killed -9 leaves its dynamic shared memory behind in /dev/shm/PostgreSQL.N (the
# posix default), and /dev/shm is the machine's. fo_note_segments NS remembers the segments the
# processes in NS have mapped (call it before killing them); fo_remove_segments deletes those that
# no process maps any more.
FO_SEGMENTS=()
fo_note_segments() {
    local pid
    for pid in $(ip netns pids "$1" 2>/dev/null); do
        FO_SEGMENTS+=($(grep -o '/dev/shm/PostgreSQL\.[0-9]*' "/proc/$pid/maps" 2>/dev/null | sort -u))
    done
}
fo_remove_segments() {
    [ ${#FO_SEGMENTS[@]} = 0 ] && return 0
    local mapped segment
    mapped=$(cat /proc/[0-9]*/maps 2>/dev/null | grep -o '/dev/shm/PostgreSQL\.[0-9]*' | sort -u)
    for segment in $(printf '%s\n' "${FO_SEGMENTS[@]}" | sort -u); do
        grep -qxF "$segment" <<<"$mapped" || rm -f "$segment"
    done
    FO_SEGMENTS=()
}

# fo_stop_nodes : every process of every node killed, their wrappers reaped (between rounds and
# on exit; the bed's data is thrown away, so no clean shutdown is needed).
fo_stop_nodes() {
    local node
    for node in "${FO_NODES[@]}"; do
        fo_note_segments "$(fo_ns "$node")"
        fo_kill_namespace "$(fo_ns "$node")"
    done
    fo_remove_segments
    [ ${#PIDS[@]} -gt 0 ] && stop_pids "${PIDS[@]}" 2>/dev/null
    PIDS=()
}

# fo_bed_destroy : stops everything and deletes every namespace this script made. Idempotent.
fo_bed_destroy() {
    local ns i
    fo_stop_nodes
    for ((i = ${#FO_NAMESPACES[@]} - 1; i >= 0; i--)); do
        ns=${FO_NAMESPACES[$i]}
        fo_kill_namespace "$ns"
        ip netns del "$ns" 2>/dev/null || log "failover bed: could not delete namespace $ns"
    done
    FO_NAMESPACES=()
}

# fo_addr LEG NODE : the address NODE's services bind: the bed address (haproxy) or the node's own
# loopback (mesh, the same_address of every service).
fo_addr() {
    if [ "$1" = mesh ]; then echo "$FO_LOOPBACK.$(fo_index "$2")"; else echo "$FO_SUBNET.$(fo_index "$2")"; fi
}

# fo_secrets : the passwords of this run, made once (random; the bed is thrown away).
fo_secrets() {
    [ -f "$FO_STATE/secrets" ] && { source "$FO_STATE/secrets"; return 0; }
    local name
    for name in SUPERUSER REPLICATION REWIND RESTAPI MESHMON; do
        echo "FO_${name}_PASSWORD=$(openssl rand -hex 16)"
    done >"$FO_STATE/secrets"
    chmod 600 "$FO_STATE/secrets"
    source "$FO_STATE/secrets"
    printf '%s\n' "$FO_MESHMON_PASSWORD" >"$FO_STATE/meshmon.password"
    chmod 600 "$FO_STATE/meshmon.password"
}

# fo_prepare LEG : fresh per-node directories and the rendered configuration of every db node
# (examples/patroni/patroni.yml and etcd.env), plus mesh.json and a PKI for the mesh leg.
fo_prepare() {
    local leg="$1" node addr hosts="" cluster="" dir
    fo_secrets
    for node in "${FO_DB_NODES[@]}"; do
        addr=$(fo_addr "$leg" "$node")
        hosts+="${hosts:+,}$addr:2379"
        cluster+="${cluster:+,}$node=http://$addr:2380"
    done
    for node in "${FO_NODES[@]}"; do
        dir="$FO_STATE/$node"
        rm -rf "$dir"
        mkdir -p "$dir/etc" "$dir/run" "$dir/pg" "$dir/etcd" "$dir/log"
        chmod 755 "$dir" "$dir/log"
    done
    for node in "${FO_DB_NODES[@]}"; do
        dir="$FO_STATE/$node"
        addr=$(fo_addr "$leg" "$node")
        "$FO_PYTHON" "$FO_PY" render "$FO_ROOT/examples/patroni/patroni.yml" "$dir/etc/patroni.yml" \
            node="$node" address="$addr" etcd_hosts="$hosts" data_dir="$dir/pg/data" socket_dir="$dir/run" \
            config_dir="$dir/etc" watchdog_mode=off superuser_password="$FO_SUPERUSER_PASSWORD" \
            replication_password="$FO_REPLICATION_PASSWORD" rewind_password="$FO_REWIND_PASSWORD" \
            restapi_password="$FO_RESTAPI_PASSWORD" || return 1
        # The anchor has no mesh: the other nodes (HAProxy, replicas) come from the bed subnet.
        [ "$leg" = mesh ] || sed -i "s|127\.0\.0\.0/8|$FO_SUBNET.0/24|" "$dir/etc/patroni.yml"
        "$FO_PYTHON" "$FO_PY" render "$FO_ROOT/examples/patroni/etcd.env" "$dir/etc/etcd.env" \
            node="$node" address="$addr" initial_cluster="$cluster" etcd_data_dir="$dir/etcd/data" || return 1
        cp "$FO_ROOT/examples/patroni/post-bootstrap.sh" "$dir/etc/"
        cp "$FO_STATE/meshmon.password" "$dir/etc/meshmon.password"
        chown -R postgres: "$dir/etc" "$dir/run" "$dir/pg"
        chown etcd: "$dir/etcd"
        chmod 700 "$dir/pg" "$dir/etcd"
    done
    if [ "$leg" = mesh ]; then
        "$FO_PYTHON" "$FO_PY" mesh-json "$FO_STATE/mesh.json" "$FO_STATE" "$FO_SUBNET" "$FO_MESH_PORT" "$FO_PROBE_INTERVAL" \
            "$(IFS=,; echo "${FO_DB_NODES[*]}")" "$FO_APP" "$FO_LOOPBACK" || return 1
        if [ ! -f "$FO_STATE/pki/ca.pem" ]; then
            rm -rf "$FO_STATE/pki"
            make_mesh_pki "$FO_BIN/meshctl" "$FO_STATE/pki" failover "${FO_NODES[@]}" || { log "$MESH_PKI_ERROR"; return 1; }
        fi
    fi
}

# fo_start_meshd NODE : meshd of NODE in its namespace (as root, like the tests: it binds nothing
# privileged, but the bed's files are root's).
fo_start_meshd() {
    start_bg "$FO_STATE/$1/log/meshd.log" ip netns exec "$(fo_ns "$1")" "$FO_BIN/meshd" --config "$FO_STATE/mesh.json" --node "$1"
}

# fo_start_etcd NODE : the etcd member, its flags read from the rendered etcd.env.
fo_start_etcd() {
    local vars
    mapfile -t vars < <(grep -E '^ETCD_[A-Z0-9_]+=' "$FO_STATE/$1/etc/etcd.env")
    fo_as etcd "$1"
    start_bg "$FO_STATE/$1/log/etcd.log" "${FO_AS[@]}" "${vars[@]}" /usr/bin/etcd
}

# fo_start_patroni NODE : Patroni as postgres; it starts (and detaches) PostgreSQL itself.
fo_start_patroni() {
    fo_as postgres "$1"
    start_bg "$FO_STATE/$1/log/patroni.log" "${FO_AS[@]}" "$FO_PATRONI_BIN/patroni" "$FO_STATE/$1/etc/patroni.yml"
}

# fo_start_haproxy : the anchor's HAProxy on app1, the standard Patroni set-up with 1 s checks.
fo_start_haproxy() {
    local cfg="$FO_STATE/$FO_APP/etc/haproxy.cfg" node
    {
        printf 'global\n    maxconn 200\n\ndefaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30m\n    timeout server 30m\n    timeout check 1s\n\n'
        printf 'listen pg_rw\n    bind 127.0.0.1:6432\n    option httpchk GET /primary\n    http-check expect status 200\n'
        printf '    default-server inter 1s fall 3 rise 2 on-marked-down shutdown-sessions\n'
        for node in "${FO_DB_NODES[@]}"; do
            printf '    server %s %s:5432 maxconn 100 check port 8008\n' "$node" "$(fo_addr haproxy "$node")"
        done
    } >"$cfg"
    start_bg "$FO_STATE/$FO_APP/log/haproxy.log" ip netns exec "$(fo_ns "$FO_APP")" haproxy -db -f "$cfg"
}

# fo_wait_tunnels SECONDS : every meshd has all its peers up (their control sockets are files,
# reachable from here).
fo_wait_tunnels() {
    local deadline=$((SECONDS + $1)) node up
    while [ $SECONDS -lt $deadline ]; do
        up=0
        for node in "${FO_NODES[@]}"; do
            "$FO_BIN/meshctl" --config "$FO_STATE/mesh.json" --node "$node" status --json 2>/dev/null |
                python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["peers_up"] == s["peers_total"] else 1)' 2>/dev/null &&
                up=$((up + 1))
        done
        [ $up = ${#FO_NODES[@]} ] && return 0
        sleep 0.2
    done
    log "failover bed: tunnels not all up within $1 s"
    return 1
}

# fo_sql NODE SQL : one statement as postgres on NODE's own PostgreSQL (Unix socket, peer).
fo_sql() {
    timeout 10 ip netns exec "$(fo_ns "$1")" setpriv --reuid=postgres --regid=postgres --init-groups -- \
        /usr/lib/postgresql/15/bin/psql -X -q -A -t -h "$FO_STATE/$1/run" -U postgres -d postgres -c "$2"
}

# fo_rw SQL : one statement through app1's 127.0.0.1:6432 (HAProxy or meshd's rw balancer).
fo_rw() {
    PGPASSWORD=$FO_SUPERUSER_PASSWORD timeout 10 ip netns exec "$(fo_ns "$FO_APP")" \
        /usr/lib/postgresql/15/bin/psql -X -q -A -t -h 127.0.0.1 -p 6432 -U postgres -d postgres -c "$1"
}

# fo_cluster_up LEG : starts the leg's processes on a fresh bed and waits until Patroni has a
# leader, a sync standby and two streaming replicas, and writes pass through app1's 6432. Sets
# FO_LEADER. Bounded: about three minutes at most.
fo_cluster_up() {
    local leg="$1" node deadline
    fo_prepare "$leg" || return 1
    if [ "$leg" = mesh ]; then
        for node in "${FO_NODES[@]}"; do fo_start_meshd "$node"; done
        fo_wait_tunnels 30 || return 1
    fi
    for node in "${FO_DB_NODES[@]}"; do fo_start_etcd "$node"; done
    for node in "${FO_DB_NODES[@]}"; do fo_start_patroni "$node"; done
    [ "$leg" = haproxy ] && fo_start_haproxy
    FO_LEADER=$(timeout 150 ip netns exec "$(fo_ns "$FO_APP")" "$FO_PYTHON" "$FO_PY" wait-healthy \
        "http://$(fo_addr "$leg" db1):8008" 120) || { log "failover bed ($leg): $FO_LEADER"; return 1; }
    if [ "$leg" = mesh ]; then fo_check_isolation || return 1; fi
    fo_sql "$FO_LEADER" "CREATE TABLE IF NOT EXISTS failover_bench (id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())" \
        >/dev/null || return 1
    deadline=$((SECONDS + 30))
    until [ "$(fo_rw 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
        [ $SECONDS -lt $deadline ] || { log "failover bed ($leg): no write path through app1 127.0.0.1:6432 within 30 s"; return 1; }
        sleep 0.2
    done
}

# fo_check_isolation : in the mesh leg, the only socket any node listens on outside 127.0.0.0/8 is
# meshd's mesh port, so every cross-node byte goes through a tunnel. Logs the offenders, returns 1.
fo_check_isolation() {
    local node bad
    for node in "${FO_NODES[@]}"; do
        bad=$(fo_in "$node" ss -Hltnup | awk -v port=":$FO_MESH_PORT" '$5 !~ /^127\./ && !($5 ~ port"$" && $7 ~ /meshd/) { print $1, $5, $7 }')
        [ -z "$bad" ] || { log "failover bed: $node listens outside loopback besides meshd's mesh port: $bad"; return 1; }
    done
}

# fo_acks_after FILE T : acknowledged writes in FILE at or after time T.
fo_acks_after() { awk -v t="$2" '$1 == "ack" && $3 >= t { n++ } END { print n + 0 }' "$1" 2>/dev/null || echo 0; }

# fo_start_load LEG DIR WHAT : the round's watchers (one per db node) and the writer, their files in
# DIR; waits for 3 s of steady writes (at most 30 s). WHAT names the round in the log. Sets FO_MAP
# (address=node,... for the reports).
fo_start_load() {
    local leg="$1" dir="$2" node deadline
    FO_MAP=""
    for node in "${FO_DB_NODES[@]}"; do
        FO_MAP+="${FO_MAP:+,}$(fo_addr "$leg" "$node")=$node"
        fo_as postgres "$node"
        BG_TIMEOUT=400 start_bg "$dir/$node.watch.log" "${FO_AS[@]}" "$FO_PYTHON" "$FO_PY" watch "$node" \
            "$FO_STATE/$node/run" "http://$(fo_addr "$leg" "$node"):8008" "$dir/$node.watch" "$dir/stop" 300
    done
    BG_TIMEOUT=400 start_bg "$dir/writer.log" ip netns exec "$(fo_ns "$FO_APP")" "$FO_PYTHON" "$FO_PY" writer \
        "host=127.0.0.1 port=6432 user=postgres password=$FO_SUPERUSER_PASSWORD dbname=postgres connect_timeout=2 application_name=failover-writer" \
        "$dir/acks" "$dir/stop" 300
    deadline=$((SECONDS + 30))
    until [ "$(fo_acks_after "$dir/acks" 0)" -ge 150 ]; do   # 3 s of steady writes first
        [ $SECONDS -lt $deadline ] || { log "$3: the writer got no 150 acknowledgements in 30 s"; break; }
        sleep 0.2
    done
}

# fo_stop_load DIR WHAT : stops the writer and the watchers and reads the table back through app1
# (DIR/rows).
fo_stop_load() {
    touch "$1/stop"
    sleep 0.5   # the writer and watchers look at the stop file every 20 / 100 ms
    fo_rw "SELECT id FROM failover_bench ORDER BY id" >"$1/rows" 2>"$1/rows.err" ||
        log "$2: could not read the rows back: $(tail -1 "$1/rows.err")"
}

# fo_random_phase : sleeps 0-5 s. The cluster turned healthy right after a leader loop, so without
# this every kill or switchover would come at the same phase of Patroni's 5 s loop (the same time
# since the leader last renewed its key) and the spread of the times would be hidden.
fo_random_phase() { sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", (r % 500) / 100 }')"; }

# fo_place_etcd_leader LEG N : in the bench (FO_BALANCE_ETCD=1), odd rounds make the Patroni
# leader's node etcd's Raft leader too and even rounds another node, so both legs kill an etcd
# leader equally often: that alone moves a failover by 3-4 s (etcd renews every lease on a new
# Raft leader) and, left to chance, decided the legs' medians. The move itself resets every lease,
# so it waits out one Patroni loop (5.5 s) before the kill's random phase.
fo_place_etcd_leader() {
    [ "${FO_BALANCE_ETCD:-0}" = 1 ] || return 0
    local leg="$1" n="$2" want other
    for other in "${FO_DB_NODES[@]}"; do [ "$other" != "$FO_LEADER" ] && break; done
    want=$FO_LEADER
    [ $((n % 2)) -eq 0 ] && want=$other
    fo_in "$FO_LEADER" "$FO_PYTHON" "$FO_PY" etcd-place-leader "http://$(fo_addr "$leg" "$FO_LEADER"):2379" "$want" >/dev/null ||
        log "$leg round $n: could not make $want etcd's leader"
    sleep 5.5
}

# fo_round LEG N : one measured round: cluster up, writer and watchers running, kill -9 of every
# process in the leader's namespace, wait for writes to resume (at most 120 s), then the report line
# appended to FO_RESULTS (and left in FO_LAST). Returns 1 when the bed could not be set up. The
# functions named by FO_HOOK_BEFORE_KILL and FO_HOOK_RESUMED, when set, run (with the leg) just
# before the kill and once writes resumed, while everything still runs (the demo shows state there).
fo_round() {
    local leg="$1" n="$2" dir node etcd_leader kill_time kill_done deadline
    dir="$FO_STATE/round-$leg-$n"
    rm -rf "$dir"; mkdir -p "$dir"; chmod 777 "$dir"
    fo_stop_nodes
    log "$leg round $n: starting 3 database nodes and $FO_APP"
    fo_cluster_up "$leg" || { fo_keep_logs "$leg" "$n"; fo_stop_nodes; return 1; }
    fo_start_load "$leg" "$dir" "$leg round $n"
    fo_place_etcd_leader "$leg" "$n"
    fo_random_phase
    [ -n "${FO_HOOK_BEFORE_KILL:-}" ] && "$FO_HOOK_BEFORE_KILL" "$leg"
    etcd_leader=$(fo_in "$FO_LEADER" "$FO_PYTHON" "$FO_PY" etcd-leader "http://$(fo_addr "$leg" "$FO_LEADER"):2379" 2>/dev/null || echo unknown)
    # Times from the first kill -9; acknowledgements count as "after" only once the namespace is
    # empty (a reply already on its way when the kill started may arrive a few ms later).
    fo_note_segments "$(fo_ns "$FO_LEADER")"
    kill_time=$(date +%s.%N)
    fo_kill_namespace "$(fo_ns "$FO_LEADER")"
    kill_done=$(date +%s.%N)
    log "$leg round $n: killed every process of $FO_LEADER (etcd leader: $etcd_leader); waiting for writes"
    deadline=$((SECONDS + 120))
    until [ "$(fo_acks_after "$dir/acks" "$kill_done")" -ge 250 ]; do   # 5 s of writes after
        [ $SECONDS -lt $deadline ] || { log "$leg round $n: writes did not resume for 5 s within 120 s"; break; }
        sleep 0.2
    done
    # Until the new primary names a synchronous standby again (non-strict synchronous_mode leaves
    # it without one for about a loop after the promotion), at most 20 s more.
    deadline=$((SECONDS + 20))
    until cat "$dir"/*.watch 2>/dev/null | awk -v t="$kill_time" '$1 == "sync" && $3 == "named" && $2 > t { f = 1 } END { exit !f }'; do
        [ $SECONDS -lt $deadline ] || { log "$leg round $n: no synchronous standby named within 20 s of writes resuming"; break; }
        sleep 0.2
    done
    [ -n "${FO_HOOK_RESUMED:-}" ] && "$FO_HOOK_RESUMED" "$leg"
    fo_stop_load "$dir" "$leg round $n"
    local watches=()
    for node in "${FO_DB_NODES[@]}"; do [ "$node" = "$FO_LEADER" ] || watches+=("$dir/$node.watch"); done
    FO_LAST=$("$FO_PYTHON" "$FO_PY" round-report "$leg" "$n" "$FO_LEADER" "$etcd_leader" "$kill_time" "$kill_done" "$dir/acks" \
        "$dir/rows" "$FO_MAP" "${watches[@]}") || return 1
    printf '%s\n' "$FO_LAST" >>"$FO_RESULTS"
    fo_keep_logs "$leg" "$n"
    fo_stop_nodes
}

# fo_switchover_round LEG N : one planned switchover: cluster up, writer and watchers running, then
# `patronictl switchover --leader L --candidate S --force` to the synchronous standby S (the only
# candidate synchronous_mode accepts), run on L as postgres; waits until S acknowledges writes and
# 2.5 s more (at most 60 + 20 s), checks that Patroni's leader is S (patronictl exits 0 even when it
# refuses a candidate), and appends the report line to FO_RESULTS (and FO_LAST). The round's files
# are kept as LEG-sN. Returns 1 when the bed could not be set up.
fo_switchover_round() {
    local leg="$1" n="$2" dir candidate addr switch_time switch_done status first deadline leader_after
    dir="$FO_STATE/round-$leg-s$n"
    rm -rf "$dir"; mkdir -p "$dir"; chmod 777 "$dir"
    fo_stop_nodes
    log "$leg switchover $n: starting 3 database nodes and $FO_APP"
    fo_cluster_up "$leg" || { fo_keep_logs "$leg" "s$n"; fo_stop_nodes; return 1; }
    candidate=$(timeout 10 ip netns exec "$(fo_ns "$FO_APP")" "$FO_PYTHON" "$FO_PY" cluster-roles \
        "http://$(fo_addr "$leg" "$FO_LEADER"):8008" | awk '{ print $2 }')
    if [ -z "$candidate" ] || [ "$candidate" = - ]; then
        log "$leg switchover $n: no synchronous standby to switch over to"
        fo_keep_logs "$leg" "s$n"; fo_stop_nodes; return 1
    fi
    addr=$(fo_addr "$leg" "$candidate")
    fo_start_load "$leg" "$dir" "$leg switchover $n"
    fo_random_phase
    fo_as postgres "$FO_LEADER"
    switch_time=$(date +%s.%N)
    timeout 90 "${FO_AS[@]}" "$FO_PATRONI_BIN/patronictl" -c "$FO_STATE/$FO_LEADER/etc/patroni.yml" switchover \
        --leader "$FO_LEADER" --candidate "$candidate" --force >"$dir/switchover.out" 2>&1
    status=$?
    switch_done=$(date +%s.%N)
    log "$leg switchover $n: patronictl switchover $FO_LEADER -> $candidate exited $status after" \
        "$(awk -v a="$switch_time" -v b="$switch_done" 'BEGIN { printf "%.1f", b - a }') s: $(grep -v '^[+|]' "$dir/switchover.out" | tail -1)"
    first=""
    deadline=$((SECONDS + 60))
    while [ -z "$first" ]; do
        first=$(awk -v t="$switch_time" -v a="$addr" '$1 == "ack" && $3 >= t && $4 == a { print $3; exit }' "$dir/acks" 2>/dev/null)
        [ -n "$first" ] && break
        [ $SECONDS -lt $deadline ] || { log "$leg switchover $n: no write acknowledged by $candidate within 60 s"; break; }
        sleep 0.2
    done
    if [ -n "$first" ]; then   # the measured window ends 2 s after it: wait until a write lands past that
        deadline=$((SECONDS + 20))
        until [ "$(fo_acks_after "$dir/acks" "$(awk -v f="$first" 'BEGIN { printf "%.6f", f + 2.5 }')")" -ge 1 ]; do
            [ $SECONDS -lt $deadline ] || { log "$leg switchover $n: writes stopped after the first on $candidate"; break; }
            sleep 0.2
        done
    fi
    leader_after=$(timeout 10 ip netns exec "$(fo_ns "$FO_APP")" "$FO_PYTHON" "$FO_PY" cluster-roles \
        "http://$addr:8008" | awk '{ print $1 }')
    [ "$leader_after" = "$candidate" ] ||
        log "$leg switchover $n: Patroni's leader is ${leader_after:-unknown}, not $candidate (patronictl: $(tr '\n' ' ' <"$dir/switchover.out" | tail -c 300))"
    fo_stop_load "$dir" "$leg switchover $n"
    FO_LAST=$("$FO_PYTHON" "$FO_PY" switchover-report "$leg" "$n" "$FO_LEADER" "$candidate" "${leader_after:--}" "$status" \
        "$switch_time" "$switch_done" "$dir/acks" "$dir/rows" "$FO_MAP" "$dir/$candidate.watch") || return 1
    printf '%s\n' "$FO_LAST" >>"$FO_RESULTS"
    fo_keep_logs "$leg" "s$n"
    fo_stop_nodes
}

# fo_keep_logs LEG N : copies the round's logs next to the results (when FO_LOGS is set).
fo_keep_logs() {
    [ -n "${FO_LOGS:-}" ] || return 0
    local to="$FO_LOGS/$1-$2" node
    mkdir -p "$to"
    for node in "${FO_NODES[@]}"; do
        cp -r "$FO_STATE/$node/log" "$to/$node" 2>/dev/null || true
    done
    cp -r "$FO_STATE/round-$1-$2" "$to/round" 2>/dev/null || true
}
