-- test/pgtap/metrics_kpi.sql -- SPEC 3.7 process metrics on a small fixed
-- history with hand-computed answers: kpi() (medians, means, rates, window
-- bounds, empty windows), exception_pareto, order_timeline, state_durations
-- (wall and business hours, visits, route), business_hours(), delay_events
-- and top_delay_reasons(), bad input, privileges, and the rollup equal to
-- metrics_rebuild().
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql
SET LOCAL TimeZone = 'UTC';
SET LOCAL order_flow.business_time_zone = 'UTC';

SELECT plan(65);

-- ------------------------------------------------------------ fixtures
\o /dev/null
CREATE TABLE kt (id text PRIMARY KEY, status text NOT NULL, cust text, region text, grade text,
                 category text, amount numeric, promised_ship_date date);
INSERT INTO kt VALUES
    ('K1', 'inquiry', 'C1', 'north', 'B', 'bolts', 100, '2024-03-04'),
    ('K2', 'inquiry', 'C1', 'north', 'B', 'nuts', 200, NULL),
    ('K3', 'inquiry', 'C2', 'south', 'C', 'bolts', 300, '2024-03-12'),
    ('K4', 'inquiry', 'C2', 'south', 'C', 'paint', 400, NULL),
    ('K5', 'inquiry', 'C3', 'west', 'B', 'bolts', 500, NULL),
    ('K6', 'inquiry', 'C3', 'east', 'A', 'bolts', 600, NULL),
    ('K7', 'inquiry', 'C4', 'west', 'C', 'nuts', 700, NULL),
    ('K8', 'inquiry', 'C4', 'west', 'C', 'nuts', 800, NULL),
    ('K9', 'inquiry', 'C4', 'west', 'C', 'nuts', 900, NULL),
    ('K10', 'inquiry', 'C5', 'north', 'A', 'paint', 50, NULL);
SELECT order_flow.manage('kt', customer_column => 'cust',
                         attributes => '{region,grade,category,amount,promised_ship_date}');

-- hist(key, 'state@time, state@time, ...'): import a history in time order
CREATE FUNCTION pg_temp.hist(k text, steps text) RETURNS void LANGUAGE sql
    AS $f$ SELECT pg_temp.import_history('kt', k, steps) $f$;

