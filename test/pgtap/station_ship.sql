-- test/pgtap/station_ship.sql -- the shipping station's ship step and the
-- carrier trace (SPEC 3.6, issue 4): order_flow.station_ship() checks,
-- locks and decrements stock, rates freight (cheapest matching rule, region
-- '*' fallback, weight bands [min, max)), takes a waybill number with the
-- carrier's check digit, moves the order to shipped through the normal
-- transition path and returns the label -- all or nothing.
-- order_flow.logistics_update() records traces and moves shipped ->
-- in_transit -> delivered.  A pluggable stock source (a view over a WMS
-- table) is read and decremented instead of order_flow.stock.
--
-- Every number below is computed by hand from the fixture (see the
-- comments); every refused call is checked for its SQLSTATE and for
-- leaving stock, scanned counts, waybill pools, shipments, order state,
-- audit, notifications and station events exactly as they were.
\ir include/preamble.psql
BEGIN;

SELECT plan(124);

-- ------------------------------------------------------------ helpers
\ir include/station_helpers.psql
\ir include/refusal_name.psql
-- new_order(key, region, 'SKU:qty,...', scanned, state): an order with its lines
CREATE FUNCTION pg_temp.new_order(k text, region text, lines text, scanned boolean DEFAULT true,
                                  state text DEFAULT 'packed') RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO orders (id, status, customer, region, addressee, contact, phone, address, city, postcode,
                        credit_limit)
    VALUES (k, state::order_flow.status, 'Acme', region, 'Ms Li', 'Li Na', '+86 755 0000', '1 Harbour Rd',
            'Shenzhen', '518000', 50000);
    INSERT INTO order_flow.order_line (order_key, sku, qty, scanned)
    SELECT k, split_part(x, ':', 1), split_part(x, ':', 2)::int,
           CASE WHEN scanned THEN split_part(x, ':', 2)::int ELSE 0 END
      FROM unnest(string_to_array(nullif(lines, ''), ',')) x;
END
$f$;
-- labels: what each successful station_ship() returned
CREATE TEMP TABLE labels (order_key text PRIMARY KEY, label jsonb NOT NULL);
CREATE FUNCTION pg_temp.ship(k text, preset text) RETURNS void LANGUAGE sql AS $f$
    INSERT INTO labels SELECT k, order_flow.station_ship(k, preset)
$f$;
-- events(key): the order's audit events as 'action:from>to', in chain order
CREATE FUNCTION pg_temp.events(k text) RETURNS text[] LANGUAGE sql AS $f$
    SELECT coalesce(array_agg(a.action || ':' || coalesce(a.from_state, '-') || '>' || coalesce(a.to_state, '-')
                              ORDER BY a.seq), '{}')
      FROM order_flow.audit_log a WHERE a.order_key = k
$f$;
-- stock_now(): available per SKU as jsonb
CREATE FUNCTION pg_temp.stock_now() RETURNS jsonb LANGUAGE sql AS $f$
    SELECT jsonb_object_agg(sku, available ORDER BY sku) FROM order_flow.stock
$f$;

-- ------------------------------------------------------------ fixtures
CREATE TABLE orders (
    id           text PRIMARY KEY,
    status       order_flow.status NOT NULL DEFAULT 'inquiry',
    customer     text,
    region       text,
    addressee    text,
    contact      text,
    phone        text,
    address      text,
    city         text,
    postcode     text,
    credit_limit numeric);
SELECT order_flow.manage('orders', customer_column => 'customer',
                         attributes => '{region,addressee,contact,phone,address,city,postcode,credit_limit}');

INSERT INTO order_flow.sku (sku, barcode, name, category, weight_kg, prohibited, substitutes, unit_price, unit_cost) VALUES
    ('SKU-A', '6901234500017', 'Adapter A',      'power',    0.5, false, '{}',      12, 7),
    ('SKU-B', '6901234500062', 'Bracket B',      'hardware', 1.0, false, '{}',      20, 11),
    ('SKU-C', '6901234500079', 'Cable C',        'cable',    0.1, false, '{SKU-A}',  3, 1),
    ('SKU-H', '6901234500109', 'Hub H',          'hardware', 10,  false, '{}',     300, 180),
    ('SKU-X', '6901234500086', 'Lithium pack X', 'battery',  0.2, true,  '{}',      30, 18),
    ('SKU-N', '6901234500116', 'No-stock N',     'misc',     0.5, false, '{}',       1, 1),
    ('SKU-Z', '6901234500123', 'Zero Z',         'misc',     0.5, false, '{}',       1, 1);
