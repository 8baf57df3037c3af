-- test/pgtap/station_scan.sql -- the shipping station's scan step (SPEC 3.6,
-- issue 4): order_flow.station_scan() matches a scan to an order line and
-- answers what is left and any warning.  Happy path and the remaining list;
-- every warning (unknown barcode, another order's SKU, over-scan, prohibited)
-- is NOT counted and is recorded as an 'error' station event; stock short is
-- counted and lists substitutes (in stock, not prohibited, enough for the
-- line); refused input (22023, 22004, P0002, 55000) writes nothing at all.
\ir include/preamble.psql
BEGIN;

SELECT plan(97);

-- ------------------------------------------------------------ helpers
\ir include/station_helpers.psql
\ir include/refusal_name.psql

-- scan_log: every scan made through pg_temp.scan(), with what it changed
CREATE TEMP TABLE scan_log (
    label        text PRIMARY KEY,
    res          jsonb,
    lines_before text, lines_after text,
    rest_before  text, rest_after  text,
    events       jsonb);
-- scan(label, key, barcode, qty): station_scan() with a record of its effects
CREATE FUNCTION pg_temp.scan(label text, k text, barcode text, qty int DEFAULT 1) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
    last_event bigint := (SELECT coalesce(max(id), 0) FROM order_flow.station_event);
    lb text := pg_temp.st_lines();
    rb text := pg_temp.st_rest();
    r jsonb;
BEGIN
    r := order_flow.station_scan(k, barcode, qty);
    INSERT INTO scan_log VALUES (label, r, lb, pg_temp.st_lines(), rb, pg_temp.st_rest(),
        (SELECT coalesce(jsonb_agg(jsonb_build_object('step', e.step, 'order_key', e.order_key,
                                                      'operator', e.operator, 'station', e.station,
                                                      'detail', e.detail) ORDER BY e.id), '[]')
           FROM order_flow.station_event e WHERE e.id > last_event));
END
$f$;
-- warned(label, kind, key, barcode, qty): the five checks of a warned scan
CREATE FUNCTION pg_temp.warned(lbl text, kind text, k text, barcode text, qty int DEFAULT 1)
RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
    s scan_log;
BEGIN
    SELECT * INTO s FROM scan_log WHERE label = lbl;
    RETURN NEXT is(s.res->>'warning', kind, lbl || ': warning ' || kind);
    RETURN NEXT is(s.res->'ok', 'false'::jsonb, lbl || ': ok is false');
    RETURN NEXT is(s.lines_after, s.lines_before, lbl || ': the scan is not counted');
    RETURN NEXT is(s.events,
                   jsonb_build_array(jsonb_build_object('step', 'error', 'order_key', k, 'operator', 'tina',
                                                        'station', 'st-7', 'detail',
                                                        jsonb_build_object('barcode', barcode, 'qty', qty,
                                                                           'warning', kind))),
                   lbl || ': recorded as one error station event');
    RETURN NEXT is(s.rest_after, s.rest_before, lbl || ': stock, order, audit and shipments untouched');
END
$f$;

-- ------------------------------------------------------------ fixtures
CREATE TABLE orders (
    id        text PRIMARY KEY,
    status    order_flow.status NOT NULL DEFAULT 'inquiry',
    customer  text,
    region    text);
SELECT order_flow.manage('orders', customer_column => 'customer', attributes => '{region}');

INSERT INTO order_flow.sku (sku, barcode, name, category, weight_kg, prohibited, substitutes, unit_price, unit_cost) VALUES
    ('SKU-A',  '6901234500017', 'Adapter A',      'power',    0.5, false, '{SKU-A2,SKU-A3,SKU-AP,SKU-A4,SKU-A5}', 12, 7),
    ('SKU-A2', '6901234500024', 'Adapter A2',     'power',    0.5, false, '{}', 13, 8),
    ('SKU-A3', '6901234500031', 'Adapter A3',     'power',    0.5, false, '{}', 13, 8),
    ('SKU-AP', '6901234500048', 'Adapter AP',     'power',    0.5, true,  '{}', 13, 8),
    ('SKU-A4', '6901234500055', 'Adapter A4',     'power',    0.5, false, '{}', 13, 8),
    ('SKU-A5', '6901234500093', 'Adapter A5',     'power',    0.5, false, '{}', 13, 8),
    ('SKU-B',  '6901234500062', 'Bracket B',      'hardware', 1.0, false, '{}', 20, 11),
    ('SKU-C',  '6901234500079', 'Cable C',        'cable',    0.1, false, '{}',  3, 1),
    ('SKU-X',  '6901234500086', 'Lithium pack X', 'battery',  0.2, true,  '{}', 30, 18);
-- SKU-A is short (1 for a line of 2); of its substitutes only A2 (5) and A5
-- (2, exactly the line) qualify: A3 is out of stock, AP is prohibited, A4
-- has 1 < 2.
INSERT INTO order_flow.stock (sku, available) VALUES
    ('SKU-A', 1), ('SKU-A2', 5), ('SKU-A3', 0), ('SKU-AP', 100), ('SKU-A4', 1), ('SKU-A5', 2),
    ('SKU-B', 100), ('SKU-C', 100), ('SKU-X', 100);

-- as superuser (admin), orders may be created in a later state
INSERT INTO orders VALUES
    ('sc-1', 'picking', 'Acme', 'north'),
    ('sc-2', 'picking', 'Bolt', 'south'),
    ('sc-3', 'packed', 'Acme', 'north'),
    ('sc-q', 'quoted', 'Acme', 'north'),
    ('sc-s', 'shipped', 'Acme', 'north'),
    ('sc-f', 'finance_approved', 'Acme', 'north');
INSERT INTO order_flow.order_line (order_key, sku, qty) VALUES
    ('sc-1', 'SKU-A', 2), ('sc-1', 'SKU-B', 3), ('sc-1', 'SKU-X', 1),
    ('sc-2', 'SKU-C', 4),
    ('sc-3', 'SKU-C', 1),
    ('sc-q', 'SKU-C', 1), ('sc-s', 'SKU-C', 1), ('sc-f', 'SKU-C', 1);

SET LOCAL order_flow.actor = 'tina';
SET LOCAL order_flow.station = 'st-7';

-- ------------------------------------------------------------ happy path
SELECT pg_temp.scan('first', 'sc-1', '6901234500062');
SELECT is((SELECT res - 'remaining' FROM scan_log WHERE label = 'first'),
          '{"ok": true, "order_key": "sc-1", "sku": "SKU-B", "warning": null, "message": "OK", "complete": false}',
          'a good scan: ok, the matched SKU, no warning, not complete');
SELECT is((SELECT res->'remaining' FROM scan_log WHERE label = 'first'),
          '[{"sku": "SKU-A", "name": "Adapter A",      "qty": 2, "scanned": 0, "left": 2},
            {"sku": "SKU-B", "name": "Bracket B",      "qty": 3, "scanned": 1, "left": 2},
            {"sku": "SKU-X", "name": "Lithium pack X", "qty": 1, "scanned": 0, "left": 1}]',
          'the remaining list names every line still to scan, in SKU order, with what is left');
