-- test/bench/station/plain_ship.sql -- variant "plain SQL": the checks and
-- writes of station_ship() sent by the client statement by statement in
-- one transaction, each decision taken by the client (\if):
--   lock the order, check its state and the operator's department; every
--   line scanned; nothing prohibited; weight within the preset; lock the
--   stock rows in SKU order and check them; decrement; cheapest freight
--   rule for region and weight band; take a waybill number (UPDATE ...
--   RETURNING, with the check digit); insert the shipment with its label;
--   move the order to shipped; two audit rows and two station events.
-- Not done here (order_flow does it): the audit hash chain, the tracking
-- row, the transition rules, the notification + outbox + pg_notify of the
-- packed -> shipped edge, the dwell times of the station events.
-- pgbench -M prepared -D n=0 -D base=B, keys as in ship.sql.
\set n :n + 1
\set id :base + 1000000 * :client_id + :n
BEGIN;
SELECT status IN ('picking', 'packed') AS ok_state, status AS from_state, region
  FROM orders WHERE id = :id::text FOR UPDATE \gset
SELECT EXISTS (SELECT 1 FROM member WHERE actor = current_user AND department IN ('warehouse', 'logistics')) AS may \gset
SELECT count(*) AS lines, count(*) FILTER (WHERE scanned < qty) AS unscanned
  FROM order_line WHERE order_key = :id::text \gset
SELECT count(*) AS prohibited
  FROM order_line l JOIN sku s ON s.sku = l.sku WHERE l.order_key = :id::text AND s.prohibited \gset
SELECT sum(l.qty * s.weight_kg) + p.tare_kg AS weight, sum(l.qty * s.weight_kg) + p.tare_kg <= p.max_weight_kg AS fits
  FROM order_line l JOIN sku s ON s.sku = l.sku, package_preset p
 WHERE l.order_key = :id::text AND p.code = 'BOX-M'
 GROUP BY p.tare_kg, p.max_weight_kg \gset
WITH locked AS (SELECT s.sku, s.available, l.qty FROM stock s JOIN order_line l ON l.sku = s.sku
                 WHERE l.order_key = :id::text ORDER BY s.sku FOR UPDATE OF s)
SELECT count(*) AS locked, count(*) FILTER (WHERE available < qty) AS short FROM locked \gset
\if :ok_state AND :may AND :lines > 0 AND :unscanned = 0 AND :prohibited = 0 AND :fits AND :short = 0 AND :locked = :lines
UPDATE stock s SET available = s.available - l.qty
  FROM order_line l WHERE l.order_key = :id::text AND l.sku = s.sku;
SELECT carrier, round(base_fee + per_kg * :weight::numeric, 2) AS fee
  FROM freight_rule
 WHERE (region = :region::text OR region = '*') AND :weight::numeric >= min_kg AND :weight::numeric < max_kg
 ORDER BY base_fee + per_kg * :weight::numeric, (region = '*'), carrier LIMIT 1 \gset
UPDATE waybill_pool w SET next_no = w.next_no + 1
 WHERE w.carrier = :carrier::text AND w.next_no <= w.last_no
RETURNING w.prefix || lpad((w.next_no - 1)::text, w.digits, '0') ||
          CASE w.check_digit
              WHEN 'none' THEN ''
              WHEN 'mod7' THEN ((w.next_no - 1) % 7)::text
              ELSE (SELECT CASE 11 - t % 11 WHEN 10 THEN '0' WHEN 11 THEN '5' ELSE (11 - t % 11)::text END
                      FROM (SELECT sum(substr(lpad(((w.next_no - 1) % 100000000)::text, 8, '0'), i, 1)::int
                                       * (ARRAY[8, 6, 4, 2, 3, 5, 9, 7])[i]) AS t
                              FROM generate_series(1, 8) i) x)
          END AS waybill \gset
INSERT INTO shipment (order_key, waybill, carrier, package_preset, weight_kg, freight, label, operator, station)
SELECT o.id, :waybill::text, :carrier::text, 'BOX-M', :weight::numeric, :fee::numeric,
       jsonb_build_object('waybill', :waybill::text, 'carrier', :carrier::text, 'order_key', o.id,
                          'customer', o.customer,
                          'addressee', jsonb_build_object('region', o.region, 'addressee', o.addressee,
                                                          'phone', o.phone, 'city', o.city, 'postcode', o.postcode),
                          'package', 'BOX-M', 'weight_kg', :weight::numeric, 'freight', :fee::numeric,
                          'items', (SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'name', s.name, 'qty', l.qty)
                                                     ORDER BY l.sku)
                                      FROM order_line l JOIN sku s ON s.sku = l.sku WHERE l.order_key = o.id),
                          'shipped_at', clock_timestamp()),
       current_user, 'bench'
  FROM orders o WHERE o.id = :id::text;
UPDATE orders SET status = 'shipped' WHERE id = :id::text;
INSERT INTO order_audit (order_key, action, from_state, to_state, actor, details) VALUES
    (:id::text, 'transition', :from_state::text, 'shipped', current_user,
     jsonb_build_object('waybill', :waybill::text, 'carrier', :carrier::text, 'freight', :fee::numeric,
                        'weight_kg', :weight::numeric)),
    (:id::text, 'ship', 'shipped', 'shipped', current_user,
     jsonb_build_object('waybill', :waybill::text, 'carrier', :carrier::text, 'package', 'BOX-M',
                        'weight_kg', :weight::numeric));
INSERT INTO station_event (order_key, operator, station, step, detail) VALUES
    (:id::text, current_user, 'bench', 'preset', '{"package": "BOX-M"}'),
    (:id::text, current_user, 'bench', 'ship', jsonb_build_object('waybill', :waybill::text));
COMMIT;
\else
ROLLBACK;
\endif
