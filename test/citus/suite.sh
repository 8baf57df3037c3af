#!/usr/bin/env bash
# test/citus/suite.sh -- order_flow on a Citus cluster (TAP on stdout): a
# coordinator and two workers on 127.0.0.1, both libraries preloaded
# (citus first).  What it checks, through the coordinator:
#
#   - CREATE EXTENSION order_flow on the coordinator reaches the workers; a
#     managed table kept local to the coordinator works as on one server;
#   - what is not the supported layout is refused clearly: manage() of a
#     table Citus already distributed, create_distributed_table() of a
#     managed table (its shards are not set up), bad calls of
#     citus_distribute(), each leaving nothing behind;
#   - distributed by order (order_flow.citus_distribute(tbl)): validated
#     moves written into the companion shards beside each order's shard,
#     notifications and outbox in a transaction over both workers (two-phase
#     commit), ids unique across nodes, the actor set with SET LOCAL,
#     transition() and import_transition() with their note, details and
#     business time, deletions, citus_verify_audit() clean and then finding
#     a tampered event and a drifted row;
#   - the catalogue: an edit on the coordinator, audited once there, reaches
#     the workers' triggers with citus_sync_catalogue();
#   - a shard moved to the other worker takes its orders' chains with it;
#   - distributed by tenant (citus_distribute(tbl, 'tenant_id')): two
#     tenants may use one order key, each with its own chain.
#
# Needs Citus built for the server under test (test.sh runs it only then,
# and prints one line saying why when it does not).  Runs as root; the
# clusters run as postgres.
set -uo pipefail

# shellcheck source=cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
cd "$OF_REPO_ROOT"

DIR=$(citus_cluster_dir) || exit 1
on_exit "citus_cluster_stop $DIR"

# q NODE SQL: the value(s) of SQL in database app on NODE (stderr: the error)
# (read from stdin: statement by statement, as an application sends them)
q() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORT[$1]}" -U postgres -d app <<<"$2"
}
# sqlstate NODE SQL: the SQLSTATE SQL fails with on NODE (00000: it did not fail)
sqlstate() {
    local out
    out=$("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -h 127.0.0.1 -p "${PORT[$1]}" \
        -U postgres -d app 2>&1 >/dev/null <<<"\\set VERBOSITY verbose
$2")
    if [[ -z $out ]]; then
        echo 00000
    else
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' <<<"$out" | head -n 1
    fi
}

echo "1..66"

# ------------------------------------------------------------ three nodes
started=0
citus_cluster_start "$DIR" && started=3
tap_is "$started/$(q coordinator 'SELECT count(*) FROM citus_get_active_worker_nodes()')" "3/2" \
    "a Citus coordinator and two workers run, both libraries preloaded"

q coordinator 'CREATE EXTENSION order_flow' >/dev/null
tap_is "$(q coordinator "SELECT string_agg(result, ',') FROM run_command_on_workers(
        \$\$SELECT extversion FROM pg_extension WHERE extname = 'order_flow'\$\$)")" \
    "$(q coordinator "SELECT extversion || ',' || extversion FROM pg_extension WHERE extname = 'order_flow'")" \
    "CREATE EXTENSION order_flow on the coordinator reaches both workers"


# sqlerr NODE SQL: SQL's error message on NODE (empty: it did not fail)
sqlerr() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${PORT[$1]}" -U postgres -d app 2>&1 >/dev/null <<<"$2" |
        sed -n 's/^ERROR:  //p' | sed 's/^psql:<stdin>:[0-9]*: ERROR:  //' | head -n 1
}
# footprint: what the orders table's companions hold (events, notifications and their states, outbox
# messages, the heads' positions): a refused call must leave it as it was
footprint() {
    q coordinator "SELECT (SELECT count(*) FROM order_flow_citus.orders_audit_log) || '/' ||
                          (SELECT count(*) || ':' || count(*) FILTER (WHERE status = 'pending')
                             FROM order_flow_citus.orders_notification) || '/' ||
                          (SELECT count(*) FROM order_flow_citus.orders_outbox) || '/' ||
                          (SELECT coalesce(sum(last_seq), 0) FROM order_flow_citus.orders_tracked_order)" ||
        echo "unreadable $RANDOM"   # never equal to another reading
}
# workers SQL: SQL's value on each worker, comma-separated
workers() {
    q coordinator "SELECT string_agg(result, ',' ORDER BY nodeport) FROM run_command_on_workers(\$w\$$1\$w\$)"
}


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

# ------------------------------------------------------------ what is refused
q coordinator "
CREATE TABLE dist_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT create_distributed_table('dist_orders', 'id');" >/dev/null
tap_is "$(sqlstate coordinator "SELECT order_flow.manage('dist_orders')")" 0A000 \
    "manage() of a table Citus already distributed is refused (0A000)"
tap_ok "$([[ $(sqlerr coordinator "SELECT order_flow.manage('dist_orders')") == *"cannot manage a table Citus already distributed"* ]]; echo $?)" \
    "... saying so"
tap_is "$(q coordinator "SELECT count(*) FROM order_flow.managed_table WHERE relid = 'dist_orders'::regclass")/$(
    q coordinator "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'dist_orders'::regclass AND NOT tgisinternal")" \
    "0/0" "... and writes nothing (no managed table, no trigger)"

