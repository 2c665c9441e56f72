# A throwaway PostgreSQL primary for the benchmark scripts (sourced, not run; needs processes.sh and
# the caller's T, SCALE and KEEP): initdb in a directory the postgres user owns (PostgreSQL refuses
# to run as root), loopback only, pgbench tables in database `bench`, stopped on exit.

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
pg_version() { "$PGBIN/postgres" --version | awk '{print $3}'; }

# start_postgres NAME : the cluster in /tmp/bench-NAME-pg.*; leaves PGBIN, PGROOT, PGPORT, PG_PID.
start_postgres() {
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || { log "PostgreSQL is not installed (see $T/apt.log)"; return 1; }
    PGROOT=$(mktemp -d "/tmp/bench-$1-pg.XXXXXX")
    chown postgres: "$PGROOT"
    on_exit "stop_postgres"
    PGPORT=$(free_port 127.0.0.1)
    as_postgres "$PGBIN/initdb" -D "$PGROOT/data" -U postgres --auth=trust -E UTF8 --no-sync --no-instructions \
        >"$T/initdb.log" 2>&1 || { log "initdb failed: $(tail -1 "$T/initdb.log")"; return 1; }
    cat >>"$PGROOT/data/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGROOT'
max_connections = 200
shared_buffers = 128MB
CONF
    as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/postgres.log" -w -t 60 start >"$T/pg_ctl.log" 2>&1 \
        || { log "PostgreSQL did not start: $(tail -3 "$PGROOT/postgres.log")"; return 1; }
    local out statement
    for statement in "CREATE ROLE meshmon LOGIN" "GRANT pg_monitor TO meshmon" "CREATE DATABASE bench"; do
        out=$(sql "$PGPORT" "$statement" postgres) || { log "PostgreSQL refused $statement: $out"; return 1; }
    done
    PG_PID=$(head -1 "$PGROOT/data/postmaster.pid" | tr -dc '0-9')
    log "PostgreSQL $(pg_version) on 127.0.0.1:$PGPORT (postmaster $PG_PID); pgbench -i -s $SCALE"
    run_bounded 900 "$T/pgbench-init.log" "$PGBIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$PGPORT" -U postgres bench \
        || { log "pgbench -i failed: $(tail -1 "$T/pgbench-init.log")"; return 1; }
}

stop_postgres() {
    if [ -f "$PGROOT/data/postmaster.pid" ]; then
        as_postgres "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || kill -QUIT "$(head -1 "$PGROOT/data/postmaster.pid")" 2>/dev/null
    fi
    if [ "${KEEP:-0}" = 1 ]; then log "kept $PGROOT"; else rm -rf "$PGROOT"; fi
}

# sql PORT STATEMENT [DATABASE] : one statement on 127.0.0.1:PORT as postgres (bounded, default
# database bench), its result or error.
sql() { timeout "${SQL_TIMEOUT:-10}" "$PGBIN/psql" -X -q -A -t -h 127.0.0.1 -p "$1" -U postgres -d "${3:-bench}" -c "$2" 2>&1; }

# wait_sql PORT SECONDS PID... : wait until `SELECT pg_is_in_recovery()` through 127.0.0.1:PORT answers
# f (the primary, through whatever proxy listens there), giving up early when one of the PIDs has
# exited; SQL_ERROR holds the last answer.
wait_sql() {
    local port="$1" deadline=$((SECONDS + $2)) pid; shift 2
    while [ $SECONDS -lt $deadline ]; do
        SQL_ERROR=$(SQL_TIMEOUT=5 sql "$port" "SELECT pg_is_in_recovery()") && [ "$SQL_ERROR" = f ] && return 0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null || { SQL_ERROR="a process serving 127.0.0.1:$port exited; $SQL_ERROR"; return 1; }; done
        sleep 0.2
    done
    SQL_ERROR=$(tail -1 <<<"$SQL_ERROR")
    return 1
}
