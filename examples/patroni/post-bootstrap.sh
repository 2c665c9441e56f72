#!/bin/sh
# Patroni's post_bootstrap hook, run once on the member that initialises the cluster:
#   post-bootstrap.sh PASSWORD_FILE CONNINFO   (Patroni appends CONNINFO)
# Creates meshd's monitor role (mesh.json: services.postgres.postgres.monitor_user, password_file)
# with the password in PASSWORD_FILE; it replicates to every member with the rest of the cluster.
set -eu
password_file=$1
conninfo=$2
password=$(cat "$password_file")
psql "$conninfo" -X -q -v ON_ERROR_STOP=1 -v password="$password" <<'SQL'
CREATE ROLE meshmon LOGIN PASSWORD :'password';
GRANT pg_monitor TO meshmon;
SQL
