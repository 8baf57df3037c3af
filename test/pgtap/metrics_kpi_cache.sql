-- test/pgtap/metrics_kpi_cache.sql -- the kpi() cache (order_flow.kpi_month,
-- 1.1): kpi_cache_refresh() builds one state per complete UTC month;
-- kpi() answers exactly what the aggregate over the raw rollup answers, for
-- aligned, unaligned, one-month and empty windows, cached or not; an event
-- that changes an order of a cached month marks it dirty (in the
-- transaction's own snapshot, also after a rolled-back subtransaction), a
-- payment does not, an order of the current month never does; a dirty
-- month is not used until rebuilt; a state serves every session while its
-- zone is the business time zone (metrics_business_tz.sql tests more);
-- metrics_rebuild() empties the cache; bad calls are refused.
--
-- The cache is shown to be used (not merely harmless) by planting a wrong
-- state in it: kpi() then answers wrongly for exactly the windows that
-- cover that month, until a dirty mark or another business zone bypasses it.
\ir include/preamble.psql

-- a REPEATABLE READ transaction cannot refresh: its snapshot predates the lock
CREATE TEMP TABLE rr_outcome (state text);
BEGIN ISOLATION LEVEL REPEATABLE READ;
DO $$
BEGIN
    PERFORM order_flow.kpi_cache_refresh(1);
    INSERT INTO rr_outcome VALUES ('00000');
EXCEPTION WHEN OTHERS THEN
    INSERT INTO rr_outcome VALUES (SQLSTATE);
END
$$;
COMMIT;

BEGIN;
SET LOCAL TimeZone = 'UTC';
SET LOCAL order_flow.business_time_zone = 'UTC';

SELECT plan(37);
SELECT is((SELECT state FROM rr_outcome), '25000', 'kpi_cache_refresh() refuses a REPEATABLE READ transaction');

-- ------------------------------------------------------------ data
\o /dev/null
\ir ../gen/generator.sql
SET client_min_messages = warning;
INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                  occurred_at, recorded_at, details)
SELECT 'K' || lpad(e.order_no::text, 5, '0'), e.seq, e.action, e.from_state, e.to_state, 'of_gen', 'of_gen',
       e.occurred_at, e.occurred_at, e.details
  FROM of_gen.events(1, 2000, 120, 24, now()) e
 ORDER BY e.occurred_at;
-- written straight into the log (untracked orders): fold them as the
-- extension's own paths would
SELECT _order_flow._metrics_fold_window('-infinity', 'infinity');
\o

-- fact(key, action, details): a business fact appended to the (generated,
-- untracked) order's events, as record() would append it
CREATE FUNCTION pg_temp.fact(k text, a text, d jsonb) RETURNS bigint LANGUAGE sql AS $f$
    INSERT INTO order_flow.audit_log (order_key, seq, action, actor, db_user, occurred_at, recorded_at, details)
    SELECT k, max(seq) + 1, a, 'test', 'test', now(), now(), d FROM order_flow.audit_log WHERE order_key = k;
    SELECT _order_flow._metrics_fold_window('-infinity', 'infinity');
$f$;

-- raw(from, to): kpi()'s definition, straight from the rollup
CREATE FUNCTION pg_temp.raw(f timestamptz, t timestamptz) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT (order_flow.kpi_summary(contract_signed_at, first_logistics_at, shipped_at, promised_ship_date,
                                   delivered_at, accepted_at, rework_return, exceptions))::text
      FROM order_flow.order_fact WHERE contract_signed_at >= f AND contract_signed_at < t
$f$;
CREATE FUNCTION pg_temp.kpi(f timestamptz, t timestamptz) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT k::text FROM order_flow.kpi(f, t) k
$f$;
-- the windows every check goes through
CREATE TEMP TABLE w (n int, label text, f timestamptz, t timestamptz);
INSERT INTO w VALUES
    (1, 'all time', '-infinity', 'infinity'),
    (2, 'whole months', date_trunc('month', now(), 'UTC') - interval '12 months',
                        date_trunc('month', now(), 'UTC') - interval '2 months'),
    (3, 'unaligned', now() - interval '400 days', now() - interval '40 days'),
    (4, 'inside one month', date_trunc('month', now(), 'UTC') - interval '5 months' + interval '3 days',
                            date_trunc('month', now(), 'UTC') - interval '5 months' + interval '13 days'),
    (5, 'empty', now() - interval '100 days', now() - interval '100 days'),
    (6, 'one whole month', date_trunc('month', now(), 'UTC') - interval '5 months',
                           date_trunc('month', now(), 'UTC') - interval '4 months');
CREATE FUNCTION pg_temp.mismatches() RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT coalesce(string_agg(label, ', ' ORDER BY n), '')
      FROM w WHERE pg_temp.kpi(f, t) IS DISTINCT FROM pg_temp.raw(f, t)
$f$;

