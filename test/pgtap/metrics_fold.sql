-- test/pgtap/metrics_fold.sql -- the metrics rollup folded off the
-- transition path (1.2): with order_flow.metrics_fold = 'async' the
-- transaction that moves an order leaves the rollup alone; metrics_fold()
-- (what the scheduler runs) folds committed events -- here, in this one
-- test transaction, its own -- exactly once, per order in sequence order,
-- so that the rollup equals metrics_rebuild()'s; a rolled-back move is
-- never folded; 'sync' folds in the writing transaction and gives the same
-- rollup.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(24);

CREATE ROLE tw_mf_nobody NOLOGIN;
CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry',
                     customer text, region text, amount numeric);
SELECT order_flow.manage('orders', customer_column => 'customer', attributes => '{region,amount}');

-- rollup(): the whole rollup as one digest; rebuilt(): the same after
-- metrics_rebuild(), which is then undone
CREATE FUNCTION pg_temp.rollup() RETURNS text LANGUAGE sql AS $$
    SELECT md5(coalesce((SELECT string_agg(f::text, '|' ORDER BY f.order_key) FROM order_flow.order_fact f), '')
            || coalesce((SELECT string_agg(format('%s %s %s', x.order_key, x.exception_type, x.action), '|'
                                           ORDER BY x.order_key, x.event_id) FROM order_flow.exception_fact x), ''))
$$;
CREATE FUNCTION pg_temp.rebuilt() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    BEGIN
        PERFORM order_flow.metrics_rebuild();
        r := pg_temp.rollup();
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = '__undo__';
    EXCEPTION WHEN raise_exception THEN
        RETURN r;
    END;
END
$$;

SET order_flow.metrics_fold = async;
INSERT INTO orders SELECT g, 'inquiry', 'C' || (g % 3), CASE WHEN g % 2 = 0 THEN 'east' ELSE 'west' END, g * 10
  FROM generate_series(1, 6) g;
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed' WHERE id <= 4;
SELECT order_flow.record('1', 'payment', '{"amount": 100, "due_date": "2026-01-31", "paid_date": "2026-01-20"}');
SELECT order_flow.record('2', 'exception', '{"exception_type": "pricing_error"}');
SELECT order_flow.record('2', 'complaint', '{"text": "late quote"}');

SELECT is((SELECT count(*)::int FROM order_flow.order_fact), 0,
          'async: the transactions that moved the orders left the rollup alone');
SELECT ok(order_flow.metrics_lag() > interval '0', 'metrics_lag() says the rollup is behind');
SELECT isnt(pg_temp.rollup(), pg_temp.rebuilt(), '... and it is');
SELECT is(order_flow.metrics_fold(), 6::bigint, 'metrics_fold() folds the six orders');
SELECT is(pg_temp.rollup(), pg_temp.rebuilt(), 'the folded rollup equals metrics_rebuild()''s');
SELECT is(order_flow.metrics_lag(), interval '0', 'metrics_lag() is 0 once everything is folded');
SELECT is((SELECT array_agg(folded_seq ORDER BY order_key) FROM order_flow.metrics_watermark
            WHERE order_key IN ('1','2','3','4','5','6')),
          (SELECT array_agg(last_seq ORDER BY order_key) FROM order_flow.tracked_order
            WHERE order_key IN ('1','2','3','4','5','6')),
          'every order''s watermark is at the end of its chain');

-- folding again changes nothing: no event counts twice
SELECT is(order_flow.metrics_fold(true), 0::bigint, 'a second fold, with catch-up, folds nothing');
SELECT is(pg_temp.rollup(), pg_temp.rebuilt(), 'and the rollup still equals metrics_rebuild()''s');

-- a later event folds the earlier ones the window did not see
UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 1;
SELECT order_flow.record('1', 'payment', '{"amount": 5, "due_date": "2026-02-01", "paid_date": "2026-02-03"}');
SELECT is(_order_flow._metrics_fold_window('-infinity', '-infinity'), 0::bigint,
          'a window with no events folds nothing');
SELECT is((SELECT payments FROM order_flow.order_fact WHERE order_key = '1'), 1, '(order 1 has one payment folded)');
SELECT is(_order_flow._metrics_fold_window(NULL, NULL), 1::bigint,
          'the catch-up folds the one order behind its watermark');
SELECT is((SELECT payments FROM order_flow.order_fact WHERE order_key = '1'), 2, 'order 1 now has both payments');

-- a move rolled back is never folded
SAVEPOINT undone;
SELECT order_flow.record('3', 'complaint', '{"text": "rolled back"}');
ROLLBACK TO SAVEPOINT undone;
SELECT is(order_flow.metrics_fold(true), 0::bigint, 'an event rolled back is not folded');
SELECT is((SELECT complaints FROM order_flow.order_fact WHERE order_key = '3'), 0, '(no complaint for order 3)');

-- sync folds in the writing transaction, with the same result
SET order_flow.metrics_fold = sync;
UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 2;
SELECT order_flow.record('4', 'service_request', '{"text": "call back"}');
SELECT is((SELECT service_requests FROM order_flow.order_fact WHERE order_key = '4'), 1,
          'sync: the writing transaction folded the event');
SELECT is(order_flow.metrics_fold(true), 0::bigint, 'and a later fold has nothing left to do');
SELECT is(pg_temp.rollup(), pg_temp.rebuilt(), 'sync and async folds together equal metrics_rebuild()');

-- bad input and rights
SELECT * FROM pg_temp.refused($$SELECT order_flow.metrics_fold(NULL)$$, '22004', 'metrics_fold(NULL)');
SELECT * FROM pg_temp.refused($$SELECT order_flow.metrics_fold(false, NULL)$$, '22004', 'metrics_fold(wait => NULL)');
SELECT * FROM pg_temp.refused($$SELECT order_flow.metrics_fold()$$, '42501', 'metrics_fold() by PUBLIC',
                              as_role => 'tw_mf_nobody');

SELECT * FROM finish();
ROLLBACK;
