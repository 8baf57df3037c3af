-- test/pgtap/metrics_parallel.sql -- the C aggregates (median, breadth, the
-- order-rhythm family) give the same answers with parallel plans forced
-- (force_parallel_mode -- debug_parallel_query from PostgreSQL 16 --, zero parallel costs, leader not participating, so
-- every partial state is serialised by a worker and combined by the leader)
-- as without parallelism, and the same answers as the built-in SQL they
-- replace; customer_health, kpi() and exception_pareto agree across the two
-- modes on generated data (test/gen/generator.sql, 3,000 orders).
--
-- Results are compared as digests computed by plain top-level SELECTs
-- (\gset): queries run from PL/pgSQL cursors never go parallel.  Float
-- sums may differ in the last bit between plans, so floating dimensions are
-- compared rounded to 9 decimals; counts, medians and distinct counts
-- exactly.
\ir include/preamble.psql
BEGIN;
SET LOCAL TimeZone = 'UTC';
SET LOCAL order_flow.business_time_zone = 'UTC';

SELECT plan(20);

-- ------------------------------------------------------------ data
\o /dev/null
\ir ../gen/generator.sql
SET client_min_messages = warning;
INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                  occurred_at, recorded_at, details)
SELECT 'P' || lpad(e.order_no::text, 5, '0'), e.seq, e.action, e.from_state, e.to_state, 'of_gen', 'of_gen',
       e.occurred_at, e.occurred_at, e.details
  FROM of_gen.events(1, 3000, 150, 36, now()) e
 ORDER BY e.occurred_at;
-- written straight into the log (untracked orders): fold them as the
-- extension's own paths would
SELECT _order_flow._metrics_fold_window('-infinity', 'infinity');
CREATE TABLE agg_t AS
SELECT i % 97 AS g,
       CASE WHEN i % 101 = 0 THEN NULL ELSE floor(of_gen.r(i, 1) * 2000) / 10 END AS x,
       CASE WHEN i % 89 = 0 THEN NULL ELSE 'cat' || (hashint4(i) & 1023) % (1 + i % 97) END AS s
  FROM generate_series(1, 200000) i;
ANALYZE agg_t;
ANALYZE order_flow.order_fact;
ANALYZE order_flow.exception_fact;
\o

CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    r record;
    out text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
        out := out || r."QUERY PLAN" || E'\n';
    END LOOP;
    RETURN out;
END
$f$;

-- the digests, one query each
\set q_median 'SELECT md5(string_agg(format(''%s:%s:%s'', g, m, p), '','' ORDER BY g)) FROM (SELECT g, order_flow.median(x) AS m, percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p FROM agg_t GROUP BY g) s'
\set q_median_only 'SELECT md5(string_agg(format(''%s:%s'', g, m), '','' ORDER BY g)) FROM (SELECT g, order_flow.median(x) AS m FROM agg_t GROUP BY g) s'
\set q_breadth 'SELECT md5(string_agg(format(''%s:%s'', g, b), '','' ORDER BY g)) FROM (SELECT g, order_flow.breadth(s) AS b FROM agg_t GROUP BY g) s'
\set q_rhythm 'SELECT md5(string_agg(format(''%s:%s:%s:%s:%s'', customer_key, f, round(v::numeric, 9), round(t::numeric, 9), m), '','' ORDER BY customer_key)) FROM (SELECT customer_key, order_flow.order_frequency(ordered_at, amount, now()) AS f, order_flow.order_volatility(ordered_at, amount, now()) AS v, order_flow.order_value_trend(ordered_at, amount, now()) AS t, order_flow.monthly_orders(ordered_at, amount, now()) AS m FROM order_flow.order_fact GROUP BY customer_key) s'
\set q_health 'SELECT md5(string_agg(format(''%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s'', customer_key, round(order_frequency::numeric, 9), round(recency_days::numeric, 9), category_breadth, round(payment_punctuality::numeric, 9), overdue_payments, service_requests, complaints, round(on_time_rate::numeric, 9), round(first_time_right_rate::numeric, 9), round(return_rework_rate::numeric, 9), round(order_value_trend::numeric, 9), round(order_volatility::numeric, 9), score, rating, orders, orders_3_months_ago, orders_2_months_ago, orders_last_month), '','' ORDER BY customer_key)) FROM order_flow.customer_health'
\set q_kpi 'SELECT md5(format(''%s|%s|%s|%s|%s|%s|%s'', orders, median_hours_to_first_logistics, round(mean_processing_hours::numeric, 9), median_processing_hours, on_time_rate, first_time_right_rate, exception_rate)) FROM order_flow.kpi(''-infinity'', ''infinity'')'
\set q_pareto 'SELECT md5(string_agg(p::text, '','' ORDER BY rank)) FROM order_flow.exception_pareto p'

