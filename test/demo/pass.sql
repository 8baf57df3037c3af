/*
 * test/demo/pass.sql -- one part of the day (psql variable :pass = 1, 2, 3),
 * replayed as the ERP does it: set-based UPDATEs of public.orders, each by
 * the person acting (order_flow.actor), on the ERP's own connection role.
 *
 * Included by demo.sql as erp_app (the station shift runs as
 * station_terminal, the carriers' feed as carrier_feed).  Each step moves the orders that
 * replay.day says got further today; incidents happen in the pass of the
 * order's wave and are cleared in pass resolved_in.
 */

\echo '  incidents from earlier today'

SET order_flow.actor = 'wu.commerce';
UPDATE orders SET status = 'quoted'
 WHERE status = 'on_hold'
   AND id IN (SELECT id FROM replay.day WHERE incident = 'price_review' AND resolved_in = :pass);
\echo '    price review released     on_hold -> quoted                 wu.commerce   ' :ROW_COUNT

SELECT replay.answer_info(:pass) AS n \gset
\echo '    information completed     need_info -> contract_signed      sales reps    ' :n

SET order_flow.actor = 'li.warehouse';
UPDATE orders SET status = 'warehouse_confirmed'
 WHERE status = 'stock_shortage'
   AND id IN (SELECT id FROM replay.day WHERE resolved_in = :pass);
\echo '    restock arrived           stock_shortage -> wh_confirmed    li.warehouse  ' :ROW_COUNT

SET order_flow.actor = 'zhao.finance';
UPDATE orders SET status = 'warehouse_confirmed'
 WHERE status = 'on_hold'
   AND id IN (SELECT id FROM replay.day WHERE incident = 'credit_hold' AND resolved_in = :pass);
\echo '    overdue payment received  on_hold -> wh_confirmed (resume)  zhao.finance  ' :ROW_COUNT

BEGIN;
SET LOCAL order_flow.actor = 'gao.sales';
SET LOCAL order_flow.reason = 'Customer could not settle the overdue balance';
UPDATE orders SET status = 'cancelled'
 WHERE status = 'on_hold'
   AND id IN (SELECT id FROM replay.day WHERE incident = 'credit_cancel' AND resolved_in = :pass);
\echo '    credit hold cancelled     on_hold -> cancelled              gao.sales     ' :ROW_COUNT
COMMIT;

SET order_flow.actor = 'qian.logistics';
UPDATE orders SET status = 'shipped'
 WHERE status = 'rework'
   AND id IN (SELECT id FROM replay.day WHERE resolved_in = :pass);
\echo '    replacement shipped       rework -> shipped                 qian.logistics' :ROW_COUNT

\echo '  new business'

-- each regional sales rep keys in the inquiries of the region
SET order_flow.actor = 'wang.sales';
INSERT INTO orders (id, customer, grade, region, urgency, amount, promised_ship_date)
SELECT id, customer, grade, region, urgency, amount, promised_ship_date
  FROM replay.day WHERE wave = :pass AND region = 'east' ORDER BY id;
\set n_east :ROW_COUNT
SET order_flow.actor = 'liu.sales';
INSERT INTO orders (id, customer, grade, region, urgency, amount, promised_ship_date)
SELECT id, customer, grade, region, urgency, amount, promised_ship_date
  FROM replay.day WHERE wave = :pass AND region = 'north' ORDER BY id;
\set n_north :ROW_COUNT
SET order_flow.actor = 'zhang.sales';
INSERT INTO orders (id, customer, grade, region, urgency, amount, promised_ship_date)
SELECT id, customer, grade, region, urgency, amount, promised_ship_date
  FROM replay.day WHERE wave = :pass AND region = 'south' ORDER BY id;
\set n_south :ROW_COUNT
SET order_flow.actor = 'zhou.sales';
INSERT INTO orders (id, customer, grade, region, urgency, amount, promised_ship_date)
SELECT id, customer, grade, region, urgency, amount, promised_ship_date
  FROM replay.day WHERE wave = :pass AND region = 'west' ORDER BY id;
\echo '    inquiries keyed in        (new) -> inquiry                  east' :n_east 'north' :n_north 'south' :n_south 'west' :ROW_COUNT

BEGIN;
SET LOCAL order_flow.actor = 'gao.sales';
SET LOCAL order_flow.reason = 'Customer withdrew the inquiry';
UPDATE orders SET status = 'cancelled'
 WHERE status = 'inquiry'
   AND id IN (SELECT id FROM replay.day WHERE incident = 'withdrawn' AND wave = :pass);
