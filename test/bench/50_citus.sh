#!/usr/bin/env bash
# test/bench/50_citus.sh -- the transition path on Citus: a managed table
# distributed by order_flow.citus_distribute() against a plain distributed
# table and against a managed table on one node, side by side in one run.
#
# A throwaway Citus cluster (test/citus/cluster.sh: a coordinator and two
# workers on 127.0.0.1, citus and order_flow preloaded) holds three tables
# of the same shape, (id bigint PRIMARY KEY, status text, customer text),
# each with BENCH_CITUS_ORDERS orders (default 20,000):
#   L   a managed table kept local on the coordinator (order_flow on one node)
#   P   a plain distributed table, 8 shards, no trigger
#   D   a managed table distributed with order_flow.citus_distribute(), 8
#       shards, its chains, notifications and outbox in the companion tables
#       order_flow_citus.d_orders_* beside its shards; loaded through the
#       coordinator, every INSERT a 'created' event on the order's worker
# pgbench, 2 clients, through the coordinator: each transaction one valid
# transition of a random order, as in 10_transition (transition/orders.sql):
# a quarter of the orders cycle contract_signed <-> need_info (edges that
# notify), the rest warehouse_confirmed <-> on_hold (resume), all edges of
# workflow b2b_order.  Two of those edges require a reason, and a session
# setting made on the coordinator does not reach the worker that runs the
# shard's trigger: each transaction is BEGIN; SET LOCAL order_flow.reason;
# UPDATE; COMMIT, with citus.propagate_set_commands = local, in every
# variant alike.  The workload runs as postgres (a superuser, so an
# order_flow administrator).
#
# Beside TPS, the CPU time per transaction of each node's postgres
# processes (postmaster, live and reaped children) is measured, for the
# coordinator and the workers apart.  Variants run interleaved (order
# reversed every other round), each run preceded by a CHECKPOINT on every
# node and a warm-up; reported per variant are the median TPS with its
# ratio to P, the CPU per transaction, and the ratios D/P (what order_flow
# costs on the distributed path) and D/L (the distributed path against one
# node).  A paper estimate extrapolates D to N = 2, 4, 8 worker machines of
# BENCH_CITUS_CORES cores each from the CPU measured per transaction on the
# workers and on the coordinator.  Afterwards D's audit log must hold one
# 'created' event per order and one transition per transaction pgbench
# committed, every chain head's sequence number must equal its order's
# event count, every event must link to its predecessor's hash, and the
# chains must verify (order_flow.citus_verify_audit() where it exists; else
# the event counts of 200 sampled orders against their heads).  L is
# checked the same way on the coordinator.
#
# Skipped (one line, exit 0) where Citus is not installed for the server.
# Runs as root (the nodes run as postgres); needs no other cluster.
#
# Environment: BENCH_SECONDS (measured seconds per run, default 20),
# BENCH_WARMUP (warm-up seconds, default 5), BENCH_ROUNDS (default 2),
# BENCH_CITUS_ORDERS (orders per table, default 20000), BENCH_CITUS_CORES
# (cores per worker machine in the paper estimate, default 8), KEEP=1
# (keep the cluster's directory).
set -euo pipefail

# shellcheck source=../citus/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/../citus/cluster.sh"
cd "$OF_REPO_ROOT"

if ! citus_available; then
    echo "50_citus: skipped: $CITUS_MISSING"
    exit 0
fi

SECS=${BENCH_SECONDS:-20}
WARMUP=${BENCH_WARMUP:-5}
ROUNDS=${BENCH_ROUNDS:-2}
ORDERS=${BENCH_CITUS_ORDERS:-20000}
CORES=${BENCH_CITUS_CORES:-8}
CLIENTS=2
SHARDS=8
REASON=benchmark-cycle
NOTIFY_MAX=$((ORDERS / 4)) # orders 1..NOTIFY_MAX cycle on the notifying edges
if ((NOTIFY_MAX < 1 || ORDERS - NOTIFY_MAX < 1)); then
    echo "50_citus: BENCH_CITUS_ORDERS must be at least 4" >&2
    exit 2
fi

VARIANTS=(L P D)
declare -A TBL=([L]=l_orders [P]=p_orders [D]=d_orders)
declare -A LABEL=(
    [L]='order_flow, local table on the coordinator'
    [P]='plain distributed table, no trigger'
    [D]='order_flow, distributed (citus_distribute)')