-- the setting that forces a parallel plan: renamed in PostgreSQL 16
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END AS force_parallel \gset

-- serial
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT set_config(:'force_parallel', 'off', true) AS force_parallel_off \gset
:q_median \gset serial_median_
:q_breadth \gset serial_breadth_
:q_rhythm \gset serial_rhythm_
:q_health \gset serial_health_
:q_kpi \gset serial_kpi_
:q_pareto \gset serial_pareto_
SELECT doesnt_match(pg_temp.plan_of(:'q_median_only'), 'Gather', 'serial mode: no Gather');

-- parallel, forced
SELECT set_config(:'force_parallel', 'on', true) AS force_parallel_on \gset
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL min_parallel_index_scan_size = 0;
SET LOCAL parallel_leader_participation = off;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
:q_median \gset par_median_
:q_breadth \gset par_breadth_
:q_rhythm \gset par_rhythm_
:q_health \gset par_health_
:q_kpi \gset par_kpi_
:q_pareto \gset par_pareto_

SELECT matches(pg_temp.plan_of(:'q_median_only'), 'Partial (Hash|Group)?Aggregate',
               'median: partial aggregation in workers');
SELECT matches(pg_temp.plan_of(:'q_median_only'), 'Workers Launched: [1-9]', 'median: workers launched');
SELECT matches(pg_temp.plan_of(:'q_breadth'), 'Partial (Hash|Group)?Aggregate', 'breadth: partial aggregation');
SELECT matches(pg_temp.plan_of(:'q_rhythm'), 'Partial (Hash|Group)?Aggregate',
               'order rhythm aggregates: partial aggregation');
SELECT matches(pg_temp.plan_of('SELECT * FROM order_flow.customer_health'), 'Partial (Hash|Group)?Aggregate',
               'customer_health: partial aggregation');
SELECT matches(pg_temp.plan_of('SELECT * FROM order_flow.customer_health'), 'Workers Launched: [1-9]',
               'customer_health: workers launched');

SELECT is(:'par_median_md5'::text, :'serial_median_md5'::text, 'median: parallel = serial');
SELECT is(:'par_breadth_md5'::text, :'serial_breadth_md5'::text, 'breadth: parallel = serial');
SELECT is(:'par_rhythm_md5'::text, :'serial_rhythm_md5'::text, 'order rhythm aggregates: parallel = serial');
SELECT is(:'par_health_md5'::text, :'serial_health_md5'::text, 'customer_health: parallel = serial');
SELECT is(:'par_kpi_md5'::text, :'serial_kpi_md5'::text, 'kpi(): parallel = serial');
SELECT is(:'par_pareto_md5'::text, :'serial_pareto_md5'::text, 'exception_pareto: parallel = serial');

-- against the built-in SQL they replace (parallel mode still forced)
SELECT is((SELECT count(*) FROM (SELECT g, order_flow.median(x) AS m,
                                        percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p
                                   FROM agg_t GROUP BY g) s WHERE m IS DISTINCT FROM p), 0::bigint,
          'median = percentile_cont(0.5) in every group');
SELECT is((SELECT count(*) FROM (SELECT g, order_flow.breadth(s) AS b, count(DISTINCT s)::int AS c
                                   FROM agg_t GROUP BY g) s WHERE b <> c), 0::bigint,
          'breadth = count(DISTINCT) in every group');