q coordinator "
CREATE TABLE grown_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
INSERT INTO grown_orders VALUES ('G1'), ('G2'), ('G3');
SELECT order_flow.manage('grown_orders');" >/dev/null
err=$("$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "${PORT[coordinator]}" -U postgres -d app \
    -c "SET citus.enable_unsafe_triggers = on" -c "SELECT create_distributed_table('grown_orders', 'id')" 2>&1 >/dev/null)
tap_ok "$([[ $err == *"is not set up for order_flow on Citus"* ]]; echo $?)" \
    "create_distributed_table() of a managed table with rows fails on its shards' trigger: not set up for order_flow"
tap_is "$(q coordinator "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'grown_orders'::regclass")/$(
    q coordinator "SELECT count(*) FROM grown_orders")" "0/3" "... and the table stays local, rows and all"

q coordinator "
CREATE TABLE empty_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('empty_orders');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('empty_orders', 'id');" >/dev/null
tap_is "$(sqlstate coordinator "INSERT INTO empty_orders VALUES ('E1')")" 0A000 \
    "a managed table distributed by hand refuses every row on its shard (0A000): its chains would have no place"
tap_is "$(workers "SELECT count(*) FROM order_flow.audit_log WHERE order_key = 'E1'")/$(
    q coordinator "SELECT count(*) FROM empty_orders")" "0,0/0" \
    "... and no node's audit log, nor the table, holds it"

q coordinator "
CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
SELECT order_flow.manage('orders', customer_column => 'customer');
INSERT INTO orders VALUES (1, 'inquiry', 'acme');
CREATE ROLE clerk LOGIN;
GRANT SELECT ON orders TO clerk;" >/dev/null
tap_is "$(sqlstate coordinator "SELECT order_flow.citus_distribute('orders')")" 55000 \
    "citus_distribute() of a table with orders is refused (55000): their chains are on this node"
tap_is "$(sqlstate coordinator "SELECT order_flow.citus_distribute('dist_orders')")" 42704 \
    "... of a table order_flow does not manage (42704)"
tap_is "$(sqlstate coordinator "SET ROLE clerk; SELECT order_flow.citus_distribute('orders')")" 42501 \
    "... by a role that is no superuser (42501)"
q coordinator "SET session_replication_role = replica; DELETE FROM orders; DELETE FROM order_flow.tracked_order WHERE tbl = 'public.orders'" >/dev/null
tap_is "$(sqlstate coordinator "SELECT order_flow.citus_distribute('orders', 'no_such_column')")" 42703 \
    "... by a column the table lacks (42703)"
tap_is "$(q coordinator "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'orders'::regclass")/$(
    q coordinator "SELECT count(*) FROM pg_class WHERE relname LIKE 'orders\_%' AND relnamespace = to_regnamespace('order_flow_citus')")" \
    "0/0" "... and a refused call leaves nothing: the table local, no companion table"

# ------------------------------------------------------------ distributed by order
q coordinator "SELECT order_flow.citus_distribute('orders', shard_count => 4)" >/dev/null
tap_is "$(q coordinator "SELECT count(DISTINCT colocationid) || '/' || count(*) FROM pg_dist_partition
        WHERE logicalrelid IN ('orders'::regclass, 'order_flow_citus.orders_audit_log'::regclass,
              'order_flow_citus.orders_tracked_order'::regclass, 'order_flow_citus.orders_notification'::regclass,
              'order_flow_citus.orders_outbox'::regclass)")" "1/5" \
    "citus_distribute() distributes the table and its four companion tables, all co-located"

q coordinator "INSERT INTO orders SELECT g, 'inquiry', 'c' || g % 3 FROM generate_series(1, 40) g" >/dev/null
tap_is "$(workers "SELECT count(*) > 0 FROM pg_class WHERE relname LIKE 'orders\_audit\_log\_%'")/$(
    q coordinator "SELECT count(*) FROM order_flow_citus.orders_audit_log WHERE action = 'created'")" "t,t/40" \
    "40 new orders through the coordinator: 40 'created' events, in shards on both workers"
q coordinator "BEGIN; SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL order_flow.actor = 'alice@sales';
               UPDATE orders SET status = 'quoted' WHERE id <= 30; COMMIT;" >/dev/null
tap_is "$(q coordinator "SELECT count(*) || ' ' || min(actor) || ' ' || max(actor) FROM order_flow_citus.orders_audit_log
                         WHERE action = 'transition'")" "30 alice@sales alice@sales" \
    "a multi-shard UPDATE moves 30 orders, recorded with the actor set by SET LOCAL (forwarded by Citus)"
tap_is "$(sqlstate coordinator "UPDATE orders SET status = 'shipped' WHERE id = 31")/$(
    q coordinator "SELECT status || ' ' || (SELECT count(*) FROM order_flow_citus.orders_audit_log WHERE order_key = '31')
                   FROM orders WHERE id = 31")" "23514/inquiry 1" \
    "an invalid move is refused on its worker (23514) and writes nothing"
tap_is "$(sqlstate coordinator "BEGIN; UPDATE orders SET status = 'contract_signed' WHERE id <= 10; COMMIT;")" 00000 \
    "one transaction over both workers on an edge that notifies commits (no NOTIFY on a shard to block PREPARE)"