SELECT is((SELECT scanned FROM order_flow.order_line WHERE order_key = 'sc-1' AND sku = 'SKU-B'), 1,
          'the scan is counted on its line');
SELECT is((SELECT events FROM scan_log WHERE label = 'first'),
          '[{"step": "scan", "order_key": "sc-1", "operator": "tina", "station": "st-7",
             "detail": {"barcode": "6901234500062", "qty": 1, "warning": null}}]',
          'one scan station event with the operator (current actor) and the station');
SELECT is((SELECT rest_after = rest_before FROM scan_log WHERE label = 'first'), true,
          'a scan writes no stock, audit, order or shipment change');
SELECT is((SELECT dwell FROM order_flow.station_event WHERE operator = 'tina'), NULL::interval,
          'the operator''s first step has no dwell time');

SELECT pg_temp.scan('two at once', 'sc-1', '6901234500062', 2);
SELECT is((SELECT res - 'remaining' FROM scan_log WHERE label = 'two at once'),
          '{"ok": true, "order_key": "sc-1", "sku": "SKU-B", "warning": null, "message": "OK", "complete": false}',
          'a scan of qty 2 is ok');
SELECT is((SELECT res->'remaining' FROM scan_log WHERE label = 'two at once'),
          '[{"sku": "SKU-A", "name": "Adapter A",      "qty": 2, "scanned": 0, "left": 2},
            {"sku": "SKU-X", "name": "Lithium pack X", "qty": 1, "scanned": 0, "left": 1}]',
          'a fully scanned line leaves the remaining list');
