-- test/bench/station/ship.sql -- variant "order_flow": one call of
-- order_flow.station_ship() per transaction, on the station's next packed,
-- fully scanned order.  pgbench -D n=0 -D base=B: client c ships orders
-- B + 1,000,000 * c + 1, + 2, ... (see world.sql).
\set n :n + 1
\set id :base + 1000000 * :client_id + :n
SELECT order_flow.station_ship(:id::text, 'BOX-M');