tap_is "$(q coordinator "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || count(DISTINCT id >> 48)
                         FROM order_flow_citus.orders_notification")/$(
    q coordinator "SELECT count(*) FROM order_flow_citus.orders_outbox o
                   JOIN order_flow_citus.orders_notification n ON n.dist_key = o.dist_key AND n.id = o.notification_id")" \
    "30 30 2/30" "... 30 notifications (10 orders x 3 departments) with ids unique across both workers' ranges, each with its outbox message"

q coordinator "SELECT order_flow.transition('orders', '11', 'contract_signed', 'signed by fax', '{\"pages\": 3}')" >/dev/null
tap_is "$(q coordinator "SELECT action || ' ' || to_state || ' ' || (details->>'note') || ' ' || (details->>'pages')
                         FROM order_flow_citus.orders_audit_log WHERE order_key = '11' AND seq = 3")" \
    "transition contract_signed signed by fax 3" \
    "transition() of a distributed table records its note and details on the worker"
fp=$(footprint)
tap_is "$(sqlstate coordinator "SELECT order_flow.transition('orders', '11', 'contract_signed')")/$(
    sqlstate coordinator "SELECT order_flow.transition('orders', '999', 'quoted')")/$(footprint)" "23514/P0002/$fp" \
    "... refuses a move to the state the order is in (23514) and an unknown order (P0002), writing nothing"
q coordinator "INSERT INTO orders VALUES (50, 'inquiry', 'old');
               SELECT pg_sleep(0.3);
               SELECT order_flow.import_transition('orders', '50', 'quoted', now() - interval '0.2 s', '{\"erp\": \"X1\"}')" >/dev/null
tap_is "$(q coordinator "SELECT action || ' ' || (occurred_at < recorded_at - interval '0.15 s') || ' ' || (details->>'erp')
                         FROM order_flow_citus.orders_audit_log WHERE order_key = '50' AND seq = 2")" "import true X1" \
    "import_transition() records an import at its business time"
fp=$(footprint)
tap_is "$(sqlstate coordinator "SET ROLE clerk; SELECT order_flow.import_transition('orders', '50', 'contract_signed', now())")/$(
    footprint)" "42501/$fp" "... and a role without the right to import is refused (42501), writing nothing"

q coordinator "DELETE FROM orders WHERE id = 1" >/dev/null
tap_is "$(q coordinator "SELECT (SELECT action FROM order_flow_citus.orders_audit_log WHERE order_key = '1' ORDER BY seq DESC LIMIT 1)
                         || ' ' || (SELECT count(*) FROM order_flow_citus.orders_notification WHERE order_key = '1' AND status = 'pending')
                         || ' ' || (SELECT coalesce(state, 'none') FROM order_flow_citus.orders_tracked_order WHERE order_key = '1')")" \
    "deleted 0 none" "a deletion ends the order's chain and closes its notifications"

rid=$(q coordinator "SELECT order_flow.record('15', 'note', '{\"text\": \"customer called\"}')")
tap_is "$(q coordinator "SELECT action || ' ' || from_state || '>' || to_state || ' ' || (details->>'text')
                         FROM order_flow_citus.orders_audit_log WHERE order_key = '15' AND id = $rid")/$(
    sqlstate coordinator "SELECT order_flow.record('nope', 'note')")" "note quoted>quoted customer called/P0002" \
    "record() through the coordinator appends a fact to a distributed order's chain; an unknown order is refused (P0002)"
tap_is "$(q coordinator "SELECT string_agg(to_state, ',' ORDER BY to_state) FROM order_flow.allowed_transitions('orders', '15')")" \
    "$(q coordinator "SELECT string_agg(to_state, ',' ORDER BY to_state) FROM order_flow.transition_rule
                      WHERE workflow = 'b2b_order' AND from_state = 'quoted'")" \
    "allowed_transitions() of a distributed order reads its head beside its shard"

# ------------------------------------------------------------ the broadcast
ack=$(q coordinator "SELECT id FROM order_flow_citus.orders_notification WHERE order_key = '2' AND department = 'warehouse'")
tap_is "$(q coordinator "SELECT order_flow.acknowledge($ack) = $ack")/$(
    q coordinator "SELECT n.status || ' ' || (SELECT action FROM order_flow_citus.orders_audit_log l
                                              WHERE l.order_key = '2' ORDER BY seq DESC LIMIT 1)
                   FROM order_flow_citus.orders_notification n WHERE n.id = $ack")" "t/acknowledged acknowledge" \
    "acknowledge() through the coordinator answers a notification of a distributed table and records it in the chain"
fin=$(q coordinator "SELECT id FROM order_flow_citus.orders_notification WHERE order_key = '2' AND department = 'finance'")
fp=$(footprint)
tap_is "$(sqlstate coordinator "SELECT order_flow.acknowledge($ack)")/$(sqlstate coordinator "SELECT order_flow.acknowledge(42)")/$(
    sqlstate coordinator "GRANT EXECUTE ON FUNCTION order_flow.acknowledge(bigint, text, jsonb) TO clerk;
                          SET ROLE clerk; SELECT order_flow.acknowledge($fin)")/$(footprint)" "55000/P0002/42501/$fp" \
    "... once (55000), an unknown id is refused (P0002), and so is a role outside the department (42501), writing nothing"
