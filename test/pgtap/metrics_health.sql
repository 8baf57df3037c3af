-- test/pgtap/metrics_health.sql -- SPEC 3.7 customer health: every one of
-- the twelve dimensions on hand-computed data placed relative to the
-- current month, a single-order customer, windows that exclude old and
-- current-month orders, the score from configurable weights (NULL
-- dimensions left out, reversed scales, clamping), the red/yellow/green
-- cut-offs, and the validation of weights and thresholds (23514 at commit).
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql
SET LOCAL TimeZone = 'UTC';
SET LOCAL order_flow.business_time_zone = 'UTC';

SELECT plan(54);

-- ------------------------------------------------------------ fixtures
\o /dev/null
-- m(k, days, hours): k calendar months before this one, plus days and hours
CREATE FUNCTION pg_temp.m(k integer, days float8, hours float8 DEFAULT 8) RETURNS timestamptz
LANGUAGE sql STABLE AS $f$
    SELECT date_trunc('month', now()) - k * interval '1 month' + days * interval '1 day' + hours * interval '1 hour'
$f$;
CREATE TABLE ht (id text PRIMARY KEY, status text NOT NULL, cust text, region text, grade text,
                 category text, amount numeric, promised_ship_date date);
INSERT INTO ht VALUES
    ('H1a', 'inquiry', 'CH1', 'east', 'A', 'bolts', 100, NULL),
    ('H1b', 'inquiry', 'CH1', 'east', 'A', 'nuts', 200, NULL),
    ('H1c', 'inquiry', 'CH1', 'east', 'A', 'bolts', 300, (pg_temp.m(2, 4) + interval '2 days')::date),
    ('H1d', 'inquiry', 'CH1', 'east', 'A', 'nuts', 400, NULL),
    ('H1e', 'inquiry', 'CH1', 'east', 'A', 'screws', 500, NULL),
    ('H1f', 'inquiry', 'CH1', 'east', 'A', 'bolts', 600, NULL),
    ('H2a', 'inquiry', 'CH2', 'south', 'B', 'paint', 600, NULL),
    ('H3a', 'inquiry', 'CH3', 'west', 'C', 'bolts', 10, NULL),
    ('H3b', 'inquiry', 'CH3', 'west', 'C', 'nuts', 20, NULL);
SELECT order_flow.manage('ht', customer_column => 'cust',
                         attributes => '{region,grade,category,amount,promised_ship_date}');
CREATE TABLE ht_anon (id text PRIMARY KEY, status text NOT NULL);
INSERT INTO ht_anon VALUES ('HX', 'inquiry');
SELECT order_flow.manage('ht_anon');

-- hist(tbl, key, base, 'state@hours, ...'): import a history, hours after base
CREATE FUNCTION pg_temp.hist(tbl regclass, k text, base timestamptz, steps text) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
    s text;
BEGIN
    FOREACH s IN ARRAY string_to_array(steps, ',') LOOP
        PERFORM order_flow.import_transition(tbl, k, btrim(split_part(s, '@', 1), E' \n\t'),
                                             base + btrim(split_part(s, '@', 2), E' \n\t')::float8
                                                    * interval '1 hour',
                                             '{"reason": "test"}');
    END LOOP;
