/*
 * test/demo/setup.sql -- the wholesaler before the day starts.
 *
 * Owns: the ERP side (customers, orders, the application role erp_app and
 * the WeCom relay role), the people of the six departments in
 * order_flow.member, yesterday's open orders adopted by manage(), and
 * replay.day: what happened to each of today's orders, which the passes
 * (pass.sql) replay as the ERP would -- by plain UPDATEs of orders.
 *
 * Runs as the database owner (a superuser).  Deterministic: setseed().
 */

/* ---------------------------------------------------------------- ERP */

CREATE TABLE public.customers (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    grade       char(1) NOT NULL CHECK (grade IN ('A', 'B', 'C')),
    region      text NOT NULL CHECK (region IN ('east', 'north', 'south', 'west'))
);

CREATE TABLE public.orders (
    id                  integer PRIMARY KEY,
    customer            text NOT NULL REFERENCES public.customers,
    grade               char(1) NOT NULL,
    region              text NOT NULL,
    urgency             text NOT NULL CHECK (urgency IN ('normal', 'urgent', 'critical')),
    amount              numeric(12, 2) NOT NULL,
    promised_ship_date  date NOT NULL,
    status              text NOT NULL DEFAULT 'inquiry',
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_status_idx ON public.orders (status);

SELECT setseed(0.1125) AS seeded \gset

-- 3,200 trade customers: 15 % grade A, 35 % B, 50 % C; east 35 %, south
-- 25 %, north and west 20 % each -- drawn as the history generator
-- (test/gen/generator.sql) draws them, so the imported history fits.
INSERT INTO public.customers (code, name, grade, region)
SELECT format('C%s', lpad(n::text, 4, '0')),
       format('%s %s %s',
              (ARRAY['Huadong', 'Beifang', 'Nanyue', 'Xishu', 'Jinqiao', 'Hengtai', 'Yongxin', 'Dachang'])[1 + n % 8],
              (ARRAY['Fasteners', 'Tools', 'Building Supply', 'Hardware', 'Electrical', 'Plumbing'])[1 + n % 6],
              n),
       of_gen.customer_class(n),
       of_gen.customer_region(n)
  FROM generate_series(1, 3200) n;

/* ----------------------------------------------------- shipping station */

-- Articles, stock (the default stock source, standing in for the WMS),
-- packaging presets, freight rules and the carriers' waybill number ranges.
INSERT INTO order_flow.sku (sku, barcode, name, category, weight_kg, substitutes, unit_price, unit_cost) VALUES
    ('ANC-M10',   '6901234500011', 'M10 expansion anchor, box of 50',   'fasteners',  2.40, '{ANC-M10-Z}', 96, 61),
    ('ANC-M10-Z', '6901234500028', 'M10 zinc anchor, box of 50',        'fasteners',  2.50, '{}',          99, 66),
    ('BLT-M8',    '6901234500035', 'M8 hex bolt, box of 100',           'fasteners',  1.60, '{}',          42, 25),
    ('SCR-4X40',  '6901234500042', 'Wood screw 4x40, box of 500',       'fasteners',  1.10, '{}',          35, 19),
    ('HSS-SET',   '6901234500059', 'HSS drill bit set, 19 pieces',      'tools',      0.90, '{HSS-SET-B}', 128, 74),
    ('HSS-SET-B', '6901234500066', 'HSS drill bit set, 25 pieces',      'tools',      1.05, '{}',          149, 88),
    ('DRL-18V',   '6901234500073', 'Cordless drill 18 V',               'tools',      1.90, '{}',          459, 301),
    ('GLV-NIT',   '6901234500080', 'Nitrile work gloves, 12 pairs',     'safety',     0.60, '{}',          54, 28),
    ('TAP-PTFE',  '6901234500097', 'PTFE thread tape, 10 rolls',        'plumbing',   0.20, '{}',          18, 7),
    ('VLV-DN20',  '6901234500103', 'Ball valve DN20 brass',             'plumbing',   0.55, '{}',          67, 39),
    ('CBL-2.5',   '6901234500110', 'Cable 2.5 mm2, 100 m reel',         'electrical', 2.90, '{}',          238, 170),
    ('SWT-2G',    '6901234500127', 'Wall switch, 2 gang, box of 10',    'electrical', 0.80, '{}',          115, 64);
INSERT INTO order_flow.stock (sku, available)
SELECT sku, CASE sku WHEN 'HSS-SET' THEN 60 ELSE 5000 END FROM order_flow.sku;

INSERT INTO order_flow.package_preset (code, name, max_weight_kg, tare_kg) VALUES
    ('S', 'Small carton 30x20x15', 5, 0.2),
    ('M', 'Medium carton 40x30x30', 15, 0.5),
    ('L', 'Large carton 60x40x40', 30, 0.9);

INSERT INTO order_flow.freight_rule (carrier, region, min_kg, max_kg, base_fee, per_kg) VALUES
    ('SF',  '*',     0, 30, 14, 2.2),
    ('ZTO', 'east',  0, 30,  8, 1.2),
    ('ZTO', 'south', 0, 30,  9, 1.3),
    ('YTO', 'north', 0, 30,  9, 1.4),
    ('YTO', 'west',  0, 30, 11, 1.6);

INSERT INTO order_flow.waybill_pool (carrier, prefix, next_no, last_no, digits, check_digit) VALUES
    ('SF',  'SF', 30500001, 30599999, 10, 'mod11'),
    ('ZTO', 'ZT', 75000001, 75999999, 10, 'mod7'),
    ('YTO', 'YT', 88000001, 88999999, 10, 'none');

/* ------------------------------------------------------------- people */

-- The six departments ship with the extension; these are their people.
-- Level 1 answers the broadcast, level 2 (manager) and 3 (director) are
-- the escalation chain.
INSERT INTO order_flow.member (actor, department, level) VALUES
    ('wang.sales',      'sales',       1),   -- east
    ('liu.sales',       'sales',       1),   -- north
    ('zhang.sales',     'sales',       1),   -- south
    ('zhou.sales',      'sales',       1),   -- west
    ('gao.sales',       'sales',       2),
    ('sun.commerce',    'commerce',    1),
    ('wu.commerce',     'commerce',    1),
    ('li.warehouse',    'warehouse',   1),
    ('ma.warehouse',    'warehouse',   1),
    ('temp.pack01',     'warehouse',   1),   -- temporary packing staff
    ('temp.pack02',     'warehouse',   1),
    ('deng.warehouse',  'warehouse',   2),
    ('zhao.finance',    'finance',     1),
    ('qin.finance',     'finance',     2),
    ('qian.logistics',  'logistics',   1),
    ('xu.logistics',    'logistics',   2),
    ('carrier.feed',    'logistics',   1),   -- the carriers' tracking feed
    ('he.service',      'after_sales', 1),
    ('huang.director',  'sales',       3),
    ('huang.director',  'warehouse',   3),
    ('huang.director',  'finance',     3),
    ('huang.director',  'logistics',   3);

/* -------------------------------------------------------------- roles */

-- The ERP connects as erp_app (pooled connections; the person acting is
-- set per step in order_flow.actor).  Not a superuser and not an
-- order_flow administrator, so every right is checked.  The relay that
-- forwards broadcast messages to WeCom drains the outbox as wecom_relay;
-- the shipping stations log in as station_terminal, the carriers' tracking
-- feed as carrier_feed.
-- (Roles belong to the cluster: a second run finds them.)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'erp_app') THEN
        CREATE ROLE erp_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wecom_relay') THEN
        CREATE ROLE wecom_relay NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'station_terminal') THEN
        CREATE ROLE station_terminal NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carrier_feed') THEN
        CREATE ROLE carrier_feed NOLOGIN;
    END IF;