ni=$(q coordinator "SELECT id FROM order_flow_citus.orders_notification WHERE order_key = '3' AND department = 'finance'")
ni=$(q coordinator "SELECT order_flow.acknowledge($ni, 'need_info', '{\"text\": \"which address?\"}')")
tap_is "$(q coordinator "SELECT department || ' ' || kind || ' ' || status
                         FROM order_flow_citus.orders_notification n WHERE n.id = $ni") $(
    q coordinator "SELECT count(*) FROM order_flow_citus.orders_outbox o WHERE o.notification_id = $ni")" "sales need_info pending 1" \
    "... and need_info opens a notification for the originating department, with its outbox message"

due=$(q coordinator "WITH p AS MATERIALIZED (SELECT department, level - 1 AS level FROM order_flow.escalation_policy)
                    SELECT count(*) FROM order_flow_citus.orders_notification x
                     WHERE x.status = 'pending' AND x.escalates AND (x.department, x.level) IN (SELECT * FROM p)")
swept=$(workers "SELECT order_flow.escalate_due(now() + interval '3 hours')")
tap_is "$(q coordinator "SELECT count(*) FILTER (WHERE status = 'escalated') || ' ' ||
                                count(*) FILTER (WHERE level > 1)
                         FROM order_flow_citus.orders_notification")/$(
    q coordinator "SELECT count(*) FROM order_flow_citus.orders_audit_log WHERE action = 'escalate'")/$(
    q coordinator "SELECT count(*) FROM order_flow_citus.orders_outbox WHERE kind = 'escalation'")" "$due $due/$due/$due" \
    "each worker's sweep escalates the overdue notifications of the shards it holds: $due, each once, audited and sent"
tap_ok "$([[ $due -gt 0 && $swept == *,* ]]; echo $?)" "... ($due due, the sweeps returned $swept)"
tap_is "$(workers "SELECT order_flow.escalate_due(now() + interval '3 hours')")" "0,0" \
    "... and a second sweep at the same time escalates nothing again"
workers "SELECT order_flow.escalate_due(now() + interval '60 days')" >/dev/null
reminded=$(q coordinator "SELECT count(*) FROM order_flow_citus.orders_audit_log WHERE action = 'remind'")
tap_is "$(( reminded > 0 ))/$(q coordinator "SELECT count(*) FROM order_flow_citus.orders_outbox WHERE kind = 'reminder'")" "1/$reminded" \
    "a sweep 60 days on reminds the orders that stalled, each reminder audited and sent"

q coordinator "CREATE TABLE saved_policy AS SELECT * FROM order_flow.escalation_policy;
               CREATE TABLE saved_rule AS SELECT * FROM order_flow.transition_rule;
               UPDATE order_flow.escalation_policy SET delay = interval '1 second' WHERE level = 2;
               UPDATE order_flow.transition_rule SET ack_within = interval '1 second'
                WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
               SELECT order_flow.citus_sync_catalogue();
               UPDATE orders SET status = 'contract_signed' WHERE id = 14;" >/dev/null
for ((i = 0; i < 60; i++)); do
    [[ $(q coordinator "SELECT count(*) FROM order_flow_citus.orders_audit_log WHERE order_key = '14' AND action = 'escalate'") -ge 3 ]] && break
    sleep 1
done
tap_is "$(q coordinator "SELECT count(*) FROM order_flow_citus.orders_audit_log WHERE order_key = '14' AND action = 'escalate'")" 3 \
    "the scheduler of the worker holding an order escalates its notifications when they fall due (no manual sweep)"

q coordinator "UPDATE order_flow.escalation_policy p SET delay = s.delay FROM saved_policy s
                WHERE s.department = p.department AND s.level = p.level;
               UPDATE order_flow.transition_rule r SET ack_within = s.ack_within FROM saved_rule s
                WHERE (s.workflow, s.from_state, s.to_state) = (r.workflow, r.from_state, r.to_state);
               SELECT order_flow.citus_sync_catalogue();" >/dev/null

# (the scheduler may escalate meanwhile: only the messages of the first claim are compared)
ids=$(q coordinator "SELECT array_agg(id) FROM order_flow.outbox_claim(10000, '1 minute')")
total=$(q coordinator "SELECT cardinality('$ids'::bigint[])")
tap_is "$(q coordinator "SELECT count(*) FROM order_flow_citus.orders_outbox WHERE id = ANY ('$ids') AND claimed_by IS NOT NULL
                           AND lease_until > now() AND delivered_at IS NULL")/$(
    q coordinator "SELECT count(*) FROM order_flow.outbox_claim(10000, '1 minute') WHERE id = ANY ('$ids')")" "$total/0" \
    "outbox_claim() through the coordinator leases the distributed table's undelivered messages ($total), and a second relay gets none of them while leased"
tap_is "$(q coordinator "SELECT order_flow.outbox_done('$ids')")/$(
    q coordinator "SELECT count(*) FROM order_flow_citus.orders_outbox WHERE id = ANY ('$ids') AND delivered_at IS NULL")" "$total/0" \
    "... and outbox_done() marks them delivered"