INSERT INTO order_flow.stock (sku, available) VALUES
    ('SKU-A', 100), ('SKU-B', 100), ('SKU-C', 100), ('SKU-H', 100), ('SKU-X', 100), ('SKU-Z', 0);
-- (SKU-N has no stock row at all)

INSERT INTO order_flow.package_preset (code, name, max_weight_kg, tare_kg) VALUES
    ('BOX-S', 'small box', 5, 0.5),
    ('BOX-L', 'large box', 100, 1);
-- freight = base_fee + per_kg * weight for rules with region = the order's
-- region or '*', and min_kg <= weight < max_kg; the cheapest wins, a tie
-- goes to the region's own rule.
INSERT INTO order_flow.freight_rule (carrier, region, min_kg, max_kg, base_fee, per_kg) VALUES
    ('SF',  'north', 0,  10, 10, 2),
    ('YT',  '*',     0,  10,  8, 2.5),
    ('SF',  '*',     10, 50, 20, 1),
    ('ZT',  'south', 10, 50,  5, 2),
    ('EMS', 'north', 0,  10, 30, 0);
INSERT INTO order_flow.waybill_pool (carrier, prefix, next_no, last_no, digits, check_digit) VALUES
    ('YT',  'YT', 1234567,  1234570,  10, 'mod7'),
    ('SF',  'SF', 47312482, 47312483, 8,  'mod11'),
    ('ZT',  'ZT', 42,       99,       6,  'none'),
    ('EMS', 'EM', 1,        9,        8,  'mod11');

SET LOCAL order_flow.actor = 'tina';
SET LOCAL order_flow.station = 'st-2';

-- ------------------------------------------------------------ check digits (hand-computed)
-- mod11 = UPU S10: weights 8 6 4 2 3 5 9 7 over the 8-digit serial, 11 - sum % 11, 10 -> 0, 11 -> 5
--   47312482: 4*8+7*6+3*4+1*2+2*3+4*5+8*9+2*7 = 200, 200 % 11 = 2, 11 - 2 = 9
--   47312483: ... + 3*7 = 207, 207 % 11 = 9, 11 - 9 = 2
--   00000008: 8*7 = 56, 56 % 11 = 1, 11 - 1 = 10 -> 0
--   00000000: 0, 11 - 0 = 11 -> 5
--   00000009: 63 % 11 = 8 -> 3;  00000010: 1*9 = 9 -> 2;  00000011: 9+7 = 16 % 11 = 5 -> 6;  00000012: 9+14 = 23 % 11 = 1 -> 0
-- mod7 = serial % 7: 1234567 = 7*176366 + 5 -> 5;  1234568 -> 6;  7 -> 0
SELECT results_eq(
    $$SELECT order_flow.waybill_check_digit(m, n)
        FROM (VALUES ('mod11', 47312482), ('mod11', 47312483), ('mod11', 8), ('mod11', 0), ('mod11', 9),
                     ('mod11', 10), ('mod11', 11), ('mod11', 12), ('mod7', 1234567), ('mod7', 1234568),
                     ('mod7', 7), ('none', 1234567)) v(m, n)$$,
    $$VALUES ('9'), ('2'), ('0'), ('5'), ('3'), ('2'), ('6'), ('0'), ('5'), ('6'), ('0'), ('')$$,
    'waybill check digits: mod11 (S10, incl. 10 -> 0 and 11 -> 5), mod7, none');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.waybill_check_digit('luhn', 5)$$, '22023',
                                 'an unknown check digit method');

-- ------------------------------------------------------------ happy path (scanned at the station)
SELECT pg_temp.new_order('sh-1', 'north', 'SKU-A:2,SKU-B:1', scanned => false);
SELECT order_flow.station_scan('sh-1', '6901234500017', 2) IS NOT NULL AS scanned;
SELECT order_flow.station_scan('sh-1', '6901234500062', 1) IS NOT NULL AS scanned;
CREATE TEMP TABLE before_1 AS
    SELECT pg_temp.stock_now() AS stock, (SELECT max(id) FROM order_flow.station_event) AS last_event,
           (SELECT count(*) FROM order_flow.notification) AS notifications,
           (SELECT count(*) FROM order_flow.audit_log) AS audit_rows;