END
$$;
GRANT SELECT, INSERT, UPDATE ON public.orders TO erp_app;
GRANT SELECT ON public.customers TO erp_app;

GRANT EXECUTE ON FUNCTION order_flow.outbox_claim(integer, interval), order_flow.outbox_done(bigint[])
    TO wecom_relay;
GRANT SELECT ON order_flow.outbox TO wecom_relay;    -- for the count the demo prints

-- Department staff answer the broadcast from the ERP's task list.
GRANT SELECT ON order_flow.pending_acks TO erp_app;
GRANT EXECUTE ON FUNCTION order_flow.acknowledge(bigint, text, jsonb) TO erp_app;

-- Station operators may scan and ship, nothing else: no costs, no margins,
-- no customer history.
SELECT order_flow.grant_station_operator('station_terminal') AS granted \gset
GRANT EXECUTE ON FUNCTION order_flow.logistics_update(text, text, timestamptz, text) TO carrier_feed;

/* ------------------------------------------------------ configuration */

-- Operations wants exceptions chased sooner than the shipped 48 hours:
-- configuration is data, and the change is itself audited.
UPDATE order_flow.state SET max_dwell = interval '24 hours'
 WHERE workflow = 'b2b_order' AND state IN ('need_info', 'stock_shortage', 'on_hold');