SELECT results_eq(
    $$SELECT order_flow.median(x) FROM (VALUES (1::float8), ('NaN'), (3)) v(x)$$,
    $$SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM (VALUES (1::float8), ('NaN'), (3)) v(x)$$,
    'median sorts NaN last, like percentile_cont');
SELECT results_eq(
    $$SELECT order_flow.median(x)::text FROM (VALUES (1::float8), ('NaN')) v(x)$$,
    $$SELECT (percentile_cont(0.5) WITHIN GROUP (ORDER BY x))::text FROM (VALUES (1::float8), ('NaN')) v(x)$$,
    'median interpolating towards NaN gives NaN, like percentile_cont');
SELECT is((SELECT count(*) FROM (
    SELECT f.customer_key, f.m, f.fr, f.cv, f.tr, s.m AS sm, s.fr AS sfr, s.cv AS scv, s.tr AS str
      FROM (SELECT customer_key, order_flow.monthly_orders(ordered_at, amount, now()) AS m,
                   order_flow.order_frequency(ordered_at, amount, now()) AS fr,
                   order_flow.order_volatility(ordered_at, amount, now()) AS cv,
                   order_flow.order_value_trend(ordered_at, amount, now()) AS tr
              FROM order_flow.order_fact GROUP BY customer_key) f
      JOIN (SELECT customer_key,
                   ARRAY[n[3], n[2], n[1]] AS m,
                   (SELECT sum(c) FROM unnest(n) c)::float8 / 12 AS fr,
                   CASE WHEN n[1] + n[2] + n[3] > 0
                        THEN (SELECT stddev_pop(c) / avg(c) FROM unnest(n[1:3]) c)::float8 END AS cv,
                   CASE WHEN (SELECT sum(y) FROM unnest(v) y) <> 0
                        THEN (SELECT regr_slope(y, 6 - k) / avg(y) FROM unnest(v) WITH ORDINALITY u(y, k)) END AS tr
              FROM (SELECT customer_key,
                           array_agg(coalesce(b.n, 0) ORDER BY k.k) AS n,
                           array_agg(coalesce(b.v, 0) ORDER BY k.k) FILTER (WHERE k.k <= 6) AS v
                      FROM (SELECT DISTINCT customer_key FROM order_flow.order_fact) c
                     CROSS JOIN generate_series(1, 12) k(k)
                      LEFT JOIN (SELECT customer_key AS ck,
                                        (date_part('year', now()) * 12 + date_part('month', now()))
                                        - (date_part('year', ordered_at) * 12 + date_part('month', ordered_at)) AS back,
                                        count(*) AS n, sum(amount) AS v
                                   FROM order_flow.order_fact GROUP BY 1, 2) b
                        ON b.ck = c.customer_key AND b.back = k.k
                     GROUP BY customer_key) x) s ON s.customer_key = f.customer_key
     WHERE f.m IS DISTINCT FROM s.m OR f.fr IS DISTINCT FROM s.fr
        OR round(f.cv::numeric, 9) IS DISTINCT FROM round(s.cv::numeric, 9)
        OR round(f.tr::numeric, 9) IS DISTINCT FROM round(s.tr::numeric, 9)) d), 0::bigint,
    'order rhythm aggregates = the same measures computed with date_trunc months, stddev_pop and regr_slope');

