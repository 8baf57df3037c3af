-- test/bench/station/world.sql -- the warehouse both variants ship from,
-- identical in both databases: 2,000 SKUs with ample stock, one package
-- preset, freight rules for 4 carriers over 4 regions (so orders spread
-- over the carriers' waybill pools: none, mod7 and mod11 check digits), and
-- packed, fully scanned 20-line orders (20 distinct SKUs, 1-3 units each,
-- about 20 kg).  Order keys (text) by purpose:
--     1 .. :lat                              the latency run (1 station)
--     10,000,000 + 1,000,000 * c + 1 .. :warm   warm-up, station c = 0, 1
--     20,000,000 + 1,000,000 * c + 1 .. :thr    the throughput run, station c
-- The pgbench scripts compute the same keys from :base, :client_id and a
-- per-client counter.
--
-- psql variables: schema (where the station tables live: order_flow or
-- public), lat, warm, thr.  The order table is public.orders (created by
-- the caller; managed by order_flow or not).

INSERT INTO :"schema".sku (sku, barcode, name, category, weight_kg, prohibited, substitutes, unit_price, unit_cost)
SELECT format('S%s', lpad(i::text, 5, '0')), format('69%s', lpad(i::text, 11, '0')), format('Article %s', i),
       'cat' || (i % 10), 0.05 + (i % 20) * 0.05, false,
       ARRAY[format('S%s', lpad((i % 2000 + 1)::text, 5, '0'))], 10 + i % 50, 5 + i % 30
  FROM generate_series(1, 2000) i;
INSERT INTO :"schema".stock (sku, available) SELECT sku, 1000000000 FROM :"schema".sku;

INSERT INTO :"schema".package_preset (code, name, max_weight_kg, tare_kg) VALUES ('BOX-M', 'medium box', 200, 0.5);
INSERT INTO :"schema".freight_rule (carrier, region, min_kg, max_kg, base_fee, per_kg) VALUES
    ('SF',  'north', 0,  10,  10, 2),
    ('SF',  '*',     10, 200, 12, 1.2),
    ('YT',  '*',     0,  200,  8, 1.5),
    ('ZT',  'south', 0,  200,  6, 1.4),
    ('EMS', 'east',  5,  200, 15, 0.9),
    ('EMS', '*',     0,  200, 40, 0);
INSERT INTO :"schema".waybill_pool (carrier, prefix, next_no, last_no, digits, check_digit) VALUES
    ('SF',  'SF', 1, 99999999,   8,  'mod11'),
    ('YT',  'YT', 1, 9999999999, 10, 'mod7'),
    ('ZT',  'ZT', 1, 999999999,  9,  'none'),
    ('EMS', 'EE', 1, 99999999,   8,  'mod11');

CREATE TEMP TABLE bench_keys AS
SELECT g AS id FROM generate_series(1, :lat) g
UNION ALL
SELECT 10000000 + 1000000 * c + g FROM generate_series(0, 1) c, generate_series(1, :warm) g
UNION ALL
SELECT 20000000 + 1000000 * c + g FROM generate_series(0, 1) c, generate_series(1, :thr) g;

INSERT INTO public.orders (id, status, customer, region, addressee, phone, city, postcode)
SELECT id::text, 'packed', 'C' || (id % 997), (ARRAY['north', 'south', 'east', 'west'])[id % 4 + 1],
       'Addressee ' || id, '+86 755 ' || id, 'Shenzhen', '518000'
  FROM bench_keys;
INSERT INTO :"schema".order_line (order_key, sku, qty, scanned, unit_price)
SELECT k.id::text, format('S%s', lpad(((k.id * 37 + j * 101) % 2000 + 1)::text, 5, '0')),
       1 + (k.id + j) % 3, 1 + (k.id + j) % 3, 10
  FROM bench_keys k, generate_series(0, 19) j;
