#!/usr/bin/env bash
# test/citus/suite.sh -- order_flow on a Citus cluster (TAP on stdout): a
# coordinator and two workers on 127.0.0.1, both libraries preloaded
# (citus first).  Citus is not supported yet (README, "Scale-out on Citus");
# what this checks is that the extension says so instead of going wrong:
#
#   - CREATE EXTENSION order_flow on the coordinator reaches the workers;
#   - a managed table kept local to the coordinator works as on one server
#     (moves validated, chain verified), a partitioned one too, whatever
#     its partitions are called;
#   - manage() of a distributed table is refused (0A000) and writes nothing;
#   - create_distributed_table() of a managed table with rows fails on the
#     shards' transition trigger, and the table stays local and managed;
#   - an empty managed table that was distributed refuses every row through
#     the coordinator (0A000), and no worker's audit log gets an event.
#
# Needs Citus built for the server under test (test.sh runs it only then,
# and prints one line saying why when it does not).  Runs as root; the
# clusters run as postgres.
set -uo pipefail

# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$OF_REPO_ROOT"


DIR=$(mktemp -d /tmp/order_flow_citus.XXXXXX) || exit 1
chown postgres:postgres "$DIR" && chmod 700 "$DIR" || exit 1
NODES=(coordinator worker1 worker2)
declare -A PORT

stop_all() {
    local n
    for n in "${NODES[@]}"; do
        if [[ -f $DIR/$n/postmaster.pid ]]; then
            runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/$n" -m fast -w -t 60 -s stop >/dev/null 2>&1
        fi
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        log "KEEP=1: Citus cluster kept in $DIR"
    else
        rm -rf "$DIR"
    fi
}
trap stop_all EXIT