-- K1: signed twice (need_info between), shipped on its promised date, right first time
SELECT pg_temp.hist('K1', 'quoted@2024-03-01 08:00, contract_signed@2024-03-01 10:00,
    need_info@2024-03-01 12:00, contract_signed@2024-03-01 14:00, warehouse_confirmed@2024-03-02 10:00,
    finance_approved@2024-03-02 12:00, picking@2024-03-03 10:00, shipped@2024-03-04 10:00,
    in_transit@2024-03-05 10:00, delivered@2024-03-06 10:00, accepted@2024-03-06 12:00');
-- K2: a carrier trace 6 h before the shipped status; reworked after delivery
SELECT pg_temp.hist('K2', 'quoted@2024-03-05 08:00, contract_signed@2024-03-05 10:00,
    warehouse_confirmed@2024-03-05 12:00, finance_approved@2024-03-05 14:00, picking@2024-03-05 16:00');
SELECT _order_flow._append_event('K2', 'logistics', NULL, NULL, '{"status": "picked_up"}',
                                '2024-03-06 04:00+00');
SELECT pg_temp.hist('K2', 'shipped@2024-03-06 10:00, in_transit@2024-03-07 10:00,
    delivered@2024-03-08 10:00, rework@2024-03-08 12:00, shipped@2024-03-09 10:00,
    in_transit@2024-03-09 12:00, delivered@2024-03-10 10:00, accepted@2024-03-10 12:00');
-- K3: shipped a day after its promised date
SELECT pg_temp.hist('K3', 'quoted@2024-03-10 08:00, contract_signed@2024-03-10 10:00,
    warehouse_confirmed@2024-03-11 10:00, finance_approved@2024-03-11 12:00, picking@2024-03-12 10:00,
    shipped@2024-03-13 10:00, in_transit@2024-03-13 12:00, delivered@2024-03-14 10:00,
    accepted@2024-03-14 12:00');
-- K4: shipped 36 h after signing (no promise: on time); a reshipment recorded below
SELECT pg_temp.hist('K4', 'quoted@2024-03-20 08:00, contract_signed@2024-03-20 10:00,
    warehouse_confirmed@2024-03-20 11:00, finance_approved@2024-03-20 12:00, picking@2024-03-20 13:00,
    shipped@2024-03-21 22:00, in_transit@2024-03-22 10:00, delivered@2024-03-23 10:00,
    accepted@2024-03-23 12:00');
-- K5: signed, never shipped
SELECT pg_temp.hist('K5', 'quoted@2024-03-25 08:00, contract_signed@2024-03-25 10:00');
-- K6: signed in February; 72 h stock shortage, 72 h in finance_approved; archived
SELECT pg_temp.hist('K6', 'quoted@2024-02-19 08:00, contract_signed@2024-02-20 10:00,
    stock_shortage@2024-02-20 12:00, warehouse_confirmed@2024-02-23 12:00,
    finance_approved@2024-02-23 14:00, picking@2024-02-26 14:00, shipped@2024-02-27 10:00,
    in_transit@2024-02-27 12:00, delivered@2024-02-28 10:00, accepted@2024-02-28 12:00,
    invoiced@2024-02-28 14:00, paid@2024-02-29 10:00, archived@2024-02-29 12:00');
-- K7: first signed on the last evening of March, signed again in April
SELECT pg_temp.hist('K7', 'quoted@2024-03-31 20:00, contract_signed@2024-03-31 23:00,
    need_info@2024-04-01 01:00, contract_signed@2024-04-01 02:00');
-- K8: signed at the window's (exclusive) end; held and resumed
SELECT pg_temp.hist('K8', 'quoted@2024-03-31 22:00, contract_signed@2024-04-01 00:00,
    warehouse_confirmed@2024-04-01 02:00, on_hold@2024-04-01 03:00, warehouse_confirmed@2024-04-01 05:00');
-- K9: cancelled after the quote
SELECT pg_temp.hist('K9', 'quoted@2024-03-15 08:00, cancelled@2024-03-16 08:00');
SELECT order_flow.record('K4', 'exception', '{"exception_type": "reshipment"}');
SELECT order_flow.record('K9', 'exception', '{"exception_type": "incomplete_address", "hours_lost": 5}');
SELECT order_flow.record('K6', 'note', '{"text": "not a metric"}');
-- K10: adopted, its only events are business facts
SELECT order_flow.record('K10', 'complaint', '{"text": "no answer"}');
SELECT order_flow.record('K10', 'service_request', '{"topic": "catalogue"}');
\o

-- ------------------------------------------------------------ kpi()
SELECT results_eq(
    $$SELECT * FROM order_flow.kpi('2024-03-01', '2024-04-01')$$,
    $$VALUES (6::bigint, 54::float8, 51::float8, 54::float8, 0.75::float8, 0.5::float8, 4.0::float8 / 6)$$,
    'kpi(March): 6 orders (K8 signed at the exclusive end is out, K7 in by its first signing); '
    'medians of {18,36,72,72} = 54, mean processing 51, on time 3/4, right first time 2/4, exceptions 4/6');
SELECT results_eq(
    $$SELECT * FROM order_flow.kpi('2024-03-01', '2024-03-15')$$,
    $$VALUES (3::bigint, 72::float8, 56::float8, 72::float8, 2.0::float8 / 3, 2.0::float8 / 3, 2.0::float8 / 3)$$,
    'kpi(first half of March): odd count, medians are the middle value');
SELECT results_eq(
    $$SELECT * FROM order_flow.kpi('2024-03-25', '2024-04-01')$$,
    $$VALUES (2::bigint, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, 0.5::float8)$$,
    'kpi with orders but none shipped or delivered: medians and those rates are NULL');
SELECT results_eq(
    $$SELECT * FROM order_flow.kpi('2023-01-01', '2023-02-01')$$,
    $$VALUES (0::bigint, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8)$$,
    'kpi over an empty window: 0 orders, every rate NULL');
SELECT results_eq(
    $$SELECT orders FROM order_flow.kpi('2024-03-01', '2024-03-01')$$, $$VALUES (0::bigint)$$,
    'kpi(from = to) is empty');
SELECT results_eq(
    $$SELECT orders, median_processing_hours FROM order_flow.kpi('2024-04-01', '2024-04-02')$$,
    $$VALUES (1::bigint, NULL::float8)$$,
    'K8 counts in the window that starts at its signing');
SELECT results_eq(
    $$SELECT median_hours_to_first_logistics FROM order_flow.kpi('2024-03-05', '2024-03-06')$$,
    $$VALUES (18::float8)$$,
    'a carrier trace before the shipped status is the first logistics update');
SELECT results_eq(
    $$SELECT orders, median_processing_hours FROM order_flow.kpi('-infinity', 'infinity')$$,
    $$VALUES (8::bigint, 72::float8)$$,
    'kpi over all time: the 8 signed orders; processing {24,36,72,72,168} -> median 72');

-- ------------------------------------------------------------ kpi() bad input
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.kpi('2024-04-01', '2024-03-01')$$, '22023',
                              'kpi with from after to');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.kpi(NULL, '2024-03-01')$$, '22004', 'kpi(NULL, to)');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.kpi('2024-03-01', NULL)$$, '22004', 'kpi(from, NULL)');

-- ------------------------------------------------------------ exception_pareto
SELECT results_eq(
    $$SELECT exception_type, count, share, cumulative_share, rank FROM order_flow.exception_pareto$$,
    $$VALUES ('missing_information', 2::bigint, 0.25::float8, 0.25::float8, 1),
             ('cancelled', 1, 0.125, 0.375, 2),
             ('incomplete_address', 1, 0.125, 0.5, 3),
             ('on_hold', 1, 0.125, 0.625, 4),
             ('reshipment', 1, 0.125, 0.75, 5),
             ('rework', 1, 0.125, 0.875, 6),
             ('stock_shortage', 1, 0.125, 1.0, 7)$$,
    'Pareto: edges with an exception type and exception records, ties ranked by name; resumes and notes do not count');

-- ------------------------------------------------------------ order_timeline
SELECT results_eq(
    $$SELECT customer_key, created_at, contract_signed_at, hours_created_to_contract,
             hours_contract_to_warehouse, hours_warehouse_to_finance, hours_finance_to_shipped,
             hours_to_first_logistics, processing_hours
        FROM order_flow.order_timeline WHERE order_key = 'K1'$$,
    $$VALUES ('C1', '2024-03-01 08:00+00'::timestamptz, '2024-03-01 10:00+00'::timestamptz,
              2::float8, 24::float8, 2::float8, 46::float8, 72::float8, 72::float8)$$,
    'order_timeline K1: first stamps and the hours between them');
SELECT results_eq(
    $$SELECT shipped_at, first_logistics_at, delivered_at, accepted_at, hours_to_first_logistics, processing_hours
        FROM order_flow.order_timeline WHERE order_key = 'K2'$$,
    $$VALUES ('2024-03-06 10:00+00'::timestamptz, '2024-03-06 04:00+00'::timestamptz,
              '2024-03-08 10:00+00'::timestamptz, '2024-03-10 12:00+00'::timestamptz, 18::float8, 24::float8)$$,
    'order_timeline K2: first shipment, earlier carrier trace, first delivery, acceptance');
SELECT is((SELECT count(*) FROM order_flow.order_timeline), 10::bigint, 'order_timeline: one row per order');

-- ------------------------------------------------------------ state_durations
SELECT results_eq(
    $$SELECT state, visit, wall_hours FROM order_flow.state_durations
       WHERE order_key = 'K1' AND state IN ('contract_signed', 'need_info') ORDER BY seq$$,
    $$VALUES ('contract_signed', 1::bigint, 2::float8), ('need_info', 1, 2), ('contract_signed', 2, 20)$$,
    'state_durations: each visit with its number and wall hours');
SELECT is((SELECT DISTINCT route FROM order_flow.state_durations WHERE order_key = 'K1'),
          'quoted>contract_signed>need_info>contract_signed>warehouse_confirmed>finance_approved>picking>shipped>in_transit>delivered>accepted',
          'state_durations: the route taken');
SELECT is((SELECT left_at FROM order_flow.state_durations WHERE order_key = 'K6' AND state = 'archived'),
          NULL, 'the current visit has no left_at');
SELECT is((SELECT wall_hours FROM order_flow.state_durations WHERE order_key = 'K6' AND state = 'archived'),
          NULL, 'no duration in a terminal state');
SELECT is((SELECT round(wall_hours::numeric, 6) FROM order_flow.state_durations
            WHERE order_key = 'K5' AND state = 'contract_signed'),
          round((extract(epoch FROM now() - '2024-03-25 10:00+00'::timestamptz) / 3600)::numeric, 6),
          'an open visit in an active state counts to now()');
SELECT is((SELECT business_hours FROM order_flow.state_durations WHERE order_key = 'K2' AND state = 'picking'),
          18::float8, 'business hours = wall hours in a 24x7 calendar');
UPDATE order_flow.department SET calendar = 'office' WHERE department = 'warehouse';
SELECT results_eq(
    $$SELECT order_key, wall_hours, business_hours FROM order_flow.state_durations
       WHERE state = 'picking' AND order_key IN ('K1', 'K2') ORDER BY order_key$$,
    $$VALUES ('K1', 24::float8, 7.5::float8), ('K2', 18::float8, 7.5::float8)$$,
    'business hours in the warehouse''s office calendar (Shanghai Mon-Fri 09-12, 13:30-18)');

-- ------------------------------------------------------------ business_hours()
SELECT is(order_flow.business_hours('24x7', '2024-03-01 00:00+00', '2024-03-01 05:00+00'), 5::float8,
          'business_hours 24x7 = wall hours');
SELECT is(order_flow.business_hours('office', '2024-03-08 09:00+00', '2024-03-11 02:00+00'), 5::float8,
          'business_hours office: Fri 17-18, Sat 09-12, Mon 09-10 (Shanghai) = 5');
INSERT INTO order_flow.calendar_holiday (calendar, day) VALUES ('office', '2024-03-09');
SELECT is(order_flow.business_hours('office', '2024-03-08 09:00+00', '2024-03-11 02:00+00'), 2::float8,
          'business_hours skips holidays');
SELECT is(order_flow.business_hours('office', '2024-03-11 02:00+00', '2024-03-08 09:00+00'), 0::float8,
          'business_hours of a reversed span is 0');
SELECT is(order_flow.business_hours('office', '2024-03-11 02:00+00',
              order_flow.business_deadline('office', '2024-03-11 02:00+00', '10 hours')), 10::float8,
          'business_hours inverts business_deadline');
SELECT is(order_flow.business_hours('office', NULL, now()), NULL, 'business_hours with a NULL bound is NULL');
SELECT * FROM pg_temp.refused($$SELECT order_flow.business_hours('nowhere', now(), now())$$, '42704',
                              'business_hours of an unknown calendar');

-- ------------------------------------------------------------ delays
SELECT results_eq(
    $$SELECT kind, reason, month, season, round(hours_lost::numeric, 6) FROM order_flow.delay_events
       WHERE order_key = 'K6' ORDER BY occurred_at$$,
    $$VALUES ('exception', 'stock_shortage', '2024-02-01'::date, 'winter', 72.0),
             ('dwell', 'dwell:finance_approved', '2024-02-01'::date, 'winter', 24.0)$$,
    'delay_events: exception visits (hours in the state), dwell beyond max_dwell');
SELECT results_eq(
    $$SELECT kind, reason, month, season, hours_lost FROM order_flow.delay_events
       WHERE order_key = 'K9' AND reason = 'incomplete_address'$$,
    $$VALUES ('exception', 'incomplete_address', date_trunc('month', now())::date,
              (SELECT season FROM order_flow.season WHERE region = '*' AND month = extract(month FROM now())),
              5::float8)$$,
    'delay_events: an exception record, dated when recorded, with its hours_lost');
SELECT results_eq(
    $$SELECT rank, reason, kind, orders, occurrences, hours_lost, share
        FROM order_flow.top_delay_reasons('east', 'A', '{2}')$$,
    $$VALUES (1, 'stock_shortage', 'exception', 1::bigint, 1::bigint, 72::float8, 1::float8),
             (2, 'dwell:finance_approved', 'dwell', 1, 1, 24, 1)$$,
    'top_delay_reasons(east, A, February)');
SELECT results_eq(
    $$SELECT reason FROM order_flow.top_delay_reasons('east', 'A', NULL, 1)$$,
    $$VALUES ('stock_shortage')$$, 'top_delay_reasons with n = 1 and all months');
SELECT is((SELECT count(*) FROM order_flow.top_delay_reasons('east', 'A', '{8}')), 0::bigint,
          'top_delay_reasons of a month without delays is empty');
SELECT results_eq(
    $$SELECT season, orders, occurrences, hours_lost FROM order_flow.delay_reasons
       WHERE region = 'east' AND customer_class = 'A' AND reason = 'stock_shortage'$$,
    $$VALUES ('winter', 1::bigint, 1::bigint, 72::float8)$$, 'delay_reasons cube row');
INSERT INTO order_flow.season (region, month, season) VALUES ('east', 2, 'cold_snap');
SELECT is((SELECT season FROM order_flow.delay_events WHERE order_key = 'K6' AND reason = 'stock_shortage'),
          'cold_snap', 'a region''s own season row wins over ''*''');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.top_delay_reasons('east', 'A', '{2}', 0)$$, '22023',
                              'top_delay_reasons with n = 0');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.top_delay_reasons('east', 'A', '{2}', NULL)$$, '22004',
                              'top_delay_reasons with n NULL');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.top_delay_reasons('east', 'A', '{13}')$$, '22023',
                              'top_delay_reasons with month 13');

-- ------------------------------------------------------------ the rollup
SELECT results_eq(
    $$SELECT order_key, customer_key, region, customer_class, category, amount, promised_ship_date, exceptions,
             rework_return FROM order_flow.order_fact ORDER BY length(order_key), order_key$$,
    $$VALUES ('K1', 'C1', 'north', 'B', 'bolts', 100::float8, '2024-03-04'::date, 1, false),
             ('K2', 'C1', 'north', 'B', 'nuts', 200, NULL, 1, true),
             ('K3', 'C2', 'south', 'C', 'bolts', 300, '2024-03-12', 0, false),
             ('K4', 'C2', 'south', 'C', 'paint', 400, NULL, 1, true),
             ('K5', 'C3', 'west', 'B', 'bolts', 500, NULL, 0, false),
             ('K6', 'C3', 'east', 'A', 'bolts', 600, NULL, 1, false),
             ('K7', 'C4', 'west', 'C', 'nuts', 700, NULL, 1, false),
             ('K8', 'C4', 'west', 'C', 'nuts', 800, NULL, 1, false),
             ('K9', 'C4', 'west', 'C', 'nuts', 900, NULL, 2, false),
             ('K10', 'C5', NULL, NULL, NULL, NULL, NULL, 0, false)$$,
    'order_fact: customer and attributes captured by the events, exceptions counted, reshipment is rework; '
    'an order with only business facts takes its customer from tracked_order');
SELECT results_eq($$SELECT complaints, service_requests, attrs_seq FROM order_flow.order_fact WHERE order_key = 'K10'$$,
                  $$VALUES (1, 1, -1::bigint)$$, 'business facts are counted per order');
-- a live transition and later attributes
UPDATE kt SET region = 'east', amount = 550 WHERE id = 'K5';
\o /dev/null
SELECT order_flow.transition('kt', 'K5', 'warehouse_confirmed');
\o
SELECT results_eq($$SELECT region, amount, attrs_seq FROM order_flow.order_fact WHERE order_key = 'K5'$$,
                  $$VALUES ('west', 500::float8, 2::bigint)$$,
                  'a transition that is not a milestone leaves the rollup alone');
\o /dev/null
SELECT order_flow.transition('kt', 'K5', 'on_hold', 'credit check');
\o
SELECT results_eq($$SELECT region, amount, exceptions FROM order_flow.order_fact WHERE order_key = 'K5'$$,
                  $$VALUES ('east', 550::float8, 1)$$,
                  'a milestone refreshes the attributes to the latest captured');
CREATE TEMP TABLE fact_before AS SELECT * FROM order_flow.order_fact;
CREATE TEMP TABLE exc_before AS SELECT * FROM order_flow.exception_fact;
SELECT is(order_flow.metrics_rebuild(), 10::bigint, 'metrics_rebuild() returns the number of orders');
SELECT set_eq('SELECT * FROM order_flow.order_fact', 'SELECT * FROM fact_before',
              'order_fact kept by the trigger equals the rebuild from the audit log');
SELECT set_eq('SELECT * FROM order_flow.exception_fact', 'SELECT * FROM exc_before',
              'exception_fact kept by the trigger equals the rebuild');
SELECT is((SELECT count(*) FROM order_flow.order_fact WHERE order_key LIKE 'order_flow:%'), 0::bigint,
          'pseudo orders (configuration changes) are not orders');

-- ------------------------------------------------------------ privileges
CREATE ROLE mk_admin NOLOGIN IN ROLE order_flow_admin;
CREATE ROLE mk_nobody NOLOGIN;
SELECT is((SELECT state FROM pg_temp.outcome($$SELECT * FROM order_flow.kpi('2024-03-01', '2024-04-01')$$,
                                             'mk_admin')), '00000', 'order_flow_admin may call kpi()');
SELECT is((SELECT state FROM pg_temp.outcome($$SELECT * FROM order_flow.customer_health$$, 'mk_admin')),
          '00000', 'order_flow_admin may read customer_health');
SELECT is((SELECT state FROM pg_temp.outcome($$SELECT * FROM order_flow.exception_pareto$$, 'mk_admin')),
          '00000', 'order_flow_admin may read exception_pareto');
SELECT is((SELECT state FROM pg_temp.outcome($$SELECT * FROM order_flow.kpi('2024-03-01', '2024-04-01')$$,
                                             'mk_nobody')), '42501', 'PUBLIC may not call kpi()');
SELECT is((SELECT state FROM pg_temp.outcome($$SELECT * FROM order_flow.customer_health$$, 'mk_nobody')),
          '42501', 'PUBLIC may not read customer_health');
SELECT is((SELECT state FROM pg_temp.outcome($$SELECT * FROM order_flow.order_fact$$, 'mk_nobody')),
          '42501', 'PUBLIC may not read order_fact');
SELECT is((SELECT state FROM pg_temp.outcome($$SELECT order_flow.metrics_rebuild()$$, 'mk_nobody')),
          '42501', 'PUBLIC may not rebuild the metrics');
SELECT is((SELECT state FROM pg_temp.outcome(
              $$INSERT INTO order_flow.order_fact (order_key) VALUES ('forged')$$, 'mk_admin')),
          '42501', 'nobody but the extension writes order_fact');

-- ------------------------------------------------------------ a deleted order's last visit ends
INSERT INTO kt (id, status, cust) VALUES ('K11', 'inquiry', 'C5');
UPDATE kt SET status = 'quoted' WHERE id = 'K11';
SET LOCAL order_flow.reason = 'entered twice';
DELETE FROM kt WHERE id = 'K11';
SELECT is((SELECT left_at FROM order_flow.state_durations WHERE order_key = 'K11' AND state = 'quoted'),
          (SELECT occurred_at FROM order_flow.audit_log WHERE order_key = 'K11' AND action = 'deleted'),
          'state_durations: a deleted order''s last visit ends at its deletion (it does not count on to now())');
SELECT is((SELECT string_agg(state || ' ' || route, '; ' ORDER BY seq) FROM order_flow.state_durations WHERE order_key = 'K11'),
          'inquiry inquiry>quoted; quoted inquiry>quoted', '... and the deletion is no visit of its own');
DELETE FROM kt WHERE id = 'K6';
SELECT is((SELECT array_agg(coalesce(wall_hours::text, 'none')) FROM order_flow.state_durations
            WHERE order_key = 'K6' AND state = 'archived'), '{none}',
          '... and a deleted order''s visit of a terminal state still counts no time');

SELECT * FROM finish();
ROLLBACK;