-- ... and gives the slow states their real rhythm: carriers take up to four
-- days, customers a few days to accept, payment terms are 30 days and paid
-- orders are archived at the monthly close.  A visit beyond max_dwell is
-- what the delay reports count as a delay.
UPDATE order_flow.state
   SET max_dwell = CASE state WHEN 'in_transit' THEN interval '96 hours'
                              WHEN 'invoiced' THEN interval '30 days'
                              WHEN 'paid' THEN interval '31 days'
                              ELSE interval '72 hours' END
 WHERE workflow = 'b2b_order' AND state IN ('in_transit', 'delivered', 'accepted', 'invoiced', 'paid');

/* ------------------------------------------------------ yesterday's orders */

-- 80 orders from yesterday are still open in the ERP when order_flow is
-- attached: manage() adopts them in their current state (no events).
INSERT INTO public.orders (id, customer, grade, region, urgency, amount, promised_ship_date, status, created_at)
SELECT 59420 + n, c.code, c.grade, c.region, 'normal',
       round((800 + random() * 24000)::numeric, 2),
       current_date - 1,
       CASE WHEN n <= 10 THEN 'packed' WHEN n <= 30 THEN 'shipped'
            WHEN n <= 55 THEN 'in_transit' ELSE 'delivered' END,
       now() - interval '1 day'
  FROM generate_series(1, 80) n
  JOIN public.customers c ON c.code = format('C%s', lpad((1 + (n * 37) % 3200)::text, 4, '0'));

SELECT order_flow.manage('public.orders',
                         customer_column => 'customer',
                         attributes => '{grade,region,urgency,amount,promised_ship_date}') AS managed
\gset

/* ------------------------------------------------------------ the day */

CREATE SCHEMA replay;
GRANT USAGE ON SCHEMA replay TO erp_app;

-- Today's 920 orders, and what happened to each: the wave it arrived in
-- (1 morning, 2 midday, 3 afternoon; 0 = carried over), how far along the
-- main path it got by the evening, the incident it met on the way, and the
-- pass in which the incident was cleared (NULL: still open tonight).
CREATE TABLE replay.day (
    id                  integer PRIMARY KEY,
    customer            text NOT NULL,
    grade               char(1) NOT NULL,
    region              text NOT NULL,
    urgency             text NOT NULL,
    amount              numeric(12, 2) NOT NULL,
    promised_ship_date  date NOT NULL,
    wave                integer NOT NULL,
    reach               order_flow.status NOT NULL,
    incident            text,
    resolved_in         integer
);
GRANT SELECT ON replay.day TO erp_app;

-- Attempts the ERP made that order_flow refused (filled by mistakes.sql).
CREATE TABLE replay.refusal (
    n           serial PRIMARY KEY,
    actor       text NOT NULL,
    attempt     text NOT NULL,
    sqlstate    text NOT NULL,
    message     text NOT NULL,
    detail      text
);
GRANT SELECT, INSERT ON replay.refusal TO erp_app;
GRANT USAGE ON SEQUENCE replay.refusal_n_seq TO erp_app;