-- weight 2*0.5 + 1*1.0 + tare 0.5 = 2.5 kg; north: SF 10+2*2.5 = 15, YT 8+2.5*2.5 = 14.25, EMS 30
-- -> YT 14.25; waybill YT + 0001234567 + mod7 5
SELECT lives_ok($$SELECT pg_temp.ship('sh-1', 'BOX-S')$$, 'a fully scanned packed order ships');
SELECT is((SELECT label - 'shipped_at' FROM labels WHERE order_key = 'sh-1'),
          '{"waybill": "YT00012345675", "carrier": "YT", "order_key": "sh-1", "customer": "Acme",
            "addressee": {"region": "north", "addressee": "Ms Li", "contact": "Li Na", "phone": "+86 755 0000",
                          "address": "1 Harbour Rd", "city": "Shenzhen", "postcode": "518000"},
            "package": "BOX-S", "weight_kg": 2.5, "freight": 14.25,
            "items": [{"sku": "SKU-A", "name": "Adapter A", "qty": 2},
                      {"sku": "SKU-B", "name": "Bracket B", "qty": 1}]}',
          'the label: waybill, carrier, customer, addressee fields captured on the order, package, weight, freight, items');
SELECT ok((SELECT (label->>'shipped_at')::timestamptz BETWEEN now() AND clock_timestamp() FROM labels
            WHERE order_key = 'sh-1'), 'the label carries the shipping time');
SELECT ok((SELECT NOT (label::text ~* 'credit|price|cost|50000') FROM labels WHERE order_key = 'sh-1'),
          'the label carries no credit limit, price or cost');
SELECT is(pg_temp.stock_now(),
          (SELECT stock || '{"SKU-A": 98, "SKU-B": 99}' FROM before_1),
          'stock decremented by exactly the order''s quantities, nothing else touched');
SELECT results_eq(
    $$SELECT order_key, waybill, carrier, package_preset, weight_kg, freight, operator, station,
             label = (SELECT l.label FROM labels l WHERE l.order_key = 'sh-1')
        FROM order_flow.shipment WHERE order_key = 'sh-1'$$,
    $$VALUES ('sh-1', 'YT00012345675', 'YT', 'BOX-S', 2.5, 14.25, 'tina', 'st-2', true)$$,
    'one shipment row with the label, the operator and the station');
SELECT results_eq($$SELECT next_no FROM order_flow.waybill_pool ORDER BY carrier$$,
                  $$VALUES (1::bigint), (47312482::bigint), (1234568::bigint), (42::bigint)$$,
                  'the YT pool advanced by one, the others did not');
SELECT is(pg_temp.events('sh-1'), '{created:->packed,transition:packed>shipped,ship:shipped>shipped}',
          'the order''s events: created, the transition to shipped, the ship event');
SELECT is((SELECT count(*) FROM order_flow.audit_log) - (SELECT audit_rows FROM before_1), 2::bigint,
          'exactly two audit rows: taking a waybill number is no configuration change');
SELECT results_eq(
    $$SELECT action, actor, details->>'waybill', details->>'carrier', (details->>'freight')::numeric,
             (details->>'weight_kg')::numeric, details->>'package'
        FROM order_flow.audit_log WHERE order_key = 'sh-1' AND seq > 1 ORDER BY seq$$,
    $$VALUES ('transition', 'tina', 'YT00012345675', 'YT', 14.25, 2.5, NULL),
             ('ship',       'tina', 'YT00012345675', 'YT', NULL,  2.5, 'BOX-S')$$,
    'both events name the waybill and carrier, by the operator');
SELECT results_eq($$SELECT o.status::text, t.state::text, t.shipped_at IS NOT NULL
                      FROM orders o JOIN order_flow.tracked_order t ON t.order_key = o.id WHERE o.id = 'sh-1'$$,
                  $$VALUES ('shipped', 'shipped', true)$$,
                  'the order row and its tracking row say shipped, with the shipped stamp');
