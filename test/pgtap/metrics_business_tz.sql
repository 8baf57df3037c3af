-- test/pgtap/metrics_business_tz.sql -- one business time zone
-- (order_flow.business_time_zone): promised-date midnights, months and
-- seasons of every metric are read in it, never in the session's TimeZone.
-- The same data read by sessions in UTC, Asia/Shanghai and America/New_York
-- gives the same kpi(), customer_health, delay_reasons, top_delay_reasons()
-- and exception_pareto; a different business zone gives the answers
-- computed by hand for that zone (so the setting is really used); the kpi()
-- cache built in the business zone serves every session and is rebuilt,
-- never served, once the business zone differs; the setting is refused to
-- ordinary roles and checked.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(35);

-- ------------------------------------------------------------ fixtures
\o /dev/null
SET LOCAL order_flow.business_time_zone = 'UTC';
SET LOCAL TimeZone = 'UTC';
CREATE TABLE bt (id text PRIMARY KEY, status text NOT NULL, cust text, region text,
                 category text, amount numeric, promised_ship_date date);
INSERT INTO bt VALUES
    ('B1', 'inquiry', 'C1', 'tzland', 'bolts', 100, '2024-03-04'),
    ('B2', 'inquiry', 'C1', 'tzland', 'nuts', 200, '2024-03-10'),
    ('B3', 'inquiry', 'C2', 'tzland', 'bolts', 300, NULL),
    ('B4', 'inquiry', 'C2', 'tzland', 'paint', 400, NULL);
SELECT order_flow.manage('bt', customer_column => 'cust',
                         attributes => '{region,category,amount,promised_ship_date}');
INSERT INTO order_flow.season (region, month, season)
VALUES ('tzland', 1, 'deep winter'), ('tzland', 2, 'late winter'), ('tzland', 3, 'spring');

CREATE FUNCTION pg_temp.hist(k text, steps text) RETURNS void LANGUAGE sql
    AS $f$ SELECT pg_temp.import_history('bt', k, steps) $f$;