-- ------------------------------------------------------------ building
SELECT is((SELECT count(*)::int FROM order_flow.kpi_month), 0, 'the cache starts empty');
SELECT is(pg_temp.mismatches(), '', 'uncached, kpi() equals the aggregate over the rollup for every window');
SELECT cmp_ok((SELECT count(*)::int FROM order_flow.kpi_dirty), '>', 0,
              'loading old events marked their months dirty');
SELECT cmp_ok((SELECT count(*)::int FROM order_flow.kpi_dirty), '<=', 25,
              '... once per month in this transaction, not once per event');

SELECT is(order_flow.kpi_cache_refresh(3), 3, 'kpi_cache_refresh(3) builds 3 months');
-- complete: ended an hour (the refresh's margin) before this transaction began
CREATE TEMP TABLE horizon AS SELECT date_trunc('month', now() - interval '1 hour', 'UTC') AS h;
SELECT is((SELECT array_agg(month_start ORDER BY month_start)::text FROM order_flow.kpi_month),
          (SELECT array_agg(h - g * interval '1 month' ORDER BY g DESC)::text
             FROM horizon, generate_series(1, 3) g),
          '... the newest complete months, excluding the current one');
SELECT is(order_flow.kpi_cache_refresh(1000),
          (SELECT count(*)::int - 3
             FROM horizon, generate_series(date_trunc('month', (SELECT min(contract_signed_at)
                                                                  FROM order_flow.order_fact), 'UTC'),
                                           h - interval '1 month', interval '1 month')),
          'a second refresh builds the remaining complete months since the first signing');
SELECT is(order_flow.kpi_cache_refresh(1000), 0, 'nothing left to build');
SELECT is((SELECT sum(orders)::bigint FROM order_flow.kpi_month),
          (SELECT count(*) FROM order_flow.order_fact, horizon WHERE contract_signed_at < h),
          'the cached months hold every order signed before this month');
SELECT is((SELECT count(*)::int FROM order_flow.kpi_dirty), 0, 'the spent dirty marks are cleared');
SELECT is((SELECT count(*)::int FROM order_flow.kpi_month WHERE time_zone <> 'UTC'), 0,
          'states are built in the business time zone');
SELECT is(pg_temp.mismatches(), '', 'cached, kpi() equals the aggregate over the rollup for every window');

-- ------------------------------------------------------------ the cache is read
CREATE TEMP TABLE truth AS SELECT n, pg_temp.raw(f, t) AS v FROM w;
CREATE TEMP TABLE m5 AS
SELECT date_trunc('month', now(), 'UTC') - interval '5 months' AS m;
-- plant month -6's state in month -5's row
UPDATE order_flow.kpi_month SET state = (SELECT state FROM order_flow.kpi_month
                                          WHERE month_start = (SELECT m - interval '1 month' FROM m5))
 WHERE month_start = (SELECT m FROM m5);
SELECT is((SELECT string_agg(label, ', ' ORDER BY n) FROM w
            WHERE pg_temp.kpi(f, t) IS DISTINCT FROM (SELECT v FROM truth WHERE truth.n = w.n)),
          'all time, whole months, unaligned, one whole month',
          'a planted state changes exactly the windows that cover its whole month: the cache is used');
SET LOCAL order_flow.business_time_zone = 'Asia/Shanghai';
SELECT is((SELECT count(*)::int FROM w WHERE pg_temp.kpi(f, t) IS DISTINCT FROM pg_temp.raw(f, t)), 0,
          'another business time zone does not use the states (and gets its own exact answer)');
SET LOCAL order_flow.business_time_zone = 'UTC';

-- ------------------------------------------------------------ marking
CREATE TEMP TABLE old_order AS
SELECT order_key FROM order_flow.order_fact
 WHERE contract_signed_at >= (SELECT m FROM m5) AND contract_signed_at < (SELECT m + interval '1 month' FROM m5)
 ORDER BY order_key LIMIT 3;
SELECT pg_temp.fact((SELECT min(order_key) FROM old_order), 'payment',
                         '{"amount": 10, "due_date": "2026-01-01", "paid_date": "2026-01-02"}') AS p \gset
SELECT is((SELECT count(*)::int FROM order_flow.kpi_dirty), 0,
          'a payment for an order of a cached month does not mark it (kpi() does not read payments)');
SELECT pg_temp.fact((SELECT min(order_key) FROM old_order), 'exception',
                         '{"exception_type": "late_paperwork"}') AS e \gset
SELECT is((SELECT array_agg(month)::text FROM order_flow.kpi_dirty), (SELECT ARRAY[m]::text FROM m5),
          'an exception record for an order of a cached month marks that month');
SELECT is((SELECT count(*)::int FROM w WHERE pg_temp.kpi(f, t) IS DISTINCT FROM pg_temp.raw(f, t)), 0,
          'the dirty month (with its planted state) is read from the rollup: kpi() is exact again');
SELECT isnt(pg_temp.raw('-infinity', 'infinity'), (SELECT v FROM truth WHERE n = 1),
            '... and the new exception counts (the answer moved)');
SELECT pg_temp.fact((SELECT max(order_key) FROM old_order), 'exception',
                         '{"exception_type": "late_paperwork"}') AS e2 \gset
SELECT is((SELECT count(*)::int FROM order_flow.kpi_dirty), 1,
          'a second change to the same month in the transaction writes no second mark');

SELECT is(order_flow.kpi_cache_refresh(1000), 1, 'the refresh rebuilds the one dirty month');
SELECT is((SELECT count(*)::int FROM order_flow.kpi_dirty), 0, '... and clears its mark');
SELECT is(pg_temp.mismatches(), '', 'rebuilt, kpi() is exact from the cache');

-- a mark made in a rolled-back subtransaction is gone; the month must be marked again
SAVEPOINT s1;
SELECT pg_temp.fact((SELECT min(order_key) FROM old_order), 'exception',
                         '{"exception_type": "wrong_item"}') AS e3 \gset
ROLLBACK TO SAVEPOINT s1;
SELECT is((SELECT count(*)::int FROM order_flow.kpi_dirty), 0, 'a rolled-back subtransaction leaves no mark');
SELECT pg_temp.fact((SELECT max(order_key) FROM old_order), 'exception',
                         '{"exception_type": "wrong_item"}') AS e4 \gset
SELECT is((SELECT count(*)::int FROM order_flow.kpi_dirty), 1,
          'the next change to that month marks it again (the rolled-back mark is not remembered)');
SELECT is(pg_temp.mismatches(), '', 'kpi() stays exact');

-- an order of the current month: never cached, never marked.  Signed at
-- now(): the generated data may have none this month (in its first hours)
INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                  occurred_at, recorded_at, details)
VALUES ('KCUR', 1, 'created', NULL, 'inquiry', 'test', 'test', now(), now(), '{}'),
       ('KCUR', 2, 'transition', 'inquiry', 'contract_signed', 'test', 'test', now(), now(), '{}');