SELECT results_eq($$SELECT department FROM order_flow.notification WHERE order_key = 'sh-1'$$,
                  $$VALUES ('sales')$$, 'the normal transition path broadcast it (sales notified)');
SELECT results_eq(
    $$SELECT step, operator, station, detail FROM order_flow.station_event
       WHERE id > (SELECT last_event FROM before_1) ORDER BY id$$,
    $$VALUES ('preset', 'tina', 'st-2', '{"package": "BOX-S"}'::jsonb),
             ('ship',   'tina', 'st-2', '{"waybill": "YT00012345675"}'::jsonb)$$,
    'station events: preset chosen, then shipped');
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit('sh-1')), 0, 'the order''s audit chain verifies');

-- ------------------------------------------------------------ from picking; region '*' fallback
SELECT pg_temp.new_order('sh-2', 'east', 'SKU-C:5', state => 'picking');
-- 5*0.1 + 0.5 = 1.0 kg; east has no rule of its own: YT * 8+2.5 = 10.5; YT serial 1234568 -> mod7 6
SELECT lives_ok($$SELECT pg_temp.ship('sh-2', 'BOX-S')$$, 'an order still in picking ships too');
SELECT is((SELECT label - 'shipped_at' - 'addressee' - 'customer' - 'items' FROM labels WHERE order_key = 'sh-2'),
          '{"waybill": "YT00012345686", "carrier": "YT", "order_key": "sh-2", "package": "BOX-S",
            "weight_kg": 1.0, "freight": 10.5}',
          'a region without rules falls back to the ''*'' rule (YT 10.5)');
SELECT is(pg_temp.events('sh-2'), '{created:->picking,transition:picking>shipped,ship:shipped>shipped}',
          'from picking: transition picking -> shipped and the ship event');

-- ------------------------------------------------------------ cheapest rule, ties, bands, mod11
SELECT pg_temp.new_order('sh-3', 'north', 'SKU-B:3,SKU-A:1');
-- 3 + 0.5 + 0.5 = 4.0 kg: SF north 10+8 = 18, YT * 8+10 = 18 (tie), EMS 30 -> SF (region's own rule)
SELECT lives_ok($$SELECT pg_temp.ship('sh-3', 'BOX-S')$$, 'sh-3 ships');
SELECT is((SELECT label - 'shipped_at' - 'addressee' - 'customer' - 'items' FROM labels WHERE order_key = 'sh-3'),
          '{"waybill": "SF473124829", "carrier": "SF", "order_key": "sh-3", "package": "BOX-S",
            "weight_kg": 4.0, "freight": 18}',
          'a tie between the region''s rule and ''*'' goes to the region''s; S10 check digit 9 for 47312482');
SELECT pg_temp.new_order('sh-4', 'north', 'SKU-B:7');
-- 7 + tare 1 = 8.0 kg: SF 10+16 = 26, YT 8+20 = 28, EMS 30 -> SF; 47312483 -> 2 (the pool's last number)
SELECT lives_ok($$SELECT pg_temp.ship('sh-4', 'BOX-L')$$, 'sh-4 ships');
SELECT is((SELECT label - 'shipped_at' - 'addressee' - 'customer' - 'items' FROM labels WHERE order_key = 'sh-4'),
          '{"waybill": "SF473124832", "carrier": "SF", "order_key": "sh-4", "package": "BOX-L",
            "weight_kg": 8.0, "freight": 26}',
          'the region''s rule when it is cheapest (SF 26 < YT 28 < EMS 30); the pool''s last number is used');
SELECT results_eq($$SELECT next_no, last_no FROM order_flow.waybill_pool WHERE carrier = 'SF'$$,
                  $$VALUES (47312484::bigint, 47312483::bigint)$$, 'the SF pool is now used up');

-- ------------------------------------------------------------ exhausted pool
SELECT pg_temp.new_order('sh-5', 'north', 'SKU-B:7');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-5', 'BOX-L')$$, '55000',
                                 'shipping with the cheapest carrier''s pool exhausted', '%SF%exhausted%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-5', 'BOX-L')$$), 'order_flow_station_waybills_exhausted', '... named order_flow_station_waybills_exhausted');