-- B1: promised 4 March, shipped 4 March 20:00 UTC = 5 March 04:00 in Shanghai = 4 March 15:00 in New York
SELECT pg_temp.hist('B1', 'quoted@2024-03-01 08:00+00, contract_signed@2024-03-01 10:00+00,
    warehouse_confirmed@2024-03-02 10:00+00, finance_approved@2024-03-02 12:00+00,
    picking@2024-03-03 10:00+00, shipped@2024-03-04 20:00+00');
-- B2: promised 10 March, shipped 11 March 02:00 UTC = 10 March 21:00 in New York
SELECT pg_temp.hist('B2', 'quoted@2024-03-05 08:00+00, contract_signed@2024-03-05 10:00+00,
    warehouse_confirmed@2024-03-06 10:00+00, finance_approved@2024-03-06 12:00+00,
    picking@2024-03-07 10:00+00, shipped@2024-03-11 02:00+00');
-- B3: an exception on 31 January 20:00 UTC (1 February in Shanghai)
SELECT pg_temp.hist('B3', 'quoted@2024-01-20 08:00+00, contract_signed@2024-01-20 10:00+00');
SELECT _order_flow._append_event('B3', 'exception', NULL, NULL,
                                '{"exception_type": "damaged", "hours_lost": 5}', '2024-01-31 20:00+00');
-- B4: an exception on 1 March 02:00 UTC (29 February in New York)
SELECT pg_temp.hist('B4', 'quoted@2024-02-20 08:00+00, contract_signed@2024-02-20 10:00+00');
SELECT _order_flow._append_event('B4', 'exception', NULL, NULL,
                                '{"exception_type": "customs", "hours_lost": 7}', '2024-03-01 02:00+00');

-- everything the five reports answer, as one text (read in this session's zones)
CREATE FUNCTION pg_temp.reports() RETURNS text LANGUAGE sql AS $f$
SELECT concat_ws(E'\n',
    (SELECT k::text FROM order_flow.kpi('2024-01-01 00:00+00', '2024-04-01 00:00+00') k),
    (SELECT k::text FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00') k),
    (SELECT string_agg(h::text, '; ' ORDER BY h.customer_key) FROM order_flow.customer_health h),
    (SELECT string_agg(d::text, '; ' ORDER BY d.reason, d.month) FROM order_flow.delay_reasons d
      WHERE d.region = 'tzland'),
    (SELECT string_agg(t::text, '; ' ORDER BY t.rank)
       FROM order_flow.top_delay_reasons('tzland', NULL, '{2}', 5) t),
    (SELECT string_agg(p::text, '; ' ORDER BY p.rank) FROM order_flow.exception_pareto p))
$f$;
\o

-- ------------------------------------------------------------ the setting
SELECT is(current_setting('order_flow.business_time_zone'), 'UTC', 'the business time zone is a setting');
SET LOCAL order_flow.business_time_zone = 'asia/shanghai';
SELECT is(order_flow.business_time_zone(), 'Asia/Shanghai',
          'business_time_zone() gives the zone''s canonical name, however it was spelt');
SELECT throws_ok($$SELECT set_config('order_flow.business_time_zone', 'Atlantis/Capital', true)$$, '22023', NULL,
                 'an unknown zone is refused');
SELECT throws_ok($$SELECT set_config('order_flow.business_time_zone', '', true)$$, '22023', NULL,
                 'an empty zone is refused');
CREATE ROLE bt_clerk;
GRANT USAGE ON SCHEMA order_flow TO bt_clerk;
SET LOCAL ROLE bt_clerk;
SELECT throws_ok($$SET order_flow.business_time_zone = 'UTC'$$, '42501', NULL,
                 'an ordinary role cannot change the business time zone');
SELECT is(order_flow.business_time_zone(), 'Asia/Shanghai', '... and reads it');
RESET ROLE;

-- ------------------------------------------------------------ three session zones, one answer
SET LOCAL order_flow.business_time_zone = 'UTC';
SET LOCAL TimeZone = 'UTC';
CREATE TEMP TABLE seen AS SELECT 'UTC' AS session_zone, pg_temp.reports() AS r;
SET LOCAL TimeZone = 'Asia/Shanghai';
INSERT INTO seen SELECT 'Asia/Shanghai', pg_temp.reports();
SET LOCAL TimeZone = 'America/New_York';
INSERT INTO seen SELECT 'America/New_York', pg_temp.reports();
SELECT is((SELECT count(DISTINCT r)::int FROM seen), 1,
          'sessions in UTC, Asia/Shanghai and America/New_York read the same kpi(), customer_health, '
          'delay_reasons, top_delay_reasons() and exception_pareto');
SELECT isnt((SELECT min(r) FROM seen), '', '... and they read something');

-- ------------------------------------------------------------ the business zone decides
-- (the session stays in New York throughout: only the business zone moves)
SELECT is((SELECT on_time_rate FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00')), 0.5::float8,
          'business zone UTC: B1 shipped on its promised day, B2 the day after');
SELECT is((SELECT array_agg(month || ' ' || season || ' ' || reason ORDER BY reason)
             FROM order_flow.delay_events WHERE region = 'tzland' AND kind = 'exception'),
          '{"2024-03-01 spring customs","2024-01-01 deep winter damaged"}',
          '... the delays fall in March and January');
SELECT is((SELECT array_agg(reason) FROM order_flow.top_delay_reasons('tzland', NULL, '{2}', 5) WHERE kind = 'exception'), NULL,
          '... and none in February');
SELECT is((SELECT order_flow.monthly_orders(t, 1, '2024-03-15 12:00+00')
             FROM unnest('{2024-03-01 01:00+00, 2024-02-01 03:00+00}'::timestamptz[]) t),
          '{0,0,1}'::bigint[], '... monthly order counts read UTC months');

SET LOCAL order_flow.business_time_zone = 'Asia/Shanghai';
SELECT is((SELECT on_time_rate FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00')), 0::float8,
          'business zone Asia/Shanghai: B1 shipped at 04:00 the day after its promised date');
SELECT is((SELECT array_agg(month || ' ' || season || ' ' || reason ORDER BY reason)
             FROM order_flow.delay_events WHERE region = 'tzland' AND kind = 'exception'),
          '{"2024-03-01 spring customs","2024-02-01 late winter damaged"}',
          '... the January evening exception is a February one');
SELECT is((SELECT array_agg(reason) FROM order_flow.top_delay_reasons('tzland', NULL, '{2}', 5) WHERE kind = 'exception'), '{damaged}',
          '... and top_delay_reasons() finds it in February');

SET LOCAL order_flow.business_time_zone = 'America/New_York';
SELECT is((SELECT on_time_rate FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00')), 1::float8,
          'business zone America/New_York: both shipped by the evening of their promised dates');
SELECT is((SELECT array_agg(month || ' ' || season || ' ' || reason ORDER BY reason)
             FROM order_flow.delay_events WHERE region = 'tzland' AND kind = 'exception'),
          '{"2024-02-01 late winter customs","2024-01-01 deep winter damaged"}',
          '... the night of 1 March is still 29 February');
SELECT is((SELECT order_flow.monthly_orders(t, 1, '2024-03-15 12:00+00')
             FROM unnest('{2024-03-01 01:00+00, 2024-02-01 03:00+00}'::timestamptz[]) t),
          '{0,1,1}'::bigint[], '... monthly order counts read New York months');
SELECT isnt((SELECT pg_temp.reports()), (SELECT min(r) FROM seen), '... and the reports differ from UTC''s');

-- ------------------------------------------------------------ the kpi() cache
SET LOCAL order_flow.business_time_zone = 'UTC';
SET LOCAL TimeZone = 'Asia/Shanghai';
SELECT cmp_ok(order_flow.kpi_cache_refresh(1000), '>', 0, 'the cache is built (from a session in Shanghai)');
SELECT is((SELECT array_agg(DISTINCT time_zone) FROM order_flow.kpi_month), '{UTC}',
          '... in the business zone, not the session''s');
SET LOCAL TimeZone = 'America/New_York';
SELECT is(order_flow.kpi_cache_refresh(1000), 0, 'a session in New York finds nothing to rebuild');
-- plant an empty month's state in March's row: the cache is shown to be read
UPDATE order_flow.kpi_month SET state = (SELECT state FROM order_flow.kpi_month
                                          WHERE month_start = '2024-05-01 00:00+00'), orders = 0
 WHERE month_start = '2024-03-01 00:00+00';
SELECT is((SELECT orders FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00')), 0::bigint,
          'a session in New York is served the (planted) cached month');
SET LOCAL TimeZone = 'UTC';
SELECT is((SELECT orders FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00')), 0::bigint,
          '... and so is a session in UTC: one cache for every session');
DELETE FROM order_flow.kpi_month WHERE month_start = '2024-03-01 00:00+00';
SELECT is(order_flow.kpi_cache_refresh(1000), 1, 'the removed month is rebuilt');

SET LOCAL order_flow.business_time_zone = 'Asia/Shanghai';
SELECT is((SELECT on_time_rate FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00')), 0::float8,
          'another business zone is not served the states of the old one');
SELECT is(order_flow.kpi_cache_refresh(1000), (SELECT count(*)::int FROM order_flow.kpi_month),
          '... which are rebuilt, every one');
SELECT is((SELECT array_agg(DISTINCT time_zone) FROM order_flow.kpi_month), '{Asia/Shanghai}',
          '... in the new zone');

-- ------------------------------------------------------------ zone names, not abbreviations
-- 22:30 UTC on 31 July is 00:30 on 1 August in the CET zone (summer time,
-- +2); read as the abbreviation CET (+1, which AT TIME ZONE tries first) it
-- would still be July, and a session's timezone_abbreviations could even
-- make it another offset
SET LOCAL order_flow.business_time_zone = 'CET';
SET LOCAL timezone_abbreviations = 'Australia';
SELECT is(_order_flow._business_date('2024-07-31 22:30+00'), '2024-08-01'::date,
          'a business zone named like an abbreviation (CET) is read as the zone, with its summer time');
SELECT is(_order_flow._business_date('2024-01-31 22:30+00'), '2024-01-31'::date, '... and its winter time');

-- ------------------------------------------------------------ nor a session's DateStyle
SET LOCAL DateStyle = 'SQL, DMY';
INSERT INTO bt VALUES ('B5', 'inquiry', 'C3', 'tzland', 'bolts', 50, '2024-03-04');
UPDATE bt SET status = 'quoted' WHERE id = 'B5';
SELECT is((SELECT details->'attributes'->>'promised_ship_date' FROM order_flow.audit_log
            WHERE order_key = 'B5' ORDER BY seq DESC LIMIT 1), '2024-03-04',
          'a date attribute is captured in ISO 8601 from a session in DateStyle SQL, DMY');
SELECT is((SELECT promised_ship_date FROM order_flow.order_fact WHERE order_key = 'B5'), '2024-03-04'::date,
          '... and the rollup reads that date back');
SELECT throws_ok($$SELECT order_flow.record('B5', 'payment', '{"amount": 1, "due_date": "03/04/2026"}')$$,
                 '22007', NULL, 'a payment date whose reading depends on DateStyle is refused');
SELECT throws_ok($$SELECT order_flow.record('B5', 'payment', '{"amount": 1, "paid_date": "today"}')$$,
                 '22007', NULL, '... and so is one whose reading depends on the clock and TimeZone');
SELECT lives_ok($$SELECT order_flow.record('B5', 'payment', '{"amount": 1, "due_date": "2026-04-03", "paid_date": "2026-04-03T18:00:00+08"}')$$,
                'ISO 8601 dates, with or without a time part, are accepted');

SELECT * FROM finish();
ROLLBACK;
