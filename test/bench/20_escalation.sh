#!/usr/bin/env bash
# test/bench/20_escalation.sh -- the escalation worker against its targets
# (SPEC section 4: "with 1,000,000 tracked orders and 100,000 open
# notifications, p99 lag from deadline to escalation under 1 s; a burst of
# 10,000 simultaneously due escalations handled in under 2 s; an idle worker
# uses no measurable CPU"; "the worker's memory stays flat over thousands of
# sweeps").
#
# Everything is measured on the real background worker of one database
# (shared_preload_libraries = 'order_flow', default naptime and batch size
# unless said otherwise); nothing calls escalate_due() by hand.
#
# Setup (escalation/setup.sql): 1,000,000 orders of the shipped workflow in
# one table, adopted by order_flow.manage(), so every one is tracked.
# Notifications are opened directly in order_flow.notification (level 1,
# pending, one per order, the six departments in turn, minimal payload) by
# escalation/open_notifications.sql, whose transaction tells the scheduler
# its earliest deadline at commit exactly as the transition trigger does for
# the notifications it opens (_order_flow._wake_scheduler).
#
# 1. Lag: 100,000 notifications with deadlines spread evenly over the next
#    ESC_SPREAD seconds (after a lead of ESC_LEAD s).  Lag per notification =
#    created_at of its escalation (the level-2 row whose parent_id is it) -
#    its deadline; p50/p99/max reported, target p99 < 1 s.  The visible lag
#    (when an outbox reader polling every ESC_POLL_MS ms first saw the
#    committed escalation, escalation/poll.sql) is reported beside it, and
#    so are the stretches of more than 0.5 s in which the worker escalated
#    nothing although a notification was due.
# 2. Burst: 10,000 notifications all due at one instant T while pgbench
#    (ESC_PGBENCH_CLIENTS clients) keeps transitioning other orders of the
#    same table (escalation/pgbench_transition.sql).  Time from T until the
#    last escalation (created / visible), target < 2 s; pgbench TPS of the
#    same run outside and inside the burst window [T, last escalation
#    visible] (from pgbench's per-transaction log).
# 3. Idle CPU: with nothing due for ESC_IDLE seconds, utime + stime
#    (/proc/<pid>/stat) of the scheduler and the launcher over the window;
#    target: no measurable CPU (at most 0.1 % of one core).  The window
#    starts ESC_IDLE_SETTLE seconds (default: naptime + 5) after the burst:
#    the scheduler's first look for reminders after changes to order
#    tracking is one scan of tracked_order (reported on its own, measured
#    as the CPU of that settling period); an idle database is what follows.
# 4. Memory: the scheduler's RSS (/proc/<pid>/status) before and after
#    ESC_SWEEPS sweeps (worker_status().sweeps) that each escalate one
#    notification: order_flow.batch_size is set to 1 cluster-wide (ALTER
#    SYSTEM + reload, reset afterwards) and ESC_SWEEPS notifications are made
#    due at once, so the worker runs its full loop back to back.  Measured
#    after a warm-up of ESC_WARMUP sweeps.  Target: private memory (RssAnon)
#    grows by at most 512 kB.  VmRSS also counts shared-buffer pages the
#    process touches for the first time (RssShmem), which is not a leak; it
#    is reported beside it.
#
# Ends with a table: metric, value, target, PASS/MISS.
#
# Environment (defaults in brackets; the whole run takes ~5 minutes):
#   ESC_ORDERS [1000000]  ESC_NOTIFICATIONS [100000]  ESC_SPREAD [120] s
#   ESC_LEAD [10] s  ESC_BURST [10000]  ESC_PGBENCH_ORDERS [100000]
#   ESC_PGBENCH_CLIENTS [2]  ESC_PGBENCH_SECONDS [25]  ESC_BURST_AT [8] s
#   into the pgbench run  ESC_IDLE [60] s  ESC_SWEEPS [10000]  ESC_WARMUP [500]
#   ESC_POLL_MS [10]  BENCH_STRICT=1 (exit non-zero when a target is missed;
#   by default only a broken run fails)  KEEP=1 (keep the database).
set -euo pipefail

# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$OF_REPO_ROOT"