END
$f$;
-- CH1: 1, 2 and 3 orders in the last three complete months
SELECT pg_temp.hist('ht', 'H1a', pg_temp.m(3, 0), 'quoted@0, contract_signed@1, warehouse_confirmed@2,
    finance_approved@3, picking@4, shipped@10, in_transit@12, delivered@20, accepted@22');
SELECT pg_temp.hist('ht', 'H1b', pg_temp.m(2, 0), 'quoted@0, contract_signed@1, warehouse_confirmed@2,
    finance_approved@3, picking@4, shipped@61, in_transit@62, delivered@70, rework@71, shipped@80,
    in_transit@81, delivered@90, accepted@92');
SELECT pg_temp.hist('ht', 'H1c', pg_temp.m(2, 4), 'quoted@0, contract_signed@1, warehouse_confirmed@2,
    finance_approved@3, picking@4, shipped@30, in_transit@31, delivered@40, returned@41');
SELECT pg_temp.hist('ht', 'H1d', pg_temp.m(1, 0), 'quoted@0, contract_signed@1');
SELECT pg_temp.hist('ht', 'H1e', pg_temp.m(1, 1), 'quoted@0, contract_signed@1');
SELECT pg_temp.hist('ht', 'H1f', pg_temp.m(1, 2), 'quoted@0, contract_signed@1');
SELECT order_flow.record('H1a', 'payment', '{"amount": 100, "due_date": "2024-01-31", "paid_date": "2024-01-30"}');
SELECT order_flow.record('H1b', 'payment', '{"amount": 300, "due_date": "2024-02-10", "paid_date": "2024-02-15"}');
SELECT order_flow.record('H1c', 'payment', '{"amount": 100}');
SELECT order_flow.record('H1a', 'service_request', '{"topic": "manual"}');
SELECT order_flow.record('H1a', 'service_request', '{"topic": "spare part"}');
SELECT order_flow.record('H1b', 'complaint', '{"text": "late"}');
-- CH2: a single order last month
SELECT pg_temp.hist('ht', 'H2a', pg_temp.m(1, 9), 'quoted@0, contract_signed@1');
-- CH3: one order 13 months ago, one this month
SELECT pg_temp.hist('ht', 'H3a', pg_temp.m(13, 0), 'quoted@0');
SELECT order_flow.import_transition('ht', 'H3b', 'quoted',
                                    greatest(date_trunc('month', now()), now() - interval '1 minute'));
SELECT order_flow.record('H3b', 'payment', '{"amount": 50, "due_date": "2999-01-01"}');
-- (1.0 accepted a due_date that is no date, like "soon", and the metrics ignored it;
-- 1.1 refuses one: a JSON null due_date is what is left to ignore)
SELECT order_flow.record('H3b', 'payment', '{"amount": 70, "due_date": null}');
-- an order of a table without a customer column
SELECT order_flow.import_transition('ht_anon', 'HX', 'quoted', pg_temp.m(1, 3));
\o

-- ------------------------------------------------------------ the twelve dimensions
SELECT is((SELECT count(*) FROM order_flow.customer_health), 3::bigint,
          'one row per customer with an order; orders without a customer have none');
SELECT results_eq(
    $$SELECT order_frequency, category_breadth, payment_punctuality, overdue_payments, service_requests,
             complaints, on_time_rate, first_time_right_rate, return_rework_rate
        FROM order_flow.customer_health WHERE customer_key = 'CH1'$$,
    $$VALUES (0.5::float8, 3, 0.25::float8, 1::bigint, 2::bigint, 1::bigint,
              2.0::float8 / 3, 1.0::float8 / 3, 2.0::float8 / 3)$$,
    'CH1: frequency 6/12, 3 categories, punctuality 100/400, 1 late payment, 2 requests, 1 complaint, '
    'on time 2/3, right first time 1/3, reworked or returned 2/3');
SELECT is((SELECT order_frequency FROM order_flow.customer_health WHERE customer_key = 'CH1'), 0.5::float8,
          'order_frequency: orders per month over the last 12 complete months');
-- (to 1e-9 days: the expected value divides seconds, the aggregate microseconds;
-- the last bit of a float8 may differ with the date)
SELECT ok(abs((SELECT recency_days FROM order_flow.customer_health WHERE customer_key = 'CH1')
              - extract(epoch FROM now() - pg_temp.m(1, 2))::float8 / 86400) < 1e-9,
          'recency_days: days since the last order');
SELECT is((SELECT category_breadth FROM order_flow.customer_health WHERE customer_key = 'CH1'), 3,
          'category_breadth: distinct categories');
SELECT is((SELECT payment_punctuality FROM order_flow.customer_health WHERE customer_key = 'CH1'), 0.25::float8,
          'payment_punctuality: amount paid by the due date / amount with a due date');
SELECT is((SELECT overdue_payments FROM order_flow.customer_health WHERE customer_key = 'CH1'), 1::bigint,
          'overdue_payments: payments after their due date');
SELECT is((SELECT service_requests FROM order_flow.customer_health WHERE customer_key = 'CH1'), 2::bigint,
          'service_requests');
SELECT is((SELECT complaints FROM order_flow.customer_health WHERE customer_key = 'CH1'), 1::bigint, 'complaints');
SELECT is((SELECT on_time_rate FROM order_flow.customer_health WHERE customer_key = 'CH1'), 2.0::float8 / 3,
          'on_time_rate: within 48 h of signing without a promise, by the promised date with one');
SELECT is((SELECT first_time_right_rate FROM order_flow.customer_health WHERE customer_key = 'CH1'),
          1.0::float8 / 3, 'first_time_right_rate: delivered and accepted without rework or return');
SELECT is((SELECT return_rework_rate FROM order_flow.customer_health WHERE customer_key = 'CH1'),
          2.0::float8 / 3, 'return_rework_rate');
SELECT is((SELECT round(order_value_trend::numeric, 12) FROM order_flow.customer_health WHERE customer_key = 'CH1'),
          round(26.0 / 35, 12),
          'order_value_trend: slope of {0,0,0,100,500,1500} = 260 a month over a mean of 350');
SELECT is((SELECT round(order_volatility::numeric, 12) FROM order_flow.customer_health WHERE customer_key = 'CH1'),
          round((sqrt(2.0 / 3) / 2)::numeric, 12),
          'order_volatility: coefficient of variation of {1,2,3}');
SELECT results_eq(
    $$SELECT orders, orders_3_months_ago, orders_2_months_ago, orders_last_month
        FROM order_flow.customer_health WHERE customer_key = 'CH1'$$,
    $$VALUES (6::bigint, 1::bigint, 2::bigint, 3::bigint)$$, 'last three complete months: 1, 2, 3 orders');

-- a customer with a single order
SELECT results_eq(
    $$SELECT orders, category_breadth, payment_punctuality, overdue_payments, service_requests, complaints,
             on_time_rate, first_time_right_rate, return_rework_rate,
             orders_3_months_ago, orders_2_months_ago, orders_last_month
        FROM order_flow.customer_health WHERE customer_key = 'CH2'$$,
    $$VALUES (1::bigint, 1, NULL::float8, 0::bigint, 0::bigint, 0::bigint, NULL::float8, NULL::float8, NULL::float8,
              0::bigint, 0::bigint, 1::bigint)$$,
    'CH2 (single unshipped order, no payments): rates without a denominator are NULL');
SELECT is((SELECT order_frequency FROM order_flow.customer_health WHERE customer_key = 'CH2'), 1.0::float8 / 12,
          'CH2: order_frequency 1/12');
SELECT is((SELECT round(order_volatility::numeric, 12) FROM order_flow.customer_health WHERE customer_key = 'CH2'),
          round(sqrt(2.0), 12), 'CH2: volatility of {0,0,1} = sqrt 2');
SELECT is((SELECT round(order_value_trend::numeric, 12) FROM order_flow.customer_health WHERE customer_key = 'CH2'),
          round(6.0 / 7, 12), 'CH2: value trend of {0,0,0,0,0,600} = 6/7 a month');

-- windows: an order 13 months ago and one this month count in neither
SELECT results_eq(
    $$SELECT order_frequency, order_volatility, order_value_trend, orders_3_months_ago, orders_2_months_ago,
             orders_last_month, category_breadth, orders
        FROM order_flow.customer_health WHERE customer_key = 'CH3'$$,
    $$VALUES (0::float8, NULL::float8, NULL::float8, 0::bigint, 0::bigint, 0::bigint, 2, 2::bigint)$$,
    'CH3: orders 13 months ago and this month are outside the windows: frequency 0, volatility and trend NULL');
SELECT ok((SELECT recency_days < 1 FROM order_flow.customer_health WHERE customer_key = 'CH3'),
          'CH3: recency counts this month''s order');
SELECT results_eq(
    $$SELECT payment_punctuality, overdue_payments FROM order_flow.customer_health WHERE customer_key = 'CH3'$$,
    $$VALUES (1::float8, 0::bigint)$$,
    'a payment without paid_date is dated by its event; an unreadable due_date leaves it out of punctuality');

-- ------------------------------------------------------------ score and rating
SELECT ok((SELECT bool_and(score BETWEEN 0 AND 100 AND rating IN ('red', 'yellow', 'green'))
             FROM order_flow.customer_health), 'shipped weights: scores in 0..100, every customer rated');
UPDATE order_flow.health_weight SET weight = 0;
UPDATE order_flow.health_weight SET weight = 0.5, bad = 0, good = 1 WHERE dimension = 'order_frequency';
UPDATE order_flow.health_weight SET weight = 0.5, bad = 1, good = 5 WHERE dimension = 'category_breadth';
SELECT results_eq(
    $$SELECT customer_key, score, rating FROM order_flow.customer_health ORDER BY customer_key$$,
    $$VALUES ('CH1', 50.0, 'yellow'), ('CH2', 4.2, 'red'), ('CH3', 12.5, 'red')$$,
    'score = 100 x weighted mean of linear dimension scores; 50 is yellow (cut-off inclusive)');
UPDATE order_flow.health_threshold SET min_score = 50.1 WHERE rating = 'yellow';
SELECT is((SELECT rating FROM order_flow.customer_health WHERE customer_key = 'CH1'), 'red',
          'just below the yellow cut-off is red');
UPDATE order_flow.health_threshold SET min_score = 40 WHERE rating = 'yellow';
UPDATE order_flow.health_threshold SET min_score = 50 WHERE rating = 'green';
SELECT is((SELECT rating FROM order_flow.customer_health WHERE customer_key = 'CH1'), 'green',
          'at the green cut-off is green');
SELECT is((SELECT rating FROM order_flow.customer_health WHERE customer_key = 'CH3'), 'red', 'below yellow is red');
UPDATE order_flow.health_threshold SET min_score = 10 WHERE rating = 'yellow';
SELECT is((SELECT rating FROM order_flow.customer_health WHERE customer_key = 'CH3'), 'yellow',
          'between yellow and green is yellow');
UPDATE order_flow.health_weight SET weight = 0 WHERE dimension = 'category_breadth';
UPDATE order_flow.health_weight SET weight = 0.5, bad = 0, good = 1 WHERE dimension = 'payment_punctuality';
SELECT results_eq(
    $$SELECT customer_key, score FROM order_flow.customer_health ORDER BY customer_key$$,
    $$VALUES ('CH1', 37.5), ('CH2', 8.3), ('CH3', 50.0)$$,
    'a NULL dimension (CH2 has no payments) is left out and the other weights rescaled');
UPDATE order_flow.health_weight SET weight = 0;
UPDATE order_flow.health_weight SET weight = 1, bad = 90, good = 7 WHERE dimension = 'recency_days';
SELECT results_eq(
    $$SELECT customer_key, score FROM order_flow.customer_health WHERE customer_key IN ('CH3') $$,
    $$VALUES ('CH3', 100.0)$$, 'a falling scale (good < bad) clamps at 100');
UPDATE order_flow.health_weight SET bad = 7, good = 90 WHERE dimension = 'recency_days';
SELECT results_eq(
    $$SELECT customer_key, score FROM order_flow.customer_health WHERE customer_key IN ('CH3') $$,
    $$VALUES ('CH3', 0.0)$$, 'and at 0 the other way round');
SELECT lives_ok($$SET CONSTRAINTS order_flow.health_weight_valid, order_flow.health_threshold_valid IMMEDIATE$$,
                'the edited weights (sum 1) and thresholds (10 < 40 < 50) pass validation');
SET CONSTRAINTS order_flow.health_weight_valid, order_flow.health_threshold_valid DEFERRED;
SELECT ok(EXISTS (SELECT 1 FROM order_flow.audit_log WHERE order_key = 'order_flow:config'
                     AND details->>'table' = 'health_weight'), 'weight edits are audited');
SELECT ok(EXISTS (SELECT 1 FROM order_flow.audit_log WHERE order_key = 'order_flow:config'
                     AND details->>'table' = 'health_threshold'), 'threshold edits are audited');

-- ------------------------------------------------------------ validation (at commit)
CREATE FUNCTION pg_temp.at_commit(cmd text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    RETURN (SELECT state FROM pg_temp.outcome(
        cmd || '; SET CONSTRAINTS order_flow.health_weight_valid, order_flow.health_threshold_valid IMMEDIATE'));
END
$f$;
SELECT is(pg_temp.at_commit($$UPDATE order_flow.health_weight SET weight = 0.2 WHERE dimension = 'complaints'$$),
          '23514', 'weights summing to 1.2 -> 23514 at commit');
SELECT is(pg_temp.at_commit($$UPDATE order_flow.health_weight SET weight = 0.999 WHERE dimension = 'recency_days'$$),
          '23514', 'weights summing to 0.999 -> 23514');
SELECT is(pg_temp.at_commit($$UPDATE order_flow.health_weight SET weight = 0.9999995 WHERE dimension = 'recency_days'$$),
          '00000', 'weights within 1e-6 of 1 pass');
SELECT is(pg_temp.at_commit($$DELETE FROM order_flow.health_weight WHERE dimension = 'recency_days'$$),
          '23514', 'deleting the only weighted dimension -> 23514');
SELECT is(pg_temp.at_commit($$UPDATE order_flow.health_threshold SET min_score = 60 WHERE rating = 'yellow'$$),
          '23514', 'yellow above green -> 23514');
SELECT is(pg_temp.at_commit($$UPDATE order_flow.health_threshold SET min_score = 50 WHERE rating = 'yellow'$$),
          '23514', 'yellow equal to green -> 23514');
SELECT is(pg_temp.at_commit($$UPDATE order_flow.health_threshold SET min_score = 10 WHERE rating = 'red'$$),
          '23514', 'red equal to yellow -> 23514');
SELECT is(pg_temp.at_commit($$DELETE FROM order_flow.health_threshold WHERE rating = 'red'$$),
          '23514', 'a missing rating row -> 23514');
SELECT is(pg_temp.at_commit($$UPDATE order_flow.health_threshold SET min_score = 0 WHERE rating = 'yellow'$$),
          '23514', 'yellow at red''s 0 -> 23514');
SELECT is((SELECT state FROM pg_temp.outcome(
              $$UPDATE order_flow.health_weight SET weight = 1.5 WHERE dimension = 'complaints'$$)),
          '23514', 'a weight above 1 -> 23514 (check)');
SELECT is((SELECT state FROM pg_temp.outcome(
              $$UPDATE order_flow.health_weight SET good = bad WHERE dimension = 'complaints'$$)),
          '23514', 'good = bad -> 23514 (check)');
SELECT is((SELECT state FROM pg_temp.outcome(
              $$INSERT INTO order_flow.health_weight (dimension, weight, bad, good) VALUES ('mood', 0, 0, 1)$$)),
          '23514', 'an unknown dimension -> 23514 (check)');
SELECT is((SELECT state FROM pg_temp.outcome(
              $$INSERT INTO order_flow.health_threshold (rating, min_score) VALUES ('blue', 90)$$)),
          '23514', 'an unknown rating -> 23514 (check)');
SELECT is((SELECT state FROM pg_temp.outcome(
              $$UPDATE order_flow.health_threshold SET min_score = 101 WHERE rating = 'green'$$)),
          '23514', 'a threshold above 100 -> 23514 (check)');

-- ------------------------------------------------------------ the aggregates on their own
SELECT is(order_flow.breadth(x), 3, 'breadth counts distinct values, ignoring NULLs')
  FROM (VALUES ('a'), ('b'), (NULL), ('a'), ('c'), ('')) v(x) WHERE x IS DISTINCT FROM '';
SELECT is((SELECT order_flow.breadth(x) FROM (VALUES (NULL::text)) v(x)), 0, 'breadth of only NULLs is 0');
SELECT is((SELECT order_flow.median(x) FROM (VALUES (3.0::float8), (1), (2), (10)) v(x)), 2.5::float8,
          'median of an even count interpolates');
SELECT is((SELECT order_flow.median(x) FROM (VALUES (NULL::float8)) v(x)), NULL, 'median of no values is NULL');
SELECT is((SELECT state FROM pg_temp.outcome(
              $$SELECT order_flow.order_frequency(t, 1, CASE WHEN t > '2024-01-01' THEN now() ELSE now() - interval '1 day' END)
                  FROM (VALUES ('2023-06-01'::timestamptz), ('2024-06-01')) v(t)$$)),
          '22023', 'rhythm aggregates need one as_of per group');
SELECT is((SELECT state FROM pg_temp.outcome(
              $$SELECT order_flow.order_frequency(now(), 1, NULL)$$)),
          '22004', 'rhythm aggregates refuse a NULL as_of');

SELECT * FROM finish();
ROLLBACK;