\echo '    inquiry withdrawn         inquiry -> cancelled              gao.sales     ' :ROW_COUNT
COMMIT;

SET order_flow.actor = 'sun.commerce';
UPDATE orders SET status = 'quoted'
 WHERE status = 'inquiry' AND id % 2 = 0
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'quoted');
\set n_sun :ROW_COUNT
SET order_flow.actor = 'wu.commerce';
UPDATE orders SET status = 'quoted'
 WHERE status = 'inquiry' AND id % 2 = 1
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'quoted');
\echo '    quotation sent            inquiry -> quoted                 sun.commerce' :n_sun 'wu.commerce' :ROW_COUNT

BEGIN;
SET LOCAL order_flow.actor = 'wu.commerce';
SET LOCAL order_flow.reason = 'Price below floor: margin review';
UPDATE orders SET status = 'on_hold'
 WHERE status = 'quoted'
   AND id IN (SELECT id FROM replay.day WHERE incident = 'price_review' AND wave = :pass);
\echo '    held for price review     quoted -> on_hold                 wu.commerce   ' :ROW_COUNT
COMMIT;

-- contract signed: broadcast to warehouse, finance and logistics
SET order_flow.actor = 'wang.sales';
UPDATE orders SET status = 'contract_signed'
 WHERE status = 'quoted' AND region = 'east'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'contract_signed');
\set n_east :ROW_COUNT
SET order_flow.actor = 'liu.sales';
UPDATE orders SET status = 'contract_signed'
 WHERE status = 'quoted' AND region = 'north'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'contract_signed');
\set n_north :ROW_COUNT
SET order_flow.actor = 'zhang.sales';
UPDATE orders SET status = 'contract_signed'
 WHERE status = 'quoted' AND region = 'south'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'contract_signed');
\set n_south :ROW_COUNT
SET order_flow.actor = 'zhou.sales';
UPDATE orders SET status = 'contract_signed'
 WHERE status = 'quoted' AND region = 'west'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'contract_signed');
\echo '    contract signed           quoted -> contract_signed         east' :n_east 'north' :n_north 'south' :n_south 'west' :ROW_COUNT

SELECT replay.ask_for_info(:pass) AS n \gset
\echo '    more information needed   contract_signed -> need_info      logistics/finance' :n

BEGIN;
SET LOCAL order_flow.actor = 'li.warehouse';
SET LOCAL order_flow.reason = 'M10 expansion anchors short; inbound PO due this afternoon';
UPDATE orders SET status = 'stock_shortage'
 WHERE status = 'contract_signed'
   AND id IN (SELECT id FROM replay.day WHERE incident = 'stock_shortage' AND wave = :pass);
\echo '    stock short               contract_signed -> stock_shortage li.warehouse  ' :ROW_COUNT
COMMIT;

-- warehouse, finance and logistics leads answer the contract-signed broadcast
SELECT format('    task lists answered       %s acknowledged, %s answered "need more information"',
              acknowledged, asked) AS line
  FROM replay.answer_broadcast(:pass) \gset
\echo :line

SET order_flow.actor = 'li.warehouse';
UPDATE orders SET status = 'warehouse_confirmed'
 WHERE status = 'contract_signed'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'warehouse_confirmed');
\echo '    stock confirmed           contract_signed -> wh_confirmed   li.warehouse  ' :ROW_COUNT

BEGIN;
SET LOCAL order_flow.actor = 'zhao.finance';
SET LOCAL order_flow.reason = 'Credit limit exceeded: overdue invoice';
UPDATE orders SET status = 'on_hold'
 WHERE status = 'warehouse_confirmed'
   AND id IN (SELECT id FROM replay.day
               WHERE incident IN ('credit_hold', 'credit_cancel') AND wave = :pass);
\echo '    credit hold               wh_confirmed -> on_hold           zhao.finance  ' :ROW_COUNT
COMMIT;

SET order_flow.actor = 'zhao.finance';
UPDATE orders SET status = 'finance_approved'
 WHERE status = 'warehouse_confirmed'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'finance_approved');
\echo '    credit approved           wh_confirmed -> finance_approved  zhao.finance  ' :ROW_COUNT