SELECT is((SELECT scanned FROM order_flow.order_line WHERE order_key = 'sc-1' AND sku = 'SKU-B'), 3,
          'the line counts both units');
SELECT ok((SELECT dwell IS NOT NULL AND dwell >= interval '0'
             FROM order_flow.station_event WHERE operator = 'tina' ORDER BY id DESC LIMIT 1),
          'the next step records the dwell since the operator''s previous step');

SELECT pg_temp.scan('packed', 'sc-3', '6901234500079');
SELECT is((SELECT res FROM scan_log WHERE label = 'packed'),
          '{"ok": true, "order_key": "sc-3", "sku": "SKU-C", "warning": null, "message": "OK",
            "remaining": [], "complete": true}',
          'a packed order is scanned too; its last line makes it complete with nothing remaining');

-- ------------------------------------------------------------ warnings
SELECT pg_temp.scan('unknown barcode', 'sc-1', '0000000000000');
SELECT * FROM pg_temp.warned('unknown barcode', 'unknown_barcode', 'sc-1', '0000000000000');
SELECT is((SELECT res->'sku' FROM scan_log WHERE label = 'unknown barcode'), 'null'::jsonb,
          'unknown barcode: no SKU in the answer');
SELECT matches((SELECT res->>'message' FROM scan_log WHERE label = 'unknown barcode'),
               '0000000000000.*unknown', 'unknown barcode: the message names the barcode');

SELECT pg_temp.scan('hostile barcode', 'sc-1', $$' OR 1=1; DROP TABLE orders; --$$);
SELECT * FROM pg_temp.warned('hostile barcode', 'unknown_barcode', 'sc-1', $$' OR 1=1; DROP TABLE orders; --$$);

SELECT pg_temp.scan('another order''s SKU', 'sc-1', '6901234500079');
SELECT * FROM pg_temp.warned('another order''s SKU', 'not_on_order', 'sc-1', '6901234500079');
SELECT is((SELECT scanned FROM order_flow.order_line WHERE order_key = 'sc-2' AND sku = 'SKU-C'), 0,
          'another order''s SKU: the other order''s line is not counted either');
SELECT is((SELECT res->>'sku' FROM scan_log WHERE label = 'another order''s SKU'), 'SKU-C',
          'another order''s SKU: the answer names the SKU to put back');

SELECT pg_temp.scan('over-scan', 'sc-1', '6901234500062');
SELECT * FROM pg_temp.warned('over-scan', 'over_scan', 'sc-1', '6901234500062');
SELECT is((SELECT scanned FROM order_flow.order_line WHERE order_key = 'sc-1' AND sku = 'SKU-B'), 3,
          'over-scan: the line stays at its quantity');

SELECT pg_temp.scan('over-scan by qty', 'sc-2', '6901234500079', 5);
SELECT * FROM pg_temp.warned('over-scan by qty', 'over_scan', 'sc-2', '6901234500079', 5);
SELECT pg_temp.scan('largest qty', 'sc-2', '6901234500079', 10000);
SELECT * FROM pg_temp.warned('largest qty', 'over_scan', 'sc-2', '6901234500079', 10000);

SELECT pg_temp.scan('prohibited', 'sc-1', '6901234500086');
SELECT * FROM pg_temp.warned('prohibited', 'prohibited', 'sc-1', '6901234500086');
SELECT matches((SELECT res->>'message' FROM scan_log WHERE label = 'prohibited'), 'prohibited',
               'prohibited: the message says so');
SELECT is((SELECT res->'remaining' FROM scan_log WHERE label = 'prohibited'),
          '[{"sku": "SKU-A", "name": "Adapter A",      "qty": 2, "scanned": 0, "left": 2},
            {"sku": "SKU-X", "name": "Lithium pack X", "qty": 1, "scanned": 0, "left": 1}]',
          'a warned scan still answers the unchanged remaining list');
SELECT is((SELECT bool_and(res ? 'substitutes') FROM scan_log
            WHERE label IN ('unknown barcode', 'another order''s SKU', 'over-scan', 'prohibited')), false,
          'warnings other than stock short carry no substitutes');

-- ------------------------------------------------------------ stock short
SELECT pg_temp.scan('short', 'sc-1', '6901234500017');
SELECT is((SELECT res - 'remaining' - 'substitutes' - 'message' FROM scan_log WHERE label = 'short'),
          '{"ok": true, "order_key": "sc-1", "sku": "SKU-A", "warning": "stock_short", "complete": false}',
          'stock short: ok (the scan stands) with the warning stock_short');
SELECT is((SELECT res->'substitutes' FROM scan_log WHERE label = 'short'),
          '[{"sku": "SKU-A2", "name": "Adapter A2", "available": 5},
            {"sku": "SKU-A5", "name": "Adapter A5", "available": 2}]',
          'stock short: substitutes in stock, not prohibited, with enough for the line (A3 empty, AP prohibited, A4 too few)');