SELECT is((SELECT status::text FROM orders WHERE id = 'sh-5'), 'packed', 'the order stays packed');
-- a new range from the carrier
UPDATE order_flow.waybill_pool SET next_no = 8, last_no = 20 WHERE carrier = 'SF';
SELECT lives_ok($$SELECT pg_temp.ship('sh-5', 'BOX-L')$$, 'with a new range loaded it ships');
SELECT is((SELECT label->>'waybill' FROM labels WHERE order_key = 'sh-5'), 'SF000000080',
          'zero-padded to the pool''s 8 digits; S10 remainder 10 gives check digit 0');

-- ------------------------------------------------------------ weight band edges
SELECT pg_temp.new_order('sh-6', 'north', 'SKU-B:9');
-- 9 + 1 = 10.0 kg: the [0,10) rules no longer apply; [10,50): SF * 20+10 = 30 (ZT is south only)
SELECT lives_ok($$SELECT pg_temp.ship('sh-6', 'BOX-L')$$, 'sh-6 ships');
SELECT is((SELECT label - 'shipped_at' - 'addressee' - 'customer' - 'items' FROM labels WHERE order_key = 'sh-6'),
          '{"waybill": "SF000000093", "carrier": "SF", "order_key": "sh-6", "package": "BOX-L",
            "weight_kg": 10.0, "freight": 30}',
          'exactly 10 kg falls in the band starting at 10, not the one ending at 10');
SELECT pg_temp.new_order('sh-7', 'south', 'SKU-B:9');
-- 10.0 kg south: SF * 30, ZT south 5+20 = 25 -> ZT, numbers without check digit
SELECT lives_ok($$SELECT pg_temp.ship('sh-7', 'BOX-L')$$, 'sh-7 ships');
SELECT is((SELECT label - 'shipped_at' - 'addressee' - 'customer' - 'items' FROM labels WHERE order_key = 'sh-7'),
          '{"waybill": "ZT000042", "carrier": "ZT", "order_key": "sh-7", "package": "BOX-L",
            "weight_kg": 10.0, "freight": 25}',
          'a region rule of the upper band (ZT 25 < SF 30); a pool without check digit');
SELECT pg_temp.new_order('sh-8', 'north', 'SKU-B:8,SKU-C:9');
-- 8 + 0.9 + 1 = 9.9 kg: SF 10+19.8 = 29.8, YT 8+24.75 = 32.75, EMS 30 -> SF 29.8
SELECT lives_ok($$SELECT pg_temp.ship('sh-8', 'BOX-L')$$, 'sh-8 ships');
SELECT is((SELECT label - 'shipped_at' - 'addressee' - 'customer' - 'items' FROM labels WHERE order_key = 'sh-8'),
          '{"waybill": "SF000000102", "carrier": "SF", "order_key": "sh-8", "package": "BOX-L",
            "weight_kg": 9.9, "freight": 29.8}',
          'just under 10 kg stays in the lower band (SF 29.8 beats the flat EMS 30)');
SELECT pg_temp.new_order('sh-9', 'north', 'SKU-H:4,SKU-B:9');
-- 40 + 9 + 1 = 50 kg: no band contains 50 (the last ends at 50)
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-9', 'BOX-L')$$, 'P0002',
                                 'no freight rule for 50 kg (an error, not a zero fee)', '%no freight rule%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-9', 'BOX-L')$$), 'order_flow_station_no_freight_rule', '... named order_flow_station_no_freight_rule');

-- ------------------------------------------------------------ package weight limit
SELECT pg_temp.new_order('sh-10', 'north', 'SKU-A:9');
-- 4.5 + 0.5 = 5.0 kg = BOX-S's limit: SF 20, YT 20.5, EMS 30 -> SF; serial 11 -> 6
SELECT lives_ok($$SELECT pg_temp.ship('sh-10', 'BOX-S')$$, 'exactly the preset''s limit (5.0 kg) ships');
SELECT results_eq($$SELECT label->>'waybill', (label->>'weight_kg')::numeric, (label->>'freight')::numeric
                      FROM labels WHERE order_key = 'sh-10'$$, $$VALUES ('SF000000116', 5.0, 20::numeric)$$,
          'weight at the limit, SF 20');