tap_is "$(q coordinator "SELECT coalesce(string_agg(tbl || ' ' || split_part(problem, ' (', 1), '; '), 'none')
                         FROM order_flow.citus_verify_audit()")" \
    "public.empty_orders distributed without its companion tables" \
    "citus_verify_audit(): every chain on every worker is intact; the table distributed by hand is reported"
tap_is "$(q coordinator "SELECT string_agg(coalesce(order_key, '-') || ' ' || problem, '; ') FROM order_flow.verify_audit()")" \
    "- public.empty_orders: distributed without its companion tables (not set up by citus_distribute())" \
    "verify_audit() on the coordinator checks the distributed tables too (and no distributed row is taken for a row without a chain)"

# ------------------------------------------------------------ the catalogue
before=$(workers "SELECT count(*) FROM order_flow.audit_log WHERE order_key = 'order_flow:config'")
cfg0=$(q coordinator "SELECT count(*) FROM order_flow.audit_log WHERE order_key = 'order_flow:config'")
q coordinator "UPDATE order_flow.transition_rule SET reason_required = true
                WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed'" >/dev/null
for ((i = 0; i < 30; i++)); do
    [[ $(q coordinator "SELECT count(*) FROM order_flow.citus_verify_audit() WHERE problem LIKE 'the catalogue of worker%'") == 0 ]] && break
    sleep 1
done
tap_is "$(workers "SELECT reason_required FROM order_flow.transition_rule
                    WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed'")" "t,t" \
    "a catalogue edit on the coordinator reaches both workers by itself: the coordinator's scheduler copies it"
tap_is "$(sqlstate coordinator "UPDATE orders SET status = 'contract_signed' WHERE id = 13")" 23514 \
    "... whose triggers then enforce it"
err=$("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "${PORT[coordinator]}" -U postgres -d app 2>&1 >/dev/null <<<"
SET order_flow.reason = 'a session SET';
UPDATE orders SET status = 'contract_signed' WHERE id = 13;")
tap_ok "$([[ $err == *"requires a reason"* && $err == *"SET LOCAL order_flow.reason"*"propagate_set_commands"* ]]; echo $?)" \
    "... and a session's SET order_flow.reason, which Citus does not forward, is refused with a hint that says so"
tap_is "$(( $(q coordinator "SELECT count(*) FROM order_flow.audit_log WHERE order_key = 'order_flow:config'") - cfg0 ))/$(
    workers "SELECT count(*) FROM order_flow.audit_log WHERE order_key = 'order_flow:config'")" "1/$before" \
    "... and the edit is audited once, on the coordinator"
q coordinator "SELECT run_command_on_workers(\$w\$SET session_replication_role = replica;
               UPDATE order_flow.transition_rule SET reason_required = false\$w\$)" >/dev/null
tap_is "$(q coordinator "SELECT count(*) FROM order_flow.citus_verify_audit() WHERE problem LIKE 'the catalogue of worker%'")/$(
    q coordinator "SELECT order_flow.citus_sync_catalogue()")/$(
    q coordinator "SELECT count(*) FROM order_flow.citus_verify_audit() WHERE problem LIKE 'the catalogue of worker%'")" "2/2/0" \
    "citus_verify_audit() reports workers whose catalogue was changed behind the coordinator's back; citus_sync_catalogue() copies it again"
q coordinator "UPDATE order_flow.transition_rule SET reason_required = false
                WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
               SELECT order_flow.citus_sync_catalogue()" >/dev/null

# ------------------------------------------------------------ tampering
q coordinator "SELECT run_command_on_placements('order_flow_citus.orders_audit_log',
    \$t\$SET session_replication_role = replica; UPDATE %s SET actor = 'mallory' WHERE order_key = '20' AND seq = 2\$t\$)" >/dev/null
q coordinator "SET citus.enable_unsafe_triggers = on; ALTER TABLE orders DISABLE TRIGGER order_flow_transition;
               UPDATE orders SET status = 'paid' WHERE id = 21; ALTER TABLE orders ENABLE TRIGGER order_flow_transition" >/dev/null
tap_is "$(q coordinator "SELECT string_agg(order_key || ': ' || split_part(problem, ':', 1), '; ' ORDER BY order_key)
                         FROM order_flow.citus_verify_audit() WHERE tbl = 'public.orders'")" \
    "20: bad hash; 21: drift" \
    "citus_verify_audit() finds an event altered on a worker and a row changed behind the trigger"

fp=$(footprint)
tap_is "$(sqlstate coordinator "SELECT order_flow.repair_drift('orders', '20', 'fixed')")/$(
    [[ $(footprint) == "$fp" ]] && echo nothing)/$(
    q coordinator "SELECT order_flow.repair_drift('orders', '21', 'paid by phone') > 0")/$(
    q coordinator "SELECT state || ' ' || (SELECT action || ':' || to_state FROM order_flow_citus.orders_audit_log
                                            WHERE order_key = '21' ORDER BY seq DESC LIMIT 1)
                   FROM order_flow_citus.orders_tracked_order WHERE order_key = '21'")/$(
    q coordinator "SELECT string_agg(order_key || ': ' || split_part(problem, ':', 1), '; ' ORDER BY order_key)
                     FROM order_flow.citus_verify_audit() WHERE tbl = 'public.orders'")" \
    "55000/nothing/t/paid drift:paid/20: bad hash" \
    "repair_drift() of a distributed order: refused where nothing drifted (55000); records the drift beside its shard and moves its head"