ORDERS=${ESC_ORDERS:-1000000}
NOTIFS=${ESC_NOTIFICATIONS:-100000}
SPREAD=${ESC_SPREAD:-120}
LEAD=${ESC_LEAD:-10}
BURST=${ESC_BURST:-10000}
PGB_ORDERS=${ESC_PGBENCH_ORDERS:-100000}
CLIENTS=${ESC_PGBENCH_CLIENTS:-2}
PGB_SECS=${ESC_PGBENCH_SECONDS:-25}
BURST_AT=${ESC_BURST_AT:-8}
IDLE=${ESC_IDLE:-60}
SWEEPS=${ESC_SWEEPS:-10000}
WARMUP=${ESC_WARMUP:-500}
POLL_MS=${ESC_POLL_MS:-10}
DB=of_bench_esc
DIR=test/bench/escalation
REASON=benchmark-cycle
HZ=$(getconf CLK_TCK)

# orders used by each phase (one open notification per order at a time)
LAT_FIRST=1
BURST_FIRST=$((LAT_FIRST + NOTIFS))
MEM_FIRST=$((BURST_FIRST + BURST))
NOTIFIED_ORDERS=$((ORDERS - PGB_ORDERS))
if ((MEM_FIRST + WARMUP + SWEEPS + 100 > NOTIFIED_ORDERS)); then
    log "20_escalation: ESC_ORDERS - ESC_PGBENCH_ORDERS = $NOTIFIED_ORDERS orders cannot hold" \
        "$NOTIFS + $BURST + $WARMUP + $SWEEPS notifications"
    exit 2
fi
if ((BURST_AT + 2 > PGB_SECS)); then
    log "20_escalation: ESC_BURST_AT ($BURST_AT) must leave room in ESC_PGBENCH_SECONDS ($PGB_SECS)"
    exit 2
fi

sql() { psql_q -At -d "$DB" "$@"; }
now_s() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
fmt() { awk -v v="$1" -v d="${2:-3}" 'BEGIN { printf "%.*f", d, v }'; }

# background jobs this script started (the outbox reader, pgbench) and that
# still run when it exits early are stopped by pid; DROP DATABASE ... FORCE
# then ends their sessions in any case
BG_PIDS=()
stop_bg() {
    local p live
    live=" $(jobs -p | tr '\n' ' ') "
    for p in "${BG_PIDS[@]}"; do
        [[ $live == *" $p "* ]] && kill "$p" 2>/dev/null
    done
    return 0
}
WORK=$(mktemp -d /tmp/of_bench_esc.XXXXXX)
BATCH_CHANGED=0
cleanup() {
    stop_bg
    if [[ $BATCH_CHANGED == 1 ]]; then
        psql_q -d postgres -c "ALTER SYSTEM RESET order_flow.batch_size" \
            -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    [[ ${KEEP:-0} == 1 ]] ||
        psql_q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
on_exit cleanup

# ------------------------------------------------------------ worker probes
sched_pid() {
    sql -c "SELECT pid FROM order_flow.worker_status()
             WHERE dboid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND pid IS NOT NULL"
}
launcher_pid() { sql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'order_flow launcher'"; }
sweeps() {
    sql -c "SELECT sweeps FROM order_flow.worker_status()
             WHERE dboid = (SELECT oid FROM pg_database WHERE datname = current_database())"
}
# cpu_ticks PID: utime + stime in clock ticks (fields 14, 15 of /proc/PID/stat,
# counted after the parenthesised command name)
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# status_kb PID FIELD: a kB field of /proc/PID/status (VmRSS, RssAnon, ...)
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
ctx_switches() { awk '$1 == "voluntary_ctxt_switches:" { print $2 }' "/proc/$1/status"; }

# poll_start TAG EXPECTED TIMEOUT_S: the outbox reader, in the background
POLL_PID=
poll_start() {
    psql_q -d "$DB" -v tag="$1" -v expected="$2" -v poll_ms="$POLL_MS" -v timeout_s="$3" \
        -f "$DIR/poll.sql" >/dev/null &
    POLL_PID=$!
    BG_PIDS+=("$POLL_PID")
    sleep 0.3
}
poll_wait() { wait "$POLL_PID" || { log "20_escalation: the outbox reader failed"; exit 1; }; }

# open TAG N FIRST_ORDER LEAD_MS SPREAD_MS -> "first_deadline last_deadline margin"
open_notifications() {
    sql -v tag="$1" -v n="$2" -v first_order="$3" -v lead_ms="$4" -v spread_ms="$5" \
        -f "$DIR/open_notifications.sql"
}

# pgbench_run SECONDS LOG_PREFIX -> pgbench's tps (excluding connections)
pgbench_run() {
    local out rc=0
    out=$(PGOPTIONS="-c order_flow.reason=$REASON" "$PG_BIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" \
        -T "$1" -D lo=$((ORDERS - PGB_ORDERS + 1)) -D hi="$ORDERS" -l --log-prefix="$2" \
        -f "$DIR/pgbench_transition.sql" "$DB" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]] || ! grep -q '^tps = ' <<<"$out"; then
        log "20_escalation: pgbench failed (exit $rc):"
        printf '%s\n' "$out" >&2
        return 1
    fi
    sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' <<<"$out"
}
# tx_count LOG_PREFIX FROM TO: transactions of the run that ended in [FROM, TO)
tx_count() {
    cat "$1".* | awk -v a="$2" -v b="$3" '{ t = $5 + $6 / 1e6; if (t >= a && t < b) n++ } END { print n + 0 }'
}
# log_span LOG_PREFIX -> "first_end last_end" of the transactions logged
log_span() {
    cat "$1".* | awk 'NR == 1 { lo = hi = $5 + $6 / 1e6 } { t = $5 + $6 / 1e6; if (t < lo) lo = t; if (t > hi) hi = t }
        END { printf "%.6f %.6f\n", lo, hi }'
}

RESULTS=()
MISSES=0
# row METRIC VALUE TARGET VERDICT(PASS|MISS|info)
row() {
    RESULTS+=("$1|$2|$3|$4")
    [[ $4 == MISS ]] && MISSES=$((MISSES + 1))
    return 0
}
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }

# -------------------------------------------------------------------- setup
echo "setting up: $ORDERS tracked orders (manage() adopts them), $(nproc) CPUs"
t0=$(now_s)
fresh_db "$DB" order_flow
sql -v n_orders="$ORDERS" -v n_pgbench="$PGB_ORDERS" -f "$DIR/setup.sql" >/dev/null
SPID=
for _ in $(seq 1 60); do
    SPID=$(sched_pid)
    [[ -n $SPID ]] && break
    sleep 0.5
done
if [[ -z $SPID ]]; then
    log "20_escalation: no order_flow scheduler serves $DB (is order_flow preloaded?)"
    exit 1
fi
LPID=$(launcher_pid)
read -r TRACKED NAPTIME BATCH < <(sql -F ' ' -c "SELECT (SELECT count(*) FROM order_flow.tracked_order WHERE tbl IS NOT NULL),
    current_setting('order_flow.naptime'), current_setting('order_flow.batch_size')")
echo "  $TRACKED orders tracked in $(fmt "$(calc "$(now_s) - $t0")" 1) s;" \
    "scheduler pid $SPID, launcher pid $LPID; naptime $NAPTIME, batch_size $BATCH"

# ------------------------------------------------------------ 1. lag
echo
echo "1. lag: $NOTIFS notifications due over ${SPREAD} s (after ${LEAD} s), on orders $LAT_FIRST.."
poll_start latency "$NOTIFS" $((LEAD + SPREAD + 180))
t0=$(now_s)
read -r L_FIRST L_LAST L_MARGIN < <(open_notifications latency "$NOTIFS" "$LAT_FIRST" $((LEAD * 1000)) $((SPREAD * 1000)))
echo "  opened in $(fmt "$(calc "$(now_s) - $t0")" 1) s; first deadline ${L_MARGIN} s after commit; waiting ~$((LEAD + SPREAD)) s"
n=0
while kill -0 "$POLL_PID" 2>/dev/null; do
    sleep 1
    n=$((n + 1))
    if ((n % 30 == 0)); then
        echo "  ... ${n} s: $(sql -c "SELECT count(*) FROM public.bench_seen") escalations visible"
    fi
done
poll_wait
IFS='|' read -r L_OPEN L_ESC L_CHILD L_DUP L_SEEN L_C50 L_C99 L_CMAX L_S50 L_S99 L_SMAX _ _ _ _ _ L_EARLY \
    L_STALLS L_STALL_S \
    < <(sql -v tag=latency -f "$DIR/lag_stats.sql")
echo "  escalated $L_ESC of $L_OPEN (escalations $L_CHILD, doubled $L_DUP, early $L_EARLY);" \
    "lag p50 $L_C50 s, p99 $L_C99 s, max $L_CMAX s; visible p50 $L_S50 s, p99 $L_S99 s, max $L_SMAX s;" \
    "worker idle > 0.5 s with work due $L_STALLS times ($L_STALL_S s)"
row "lag: escalated / opened" "$L_ESC / $L_OPEN (x2: $L_DUP, early: $L_EARLY)" "all, once, none early" \
    "$(verdict "$L_ESC == $L_OPEN && $L_CHILD == $L_OPEN && $L_DUP == 0 && $L_EARLY == 0")"
row "lag p50 (created_at - deadline)" "${L_C50} s" "-" info
row "lag p99 (created_at - deadline)" "${L_C99} s" "< 1 s" "$(verdict "${L_C99:-99} < 1")"
row "lag max (created_at - deadline)" "${L_CMAX} s" "-" info
row "lag: worker idle with work due" "$L_STALLS times > 0.5 s, $L_STALL_S s in all" "-" info
row "visible lag p50 (outbox reader)" "${L_S50:-n/a} s" "-" info
row "visible lag p99 (outbox reader)" "${L_S99:-n/a} s" "< 1 s" "$(verdict "${L_S99:-99} < 1")"
row "visible lag max (outbox reader)" "${L_SMAX:-n/a} s" "-" info

# ------------------------------------------------------------ 2. burst
echo
echo "2. burst: $BURST notifications due at one instant, pgbench ($CLIENTS clients) transitioning orders" \
    "$((ORDERS - PGB_ORDERS + 1))..$ORDERS"
sql -c "CHECKPOINT" >/dev/null
poll_start burst "$BURST" $((PGB_SECS + 120))
# opened first, due BURST_AT s into the pgbench run that starts right after
read -r B_T _ B_MARGIN < <(open_notifications burst "$BURST" "$BURST_FIRST" $((BURST_AT * 1000)) 0)
pgbench_run "$PGB_SECS" "$WORK/burst" >"$WORK/burst_tps.txt" &
PGB_PID=$!
BG_PIDS+=("$PGB_PID")
echo "  opened; all due at T, ${B_MARGIN} s after commit; pgbench runs ${PGB_SECS} s"
wait "$PGB_PID" || { log "20_escalation: pgbench failed during the burst"; exit 1; }
RUN_TPS=$(cat "$WORK/burst_tps.txt")
poll_wait
IFS='|' read -r B_OPEN B_ESC B_CHILD B_DUP B_SEEN _ _ _ _ _ _ _ _ B_FIRSTC B_LASTC B_LASTS B_EARLY _ _ \
    < <(sql -v tag=burst -f "$DIR/lag_stats.sql")
B_C=$(fmt "$(calc "$B_LASTC - $B_T")")
B_S=$(fmt "$(calc "${B_LASTS:-0} - $B_T")")
B_REACT=$(fmt "$(calc "$B_FIRSTC - $B_T")")
B_RATE=$(fmt "$(calc "$B_OPEN / ($B_LASTC - $B_FIRSTC)")" 0)
# pgbench throughput of the same run inside and outside [T, last escalation
# visible]; the first second of the run is left out as warm-up
read -r RUN_LO RUN_HI < <(log_span "$WORK/burst")
B_END=$(calc "(${B_LASTS:-$B_LASTC} > $B_LASTC) ? ${B_LASTS:-$B_LASTC} : $B_LASTC")
DURING_NOTE=
if awk "BEGIN { exit !($B_END > $RUN_HI) }"; then
    B_END=$RUN_HI
    DURING_NOTE="the burst outlasted the pgbench run: 'during' covers T .. end of run"
fi
N_BEFORE=$(tx_count "$WORK/burst" "$(calc "$RUN_LO + 1")" "$B_T")
N_DURING=$(tx_count "$WORK/burst" "$B_T" "$B_END")
N_AFTER=$(tx_count "$WORK/burst" "$B_END" "$RUN_HI")
S_OUT=$(calc "($B_T - $RUN_LO - 1) + ($RUN_HI - $B_END)")
TPS_OUT=$(fmt "$(calc "($N_BEFORE + $N_AFTER) / $S_OUT")" 0)
TPS_DURING=$(fmt "$(calc "$N_DURING / ($B_END - $B_T)")" 0)
TPS_PCT=$(fmt "$(calc "100 * $TPS_DURING / $TPS_OUT")" 0)
echo "  escalated $B_ESC of $B_OPEN (doubled $B_DUP, early $B_EARLY); first after $B_REACT s," \
    "last created $B_C s, last visible $B_S s after T ($B_RATE escalations/s)"
echo "  pgbench: $RUN_TPS tps over the run; $TPS_OUT tps outside the burst" \
    "($(fmt "$S_OUT" 1) s), $TPS_DURING tps during it ($(fmt "$(calc "$B_END - $B_T")" 1) s)"
row "burst: escalated / opened" "$B_ESC / $B_OPEN (x2: $B_DUP, early: $B_EARLY)" "all, once, none early" \
    "$(verdict "$B_ESC == $B_OPEN && $B_CHILD == $B_OPEN && $B_DUP == 0 && $B_EARLY == 0")"
row "burst: T -> first escalation" "${B_REACT} s" "-" info
row "burst: T -> last escalation created" "${B_C} s ($B_RATE/s)" "< 2 s" "$(verdict "$B_C < 2")"
row "burst: T -> last escalation visible" "${B_S} s" "< 2 s" "$(verdict "$B_S < 2")"
row "pgbench tps without burst (same run)" "$TPS_OUT" "-" info
row "pgbench tps during burst${DURING_NOTE:+ *}" "$TPS_DURING ($TPS_PCT % of without)" "-" info

# ------------------------------------------------------------ 3. idle CPU
echo
NEXT_DUE=$(sql -c "SELECT coalesce(round(extract(epoch FROM _order_flow._next_due() - now())), 999999)")
echo "3. idle: nothing due for ${NEXT_DUE} s; measuring the worker's CPU over ${IDLE} s"
if ((NEXT_DUE < IDLE + 5)); then
    log "20_escalation: something is due within the idle window (in $NEXT_DUE s)"
fi
NAPTIME_S=$(sql -c "SELECT extract(epoch FROM current_setting('order_flow.naptime')::interval)::int")
SETTLE=${ESC_IDLE_SETTLE:-$((NAPTIME_S + 5))}
sleep 2
[[ $(sched_pid) == "$SPID" ]] || echo "  note: the scheduler was restarted (pid $SPID -> $(sched_pid))"
SPID=$(sched_pid)
LPID=$(launcher_pid)
st0=$(cpu_ticks "$SPID")
sleep "$SETTLE"
SETTLE_CPU=$(calc "($(cpu_ticks "$SPID") - $st0) / $HZ")
echo "  settling ${SETTLE} s after the burst (the scheduler's first look at the changes): $(fmt "$SETTLE_CPU" 2) s CPU"
s0=$(cpu_ticks "$SPID")
l0=$(cpu_ticks "$LPID")
sc0=$(ctx_switches "$SPID")
lc0=$(ctx_switches "$LPID")
w0=$(sweeps)
sleep "$IDLE"
S_CPU=$(calc "($(cpu_ticks "$SPID") - $s0) / $HZ")
L_CPU=$(calc "($(cpu_ticks "$LPID") - $l0) / $HZ")
S_WAKE=$(($(ctx_switches "$SPID") - sc0))
L_WAKE=$(($(ctx_switches "$LPID") - lc0))
I_SWEEPS=$(($(sweeps) - w0))
IDLE_MAX=$(calc "$IDLE * 0.001")
echo "  scheduler $(fmt "$S_CPU" 2) s CPU, $S_WAKE wake-ups, $I_SWEEPS sweeps;" \
    "launcher $(fmt "$L_CPU" 2) s CPU, $L_WAKE wake-ups (resolution $(fmt "$(calc "1 / $HZ")" 2) s)"
row "settling ${SETTLE} s after activity" "$(fmt "$SETTLE_CPU" 2) s scheduler CPU" "-" info
row "idle ${IDLE} s: scheduler CPU" "$(fmt "$S_CPU" 2) s ($I_SWEEPS sweeps, $S_WAKE wake-ups)" "<= $(fmt "$IDLE_MAX" 2) s (0.1 %)" \
    "$(verdict "$S_CPU <= $IDLE_MAX")"
row "idle ${IDLE} s: launcher CPU" "$(fmt "$L_CPU" 2) s ($L_WAKE wake-ups)" "<= $(fmt "$IDLE_MAX" 2) s (0.1 %)" \
    "$(verdict "$L_CPU <= $IDLE_MAX")"

# ------------------------------------------------------------ 4. memory
echo
echo "4. memory: $SWEEPS sweeps of one escalation each (order_flow.batch_size = 1), after $WARMUP warm-up sweeps"
BATCH_CHANGED=1
psql_q -d postgres -c "ALTER SYSTEM SET order_flow.batch_size = 1" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
wait_drained() { # wait_drained TAG N TIMEOUT_S: until N escalations of TAG exist
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        [[ $(sql -c "SELECT count(*) >= $2 FROM order_flow.notification
                      WHERE parent_id IS NOT NULL AND payload->>'bench_phase' = '$1'") == t ]] && return 0
        sleep 0.2
    done
    return 1
}
open_notifications warmup "$WARMUP" "$MEM_FIRST" 0 0 >/dev/null
wait_drained warmup "$WARMUP" 120 || { log "20_escalation: warm-up escalations did not finish"; exit 1; }
sleep 0.5
SPID=$(sched_pid)
R0=$(status_kb "$SPID" VmRSS)
A0=$(status_kb "$SPID" RssAnon)
H0=$(status_kb "$SPID" RssShmem)
w0=$(sweeps)
t0=$(now_s)
open_notifications memory "$SWEEPS" $((MEM_FIRST + WARMUP)) 0 0 >/dev/null
SAMPLES="$((A0))"
n=0
until wait_drained memory "$SWEEPS" 1; do
    n=$((n + 1))
    ((n % 5 == 0)) && SAMPLES+=" $(status_kb "$SPID" RssAnon)"
    if ((n > 600)); then
        log "20_escalation: the memory-phase escalations did not finish"
        exit 1
    fi
done
sleep 0.5
M_SECS=$(calc "$(now_s) - $t0")
M_SWEEPS=$(($(sweeps) - w0))
[[ $(sched_pid) == "$SPID" ]] || { log "20_escalation: the scheduler restarted during the memory phase"; exit 1; }
R1=$(status_kb "$SPID" VmRSS)
A1=$(status_kb "$SPID" RssAnon)
H1=$(status_kb "$SPID" RssShmem)
SAMPLES+=" $A1"
psql_q -d postgres -c "ALTER SYSTEM RESET order_flow.batch_size" -c "SELECT pg_reload_conf()" >/dev/null
BATCH_CHANGED=0
echo "  $M_SWEEPS sweeps in $(fmt "$M_SECS" 1) s; VmRSS $R0 -> $R1 kB, RssAnon $A0 -> $A1 kB, RssShmem $H0 -> $H1 kB"
echo "  RssAnon samples (kB): $SAMPLES"
row "memory: sweeps measured" "$M_SWEEPS in $(fmt "$M_SECS" 1) s" ">= $SWEEPS" "$(verdict "$M_SWEEPS >= $SWEEPS")"
row "memory: scheduler RssAnon (private)" "$A0 -> $A1 kB ($((A1 - A0)) kB)" "growth <= 512 kB" \
    "$(verdict "$A1 - $A0 <= 512")"
row "memory: scheduler VmRSS" "$R0 -> $R1 kB ($((R1 - R0)) kB)" "- (RssShmem $((H1 - H0)) kB of it)" info

# ------------------------------------------------------------ report
echo
echo "escalation benchmark: $TRACKED tracked orders, $NOTIFS + $BURST + $((WARMUP + SWEEPS)) notifications," \
    "$(nproc) CPUs, naptime $NAPTIME, batch_size $BATCH"
{
    echo "metric|value|target|result"
    echo "------|-----|------|------"
    printf '%s\n' "${RESULTS[@]}"
} | column -t -s '|'
if [[ -n $DURING_NOTE ]]; then echo "* $DURING_NOTE"; fi
if ((MISSES > 0)); then
    echo "$MISSES target(s) missed"
    [[ ${BENCH_STRICT:-0} == 1 ]] && exit 1
fi
exit 0