SELECT pg_temp.new_order('sh-11', 'north', 'SKU-A:9,SKU-C:1');
-- 4.5 + 0.1 + 0.5 = 5.1 kg > 5
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-11', 'BOX-S')$$, '23514',
                                 'overweight for the small box (5.1 > 5 kg)', '%5.1%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-11', 'BOX-S')$$), 'order_flow_station_overweight', '... named order_flow_station_overweight');
-- in the large box: 4.6 + 1 = 5.6 kg: SF 10+11.2 = 21.2, YT 8+14 = 22 -> SF; serial 12 -> 0
SELECT lives_ok($$SELECT pg_temp.ship('sh-11', 'BOX-L')$$, 'the same order ships in the large box');
SELECT results_eq($$SELECT label->>'waybill', (label->>'weight_kg')::numeric, (label->>'freight')::numeric
                      FROM labels WHERE order_key = 'sh-11'$$, $$VALUES ('SF000000120', 5.6, 21.2)$$,
                  'large box: 5.6 kg, SF 21.2');

-- ------------------------------------------------------------ refusals
-- a prohibited SKU can never be scanned; here its line was marked scanned
SELECT pg_temp.new_order('sh-12', 'north', 'SKU-C:1,SKU-X:1');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-12', 'BOX-S')$$, '23514',
                                 'an order with a prohibited item', '%prohibited%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-12', 'BOX-S')$$), 'order_flow_station_prohibited', '... named order_flow_station_prohibited');
SELECT pg_temp.new_order('sh-13', 'north', 'SKU-A:2,SKU-C:1', scanned => false);
SELECT order_flow.station_scan('sh-13', '6901234500017') IS NOT NULL AS scanned;
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-13', 'BOX-S')$$, '55000',
                                 'an order not fully scanned', '%not fully scanned%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-13', 'BOX-S')$$), 'order_flow_station_unscanned', '... named order_flow_station_unscanned');
SELECT is((pg_temp.st_outcome($$SELECT order_flow.station_ship('sh-13', 'BOX-S')$$)).detail,
          'Still to scan: SKU-A (1 of 2 scanned), SKU-C (0 of 1 scanned).',
          'not fully scanned: the DETAIL lists what is left');
SELECT pg_temp.new_order('sh-14', 'north', 'SKU-A:1,SKU-Z:1');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-14', 'BOX-S')$$, '23514',
                                 'stock short (0 of SKU-Z; SKU-A is not decremented either)', '%SKU-Z%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-14', 'BOX-S')$$), 'order_flow_station_stock_short', '... named order_flow_station_stock_short');
SELECT pg_temp.new_order('sh-15', 'north', 'SKU-N:1');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-15', 'BOX-S')$$, '23514',
                                 'a SKU without any stock row', '%SKU-N%');
SELECT pg_temp.new_order('sh-16', 'north', '');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-16', 'BOX-S')$$, '55000',
                                 'an order without lines', '%no lines%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-16', 'BOX-S')$$), 'order_flow_station_no_lines', '... named order_flow_station_no_lines');
SELECT pg_temp.new_order('sh-17', 'north', 'SKU-C:1');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-17', 'BOX-XXL')$$, '22023',
                                 'an unknown package preset', '%BOX-XXL%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-17', 'BOX-XXL')$$), 'order_flow_station_preset', '... named order_flow_station_preset');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-17', '')$$, '22023',
                                 'an empty package preset');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship(NULL, 'BOX-S')$$, '22004', 'ship a NULL order');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-17', NULL)$$, '22004', 'ship with a NULL preset');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-nope', 'BOX-S')$$, 'P0002',
                                 'ship an unknown order', '%sh-nope%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-nope', 'BOX-S')$$), 'order_flow_unknown_order', '... named order_flow_unknown_order');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('order_flow:config', 'BOX-S')$$, 'P0002',
                                 'ship the configuration''s audit chain (no order)');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-1', 'BOX-S')$$, '55000',
                                 'ship an order a second time', '%shipped%');