WITH incoming AS (
    SELECT 60000 + n AS id,
           CASE WHEN n <= 500 THEN 1 WHEN n <= 770 THEN 2 ELSE 3 END AS wave,
           -- large customers order more often
           1 + floor(power(random(), 1.4) * 3200)::integer AS cust,
           random() AS r_urgency, random() AS r_amount, random() AS r_reach,
           random() AS r_incident, random() AS r_resolve
      FROM generate_series(1, 920) n
), shaped AS (
    SELECT i.id, c.code AS customer, c.grade, c.region,
           CASE WHEN r_urgency < 0.05 THEN 'critical' WHEN r_urgency < 0.25 THEN 'urgent'
                ELSE 'normal' END AS urgency,
           round((CASE c.grade WHEN 'A' THEN 12000 WHEN 'B' THEN 4000 ELSE 900 END
                  * (0.4 + 2.2 * r_amount))::numeric, 2) AS amount,
           i.wave, i.r_reach, i.r_incident, i.r_resolve
      FROM incoming i
      JOIN public.customers c ON c.code = format('C%s', lpad(i.cust::text, 4, '0'))
), planned AS (
    SELECT s.*,
           CASE WHEN urgency = 'critical' THEN current_date
                WHEN urgency = 'urgent' THEN current_date + 1
                ELSE current_date + 2 + (id % 4) END AS promised_ship_date,
           (CASE wave
              WHEN 1 THEN CASE WHEN r_reach < 0.03 THEN 'quoted'
                               WHEN r_reach < 0.05 THEN 'contract_signed'
                               WHEN r_reach < 0.07 THEN 'finance_approved'
                               WHEN r_reach < 0.10 THEN 'picking'
                               WHEN r_reach < 0.15 THEN 'packed'
                               WHEN r_reach < 0.40 THEN 'shipped'
                               WHEN r_reach < 0.80 OR region <> 'east' THEN 'in_transit'
                               ELSE 'delivered' END
              WHEN 2 THEN CASE WHEN r_reach < 0.03 THEN 'quoted'
                               WHEN r_reach < 0.06 THEN 'contract_signed'
                               WHEN r_reach < 0.10 THEN 'warehouse_confirmed'
                               WHEN r_reach < 0.17 THEN 'finance_approved'
                               WHEN r_reach < 0.22 THEN 'scheduled'
                               WHEN r_reach < 0.30 THEN 'picking'
                               WHEN r_reach < 0.40 THEN 'packed'
                               WHEN r_reach < 0.85 THEN 'shipped'
                               ELSE 'in_transit' END
              ELSE        CASE WHEN r_reach < 0.04 THEN 'inquiry'
                               WHEN r_reach < 0.11 THEN 'quoted'
                               WHEN r_reach < 0.18 THEN 'contract_signed'
                               WHEN r_reach < 0.26 THEN 'warehouse_confirmed'
                               WHEN r_reach < 0.36 THEN 'finance_approved'
                               WHEN r_reach < 0.46 THEN 'scheduled'
                               WHEN r_reach < 0.61 THEN 'picking'
                               WHEN r_reach < 0.76 THEN 'packed'
                               ELSE 'shipped' END
            END)::order_flow.status AS reach,
           CASE WHEN r_incident < 0.015 THEN 'withdrawn'
                WHEN r_incident < 0.025 THEN 'price_review'
                WHEN r_incident < 0.065 THEN 'need_info'
                WHEN r_incident < 0.100 THEN 'stock_shortage'
                WHEN r_incident < 0.120 THEN 'credit_hold'
                WHEN r_incident < 0.126 THEN 'credit_cancel'
           END AS planned_incident
      FROM shaped s
)
INSERT INTO replay.day
SELECT id, customer, grade, region, urgency, amount, promised_ship_date, wave,
       CASE WHEN incident = 'withdrawn' THEN 'inquiry' ELSE reach END,
       incident,
       CASE WHEN incident IS NULL OR incident = 'withdrawn' THEN NULL
            WHEN incident = 'stock_shortage' THEN CASE WHEN wave < 3 AND r_resolve < 0.8 THEN 3 END
            WHEN incident = 'need_info' THEN CASE WHEN wave < 3 AND r_resolve < 0.75 THEN wave + 1 END
            WHEN wave < 3 THEN wave + 1
       END
  FROM (SELECT p.*,
               -- an incident happens only where the order gets to
               CASE WHEN p.planned_incident = 'price_review' AND p.reach < 'contract_signed' THEN NULL
                    WHEN p.planned_incident IN ('need_info', 'stock_shortage')
                         AND p.reach < 'warehouse_confirmed' THEN NULL
                    WHEN p.planned_incident IN ('credit_hold', 'credit_cancel')
                         AND p.reach < 'finance_approved' THEN NULL
                    ELSE p.planned_incident END AS incident
          FROM planned p) x;

