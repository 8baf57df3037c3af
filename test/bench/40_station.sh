#!/usr/bin/env bash
# test/bench/40_station.sh -- the shipping station (issue 4): station_ship()
# of a 20-line order against the same checks and writes sent by a client as
# plain SQL statements, side by side in one run.
#
# Two databases with the identical warehouse (station/world.sql: 2,000
# SKUs, 4 carriers, 6 freight rules, 20-line orders of ~20 kg, packed and
# fully scanned beforehand):
#   order_flow  one call of order_flow.station_ship(order, preset) per
#               shipment (station/ship.sql) on an order table managed by
#               order_flow: validated, audited (hash chain), broadcast
#   plain SQL   the same checks and writes as ~14 client statements in one
#               transaction (station/plain_ship.sql), no hash chain, no
#               notification
# Both run as the same non-superuser login role (a station operator, member
# of the warehouse department), pgbench -M prepared, every shipment on a
# distinct order (keyed by client id and a per-client counter).
#   warm-up: 2 stations, STATION_WARM shipments each, then STATION_ROUNDS
#   rounds, the variants' order reversed every other round, each variant:
#   latency: 1 station, STATION_LAT shipments, per-shipment latency from
#      pgbench's log -> median and p99 over all rounds
#   throughput: 2 concurrent stations, STATION_THR shipments each ->
#      shipments per second, mean of the rounds
# plus the server CPU per shipment (the whole private cluster's CPU time:
# robust against other load on the machine, which latency and TPS are not).
# Afterwards both databases are
# checked: every order shipped exactly once, stock down by exactly the
# shipped quantities, audit/event rows as expected, and (order_flow) the
# audit chains of a sample verify.
#
# Environment: STATION_LAT (default 500), STATION_THR (per station, default
# 1000), STATION_WARM (per station, default 100), STATION_ROUNDS (default
# 2), KEEP=1 (keep the databases).  Exits non-zero only when a run breaks or a check fails.
set -euo pipefail

# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$OF_REPO_ROOT"

LAT=${STATION_LAT:-500}
THR=${STATION_THR:-1000}
WARM=${STATION_WARM:-100}
ROUNDS=${STATION_ROUNDS:-2}
DIR=test/bench/station
OPERATOR=of_bench_station
VARIANTS=(of plain)
declare -A DB=([of]=of_bench_station_of [plain]=of_bench_station_plain)
declare -A SCRIPT=([of]=ship.sql [plain]=plain_ship.sql)
declare -A LABEL=([of]='order_flow.station_ship()' [plain]='plain SQL from the client')

TMP=$(mktemp -d /tmp/of_bench_station.XXXXXX)
chmod 755 "$TMP"
cleanup() {
    local v
    rm -rf "$TMP"
    [[ ${KEEP:-0} == 1 ]] && return 0
    for v in "${VARIANTS[@]}"; do
        psql_q -d postgres -c "DROP DATABASE IF EXISTS ${DB[$v]} WITH (FORCE)" >/dev/null 2>&1 || true
    done
    psql_q -d postgres -c "DROP ROLE IF EXISTS $OPERATOR" >/dev/null 2>&1 || true
}
on_exit cleanup

sql() { psql_q -At "$@"; }

# ------------------------------------------------------------------ setup
start=$(date +%s)
total=$((ROUNDS * (LAT + 2 * THR) + 2 * WARM))
echo "setting up: 2 databases, $total packed 20-line orders each"
psql_q -d postgres <<SQL
SET client_min_messages = warning;
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$OPERATOR') THEN
        CREATE ROLE $OPERATOR LOGIN;
    END IF;