SELECT is(pg_temp.refusal_name($$SELECT order_flow.station_ship('sh-1', 'BOX-S')$$), 'order_flow_station_not_ready', '... named order_flow_station_not_ready');
SELECT pg_temp.new_order('sh-18', 'north', 'SKU-C:1', state => 'finance_approved');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-18', 'BOX-S')$$, '55000',
                                 'ship a finance-approved order (not picked yet)');
SELECT lives_ok($$SELECT pg_temp.ship('sh-17', 'BOX-S')$$, 'after all those refusals sh-17 still ships');

-- ------------------------------------------------------------ waybill ranges must fit their digits
-- (lpad() would truncate a wider serial: serial 10000 of a 4-digit pool
-- would print as 1000, a number the carrier never assigned)
INSERT INTO order_flow.freight_rule (carrier, region, min_kg, max_kg, base_fee, per_kg) VALUES ('TR', 'trunc', 0, 100, 1, 0);
SELECT * FROM pg_temp.st_refused($$INSERT INTO order_flow.waybill_pool (carrier, prefix, next_no, last_no, digits, check_digit)
                                   VALUES ('TR', 'TR', 9999, 10005, 4, 'none')$$, '23514',
                                 'a waybill range wider than its digits');
SELECT * FROM pg_temp.st_refused($$UPDATE order_flow.waybill_pool SET last_no = 1000000 WHERE carrier = 'ZT'$$, '23514',
                                 'extending a 6-digit range past 999999');
SELECT * FROM pg_temp.st_refused($$UPDATE order_flow.waybill_pool SET digits = 1 WHERE carrier = 'ZT'$$, '23514',
                                 'narrowing the digits below the range');
INSERT INTO order_flow.waybill_pool (carrier, prefix, next_no, last_no, digits, check_digit)
VALUES ('TR', 'TR', 9999, 9999, 4, 'none');
SELECT pg_temp.new_order('sh-t1', 'trunc', 'SKU-C:1');
SELECT pg_temp.new_order('sh-t2', 'trunc', 'SKU-C:1');
SELECT lives_ok($$SELECT pg_temp.ship('sh-t1', 'BOX-S')$$, 'sh-t1 ships with TR');
SELECT is((SELECT label->>'waybill' FROM labels WHERE order_key = 'sh-t1'), 'TR9999',
          'the range''s last 4-digit serial fills the 4 digits');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-t2', 'BOX-S')$$, '55000',
                                 'the next serial would need 5 digits: the pool is exhausted', '%TR%exhausted%');

-- ------------------------------------------------------------ carrier traces
SELECT is(order_flow.logistics_update('YT00012345675', 'picked_up', now() - interval '1 hour', 'Shenzhen hub') > 0,
          true, 'logistics_update returns the trace id');
SELECT results_eq($$SELECT tracking_no, order_key, status, at, location FROM order_flow.logistics_trace$$,
                  $$VALUES ('YT00012345675', 'sh-1', 'picked_up', now() - interval '1 hour', 'Shenzhen hub')$$,
                  'the trace row');
SELECT results_eq(
    $$SELECT action, from_state, to_state, occurred_at, details FROM order_flow.audit_log
       WHERE order_key = 'sh-1' ORDER BY seq DESC LIMIT 1$$,
    $$VALUES ('logistics', NULL::text, NULL::text, now() - interval '1 hour',
              '{"tracking_no": "YT00012345675", "status": "picked_up", "location": "Shenzhen hub"}'::jsonb)$$,
    'an audit logistics event at the carrier''s time');
SELECT is((SELECT status::text FROM orders WHERE id = 'sh-1'), 'shipped', 'a picked_up trace does not move the order');
SELECT lives_ok($$SELECT order_flow.logistics_update('YT00012345675', 'in_transit', now(), 'Guangzhou')$$,
                'an in_transit trace');
SELECT is((SELECT status::text FROM orders WHERE id = 'sh-1'), 'in_transit', 'in_transit moves shipped -> in_transit');
SELECT lives_ok($$SELECT order_flow.logistics_update('YT00012345675', 'in_transit', now(), 'Wuhan')$$,
                'a second in_transit trace');