-- Yesterday's orders: deliveries, acceptances, invoices; two reworks.
INSERT INTO replay.day
SELECT o.id, o.customer, o.grade, o.region, o.urgency, o.amount, o.promised_ship_date, 0,
       CASE WHEN o.id IN (59476, 59479) THEN 'in_transit'
            WHEN o.status = 'packed' THEN 'in_transit'
            WHEN o.status = 'shipped' THEN (CASE WHEN o.id % 3 = 0 THEN 'delivered' ELSE 'in_transit' END)
            WHEN o.status = 'in_transit' THEN (CASE WHEN o.id % 4 = 0 THEN 'in_transit' ELSE 'delivered' END)
            ELSE (CASE o.id % 4 WHEN 0 THEN 'accepted' WHEN 1 THEN 'invoiced' ELSE 'paid' END)
       END::order_flow.status,
       CASE WHEN o.id IN (59476, 59479) THEN 'rework' END,
       CASE WHEN o.id IN (59476, 59479) THEN 2 END
  FROM public.orders o;

-- What each order holds: one to three lines of the catalogue.
INSERT INTO order_flow.order_line (order_key, sku, qty, unit_price)
SELECT d.id::text, s.sku,
       CASE WHEN s.weight_kg > 1.5 THEN 1 + (d.id + n * 3) % 3 ELSE 1 + (d.id + n * 3) % 6 END,
       s.unit_price
  FROM replay.day d
 CROSS JOIN LATERAL generate_series(1, 1 + d.id % 3) n
  JOIN LATERAL (SELECT sku, weight_kg, unit_price FROM order_flow.sku ORDER BY sku
                OFFSET (d.id * 7 + n * 5) % 12 LIMIT 1) s ON true
 WHERE d.wave > 0;

ANALYZE public.customers, public.orders, replay.day;

/* ------------------------------------------------------- at the station */

-- Urgent orders are scanned and shipped at the two stations by the
-- temporary packing staff.  The terminal sees what is in the tote and the
-- queue of orders picked for it, nothing else.
CREATE VIEW replay.tote AS
SELECT l.order_key, s.barcode, l.qty, s.weight_kg
  FROM order_flow.order_line l JOIN order_flow.sku s USING (sku);

CREATE TABLE replay.station_blocked (
    id          integer PRIMARY KEY,
    reason      text NOT NULL
);

CREATE VIEW replay.station_queue AS
SELECT o.id
  FROM public.orders o JOIN replay.day d USING (id)
 WHERE o.status = 'picking' AND o.urgency <> 'normal' AND d.reach >= 'shipped'
   AND NOT EXISTS (SELECT 1 FROM replay.station_blocked b WHERE b.id = o.id);