-- the one-pass aggregates against the same measures written in plain SQL
SELECT is((SELECT count(*) FROM (
    SELECT h.customer_key
      FROM order_flow.customer_health h
      FULL JOIN (
        SELECT f.customer_key,
               count(*) AS orders,
               order_flow.order_frequency(f.ordered_at, f.amount, now()) AS order_frequency,
               date_part('epoch', now() - max(f.ordered_at)) / 86400 AS recency_days,
               count(DISTINCT f.category)::int AS category_breadth,
               sum(f.paid_on_time_amount) / nullif(sum(f.payment_due_amount), 0) AS payment_punctuality,
               sum(f.payments_late) AS overdue_payments,
               sum(f.service_requests) AS service_requests,
               sum(f.complaints) AS complaints,
               (count(*) FILTER (WHERE CASE WHEN f.promised_ship_date IS NOT NULL
                                            THEN f.shipped_at < f.promised_ship_date + 1
                                            ELSE f.shipped_at <= f.contract_signed_at + interval '48 hours' END))::float8
                   / nullif(count(f.shipped_at), 0) AS on_time_rate,
               (count(*) FILTER (WHERE f.delivered_at IS NOT NULL AND f.accepted_at IS NOT NULL
                                   AND NOT f.rework_return))::float8 / nullif(count(f.delivered_at), 0)
                   AS first_time_right_rate,
               (count(*) FILTER (WHERE f.delivered_at IS NOT NULL AND f.rework_return))::float8
                   / nullif(count(f.delivered_at), 0) AS return_rework_rate,
               order_flow.order_value_trend(f.ordered_at, f.amount, now()) AS order_value_trend,
               order_flow.order_volatility(f.ordered_at, f.amount, now()) AS order_volatility,
               order_flow.monthly_orders(f.ordered_at, f.amount, now()) AS m
          FROM order_flow.order_fact f WHERE f.customer_key IS NOT NULL GROUP BY f.customer_key) q
        ON q.customer_key = h.customer_key
     WHERE h.customer_key IS NULL OR q.customer_key IS NULL
        OR (h.orders, h.order_frequency, h.recency_days, h.category_breadth, h.overdue_payments,
            h.service_requests, h.complaints, h.on_time_rate, h.first_time_right_rate, h.return_rework_rate,
            ARRAY[h.orders_3_months_ago, h.orders_2_months_ago, h.orders_last_month])
           IS DISTINCT FROM
           (q.orders, q.order_frequency, q.recency_days, q.category_breadth, q.overdue_payments,
            q.service_requests, q.complaints, q.on_time_rate, q.first_time_right_rate, q.return_rework_rate, q.m)
        OR round(h.payment_punctuality::numeric, 9) IS DISTINCT FROM round(q.payment_punctuality::numeric, 9)
        OR round(h.order_value_trend::numeric, 9) IS DISTINCT FROM round(q.order_value_trend::numeric, 9)
        OR round(h.order_volatility::numeric, 9) IS DISTINCT FROM round(q.order_volatility::numeric, 9)) d),
    0::bigint, 'health_profile = each dimension computed by the separate aggregates and plain SQL');
SELECT is((SELECT count(*) FROM (
    SELECT 1
      FROM order_flow.kpi('-infinity', 'infinity') k,
           (SELECT count(*) AS orders,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', f.first_logistics_at - f.contract_signed_at) / 3600) AS ml,
                   avg(date_part('epoch', f.shipped_at - f.contract_signed_at) / 3600) AS mp,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', f.shipped_at - f.contract_signed_at) / 3600) AS mdp,
                   (count(*) FILTER (WHERE CASE WHEN f.promised_ship_date IS NOT NULL
                                                THEN f.shipped_at < f.promised_ship_date + 1
                                                ELSE f.shipped_at <= f.contract_signed_at + interval '48 hours' END))::float8
                       / nullif(count(f.shipped_at), 0) AS ot,
                   (count(*) FILTER (WHERE f.delivered_at IS NOT NULL AND f.accepted_at IS NOT NULL
                                       AND NOT f.rework_return))::float8 / nullif(count(f.delivered_at), 0) AS ftr,
                   (count(*) FILTER (WHERE f.exceptions > 0))::float8 / nullif(count(*), 0) AS er
              FROM order_flow.order_fact f WHERE f.contract_signed_at IS NOT NULL) q
     WHERE (k.orders, k.median_hours_to_first_logistics, k.median_processing_hours, k.on_time_rate,
            k.first_time_right_rate, k.exception_rate) IS DISTINCT FROM (q.orders, q.ml, q.mdp, q.ot, q.ftr, q.er)
        OR round(k.mean_processing_hours::numeric, 9) IS DISTINCT FROM round(q.mp::numeric, 9)) d),
    0::bigint, 'kpi_summary = the same measures with percentile_cont, avg and FILTER');

SELECT * FROM finish();
ROLLBACK;