# ------------------------------------------------------------ moving a shard
seq22=$(q coordinator "SELECT last_seq + 1 FROM order_flow_citus.orders_tracked_order WHERE order_key = '22'")
shard=$(q coordinator "SELECT get_shard_id_for_distribution_column('orders', 22)")
from=$(q coordinator "SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = $shard")
to=$(q coordinator "SELECT nodeport FROM pg_dist_node WHERE groupid > 0 AND nodeport <> $from")
q coordinator "SELECT citus_move_shard_placement($shard, '127.0.0.1', $from, '127.0.0.1', $to, shard_transfer_mode => 'block_writes')" >/dev/null
q coordinator "UPDATE orders SET status = 'contract_signed' WHERE id = 22" >/dev/null
tap_is "$(q coordinator "SELECT (SELECT nodeport FROM pg_dist_shard_placement WHERE shardid = $shard) = $to,
                                (SELECT last_seq || ' ' || state FROM order_flow_citus.orders_tracked_order WHERE order_key = '22')")" \
    "t|$seq22 contract_signed" \
    "a shard moved to the other worker takes its orders' chains along: the next move continues the chain"
tap_is "$(q coordinator "SELECT count(*) FROM order_flow.citus_verify_audit() WHERE tbl = 'public.orders' AND order_key <> '20'")" 0 \
    "... which still verifies"

tap_is "$(sqlstate coordinator "CREATE TABLE junk (a int); SELECT create_distributed_table('junk', 'a'); DROP TABLE junk")" 00000 \
    "DROP of a distributed table works with the extension's event trigger installed"

# ------------------------------------------------------------ the shipping station
q coordinator "
CREATE TABLE s_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text, region text,
    addressee text, contact text, phone text, address text, city text, postcode text, credit_limit numeric);
SELECT order_flow.manage('s_orders', customer_column => 'customer',
                         attributes => '{region,addressee,contact,phone,address,city,postcode,credit_limit}');
SELECT order_flow.citus_distribute('s_orders', shard_count => 4);
INSERT INTO order_flow.sku (sku, barcode, name, category, weight_kg, prohibited, substitutes, unit_price, unit_cost)
VALUES ('SKU-A', '6901234500017', 'Adapter A', 'power', 0.5, false, '{}', 12, 7);
INSERT INTO order_flow.stock (sku, available) VALUES ('SKU-A', 100);
INSERT INTO order_flow.package_preset (code, name, max_weight_kg, tare_kg) VALUES ('BOX-S', 'small box', 5, 0.5);
INSERT INTO order_flow.freight_rule (carrier, region, min_kg, max_kg, base_fee, per_kg) VALUES ('YT', '*', 0, 10, 8, 2.5);
INSERT INTO order_flow.waybill_pool (carrier, prefix, next_no, last_no, digits, check_digit)
VALUES ('YT', 'YT', 1234567, 1234570, 10, 'mod7');
INSERT INTO s_orders VALUES ('S1', 'picking', 'Acme', 'north', 'Ms Li', 'Li Na', '+86', '1 Rd', 'Shenzhen', '518000', 50000);
INSERT INTO order_flow.order_line (order_key, sku, qty, scanned) VALUES ('S1', 'SKU-A', 2, 0);" >/dev/null
tap_is "$(q coordinator "SET order_flow.station = 'st-1';
                         SELECT (order_flow.station_scan('S1', '6901234500017', 2))->>'complete';
                         SELECT (order_flow.station_ship('S1', 'BOX-S'))->>'waybill';
                         SELECT status FROM s_orders WHERE id = 'S1';" | tr '\n' ' ')" "true YT00012345675 shipped " \
    "the shipping station scans and ships an order of a distributed table: waybill with its check digit, the row shipped"
q coordinator "SELECT order_flow.logistics_update(waybill, 'delivered', now(), 'Shenzhen') FROM order_flow.shipment
                WHERE order_key = 'S1'" >/dev/null
tap_is "$(q coordinator "SELECT string_agg(action || ':' || coalesce(to_state, '-'), ' ' ORDER BY seq)
                         FROM order_flow_citus.s_orders_audit_log WHERE order_key = 'S1'")/$(
    q coordinator "SELECT count(*) FROM order_flow.citus_verify_audit() WHERE tbl = 'public.s_orders'")" \
    "created:picking transition:shipped ship:shipped logistics:- transition:in_transit transition:delivered/0" \
    "... and the carrier's trace moves it to delivered, every step in its chain beside its shard, verified"

q coordinator "SELECT order_flow.unmanage('s_orders'); INSERT INTO s_orders (id, status) VALUES ('S9', 'picking')" >/dev/null
tap_is "$(q coordinator "SELECT count(*) FROM pg_trigger WHERE tgrelid = 's_orders'::regclass AND NOT tgisinternal")/$(
    q coordinator "SELECT count(*) FROM order_flow_citus.s_orders_audit_log WHERE order_key = 'S9'")/$(
    q coordinator "SELECT count(*) FROM order_flow_citus.s_orders_audit_log WHERE order_key = 'S1'")" "0/0/6" \
    "unmanage() of a distributed table drops its triggers on every shard; its chains stay in the companion tables"