# q NODE SQL: the value(s) of SQL in database app on NODE (stderr: the error)
q() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORT[$1]}" -U postgres -d app -c "$2"
}
# sqlstate NODE SQL: the SQLSTATE SQL fails with on NODE (00000: it did not fail)
sqlstate() {
    local out
    out=$("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -h 127.0.0.1 -p "${PORT[$1]}" \
        -U postgres -d app -c "\\set VERBOSITY verbose" -c "$2" 2>&1 >/dev/null)
    if [[ -z $out ]]; then
        echo 00000
    else
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' <<<"$out" | head -n 1
    fi
}

echo "1..15"

# ------------------------------------------------------------ three nodes
started=0
for n in "${NODES[@]}"; do
    for ((tries = 0; tries < 50; tries++)); do
        p=$((6000 + RANDOM % 2000))
        _of_port_in_use "$p" || break
    done
    PORT[$n]=$p
    if (cd "$DIR" && runuser -u postgres -- "$PG_BIN/initdb" -D "$DIR/$n" -U postgres -A trust -E UTF8 \
        --locale=C -N >"$DIR/$n.initdb.log" 2>&1); then
        cat >>"$DIR/$n/postgresql.conf" <<EOF
port = $p
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
fsync = off
shared_preload_libraries = 'citus,$OF_EXTENSION'
max_worker_processes = 16
max_prepared_transactions = 20
EOF
        (cd "$DIR" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/$n" -l "$DIR/$n.log" -w -t 60 -s start) &&
            "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -c 'CREATE DATABASE app' &&
            q "$n" 'CREATE EXTENSION citus' && started=$((started + 1))
    fi
done
q coordinator "SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[coordinator]})" >/dev/null &&
    q coordinator "SELECT citus_add_node('127.0.0.1', ${PORT[worker1]})" >/dev/null &&
    q coordinator "SELECT citus_add_node('127.0.0.1', ${PORT[worker2]})" >/dev/null
tap_is "$started/$(q coordinator 'SELECT count(*) FROM citus_get_active_worker_nodes()')" "3/2" \
    "a Citus coordinator and two workers run, both libraries preloaded"

q coordinator 'CREATE EXTENSION order_flow' >/dev/null
tap_is "$(q coordinator "SELECT string_agg(result, ',') FROM run_command_on_workers(
        \$\$SELECT extversion FROM pg_extension WHERE extname = 'order_flow'\$\$)")" \
    "$(q coordinator "SELECT extversion || ',' || extversion FROM pg_extension WHERE extname = 'order_flow'")" \
    "CREATE EXTENSION order_flow on the coordinator reaches both workers"

# ------------------------------------------------------------ a local table
q coordinator "
CREATE TABLE local_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
INSERT INTO local_orders VALUES ('L1');
SELECT order_flow.manage('local_orders');
UPDATE local_orders SET status = 'quoted' WHERE id = 'L1';" >/dev/null
tap_is "$(q coordinator "SELECT string_agg(action || ' ' || coalesce(from_state, '-') || '>' || coalesce(to_state, '-'),
                                 ', ' ORDER BY seq) FROM order_flow.audit_log WHERE order_key = 'L1'")" \
    "transition inquiry>quoted" \
    "a managed table local to the coordinator records its moves"
tap_is "$(sqlstate coordinator "UPDATE local_orders SET status = 'shipped' WHERE id = 'L1'")" 23514 \
    "... validates them"
tap_is "$(q coordinator 'SELECT count(*) FROM order_flow.verify_audit()')" 0 "... and its chain verifies"

# a partition whose name ends like a shard's (an existing shard id, even) is no shard
q coordinator "
CREATE TABLE dummy_dist (id bigint PRIMARY KEY);
SELECT create_distributed_table('dummy_dist', 'id');" >/dev/null
sid=$(q coordinator "SELECT min(shardid) FROM pg_dist_shard")
q coordinator "
CREATE TABLE parted (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry') PARTITION BY LIST (id);
CREATE TABLE parted_$sid PARTITION OF parted FOR VALUES IN ('P1');
SELECT order_flow.manage('parted');
INSERT INTO parted VALUES ('P1');
UPDATE parted SET status = 'quoted' WHERE id = 'P1';" >/dev/null
tap_is "$(q coordinator "SELECT state FROM order_flow.tracked_order WHERE order_key = 'P1'")" quoted \
    "a managed partitioned table whose partition is named parted_<a shard id> works: a partition is no shard"

# ------------------------------------------------------------ manage() of a distributed table
q coordinator "
CREATE TABLE dist_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT create_distributed_table('dist_orders', 'id');
INSERT INTO dist_orders VALUES ('D1'), ('D2');" >/dev/null
tap_is "$(sqlstate coordinator "SELECT order_flow.manage('dist_orders')")" 0A000 \
    "manage() of a distributed table is refused: not supported (0A000)"
err=$("$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "${PORT[coordinator]}" -U postgres -d app \
    -c "SELECT order_flow.manage('dist_orders')" 2>&1 >/dev/null)
tap_ok "$([[ $err == *"does not support Citus distributed tables yet"* && $err == *"Scale-out on Citus"* ]]; echo $?)" \
    "... saying so and where to read why"
tap_is "$(q coordinator "SELECT count(*) FROM order_flow.managed_table WHERE relid = 'dist_orders'::regclass")/$(
    q coordinator "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'dist_orders'::regclass AND NOT tgisinternal")" \
    "0/0" "... and writes nothing (no managed table, no trigger)"

# ------------------------------------------------------------ distributing a managed table
q coordinator "
CREATE TABLE grown_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
INSERT INTO grown_orders VALUES ('G1'), ('G2'), ('G3');
SELECT order_flow.manage('grown_orders');" >/dev/null
err=$("$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "${PORT[coordinator]}" -U postgres -d app \
    -c "SET citus.enable_unsafe_triggers = on" -c "SELECT create_distributed_table('grown_orders', 'id')" 2>&1 >/dev/null)
tap_ok "$([[ $err == *"does not support Citus distributed tables yet"* ]]; echo $?)" \
    "create_distributed_table() of a managed table with rows fails on the shards' transition trigger"
tap_is "$(q coordinator "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'grown_orders'::regclass")/$(
    q coordinator "SELECT count(*) FROM grown_orders")" "0/3" "... and the table stays local, rows and all"
q coordinator "UPDATE grown_orders SET status = 'quoted' WHERE id = 'G1'" >/dev/null
tap_is "$(q coordinator "SELECT state FROM order_flow.tracked_order WHERE order_key = 'G1'")" quoted \
    "... and managed: its orders move on"

q coordinator "
CREATE TABLE empty_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('empty_orders');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('empty_orders', 'id');" >/dev/null
tap_is "$(q coordinator "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'empty_orders'::regclass")" 1 \
    "an empty managed table can still be distributed (no row reaches a trigger)"
tap_is "$(sqlstate coordinator "INSERT INTO empty_orders VALUES ('E1')")" 0A000 \
    "... but every row through the coordinator is refused on its shard (0A000)"
tap_is "$(q coordinator "SELECT string_agg(result, ',') FROM run_command_on_workers(
        \$\$SELECT count(*) FROM order_flow.audit_log WHERE order_key = 'E1'\$\$)")/$(
    q coordinator "SELECT count(*) FROM empty_orders")" "0,0/0" \
    "... and no node's audit log, nor the table, holds it"