-- urgent orders go straight to picking; the rest are scheduled first
SET order_flow.actor = 'ma.warehouse';
UPDATE orders SET status = 'picking'
 WHERE status = 'finance_approved' AND urgency IN ('urgent', 'critical')
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'picking');
\echo '    urgent: straight to pick  finance_approved -> picking       ma.warehouse  ' :ROW_COUNT

SET order_flow.actor = 'qian.logistics';
UPDATE orders SET status = 'scheduled'
 WHERE status = 'finance_approved' AND urgency = 'normal'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'scheduled');
\echo '    shipment scheduled        finance_approved -> scheduled     qian.logistics' :ROW_COUNT

SET order_flow.actor = 'ma.warehouse';
UPDATE orders SET status = 'picking'
 WHERE status = 'scheduled'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'picking');
\echo '    picking started           scheduled -> picking              ma.warehouse  ' :ROW_COUNT

-- urgent orders: scanned, packed and shipped at the stations
SET ROLE station_terminal;
SELECT format('    shipped at the stations   picking -> shipped                %s orders (%s scans, %s warnings, '
              '%s cartons too small, %s blocked by stock)',
              shipped, scans, warnings, cartons_refused, blocked) AS line
  FROM replay.station_shift() \gset
\echo :line
SET ROLE erp_app;

SET order_flow.actor = 'temp.pack01';
UPDATE orders SET status = 'packed'
 WHERE status = 'picking' AND id % 2 = 0
   AND id NOT IN (SELECT id FROM replay.station_blocked)
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'packed');
\set n_p1 :ROW_COUNT
SET order_flow.actor = 'temp.pack02';
UPDATE orders SET status = 'packed'
 WHERE status = 'picking' AND id % 2 = 1
   AND id NOT IN (SELECT id FROM replay.station_blocked)
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'packed');
\echo '    packed                    picking -> packed                 temp.pack01' :n_p1 'temp.pack02' :ROW_COUNT

-- shipped: broadcast to sales
SET order_flow.actor = 'qian.logistics';
UPDATE orders SET status = 'shipped'
 WHERE status = 'packed'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'shipped');
\echo '    handed to carrier         packed -> shipped                 qian.logistics' :ROW_COUNT

-- the carriers report their first scans (and some deliveries) of the
-- station shipments; their feed moves those orders along
SET ROLE carrier_feed;
SET order_flow.actor = 'carrier.feed';
SELECT count(order_flow.logistics_update(waybill, trace, now(), location)) AS n
  FROM replay.carrier_manifest \gset
\echo '    carrier traces            shipped -> in_transit/delivered   carrier.feed  ' :n
SET ROLE erp_app;
SET order_flow.actor = 'qian.logistics';

UPDATE orders SET status = 'in_transit'
 WHERE status = 'shipped'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'in_transit');
\echo '    carrier first scan        shipped -> in_transit             qian.logistics' :ROW_COUNT

UPDATE orders SET status = 'delivered'
 WHERE status = 'in_transit'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'delivered');
\echo '    delivered                 in_transit -> delivered           qian.logistics' :ROW_COUNT

BEGIN;
SET LOCAL order_flow.actor = 'he.service';
SET LOCAL order_flow.reason = 'Two cartons crushed in transit; customer refused them';
UPDATE orders SET status = 'rework'
 WHERE status = 'delivered'
   AND id IN (SELECT id FROM replay.day WHERE incident = 'rework' AND greatest(wave, 1) = :pass);
\echo '    delivery rejected         delivered -> rework               he.service    ' :ROW_COUNT
COMMIT;

SET order_flow.actor = 'he.service';
UPDATE orders SET status = 'accepted'
 WHERE status = 'delivered'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'accepted');
\echo '    accepted by customer      delivered -> accepted             he.service    ' :ROW_COUNT

SET order_flow.actor = 'zhao.finance';
UPDATE orders SET status = 'invoiced'
 WHERE status = 'accepted'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'invoiced');
\echo '    invoiced                  accepted -> invoiced              zhao.finance  ' :ROW_COUNT

UPDATE orders SET status = 'paid'
 WHERE status = 'invoiced'
   AND id IN (SELECT id FROM replay.day WHERE reach >= 'paid');
\echo '    payment received          invoiced -> paid                  zhao.finance  ' :ROW_COUNT

SELECT format('    task lists answered       %s acknowledged, %s answered "need more information"',
              acknowledged, asked) AS line
  FROM replay.answer_broadcast(:pass) \gset
\echo :line