-- The carriers' feed: first scans and deliveries of station shipments.
CREATE VIEW replay.carrier_manifest AS
SELECT s.waybill,
       CASE WHEN d.reach >= 'delivered' THEN 'delivered' ELSE 'in_transit' END AS trace,
       CASE d.region WHEN 'east' THEN 'Shanghai hub' WHEN 'north' THEN 'Tianjin hub'
                     WHEN 'south' THEN 'Guangzhou hub' ELSE 'Chengdu hub' END AS location
  FROM order_flow.shipment s
  JOIN public.orders o ON o.id = s.order_key::integer
  JOIN replay.day d ON d.id = o.id
 WHERE o.status = 'shipped' AND d.reach >= 'in_transit';

-- One station shift: for each queued order, scan the tote (with the odd
-- slip: an unreadable label, a double scan), choose a carton, ship.  A
-- carton too small is refused and the next size tried; a stock shortage
-- blocks the order (it stays in picking).
CREATE FUNCTION replay.station_shift(OUT shipped integer, OUT scans integer, OUT warnings integer,
                                     OUT cartons_refused integer, OUT blocked integer)
LANGUAGE plpgsql AS $$
DECLARE
    o       record;
    t       record;
    r       jsonb;
    weight  numeric;
    preset  text;
    sizes   text[] := ARRAY['S', 'M', 'L'];
    i       integer;
    msg     text;
BEGIN
    shipped := 0; scans := 0; warnings := 0; cartons_refused := 0; blocked := 0;
    FOR o IN SELECT id FROM replay.station_queue ORDER BY id LOOP
        PERFORM set_config('order_flow.actor', CASE WHEN o.id % 2 = 0 THEN 'temp.pack01' ELSE 'temp.pack02' END, true);
        PERFORM set_config('order_flow.station', CASE WHEN o.id % 2 = 0 THEN 'ST-01' ELSE 'ST-02' END, true);
        IF o.id % 9 = 0 THEN
            r := order_flow.station_scan(o.id::text, '6901234599999');       -- smudged label
            scans := scans + 1;
            warnings := warnings + 1;
        END IF;
        weight := 0;
        FOR t IN SELECT barcode, qty, weight_kg FROM replay.tote WHERE order_key = o.id::text ORDER BY barcode LOOP
            r := order_flow.station_scan(o.id::text, t.barcode, t.qty);
            scans := scans + 1;
            IF r->>'warning' IS NOT NULL THEN
                warnings := warnings + 1;
            END IF;
            IF o.id % 13 = 0 THEN
                r := order_flow.station_scan(o.id::text, t.barcode);           -- scanned twice
                scans := scans + 1;
                warnings := warnings + 1;
            END IF;
            weight := weight + t.qty * t.weight_kg;
        END LOOP;
        -- the operator's choice of carton; now and then one size too small
        i := CASE WHEN weight <= 4.5 THEN 1 WHEN weight <= 14 THEN 2 ELSE 3 END;
        IF o.id % 7 = 0 AND i > 1 THEN
            i := i - 1;
        END IF;
        LOOP
            preset := sizes[i];
            BEGIN
                r := order_flow.station_ship(o.id::text, preset);
                shipped := shipped + 1;
                EXIT;
            EXCEPTION WHEN check_violation THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                IF msg LIKE '%more than preset%' AND i < 3 THEN
                    cartons_refused := cartons_refused + 1;
                    i := i + 1;
                ELSE
                    INSERT INTO replay.station_blocked (id, reason) VALUES (o.id, msg);
                    blocked := blocked + 1;
                    EXIT;
                END IF;
            END;
        END LOOP;
    END LOOP;
END
$$;

GRANT SELECT ON replay.tote, replay.station_queue TO station_terminal;
GRANT SELECT, INSERT ON replay.station_blocked TO station_terminal;
GRANT SELECT ON replay.station_blocked TO erp_app;
GRANT SELECT ON replay.carrier_manifest TO carrier_feed;
GRANT USAGE ON SCHEMA replay TO station_terminal, carrier_feed;
GRANT EXECUTE ON FUNCTION replay.station_shift() TO station_terminal;


/* ---------------------------------------------------- ERP screens */

