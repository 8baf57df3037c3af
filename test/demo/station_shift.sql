/*
 * station_shift.sql -- one order at a packing station, step by step, as a
 * temporary worker sees it: scan, a shortage with a substitute suggested,
 * a prohibited item refused, choose a carton, ship, print the label.
 */
\echo
\echo '15:30  close-up of one packing station (temp.pack02 at station P-2)'
INSERT INTO order_flow.sku (sku, barcode, name, category, weight_kg, prohibited, unit_price, unit_cost)
VALUES ('SPR-AERO', '6901234500134', 'Spray paint aerosol, 12 cans', 'paint', 4.8, true, 88, 51);
INSERT INTO order_flow.stock (sku, available) VALUES ('SPR-AERO', 200);
UPDATE order_flow.stock SET available = 1 WHERE sku = 'ANC-M10';
SELECT max(id) + 1 AS close_up FROM orders \gset
INSERT INTO orders (id, customer, grade, region, urgency, amount, promised_ship_date, status)
SELECT :close_up, code, grade, 'east', 'urgent', 612.00, current_date, 'picking'
  FROM customers ORDER BY code LIMIT 1;
INSERT INTO order_flow.order_line (order_key, sku, qty, unit_price) VALUES
    (:'close_up', 'ANC-M10', 2, 96), (:'close_up', 'GLV-NIT', 3, 54), (:'close_up', 'SPR-AERO', 1, 88);
SET ROLE station_terminal;
SET order_flow.actor = 'temp.pack02';
SET order_flow.station = 'P-2';
\echo '   scan GLV-NIT x3:'
SELECT r->>'message' AS says, r->'remaining' AS still_to_scan
  FROM order_flow.station_scan(:'close_up', '6901234500080', 3) r;
\echo '   scan the spray paint the customer ordered (aerosols may not go by courier):'
SELECT r->>'warning' AS warning, r->>'message' AS says
  FROM order_flow.station_scan(:'close_up', '6901234500134') r;
\echo '   scan ANC-M10 x2 (the WMS shows only 1 left):'
SELECT r->>'warning' AS warning, r->>'message' AS says, r->'substitutes' AS suggested_substitutes
  FROM order_flow.station_scan(:'close_up', '6901234500011', 2) r;
\echo '   press ship anyway -- refused, nothing changes:'
DO $$
BEGIN
    PERFORM order_flow.station_ship(current_setting('demo.close_up'), 'S');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'refused (%): %', SQLSTATE, SQLERRM;
END
$$;
RESET ROLE;
\echo '   the supervisor drops the aerosol (it goes by freight) and swaps the anchors for the'
\echo '   suggested substitute; the worker rescans:'
DELETE FROM order_flow.order_line WHERE order_key = :'close_up' AND sku = 'SPR-AERO';
UPDATE order_flow.order_line SET sku = 'ANC-M10-Z', scanned = 0
 WHERE order_key = :'close_up' AND sku = 'ANC-M10';
UPDATE order_flow.stock SET available = 5000 WHERE sku = 'ANC-M10';
SET ROLE station_terminal;
SELECT r->>'message' AS says, r->>'complete' AS complete
  FROM order_flow.station_scan(:'close_up', '6901234500028', 2) r;
\echo '   a small carton first (too small for the weight), then a medium one; the label:'
DO $$
BEGIN
    PERFORM order_flow.station_ship(current_setting('demo.close_up'), 'S');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'refused (%): %', SQLSTATE, SQLERRM;
END
$$;
SELECT jsonb_pretty(order_flow.station_ship(:'close_up', 'M') - 'shipped_at') AS label;
RESET ROLE;
RESET order_flow.actor;
RESET order_flow.station;