# ------------------------------------------------------------ the metrics
# The same six-order history (business times in March 2024) for a table kept
# local to the coordinator (keys m-*) and for a distributed one (d-*): the
# rollup, customer_health, exception_pareto's facts and kpi() must not tell
# them apart.
history() { # history PREFIX TABLE: the SQL of the history
    local p=$1 t=$2 i d
    for i in 1 2 3 4 5 6; do
        d="2024-03-0$i"
        if [[ $p == d ]]; then
            echo "BEGIN; SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL order_flow.transition_context = '{\"n\": \"$p-$i\", \"order_key\": \"$p-$i\", \"action\": \"import\", \"occurred_at\": \"${d}T09:00:00+00:00\"}';"
        else
            echo "BEGIN; SELECT _order_flow._set_context('$p-$i', 'import', NULL, '{}', '$d 09:00+00');"
        fi
        echo "INSERT INTO $t VALUES ('$p-$i', 'inquiry', '$p-c$((i % 3 + 1))'); COMMIT;"
        mv() { echo "SELECT order_flow.import_transition('$t', '$p-$i', '$1', '$d 09:00+00'::timestamptz + interval '$2', '{\"reason\": \"r\"}');"; }
        mv quoted '1 hour'
        mv contract_signed '1 day'
        if [[ $i == 6 ]]; then mv stock_shortage '1 day 2 hours'; fi
        [[ $i == 5 ]] && continue
        mv warehouse_confirmed '2 days'
        mv finance_approved '2 days 3 hours'
        mv picking '3 days'
        mv shipped '4 days'
        mv in_transit '4 days 6 hours'
        mv delivered "$((5 + i)) days"
        [[ $i == 4 ]] && continue
        mv accepted "$((6 + i)) days"
    done
    echo "SELECT order_flow.record('$p-1', 'payment', '{\"amount\": 100, \"due_date\": \"2024-04-01\", \"paid_date\": \"2024-03-20\"}');
SELECT order_flow.record('$p-3', 'payment', '{\"amount\": 300, \"due_date\": \"2024-04-01\", \"paid_date\": \"2024-04-05\"}');
SELECT order_flow.record('$p-2', 'exception', '{\"exception_type\": \"damaged_goods\"}');
SELECT order_flow.record('$p-2', 'complaint', '{\"text\": \"late\"}');
SELECT order_flow.metrics_fold(true);"
}
q coordinator "
CREATE TABLE m_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
CREATE TABLE d_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
SELECT order_flow.manage('m_orders', customer_column => 'customer');
SELECT order_flow.manage('d_orders', customer_column => 'customer');
SELECT order_flow.citus_distribute('d_orders', shard_count => 4);" >/dev/null
q coordinator "$(history m m_orders)" >/dev/null
k1=$(q coordinator "SELECT to_jsonb(k) FROM order_flow.kpi('2024-03-01', '2024-04-01') k")
q coordinator "$(history d d_orders)" >/dev/null
tap_is "$(q coordinator "SELECT count(*) FROM order_flow_citus.d_orders_audit_log")/$(
    q coordinator "SELECT count(*) FROM order_flow.audit_log WHERE order_key LIKE 'm-%'")/$(
    q coordinator "SELECT count(*) FROM order_flow.order_fact WHERE order_key LIKE 'd-%'")" "57/57/6" \
    "the same history through a local and a distributed table: 57 events each; the distributed orders are in the coordinator's rollup"
tap_is "$(q coordinator "SELECT count(*) FROM order_flow.order_fact d
                           JOIN order_flow.order_fact m ON m.order_key = 'm' || substr(d.order_key, 2)
                          WHERE d.order_key LIKE 'd-%'
                            AND to_jsonb(d) - 'order_key' - 'customer_key' = to_jsonb(m) - 'order_key' - 'customer_key'")" 6 \
    "... folded exactly as the local ones: each distributed order's rollup row equals its local twin's"
tap_is "$(q coordinator "SELECT count(*) || ' ' || count(*) FILTER (WHERE to_jsonb(d) - 'customer_key' = to_jsonb(m) - 'customer_key')
                           FROM order_flow.customer_health d
                           JOIN order_flow.customer_health m ON m.customer_key = 'm' || substr(d.customer_key, 2)
                          WHERE d.customer_key LIKE 'd-%'")/$(
    q coordinator "SELECT string_agg(exception_type || ':' || n, ',' ORDER BY exception_type) FROM
                     (SELECT exception_type, count(*) FILTER (WHERE order_key LIKE 'd-%')
                             - count(*) FILTER (WHERE order_key LIKE 'm-%') AS n
                        FROM order_flow.exception_fact GROUP BY 1) x")" "3 3/damaged_goods:0,stock_shortage:0" \
    "customer_health gives each distributed customer its local twin's health, and the exception facts match"
tap_is "$(q coordinator "SELECT (to_jsonb(k) - 'orders') = ('$k1'::jsonb - 'orders')
                                AND (k).orders = 2 * ('$k1'::jsonb->>'orders')::bigint AND (k).orders > 0
                           FROM order_flow.kpi('2024-03-01', '2024-04-01') k")" t \
    "kpi() through the coordinator counts the distributed orders as local ones: twice the orders, every rate the same"