END
\$\$;
SQL
fresh_db "${DB[of]}" order_flow
fresh_db "${DB[plain]}"
for v in "${VARIANTS[@]}"; do
    setup=$([[ $v == of ]] && echo setup_order_flow.sql || echo setup_plain.sql)
    psql_q -d "${DB[$v]}" -v operator="$OPERATOR" -v lat=$((ROUNDS * LAT)) -v warm="$WARM" -v thr=$((ROUNDS * THR)) \
        -f "$DIR/$setup" >/dev/null
    psql_q -d "${DB[$v]}" -c "VACUUM (ANALYZE)"
done
echo "setup done in $(($(date +%s) - start)) s"

# run VARIANT CLIENTS PER_CLIENT BASE [extra pgbench args...] -> pgbench output
run() {
    local v=$1 clients=$2 per=$3 base=$4 out rc=0
    shift 4
    out=$(PGUSER=$OPERATOR "$PG_BIN/pgbench" -n -M prepared -c "$clients" -j "$clients" -t "$per" \
        -D n=0 -D base="$base" -f "$DIR/${SCRIPT[$v]}" "$@" "${DB[$v]}" 2>&1) || rc=$?
    if [[ $rc -ne 0 ]] || ! grep -q "^number of transactions actually processed: $((clients * per))/" <<<"$out" ||
        grep -q '^number of failed transactions: [1-9]' <<<"$out"; then
        log "40_station.sh: pgbench failed (exit $rc) for $v:"
        printf '%s\n' "$out" >&2
        return 1
    fi
    printf '%s\n' "$out"
}
tps_of() { sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p'; }

# CPU used by the whole cluster so far, in clock ticks: the postmaster, its
# live children (backends, the order_flow workers, ...) and the children it
# has reaped.  Per shipment it measures the server's work independently of
# what else runs on the machine, which latency and TPS do not.
PM_PID=$(head -n 1 "$OF_PGDATA/postmaster.pid")
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
    # (a process may exit between the glob and cat: ignore, despite pipefail)
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$PM_PID" '
        { pid = $1; sub(/^.*\) /, "") }
        pid == pm { t += $12 + $13 + $14 + $15 }
        $2 == pm { t += $12 + $13 }
        END { print t + 0 }'
}
# worker_ticks: the same for the order_flow background workers only (the
# launcher and the per-database schedulers, which each shipment's
# notification deadline may wake).
worker_ticks() {
    local p t=0 st
    for p in $(pgrep -P "$PM_PID" -f 'order_flow (launcher|scheduler)' || true); do
        st=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + $(awk '{ print $12 + $13 }' <<<"$st")))
    done
    echo "$t"
}

# ------------------------------------------------------------------ measure
echo "warm-up: 2 stations x $WARM shipments per variant"
for v in "${VARIANTS[@]}"; do
    psql_q -d postgres -c CHECKPOINT
    run "$v" 2 "$WARM" 10000000 >/dev/null
done

per_ship() { # per_ship TICKS SHIPMENTS -> microseconds per shipment
    awk -v d="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.0f", d / hz * 1e6 / n }'
}
declare -A MEDIAN P99 MEAN TPS TPSRUNS CPU1 CPU2 WCPU1 WCPU2 T1 T2 W1 W2
for ((round = 1; round <= ROUNDS; round++)); do
    order=("${VARIANTS[@]}")
    if ((round % 2 == 0)); then
        order=(plain of)
    fi
    echo "round $round: latency, 1 station x $LAT shipments; throughput, 2 stations x $THR shipments"
    for v in "${order[@]}"; do
        psql_q -d postgres -c CHECKPOINT
        sleep 0.5
        t0=$(cpu_ticks)
        w0=$(worker_ticks)
        run "$v" 1 "$LAT" $(((round - 1) * LAT)) --log --log-prefix="$TMP/lat_${v}_$round" >/dev/null
        sleep 0.5 # the postmaster reaps the backend
        d1=$(($(cpu_ticks) - t0))
        T1[$v]=$((${T1[$v]:-0} + d1))
        W1[$v]=$((${W1[$v]:-0} + $(worker_ticks) - w0))
        psql_q -d postgres -c CHECKPOINT
        sleep 0.5
        t0=$(cpu_ticks)
        w0=$(worker_ticks)
        tps=$(run "$v" 2 "$THR" $((20000000 + (round - 1) * THR)) | tps_of)
        sleep 0.5
        d2=$(($(cpu_ticks) - t0))
        T2[$v]=$((${T2[$v]:-0} + d2))
        W2[$v]=$((${W2[$v]:-0} + $(worker_ticks) - w0))
        TPSRUNS[$v]="${TPSRUNS[$v]:-} $tps"
        printf '  %-28s 1 station: %5d us CPU/shipment   2 stations: %7.1f shipments/s, %5d us CPU/shipment\n' \
            "${LABEL[$v]}" "$(per_ship "$d1" "$LAT")" "$tps" "$(per_ship "$d2" $((2 * THR)))"
    done