# unset what bench.sh exports for its own cluster: every client here names
# its node
unset PGHOST PGPORT PGDATABASE PGOPTIONS PGSERVICE PGPASSWORD 2>/dev/null || true

WORK=$(mktemp -d /tmp/order_flow_bench_citus.XXXXXX)
on_exit "rm -rf $WORK"
CLUSTER=$(citus_cluster_dir)
on_exit "citus_cluster_stop $CLUSTER"

sql() { citus_q coordinator "$1"; }

# ------------------------------------------------------------------ setup
echo "setting up: a Citus coordinator and 2 workers; 3 tables of $ORDERS orders"
citus_cluster_start "$CLUSTER"
citus_psql coordinator >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION $OF_EXTENSION;

-- the state every order starts in (an administrator may insert any state)
CREATE FUNCTION bench_start_state(id bigint) RETURNS text LANGUAGE sql IMMUTABLE
AS \$\$ SELECT CASE WHEN id <= $NOTIFY_MAX THEN 'contract_signed' ELSE 'warehouse_confirmed' END \$\$;

CREATE TABLE l_orders (id bigint PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
SELECT order_flow.manage('l_orders', customer_column => 'customer');
INSERT INTO l_orders (id, status, customer)
SELECT g, bench_start_state(g), 'customer ' || (1 + g % 5000) FROM generate_series(1, $ORDERS) g;

CREATE TABLE p_orders (id bigint PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
SELECT create_distributed_table('p_orders', 'id', shard_count => $SHARDS);
INSERT INTO p_orders (id, status, customer)
SELECT g, bench_start_state(g), 'customer ' || (1 + g % 5000) FROM generate_series(1, $ORDERS) g;

CREATE TABLE d_orders (id bigint PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
SELECT order_flow.manage('d_orders', customer_column => 'customer');
SELECT order_flow.citus_distribute('d_orders', shard_count => $SHARDS);
INSERT INTO d_orders (id, status, customer)
SELECT g, bench_start_state(g), 'customer ' || (1 + g % 5000) FROM generate_series(1, $ORDERS) g;

VACUUM (ANALYZE) l_orders;
VACUUM (ANALYZE) p_orders;
VACUUM (ANALYZE) d_orders;
VACUUM (ANALYZE) order_flow_citus.d_orders_tracked_order;
VACUUM (ANALYZE) order_flow_citus.d_orders_audit_log;
SQL
for n in "${CITUS_NODES[@]}"; do
    citus_q "$n" "VACUUM (ANALYZE)" >/dev/null
done

# One transition per transaction, as transition/txn_update.sql, with the
# reason set for the transaction (see the header).  pgbench substitutes the
# variables in the text of each statement: :tbl is the variant's table,
# :reason the quoted literal.
SCRIPT=$WORK/txn.sql
cat >"$SCRIPT" <<'PGB'
\set r random(1, 100)
\if :r <= 25
\set id random(1, :nmax)
\else
\set id random(:nmax + 1, :n)
\endif
BEGIN;
SET LOCAL order_flow.reason = :reason;
UPDATE :tbl SET status = CASE status
        WHEN 'contract_signed' THEN 'need_info'
        WHEN 'need_info' THEN 'contract_signed'
        WHEN 'warehouse_confirmed' THEN 'on_hold'
        WHEN 'on_hold' THEN 'warehouse_confirmed' END
 WHERE id = :id;
COMMIT;
PGB

# ------------------------------------------------------------------ measure
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR] = $1}
    END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# run VARIANT SECONDS -> "TPS TRANSACTIONS" (TPS without connection time)
run() {
    local out rc=0 tps n
    out=$(PGOPTIONS="-c citus.propagate_set_commands=local" "$PG_BIN/pgbench" -n -h 127.0.0.1 \
        -p "${PORT[coordinator]}" -U postgres -c "$CLIENTS" -j "$CLIENTS" -T "$2" \
        -D tbl="${TBL[$1]}" -D nmax="$NOTIFY_MAX" -D n="$ORDERS" -D reason="'$REASON'" \
        -f "$SCRIPT" app 2>&1) || rc=$?
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' <<<"$out")
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    if [[ $rc -ne 0 || -z $tps || -z $n ]]; then
        log "50_citus: pgbench failed (exit $rc) for variant $1 (${TBL[$1]}):"
        printf '%s\n' "$out" >&2
        return 1
    fi
    echo "$tps $n"
}

# CPU used by one node so far, in clock ticks: its postmaster, its live
# children (backends, Citus's and order_flow's workers, WAL writer,
# checkpointer) and the children it has reaped, as in 10_transition.
declare -A PM_PID
for n in "${CITUS_NODES[@]}"; do
    PM_PID[$n]=$(head -n 1 "$CLUSTER/$n/postmaster.pid")
done
CLK_TCK=$(getconf CLK_TCK)
# cpu_ticks -> "COORDINATOR WORKER1 WORKER2" (a process may exit while cat
# reads: cat then fails)
cpu_ticks() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v c="${PM_PID[coordinator]}" \
        -v w1="${PM_PID[worker1]}" -v w2="${PM_PID[worker2]}" '
        BEGIN { node[c] = 1; node[w1] = 2; node[w2] = 3 }
        { pid = $1; sub(/^.*\) /, "") }
        pid in node { t[node[pid]] += $12 + $13 + $14 + $15 }
        $2 in node { t[node[$2]] += $12 + $13 }
        END { print t[1] + 0, t[2] + 0, t[3] + 0 }'
}
us_per_txn() { # us_per_txn TICKS TRANSACTIONS
    awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }'
}