-- Two ERP screens act on one order at a time and carry a note, so they
-- call order_flow.transition() instead of updating orders in a batch.
-- They run with the caller's rights (erp_app).

-- "Need more information": logistics or finance sends a contract back to
-- sales with a structured form.
CREATE FUNCTION replay.ask_for_info(pass integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    o record;
    n integer := 0;
BEGIN
    FOR o IN SELECT d.id, d.region FROM replay.day d JOIN public.orders x USING (id)
              WHERE x.status = 'contract_signed' AND d.incident = 'need_info'
                AND greatest(d.wave, 1) = pass
              ORDER BY d.id
    LOOP
        IF o.id % 3 = 0 THEN
            PERFORM set_config('order_flow.actor', 'zhao.finance', true);
            PERFORM order_flow.transition('public.orders', o.id::text, 'need_info',
                'VAT invoice details missing',
                '{"form": {"text": "Please send the customer''s VAT number and invoice address.", "attachments": []}}');
        ELSE
            PERFORM set_config('order_flow.actor', 'qian.logistics', true);
            PERFORM order_flow.transition('public.orders', o.id::text, 'need_info',
                'Incomplete customer address',
                jsonb_build_object('form', jsonb_build_object(
                    'text', 'Delivery address has no dock number or receiving contact (' || o.region || ' route).',
                    'attachments', jsonb_build_array('wecom://msg/' || o.id))));
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Sales completes the information and sends the contract back out, which
-- broadcasts it to warehouse, finance and logistics again.
CREATE FUNCTION replay.answer_info(pass integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    o record;
    n integer := 0;
BEGIN
    FOR o IN SELECT d.id, d.region FROM replay.day d JOIN public.orders x USING (id)
              WHERE x.status = 'need_info' AND d.resolved_in = pass
              ORDER BY d.id
    LOOP
        PERFORM set_config('order_flow.actor',
                           CASE o.region WHEN 'east' THEN 'wang.sales' WHEN 'north' THEN 'liu.sales'
                                         WHEN 'south' THEN 'zhang.sales' ELSE 'zhou.sales' END,
                           true);
        PERFORM order_flow.transition('public.orders', o.id::text, 'contract_signed',
                                      'Information completed with the customer');
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- The task list: each department's lead answers what is waiting for the
-- department.  A few messages are missed (they stay pending); finance asks
-- for a payment plan on a few large contracts instead of confirming.
CREATE FUNCTION replay.answer_broadcast(pass integer, OUT acknowledged integer, OUT asked integer)
LANGUAGE plpgsql AS $$
DECLARE
    d record;
    p record;
BEGIN
    acknowledged := 0;
    asked := 0;
    FOR d IN SELECT * FROM (VALUES ('sales', 'wang.sales'), ('commerce', 'sun.commerce'),
                                   ('warehouse', 'li.warehouse'), ('finance', 'zhao.finance'),
                                   ('logistics', 'qian.logistics'), ('after_sales', 'he.service'))
                           v(department, lead)
    LOOP
        PERFORM set_config('order_flow.actor', d.lead, true);
        FOR p IN SELECT a.notification_id, a.order_key, a.kind, (a.payload #>> '{attributes,amount}')::numeric AS amount
                   FROM order_flow.pending_acks a
                  WHERE a.department = d.department AND a.notification_id % 20 <> 7
                  ORDER BY a.notification_id
        LOOP
            IF d.department = 'finance' AND p.kind = 'ack_request' AND p.amount > 20000
               AND p.order_key::integer % 4 = 0 THEN
                PERFORM order_flow.acknowledge(p.notification_id, 'need_info',
                    jsonb_build_object('text', 'Large contract: please confirm the payment plan with the customer.',
                                       'attachments', jsonb_build_array('erp://contract/' || p.order_key)));
                asked := asked + 1;
            ELSE
                PERFORM order_flow.acknowledge(p.notification_id);
                acknowledged := acknowledged + 1;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION replay.ask_for_info(integer), replay.answer_info(integer),
                          replay.answer_broadcast(integer) TO erp_app;