# twins VIEW KEYCOLUMN [COLUMN...]: "rows of d-* / rows equal to their m-* twin", compared on every
# column but the key, the customer and the COLUMNs named (the times of record(), taken at the clock)
twins() {
    local v=$1 k=$2 drop="'$2', 'customer_key'" c
    shift 2
    for c in "$@"; do drop+=", '$c'"; done
    q coordinator "SELECT count(*) || '/' || count(*) FILTER (WHERE d.j = m.j)
                     FROM (SELECT $k AS k, to_jsonb(v) - ARRAY[$drop] AS j,
                                  row_number() OVER (PARTITION BY $k ORDER BY (to_jsonb(v) - ARRAY[$drop])::text) AS n
                             FROM order_flow.$v v WHERE $k LIKE 'd-%') d
                     JOIN (SELECT $k AS k, to_jsonb(v) - ARRAY[$drop] AS j,
                                  row_number() OVER (PARTITION BY $k ORDER BY (to_jsonb(v) - ARRAY[$drop])::text) AS n
                             FROM order_flow.$v v WHERE $k LIKE 'm-%') m
                       ON m.k = 'm' || substr(d.k, 2) AND m.n = d.n"
}
sd=$(twins state_durations order_key)
tap_is "$sd/$(twins delay_events order_key occurred_at month season)/$(twins order_timeline order_key)" \
    "$(q coordinator "SELECT count(*) || '/' || count(*) FROM order_flow.state_durations WHERE order_key LIKE 'm-%'")/$(
      q coordinator "SELECT count(*) || '/' || count(*) FROM order_flow.delay_events WHERE order_key LIKE 'm-%'")/6/6" \
    "state_durations, delay_events and order_timeline show each distributed order as its local twin ($sd visits)"

tap_is "$(twins stale_orders order_key tbl)/$(q coordinator "SELECT count(*) FROM order_flow.pending_acks a
                                                       WHERE a.order_key ~ '^[0-9]+$'")" \
    "$(q coordinator "SELECT count(*) || '/' || count(*) FROM order_flow.stale_orders WHERE order_key LIKE 'm-%'")/$(
      q coordinator "SELECT count(*) FROM order_flow_citus.orders_notification WHERE status = 'pending'")" \
    "stale_orders shows the distributed orders as their local twins, and pending_acks the distributed table's open notifications"

tap_is "$(q coordinator "CREATE ROLE board; GRANT SELECT ON order_flow.pending_acks TO board;
                         SET ROLE board; SELECT count(*) FROM order_flow.pending_acks WHERE order_key ~ '^[0-9]+$'")/$(
    q coordinator "SET ROLE clerk; SELECT count(*) FROM _order_flow._citus_pending()")" \
    "$(q coordinator "SELECT count(*) FROM order_flow_citus.orders_notification WHERE status = 'pending'")/0" \
    "a role granted only pending_acks sees the distributed tables' notifications in it; one that may not read it gets nothing from its helper"

# ------------------------------------------------------------ distributed by tenant
q coordinator "
CREATE TABLE t_orders (tenant_id int NOT NULL, id text NOT NULL, status text NOT NULL DEFAULT 'inquiry',
                       PRIMARY KEY (tenant_id, id));
SELECT order_flow.manage('t_orders');" >/dev/null 2>&1
tap_is "$(sqlstate coordinator "INSERT INTO t_orders VALUES (1, 'A-0')")/$(
    q coordinator "SELECT count(*) FROM t_orders")/$(
    q coordinator "SELECT count(*) FROM order_flow.tracked_order WHERE order_key = 'A-0'")" "0A000/0/0" \
    "a table managed with an order key unique per tenant refuses rows until it is distributed by its tenant (0A000), keeping none"
q coordinator "
SELECT order_flow.citus_distribute('t_orders', 'tenant_id', shard_count => 4);
INSERT INTO t_orders VALUES (1, 'A-1'), (2, 'A-1'), (2, 'A-2');
UPDATE t_orders SET status = 'quoted' WHERE tenant_id = 1 AND id = 'A-1';" >/dev/null
tap_is "$(q coordinator "SELECT string_agg(dist_key || ':' || order_key || ':' || state || ':' || last_seq, ' ' ORDER BY dist_key, order_key)
                         FROM order_flow_citus.t_orders_tracked_order")" "1:A-1:quoted:2 2:A-1:inquiry:1 2:A-2:inquiry:1" \
    "distributed by tenant: two tenants' orders of one key have a chain each, keyed by tenant"
tap_is "$(sqlstate coordinator "UPDATE t_orders SET status = 'shipped' WHERE tenant_id = 2 AND id = 'A-1'")/$(
    q coordinator "SELECT count(*) FROM order_flow.citus_verify_audit() WHERE tbl = 'public.t_orders'")" "23514/0" \
    "... validated on their tenant's shard, and verified"
tap_is "$(sqlstate coordinator "SELECT order_flow.record('A-1', 'note')")/$(
    q coordinator "SELECT count(*) FROM order_flow_citus.t_orders_audit_log WHERE action = 'note'")" "21000/0" \
    "record() of a key two tenants use is refused as ambiguous (21000), writing nothing"