SELECT matches((SELECT res->>'message' FROM scan_log WHERE label = 'short'), '1.*SKU-A.*2',
               'stock short: the message gives what stock shows and what the order needs');
SELECT is((SELECT scanned FROM order_flow.order_line WHERE order_key = 'sc-1' AND sku = 'SKU-A'), 1,
          'stock short: the scan is counted');
SELECT is((SELECT events->0->>'step' FROM scan_log WHERE label = 'short'), 'scan',
          'stock short: recorded as a scan step, not an error');
SELECT is((SELECT available FROM order_flow.stock WHERE sku = 'SKU-A'), 1,
          'scanning never decrements stock (station_ship does)');

UPDATE order_flow.stock SET available = 0 WHERE sku IN ('SKU-A2', 'SKU-A5');
SELECT pg_temp.scan('short, no substitute', 'sc-1', '6901234500017');
SELECT is((SELECT res->'substitutes' FROM scan_log WHERE label = 'short, no substitute'), '[]'::jsonb,
          'stock short with every substitute gone: an empty substitutes list');
SELECT is((SELECT res->'remaining' FROM scan_log WHERE label = 'short, no substitute'),
          '[{"sku": "SKU-X", "name": "Lithium pack X", "qty": 1, "scanned": 0, "left": 1}]',
          'the short line is fully scanned now');

-- ------------------------------------------------------------ refused input
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-2', '6901234500079', 0)$$, '22023',
                                 'scan qty 0');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_scan('sc-2', '6901234500079', 0)$$), 'order_flow_station_quantity', '... named order_flow_station_quantity');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-2', '6901234500079', -1)$$, '22023',
                                 'scan qty -1');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-2', '6901234500079', 100000)$$, '22023',
                                 'scan qty 100000');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-2', '6901234500079', 10001)$$, '22023',
                                 'scan qty 10001');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-2', '6901234500079', -2147483648)$$, '22023',
                                 'scan qty minimum integer');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan(NULL, '6901234500079', 1)$$, '22004',
                                 'scan with a NULL order key');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-2', NULL, 1)$$, '22004',
                                 'scan with a NULL barcode');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-2', '6901234500079', NULL)$$, '22004',
                                 'scan with a NULL qty');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan(NULL, NULL, NULL)$$, '22004',
                                 'scan with all NULLs');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-nope', '6901234500079')$$, 'P0002',
                                 'scan for an unknown order', '%sc-nope%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_scan('sc-nope', '6901234500079')$$), 'order_flow_unknown_order', '... named order_flow_unknown_order');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-nope', '0000000000000')$$, 'P0002',
                                 'unknown order and unknown barcode: the order is judged first');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('order_flow:config', '6901234500079')$$, 'P0002',
                                 'scan for the configuration''s audit chain (no order)');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-q', '6901234500079')$$, '55000',
                                 'scan for a quoted order', '%quoted%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_scan('sc-q', '6901234500079')$$), 'order_flow_station_not_ready', '... named order_flow_station_not_ready');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-f', '6901234500079')$$, '55000',
                                 'scan for a finance-approved order');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('sc-s', '6901234500079')$$, '55000',
                                 'scan for a shipped order');

-- ------------------------------------------------------------ heat map
SELECT results_eq(
    $$SELECT step, steps::int, errors::int FROM order_flow.station_heatmap WHERE operator = 'tina' ORDER BY step$$,
    $$VALUES ('scan', 12, 7)$$,
    'the heat map counts the operator''s scans, 7 of 12 failed (refused calls left no trace)');

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every audit chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