done
for v in "${VARIANTS[@]}"; do
    # pgbench log: client_id transaction_no latency_us script_no epoch us
    read -r m p a < <(cat "$TMP"/lat_"$v"_* | awk '{ print $3 }' | sort -n | awk '
        { a[NR] = $1; s += $1 }
        END {
            m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
            i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1
            printf "%.3f %.3f %.3f\n", m / 1000, a[i] / 1000, s / NR / 1000
        }')
    MEDIAN[$v]=$m P99[$v]=$p MEAN[$v]=$a
    TPS[$v]=$(tr ' ' '\n' <<<"${TPSRUNS[$v]}" | awk 'NF { s += $1; n++ } END { printf "%.1f", s / n }')
    CPU1[$v]=$(per_ship "${T1[$v]}" $((ROUNDS * LAT)))
    CPU2[$v]=$(per_ship "${T2[$v]}" $((ROUNDS * 2 * THR)))
    WCPU1[$v]=$(per_ship "${W1[$v]}" $((ROUNDS * LAT)))
    WCPU2[$v]=$(per_ship "${W2[$v]}" $((ROUNDS * 2 * THR)))
done

# ------------------------------------------------------------------ report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "station_ship of a 20-line order (packed, fully scanned; 2,000 SKUs, 4 carriers), pgbench -M prepared,"
echo "as a non-superuser station operator, $ROUNDS round(s); 'x plain' > 1 means order_flow is faster / cheaper"
printf '%-34s %14s %14s %9s\n' '' 'order_flow' 'plain SQL' 'x plain'
printf '%-34s %14.3f %14.3f %9s\n' 'latency, 1 station: median (ms)' "${MEDIAN[of]}" "${MEDIAN[plain]}" \
    "$(ratio "${MEDIAN[plain]}" "${MEDIAN[of]}")"
printf '%-34s %14.3f %14.3f %9s\n' 'latency, 1 station: p99 (ms)' "${P99[of]}" "${P99[plain]}" \
    "$(ratio "${P99[plain]}" "${P99[of]}")"
printf '%-34s %14.3f %14.3f %9s\n' 'latency, 1 station: mean (ms)' "${MEAN[of]}" "${MEAN[plain]}" \
    "$(ratio "${MEAN[plain]}" "${MEAN[of]}")"
printf '%-34s %14.1f %14.1f %9s\n' 'shipments/s, 2 stations' "${TPS[of]}" "${TPS[plain]}" \
    "$(ratio "${TPS[of]}" "${TPS[plain]}")"
printf '%-34s %14d %14d %9s\n' 'server CPU us/shipment, 1 station' "${CPU1[of]}" "${CPU1[plain]}" \
    "$(ratio "${CPU1[plain]}" "${CPU1[of]}")"
printf '%-34s %14d %14d %9s\n' 'server CPU us/shipment, 2 stations' "${CPU2[of]}" "${CPU2[plain]}" \
    "$(ratio "${CPU2[plain]}" "${CPU2[of]}")"
printf '%-34s %14s %14s\n' 'statements sent per shipment' 1 '~14 (1 txn)'
echo "(plain SQL writes no hash chain, tracking row, notification or outbox; order_flow does."
echo " Of the server CPU, order_flow's background workers used ${WCPU1[of]} / ${WCPU2[of]} us per shipment.)"

# ------------------------------------------------------------------ checks
echo
echo "checks:"
broken=0
check() { # check DESCRIPTION VALUE EXPECTED
    if [[ $2 != "$3" ]]; then
        echo "  CHECK FAILED: $1: got $2, expected $3"
        broken=1
    else
        echo "  ok: $1 ($2)"
    fi
}
for v in "${VARIANTS[@]}"; do
    s=$([[ $v == of ]] && echo order_flow || echo public)
    read -r shipments shipped consumed needed events < <(sql -d "${DB[$v]}" -F ' ' -c "
        SELECT (SELECT count(*) FROM $s.shipment),
               (SELECT count(*) FROM public.orders WHERE status::text = 'shipped'),
               (SELECT sum(1000000000::bigint - available) FROM $s.stock),
               (SELECT sum(l.qty) FROM $s.order_line l JOIN $s.shipment sh ON sh.order_key = l.order_key),
               (SELECT count(*) FROM $s.station_event WHERE step IN ('preset', 'ship'))")
    check "$v: shipments" "$shipments" "$total"
    check "$v: orders shipped" "$shipped" "$total"
    check "$v: stock consumed = quantities shipped" "$consumed" "$needed"
    check "$v: preset + ship station events" "$events" "$((2 * total))"
done
read -r ships transitions notifications problems < <(sql -d "${DB[of]}" -F ' ' -c "
    SELECT (SELECT count(*) FROM order_flow.audit_log WHERE action = 'ship'),
           (SELECT count(*) FROM order_flow.audit_log WHERE action = 'transition' AND to_state = 'shipped'),
           (SELECT count(*) FROM order_flow.notification),
           (SELECT count(*) FROM (SELECT order_key FROM order_flow.shipment ORDER BY random() LIMIT 500) s,
                   LATERAL order_flow.verify_audit(s.order_key))")
check "of: audit ship events" "$ships" "$total"
check "of: audit transitions to shipped" "$transitions" "$total"
check "of: notifications (sales, packed -> shipped)" "$notifications" "$total"
check "of: verify_audit problems in 500 sampled orders" "$problems" 0
check "plain: audit rows" "$(sql -d "${DB[plain]}" -c "SELECT count(*) FROM order_audit")" "$((2 * total))"
check "same carriers chosen in both variants" \
    "$(sql -d "${DB[of]}" -c "SELECT string_agg(carrier || ':' || n, ' ' ORDER BY carrier)
                              FROM (SELECT carrier, count(*) n FROM order_flow.shipment GROUP BY carrier) x")" \
    "$(sql -d "${DB[plain]}" -c "SELECT string_agg(carrier || ':' || n, ' ' ORDER BY carrier)
                                 FROM (SELECT carrier, count(*) n FROM shipment GROUP BY carrier) x")"
check "same freight charged in both variants" \
    "$(sql -d "${DB[of]}" -c "SELECT sum(freight) FROM order_flow.shipment")" \
    "$(sql -d "${DB[plain]}" -c "SELECT sum(freight) FROM shipment")"
check "same set of waybill numbers issued (the plain SQL check digits match order_flow's)" \
    "$(sql -d "${DB[of]}" -c "SELECT md5(string_agg(waybill, ',' ORDER BY waybill)) FROM order_flow.shipment")" \
    "$(sql -d "${DB[plain]}" -c "SELECT md5(string_agg(waybill, ',' ORDER BY waybill)) FROM shipment")"

echo "40_station.sh: $(($(date +%s) - start)) s"
if [[ $broken -ne 0 ]]; then
    echo "station benchmark: the variants did not do the work they should have"
    exit 1
fi