SELECT _order_flow._metrics_fold_window('-infinity', 'infinity') AS kcur_folded \gset
CREATE TEMP TABLE cur_order AS
SELECT order_key FROM order_flow.order_fact
 WHERE order_key = 'KCUR' AND contract_signed_at >= date_trunc('month', now(), 'UTC');
SELECT ok((SELECT count(*) = 1 FROM cur_order), 'an order signed now() is in the rollup, signed this month');
DELETE FROM order_flow.kpi_dirty;
SELECT pg_temp.fact((SELECT order_key FROM cur_order), 'exception',
                         '{"exception_type": "late_paperwork"}') AS e5 \gset
SELECT is((SELECT count(*)::int FROM order_flow.kpi_dirty), 0,
          'a change to an order signed this month writes no mark');
SELECT is(pg_temp.mismatches(), '', 'kpi() counts it (the current month is always read raw)');

-- an order signed at -infinity (import_transition accepts it) is never
-- cached and does not send the refresh counting months from -infinity
INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                  occurred_at, recorded_at, details)
VALUES ('KINF', 1, 'created', NULL, 'inquiry', 'test', 'test', '-infinity', now(), '{}'),
       ('KINF', 2, 'transition', 'inquiry', 'contract_signed', 'test', 'test', '-infinity', now(), '{}');
SELECT _order_flow._metrics_fold_window('-infinity', 'infinity') AS kinf_folded \gset
SET LOCAL statement_timeout = '20s';
SELECT lives_ok('SELECT order_flow.kpi_cache_refresh(1000)', 'the refresh copes with an order signed at -infinity');
RESET statement_timeout;
SELECT is(pg_temp.mismatches(), '', 'kpi() counts it in every window that starts at -infinity');

-- ------------------------------------------------------------ bad calls
SELECT throws_ok('SELECT order_flow.kpi_cache_refresh(0)', '22023', NULL, 'kpi_cache_refresh(0) is refused');
SELECT throws_ok('SELECT order_flow.kpi_cache_refresh(NULL)', '22023', NULL, 'kpi_cache_refresh(NULL) is refused');
SELECT is((SELECT has_function_privilege('public', 'order_flow.kpi_cache_refresh(integer)', 'EXECUTE')), false,
          'PUBLIC may not run the refresh');
SELECT is((SELECT has_table_privilege('public', 'order_flow.kpi_month', 'SELECT')), false,
          'PUBLIC may not read the cache');

-- ------------------------------------------------------------ rebuild
SELECT cmp_ok((SELECT count(*)::int FROM order_flow.kpi_month), '>', 0, 'the cache is full before metrics_rebuild()');
SELECT order_flow.metrics_rebuild() AS rebuilt \gset
SELECT is((SELECT count(*)::int FROM order_flow.kpi_month) + (SELECT count(*)::int FROM order_flow.kpi_dirty), 0,
          'metrics_rebuild() empties the cache and its marks');

SELECT * FROM finish();
ROLLBACK;