SELECT lives_ok($$SELECT order_flow.logistics_update('YT00012345675', 'delivered', now())$$, 'a delivered trace');
SELECT is((SELECT status::text FROM orders WHERE id = 'sh-1'), 'delivered', 'delivered moves in_transit -> delivered');
SELECT is(pg_temp.events('sh-1'),
          '{created:->packed,transition:packed>shipped,ship:shipped>shipped,logistics:->-,logistics:->-,'
          'transition:shipped>in_transit,logistics:->-,logistics:->-,transition:in_transit>delivered}',
          'sh-1''s history: every trace logged, each move once');
SELECT lives_ok($$SELECT order_flow.logistics_update('YT00012345686', 'delivered', now())$$,
                'a delivered trace straight after shipping');
SELECT is(pg_temp.events('sh-2'),
          '{created:->picking,transition:picking>shipped,ship:shipped>shipped,logistics:->-,'
          'transition:shipped>in_transit,transition:in_transit>delivered}',
          'delivered from shipped passes through in_transit');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.logistics_update('XX000', 'in_transit', now())$$, 'P0002',
                                 'a trace for an unknown tracking number', '%XX000%');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.logistics_update(NULL, 'in_transit', now())$$, '22004',
                                 'a trace with a NULL tracking number');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.logistics_update('SF473124829', NULL, now())$$, '22004',
                                 'a trace with a NULL status');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.logistics_update('SF473124829', 'in_transit', NULL)$$, '22004',
                                 'a trace with a NULL time');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.logistics_update('SF473124829', 'in_transit', now() + interval '1 day')$$,
                                 '22023', 'a trace time in the future');

-- ------------------------------------------------------------ pluggable stock source
-- the real stock lives in a WMS table with its own column names; a view
-- maps it to (sku, available) and the station is pointed at it
CREATE TABLE wms_items (item_code text PRIMARY KEY, on_hand integer NOT NULL CHECK (on_hand >= 0));
INSERT INTO wms_items VALUES ('SKU-A', 3), ('SKU-C', 1), ('SKU-B', 50);
CREATE VIEW wms_stock AS SELECT item_code AS sku, on_hand AS available FROM wms_items;
UPDATE order_flow.station_config SET value = 'public.wms_stock' WHERE key = 'stock_source';
CREATE TEMP TABLE before_src AS SELECT pg_temp.stock_now() AS stock;
SELECT pg_temp.new_order('sh-20', 'north', 'SKU-A:2,SKU-C:2', scanned => false, state => 'picking');
SELECT is(order_flow.station_scan('sh-20', '6901234500017', 2)->'warning', 'null'::jsonb,
          'view source: SKU-A (3 in the WMS) is not short');
CREATE TEMP TABLE src_scan AS SELECT order_flow.station_scan('sh-20', '6901234500079', 2) AS res;
SELECT is((SELECT res->>'warning' FROM src_scan), 'stock_short',
          'view source: SKU-C is short by the WMS (1), although order_flow.stock has plenty');
SELECT is((SELECT res->'substitutes' FROM src_scan), '[{"sku": "SKU-A", "name": "Adapter A", "available": 3}]',
          'view source: substitutes and their availability come from the WMS too');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('sh-20', 'BOX-S')$$, '23514',
                                 'view source: shipping refused while the WMS is short', '%SKU-C%');
UPDATE wms_items SET on_hand = 5 WHERE item_code = 'SKU-C';
-- 1.0 + 0.2 + 0.5 = 1.7 kg: SF 13.4, YT 12.25 -> YT; sh-17 took 1234569, so 1234570 % 7 = 1
SELECT lives_ok($$SELECT pg_temp.ship('sh-20', 'BOX-S')$$, 'view source: ships once the WMS has the stock');
SELECT results_eq($$SELECT label->>'waybill', (label->>'freight')::numeric FROM labels WHERE order_key = 'sh-20'$$,
                  $$VALUES ('YT00012345701', 12.25)$$, 'view source: label as usual');
SELECT results_eq($$SELECT item_code, on_hand FROM wms_items ORDER BY item_code$$,
                  $$VALUES ('SKU-A', 1), ('SKU-B', 50), ('SKU-C', 3)$$,
                  'view source: the WMS table is decremented through the view');
SELECT is(pg_temp.stock_now(), (SELECT stock FROM before_src), 'view source: order_flow.stock is not touched');
UPDATE order_flow.station_config SET value = 'order_flow.stock' WHERE key = 'stock_source';

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every audit chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