echo "measuring: $CLIENTS clients through the coordinator, ${WARMUP} s warm-up + ${SECS} s per run," \
    "$ROUNDS interleaved rounds"
declare -A RUNS CRUNS WRUNS TXNS
for v in "${VARIANTS[@]}"; do TXNS[$v]=0; done
for ((round = 1; round <= ROUNDS; round++)); do
    order=("${VARIANTS[@]}")
    if ((round % 2 == 0)); then
        order=(D P L)
    fi
    for v in "${order[@]}"; do
        for n in "${CITUS_NODES[@]}"; do
            citus_q "$n" CHECKPOINT >/dev/null
        done
        if ((WARMUP > 0)); then
            out=$(run "$v" "$WARMUP")
            TXNS[$v]=$((TXNS[$v] + ${out#* }))
        fi
        sleep 0.5
        read -r c0 a0 b0 < <(cpu_ticks)
        out=$(run "$v" "$SECS")
        read -r tps k <<<"$out"
        sleep 0.5 # the postmasters reap the backends
        read -r c1 a1 b1 < <(cpu_ticks)
        TXNS[$v]=$((TXNS[$v] + k))
        ccpu=$(us_per_txn $((c1 - c0)) "$k")
        wcpu=$(us_per_txn $((a1 - a0 + b1 - b0)) "$k")
        RUNS[$v]="${RUNS[$v]:-} $(printf '%.1f' "$tps")"
        CRUNS[$v]="${CRUNS[$v]:-} $ccpu"
        WRUNS[$v]="${WRUNS[$v]:-} $wcpu"
        printf '  round %d  %s %10.1f tps %8.1f us CPU per transaction (coordinator %.1f, workers %.1f)\n' \
            "$round" "$v" "$tps" "$(awk -v a="$ccpu" -v b="$wcpu" 'BEGIN { print a + b }')" "$ccpu" "$wcpu"
    done
done

declare -A TPS CCPU WCPU CPU
for v in "${VARIANTS[@]}"; do
    TPS[$v]=$(median <<<"${RUNS[$v]}")
    CCPU[$v]=$(median <<<"${CRUNS[$v]}")
    WCPU[$v]=$(median <<<"${WRUNS[$v]}")
    CPU[$v]=$(awk -v a="${CCPU[$v]}" -v b="${WCPU[$v]}" 'BEGIN { printf "%.1f", a + b }')
done
ratio() { awk -v n="$1" -v d="$2" 'BEGIN { printf "%.2f", n / d }'; }

echo
echo "transition path on Citus (1 coordinator + 2 workers on one machine, $SHARDS shards): $CLIENTS clients,"
echo "$ORDERS orders, 25% of transitions on notifying edges; median of $ROUNDS run(s) of ${SECS} s;"
echo "CPU = server CPU per transaction, all three nodes (coordinator + workers); its 'x P' is P's CPU / the variant's"
printf '%-3s %-44s %9s %6s %9s %9s %9s %6s   %s\n' '' variant TPS 'x P' 'CPU us' coord workers 'x P' 'runs (TPS)'
for v in "${VARIANTS[@]}"; do
    printf '%-3s %-44s %9.1f %6.2f %9.1f %9.1f %9.1f %6.2f  %s\n' "$v" "${LABEL[$v]}" "${TPS[$v]}" \
        "$(ratio "${TPS[$v]}" "${TPS[P]}")" "${CPU[$v]}" "${CCPU[$v]}" "${WCPU[$v]}" \
        "$(ratio "${CPU[P]}" "${CPU[$v]}")" "${RUNS[$v]}"
done
echo
printf 'D/P %5.2f TPS, %5.2f CPU   what order_flow costs on the distributed path\n' \
    "$(ratio "${TPS[D]}" "${TPS[P]}")" "$(ratio "${CPU[P]}" "${CPU[D]}")"
printf 'D/L %5.2f TPS, %5.2f CPU   the distributed path against order_flow on one node\n' \
    "$(ratio "${TPS[D]}" "${TPS[L]}")" "$(ratio "${CPU[L]}" "${CPU[D]}")"

# paper estimate: every transaction touches one shard, so the workers'
# CPU per transaction (w) is spread over N worker machines of C cores, and
# the coordinator's (c) is spent on one machine of C cores
echo
echo "paper estimate for N worker machines of C = $CORES cores (BENCH_CITUS_CORES), the coordinator a machine alike:"
echo "  TPS(N) = min(N * C * 1e6 / w, C * 1e6 / c), w = workers' CPU us per transaction, c = coordinator's"
for v in D P; do
    awk -v v="$v" -v C="$CORES" -v w="${WCPU[$v]}" -v c="${CCPU[$v]}" 'BEGIN {
        tc = C * 1e6 / c
        printf "  %s (w = %.1f us, c = %.1f us): coordinator bound %.0f tps;", v, w, c, tc
        for (n = 2; n <= 8; n *= 2) {
            tw = n * C * 1e6 / w
            printf "  N=%d %.0f tps%s", n, (tw < tc ? tw : tc), (tw < tc ? "" : " (coordinator-bound)")
        }
        print "" }'
done

# ------------------------------------------------------------------ checks
echo
echo "same work? (transactions committed by pgbench, warm-ups included)"
broken=0
for v in "${VARIANTS[@]}"; do
    bad=$(sql "SELECT count(*) FROM ${TBL[$v]}
        WHERE (id <= $NOTIFY_MAX AND status NOT IN ('contract_signed', 'need_info'))
           OR (id > $NOTIFY_MAX AND status NOT IN ('warehouse_confirmed', 'on_hold'))")
    bench_check "$v: orders outside their cycle" "$bad" 0
done

# chains: L in the extension's tables on the coordinator, D in its companions
declare -A AUDIT=([L]=order_flow.audit_log [D]=order_flow_citus.d_orders_audit_log)
declare -A HEAD=([L]=order_flow.tracked_order [D]=order_flow_citus.d_orders_tracked_order)
declare -A NOTIF=([L]=order_flow.notification [D]=order_flow_citus.d_orders_notification)
declare -A OUTBOX=([L]=order_flow.outbox [D]=order_flow_citus.d_orders_outbox)
declare -A HEADWHERE=([L]="tbl = 'public.l_orders'" [D]=true)
printf '  %-3s %12s %12s %9s %14s %14s %9s\n' '' transactions transitions created notifications expected outbox
for v in L D; do
    # per order, k transitions of the notify cycle alternate cs->need_info
    # (1 department) and need_info->cs (3): ceil(k/2) + 3 floor(k/2); the
    # first event of every order is its 'created'
    IFS='|' read -r events created notif expected outbox heads nheads < <(sql "
        SELECT (SELECT count(*) FROM ${AUDIT[$v]} WHERE action = 'transition'),
               (SELECT count(*) FROM ${AUDIT[$v]} WHERE action = 'created'),
               (SELECT count(*) FROM ${NOTIF[$v]}),
               (SELECT coalesce(sum(last_seq / 2 + 3 * ((last_seq - 1) / 2)), 0) FROM ${HEAD[$v]}
                 WHERE ${HEADWHERE[$v]} AND order_key::bigint <= $NOTIFY_MAX),
               (SELECT count(*) FROM ${OUTBOX[$v]}),
               (SELECT coalesce(sum(last_seq), 0) FROM ${HEAD[$v]} WHERE ${HEADWHERE[$v]}),
               (SELECT count(*) FROM ${HEAD[$v]} WHERE ${HEADWHERE[$v]})")
    printf '  %-3s %12d %12d %9d %14d %14d %9d\n' "$v" "${TXNS[$v]}" "$events" "$created" "$notif" "$expected" "$outbox"
    bench_check "$v: transition events vs transactions committed" "$events" "${TXNS[$v]}"
    bench_check "$v: created events vs orders" "$created" "$ORDERS"
    bench_check "$v: chain heads vs orders" "$nheads" "$ORDERS"
    bench_check "$v: events vs chain heads' sequence numbers" "$((events + created))" "$heads"
    bench_check "$v: notifications vs transitions on notifying edges" "$notif" "$expected"
    bench_check "$v: outbox rows vs notifications" "$outbox" "$notif"
done
# D's joins stay on the co-located shards: the companions are distributed
# by dist_key, the order's id
IFS='|' read -r chain_ok state_ok < <(sql "
    SELECT (SELECT count(*) = 0 FROM order_flow_citus.d_orders_audit_log a
              JOIN order_flow_citus.d_orders_audit_log p
                ON p.dist_key = a.dist_key AND p.order_key = a.order_key AND p.seq = a.seq - 1
             WHERE a.prev_hash IS DISTINCT FROM p.hash),
           (SELECT count(*) = 0 FROM d_orders o
              JOIN order_flow_citus.d_orders_tracked_order t ON t.dist_key = o.id
             WHERE t.state IS DISTINCT FROM o.status)")
bench_check "D: every event links to its predecessor's hash" "$chain_ok" t
bench_check "D: chain heads' state matches the orders" "$state_ok" t
IFS='|' read -r chain_ok state_ok < <(sql "
    SELECT (SELECT count(*) = 0 FROM order_flow.audit_log a
              JOIN order_flow.audit_log p ON p.order_key = a.order_key AND p.seq = a.seq - 1
             WHERE a.prev_hash IS DISTINCT FROM p.hash),
           (SELECT count(*) = 0 FROM l_orders o JOIN order_flow.tracked_order t ON t.order_key = o.id::text
             WHERE t.state IS DISTINCT FROM o.status)")
bench_check "L: every event links to its predecessor's hash" "$chain_ok" t
bench_check "L: chain heads' state matches the orders" "$state_ok" t

read -r sampled problems < <(citus_psql coordinator -At -F ' ' -c "
    SELECT count(*), coalesce(sum(p.n), 0)
      FROM (SELECT order_key FROM order_flow.tracked_order
             WHERE tbl = 'public.l_orders' ORDER BY random() LIMIT 1000) s,
           LATERAL (SELECT count(*) AS n FROM order_flow.verify_audit(s.order_key)) p")
echo "  L   order_flow.verify_audit() on $sampled sampled orders: $problems problems"
bench_check "L: verify_audit() problems" "$problems" 0

if [[ -n $(sql "SELECT to_regprocedure('order_flow.citus_verify_audit()')") ]]; then
    problems=$(sql "SELECT count(*) FROM order_flow.citus_verify_audit()")
    echo "  D   order_flow.citus_verify_audit(): $problems problems"
    bench_check "D: citus_verify_audit() problems" "$problems" 0
else
    read -r sampled mismatched < <(citus_psql coordinator -At -F ' ' -c "
        WITH s AS (SELECT dist_key, order_key, last_seq FROM order_flow_citus.d_orders_tracked_order
                    ORDER BY random() LIMIT 200),
             e AS (SELECT a.order_key, count(*) AS n FROM order_flow_citus.d_orders_audit_log a
                    WHERE a.dist_key IN (SELECT dist_key FROM s) GROUP BY a.order_key)
        SELECT count(*), count(*) FILTER (WHERE e.n IS DISTINCT FROM s.last_seq)
          FROM s LEFT JOIN e USING (order_key)")
    echo "  D   no order_flow.citus_verify_audit(): events vs last_seq on $sampled sampled orders: $mismatched differ"
    bench_check "D: sampled orders whose event count differs from last_seq" "$mismatched" 0
    bench_check "D: orders sampled" "$sampled" 200
fi

if [[ $broken -ne 0 ]]; then
    echo "Citus benchmark: the variants did not do the work they should have"
    exit 1
fi
