-- test/gen/generator.sql -- a realistic, deterministic order-history generator
-- for the metrics tests, demo and benchmark.  Not part of the extension:
-- load it with psql into a database that has order_flow, as a superuser.
--
--   \i test/gen/generator.sql
--   CALL of_gen.bulk(1000000, 10000);           -- benchmark scale, direct writes
--   SELECT of_gen.load_api(300, 30);            -- test scale, through the API
--
-- The wholesaler it imitates: customers of class A (15 %), B (35 %) and C
-- (50 %) in four regions (east 35 %, south 25 %, north 20 %, west 20 %),
-- order volume skewed towards big customers, seasonal (busy Oct-Dec, quiet
-- around Chinese New Year in February, slower in the rainy months) and
-- growing; each customer buys mostly from 4-5 of 12 product categories.
-- Orders follow the shipped b2b_order workflow with an exception mix:
-- cancelled at inquiry (3 %) or after the quote (2 %), need_info (8 %),
-- stock_shortage (6 %), on_hold (3 %), rework with reshipment (2.5 %, more
-- in the rainy season), returns (1 %), and exception records
-- (incomplete_address 4 %, carrier_delay 2 % / 7 % rainy, damaged_goods 1 %,
-- wrong_item 0.7 %, pricing_error 2 %, reshipment for half the reworks).
-- Deliveries in the east (June-July) and south (May-August) take 1.8 times
-- longer in the rainy season.  70 % of orders carry a promised_ship_date.
-- Business facts: a payment per paid order (due 30 days after invoicing;
-- class C pays later), carrier pickup traces (40 %, sometimes before the
-- shipped status), service requests (8 %) and complaints (3 %, 30 % after
-- a rework or return).  Events later than as_of are not generated, so
-- recent orders are still in progress.
--
-- Randomness is a hash of (order or customer number, draw number): the same
-- arguments always give the same history.
--
-- bulk() writes tracked_order and audit_log rows directly, in batches with
-- a COMMIT each (it is a procedure): the audit rows carry no hash chain
-- (prev_hash and hash are NULL, so verify_audit() reports them) -- the
-- metrics do not read hashes, and pushing a million orders through the
-- transition trigger would take hours.  Records have from_state and
-- to_state NULL.  With rollup => 'trigger' (default) the metrics trigger
-- folds the events as they are inserted; with rollup => 'rebuild' it is
-- disabled during the load and metrics_rebuild() runs at the end.
--
-- load_api() goes through the real API: it creates the table tbl
-- (public.gen_orders; keys key_prefix and the order number, customer keys
-- 'C' and customer_digits digits), inserts the orders in state inquiry, manage()s the table (adoption is not
-- an event), replays each order's transitions with import_transition() and
-- then its facts with record() (which are dated now(), so they carry their
-- business dates in details: paid_date, due_date).  Carrier traces are left
-- out (they need the shipping station).

\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS of_gen;

-- r(n, k): the k-th uniform draw in [0, 1) for number n.
CREATE OR REPLACE FUNCTION of_gen.r(n bigint, k integer) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ((hashint8extended(n, k) >> 11) & 9007199254740991)::float8 / 9007199254740992.0 $$;

-- Relative order volume of a calendar month (1-12).
CREATE OR REPLACE FUNCTION of_gen.season_weight(m integer) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE m WHEN 2 THEN 0.45 WHEN 1 THEN 0.75 WHEN 6 THEN 0.7 WHEN 7 THEN 0.7
                    WHEN 10 THEN 0.9 WHEN 11 THEN 1.0 WHEN 12 THEN 1.0 ELSE 0.8 END $$;

-- Class (A 15 %, B 35 %, C 50 %) and region (east 35 %, south 25 %,
-- north 20 %, west 20 %) of customer number c.
CREATE OR REPLACE FUNCTION of_gen.customer_class(c integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN of_gen.r(c, 11) < 0.15 THEN 'A' WHEN of_gen.r(c, 11) < 0.5 THEN 'B' ELSE 'C' END $$;
CREATE OR REPLACE FUNCTION of_gen.customer_region(c integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN of_gen.r(c, 12) < 0.35 THEN 'east' WHEN of_gen.r(c, 12) < 0.6 THEN 'south'
                  WHEN of_gen.r(c, 12) < 0.8 THEN 'north' ELSE 'west' END $$;

/*
 * events(first, last, customers, months, as_of): every event of orders
 * first..last, in order: order_no, seq, action, from_state, to_state,
 * occurred_at, details, plus the order's customer key and attributes.
 */
CREATE OR REPLACE FUNCTION of_gen.events(first_order bigint, last_order bigint, customers integer,
                                         months integer DEFAULT 36, as_of timestamptz DEFAULT now())
RETURNS TABLE (order_no bigint, seq bigint, action text, from_state text, to_state text,
               occurred_at timestamptz, details jsonb, customer_key text, attributes jsonb)
LANGUAGE sql STABLE
AS $gen$
WITH o AS MATERIALIZED (
    SELECT g, c, cls, region, attrs, cust, t0,
           (region = 'east' AND extract(month FROM t0) IN (6, 7))
             OR (region = 'south' AND extract(month FROM t0) IN (5, 6, 7, 8)) AS rainy
      FROM (
        SELECT g, c, cls, region,
               'C' || lpad(c::text, 5, '0') AS cust,
               t0,
               jsonb_strip_nulls(jsonb_build_object(
                   'region', region, 'grade', cls,
                   'category', (ARRAY['fasteners', 'hand_tools', 'power_tools', 'abrasives', 'adhesives',
                                      'electrical', 'plumbing', 'safety', 'hardware', 'paint', 'lighting',
                                      'storage'])[1 + (floor(12 * of_gen.r(c, 13))::int
                                                       + floor(4.5 * of_gen.r(g, 3))::int) % 12],
                   'amount', round((200 + 4800 * of_gen.r(g, 5) ^ 2
                                    * CASE cls WHEN 'A' THEN 2.0 WHEN 'B' THEN 1.2 ELSE 0.8 END)::numeric, 2),
                   'promised_ship_date',
                   CASE WHEN of_gen.r(g, 48) < 0.7
                        THEN to_char(t0 + (1 + 4 * of_gen.r(g, 49)) * interval '1 day', 'YYYY-MM-DD') END))
                   AS attrs
          FROM (
            SELECT g, c, of_gen.customer_class(c) AS cls, of_gen.customer_region(c) AS region,
                   -- seasonal, growing volume: thin uniform candidates by month weight and age
                   COALESCE(
                       CASE WHEN of_gen.season_weight(extract(month FROM ta)::int) * (1 - 0.4 * ua)
                                 >= of_gen.r(g, 30) THEN ta END,
                       CASE WHEN of_gen.season_weight(extract(month FROM tb)::int) * (1 - 0.4 * ub)
                                 >= of_gen.r(g, 31) THEN tb END,
                       tc) AS t0
              FROM (
                SELECT g, 1 + floor(customers * of_gen.r(g, 1) ^ 1.5)::int AS c,
                       of_gen.r(g, 20) AS ua, of_gen.r(g, 21) AS ub,
                       as_of - (months * interval '30.44 days') * of_gen.r(g, 20) AS ta,
                       as_of - (months * interval '30.44 days') * of_gen.r(g, 21) AS tb,
                       as_of - (months * interval '30.44 days') * of_gen.r(g, 22) AS tc
                  FROM generate_series(first_order, last_order) g) x) y) z
), f AS MATERIALIZED (
    -- flags and durations (hours)
    SELECT o.*,
           of_gen.r(g, 40) < 0.03 AS cancel_inq,
           of_gen.r(g, 41) < 0.02 AS cancel_quo,
           of_gen.r(g, 42) < 0.08 AS ni,
           of_gen.r(g, 43) < 0.06 AS ss,
           of_gen.r(g, 44) < 0.03 AS oh,
           of_gen.r(g, 45) < 0.40 AS sched,
           of_gen.r(g, 46) < CASE WHEN rainy THEN 0.045 ELSE 0.025 END AS rework,
           of_gen.r(g, 47) < 0.01 AS ret,
           1 + 23 * of_gen.r(g, 50) AS dq,
           2 + 70 * of_gen.r(g, 51) ^ 2 AS ds,
           1 + 5 * of_gen.r(g, 52) AS dni, 2 + 28 * of_gen.r(g, 53) AS dni2,
           1 + 7 * of_gen.r(g, 54) AS dss, 12 + 84 * of_gen.r(g, 55) AS dss2,
           (0.5 + 19.5 * of_gen.r(g, 56) ^ 2) * CASE cls WHEN 'A' THEN 0.5 ELSE 1 END AS dwc,
           1 + 9 * of_gen.r(g, 57) AS doh, 4 + 68 * of_gen.r(g, 58) AS doh2,
           (0.5 + 11.5 * of_gen.r(g, 59)) * CASE cls WHEN 'C' THEN 1.5 ELSE 1 END AS dfa,
           1 + 7 * of_gen.r(g, 60) AS dsch,
           1 + 23 * of_gen.r(g, 61) AS dpick,
           1 + 5 * of_gen.r(g, 62) AS dpack,
           1 + 11 * of_gen.r(g, 63) AS dship,
           2 + 10 * of_gen.r(g, 64) AS dtr,
           (12 + 84 * of_gen.r(g, 65)) * CASE WHEN rainy THEN 1.8 ELSE 1 END AS ddel,
           2 + 46 * of_gen.r(g, 66) AS drw, 24 + 72 * of_gen.r(g, 67) AS drwship,
           24 + 96 * of_gen.r(g, 68) AS dret,
           2 + 46 * of_gen.r(g, 69) AS dacc,
           2 + 22 * of_gen.r(g, 70) AS dinv,
           24 * (20 + 25 * of_gen.r(g, 71) + CASE cls WHEN 'C' THEN 8 ELSE 0 END) AS dpaid,
           24 * (1 + 6 * of_gen.r(g, 72)) AS darch
      FROM o
), t AS MATERIALIZED (
    SELECT f.*, t1.*, t2.*, t3.*, t4.*
      FROM f
     CROSS JOIN LATERAL (
            SELECT f.t0 + f.dq * interval '1 hour' AS t_quoted,
                   f.t0 + (f.dq + f.ds) * interval '1 hour' AS t_signed,
                   f.t0 + (f.dq + f.ds + f.dni) * interval '1 hour' AS t_ni,
                   f.t0 + (f.dq + f.ds + f.dni + f.dni2) * interval '1 hour' AS t_ni_back,
                   f.t0 + (f.dq + f.ds + CASE WHEN f.ni THEN f.dni + f.dni2 ELSE 0 END) * interval '1 hour' AS t_cs,
                   CASE WHEN f.cancel_inq THEN f.t0 + f.dq * interval '1 hour'
                        ELSE f.t0 + (f.dq + f.ds) * interval '1 hour' END AS t_cancel) t1
     CROSS JOIN LATERAL (
            SELECT t1.t_cs + f.dss * interval '1 hour' AS t_ss,
                   CASE WHEN f.ss THEN t1.t_cs + (f.dss + f.dss2) * interval '1 hour'
                        ELSE t1.t_cs + f.dwc * interval '1 hour' END AS t_wc) t2
     CROSS JOIN LATERAL (
            SELECT t2.t_wc + f.doh * interval '1 hour' AS t_oh,
                   t2.t_wc + (f.doh + f.doh2) * interval '1 hour' AS t_oh_back,
                   t2.t_wc + (CASE WHEN f.oh THEN f.doh + f.doh2 ELSE 0 END + f.dfa) * interval '1 hour' AS t_fa) t3
     CROSS JOIN LATERAL (
            SELECT t3.t_fa + f.dsch * interval '1 hour' AS t_sch,
                   t3.t_fa + (CASE WHEN f.sched THEN f.dsch ELSE 0 END + f.dpick) * interval '1 hour' AS t_pick,
                   t3.t_fa + (CASE WHEN f.sched THEN f.dsch ELSE 0 END + f.dpick + f.dpack) * interval '1 hour' AS t_pack,
                   t3.t_fa + (CASE WHEN f.sched THEN f.dsch ELSE 0 END + f.dpick + f.dpack + f.dship)
                       * interval '1 hour' AS t_ship) t4
), u AS MATERIALIZED (
    SELECT t.*, u1.*, u2.*
      FROM t
     CROSS JOIN LATERAL (
            SELECT t.t_ship + t.dtr * interval '1 hour' AS t_tr,
                   t.t_ship + (t.dtr + t.ddel) * interval '1 hour' AS t_del,
                   t.t_ship + (t.dtr + t.ddel + t.drw) * interval '1 hour' AS t_rw,
                   t.t_ship + (t.dtr + t.ddel + t.drw + t.drwship) * interval '1 hour' AS t_ship2,
                   t.t_ship + (t.dtr + t.ddel + t.drw + t.drwship + t.dtr) * interval '1 hour' AS t_tr2,
                   t.t_ship + (t.dtr + t.ddel + t.drw + t.drwship + t.dtr + t.ddel) * interval '1 hour' AS t_del2,
                   t.t_ship + (t.dtr + t.ddel + t.dret) * interval '1 hour' AS t_ret,
                   t.t_ship + (t.dtr + t.ddel + t.dret + 48) * interval '1 hour' AS t_ret_arch) u1
     CROSS JOIN LATERAL (
            SELECT CASE WHEN t.rework THEN u1.t_del2 ELSE u1.t_del END + t.dacc * interval '1 hour' AS t_acc,
                   CASE WHEN t.rework THEN u1.t_del2 ELSE u1.t_del END + (t.dacc + t.dinv) * interval '1 hour' AS t_inv,
                   CASE WHEN t.rework THEN u1.t_del2 ELSE u1.t_del END
                       + (t.dacc + t.dinv + t.dpaid) * interval '1 hour' AS t_paid,
                   CASE WHEN t.rework THEN u1.t_del2 ELSE u1.t_del END
                       + (t.dacc + t.dinv + t.dpaid + t.darch) * interval '1 hour' AS t_arch) u2
)
SELECT u.g, row_number() OVER (PARTITION BY u.g ORDER BY e.occurred_at, e.ord),
       e.action, e.from_state, e.to_state, e.occurred_at,
       CASE WHEN e.to_state IS NOT NULL
            THEN jsonb_build_object('attributes', u.attrs, 'customer', u.cust) || e.extra
            ELSE e.extra END,
       u.cust, u.attrs
  FROM u
 CROSS JOIN LATERAL (
        SELECT s.ord, s.action, lag(s.to_state) OVER (ORDER BY s.ord) AS from_state, s.to_state,
               s.occurred_at, s.extra
          FROM (VALUES
            (1, 'created', 'inquiry', u.t0, '{}'::jsonb, true),
            (2, 'transition', 'cancelled', u.t_cancel,
                '{"exception_type": "cancelled", "reason": "customer withdrew"}', u.cancel_inq),
            (3, 'transition', 'quoted', u.t_quoted, '{}', NOT u.cancel_inq),
            (4, 'transition', 'cancelled', u.t_cancel,
                '{"exception_type": "cancelled", "reason": "quote declined"}', NOT u.cancel_inq AND u.cancel_quo),
            (5, 'transition', 'contract_signed', u.t_signed, '{}', NOT u.cancel_inq AND NOT u.cancel_quo),
            (6, 'transition', 'need_info', u.t_ni,
                '{"exception_type": "missing_information", "reason": "delivery address unclear"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND u.ni),
            (7, 'transition', 'contract_signed', u.t_ni_back, '{}', NOT u.cancel_inq AND NOT u.cancel_quo AND u.ni),
            (8, 'transition', 'stock_shortage', u.t_ss,
                '{"exception_type": "stock_shortage", "reason": "short of stock"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND u.ss),
            (9, 'transition', 'warehouse_confirmed', u.t_wc, '{}', NOT u.cancel_inq AND NOT u.cancel_quo),
            (10, 'transition', 'on_hold', u.t_oh, '{"exception_type": "on_hold", "reason": "credit check"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND u.oh),
            (11, 'transition', 'warehouse_confirmed', u.t_oh_back, '{"resumed": true}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND u.oh),
            (12, 'transition', 'finance_approved', u.t_fa, '{}', NOT u.cancel_inq AND NOT u.cancel_quo),
            (13, 'transition', 'scheduled', u.t_sch, '{}', NOT u.cancel_inq AND NOT u.cancel_quo AND u.sched),
            (14, 'transition', 'picking', u.t_pick, '{}', NOT u.cancel_inq AND NOT u.cancel_quo),
            (15, 'transition', 'packed', u.t_pack, '{}', NOT u.cancel_inq AND NOT u.cancel_quo),
            (16, 'transition', 'shipped', u.t_ship, '{}', NOT u.cancel_inq AND NOT u.cancel_quo),
            (17, 'transition', 'in_transit', u.t_tr, '{}', NOT u.cancel_inq AND NOT u.cancel_quo),
            (18, 'transition', 'delivered', u.t_del, '{}', NOT u.cancel_inq AND NOT u.cancel_quo),
            (19, 'transition', 'rework', u.t_rw, '{"exception_type": "rework", "reason": "wrong finish"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND u.rework),
            (20, 'transition', 'shipped', u.t_ship2, '{}', NOT u.cancel_inq AND NOT u.cancel_quo AND u.rework),
            (21, 'transition', 'in_transit', u.t_tr2, '{}', NOT u.cancel_inq AND NOT u.cancel_quo AND u.rework),
            (22, 'transition', 'delivered', u.t_del2, '{}', NOT u.cancel_inq AND NOT u.cancel_quo AND u.rework),
            (23, 'transition', 'returned', u.t_ret, '{"exception_type": "return", "reason": "not as ordered"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND NOT u.rework AND u.ret),
            (24, 'transition', 'archived', u.t_ret_arch, '{}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND NOT u.rework AND u.ret),
            (25, 'transition', 'accepted', u.t_acc, '{}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND NOT (u.ret AND NOT u.rework)),
            (26, 'transition', 'invoiced', u.t_inv, '{}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND NOT (u.ret AND NOT u.rework)),
            (27, 'transition', 'paid', u.t_paid, '{}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND NOT (u.ret AND NOT u.rework)),
            (28, 'transition', 'archived', u.t_arch, '{}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND NOT (u.ret AND NOT u.rework))
          ) s(ord, action, to_state, occurred_at, extra, inc)
         WHERE s.inc AND s.occurred_at <= as_of
        UNION ALL
        SELECT r.ord, r.action, NULL, NULL, r.occurred_at, r.extra
          FROM (VALUES
            (40, 'payment', u.t_paid,
                jsonb_build_object('amount', (u.attrs->>'amount')::numeric,
                                   'due_date', to_char(u.t_inv + interval '30 days', 'YYYY-MM-DD'),
                                   'paid_date', to_char(u.t_paid, 'YYYY-MM-DD')),
                NOT u.cancel_inq AND NOT u.cancel_quo AND NOT (u.ret AND NOT u.rework)),
            (41, 'logistics', u.t_ship + (-2 + 8 * of_gen.r(u.g, 80)) * interval '1 hour',
                jsonb_build_object('tracking_no', 'SF' || u.g, 'status', 'picked_up'),
                NOT u.cancel_inq AND NOT u.cancel_quo AND of_gen.r(u.g, 81) < 0.4),
            (42, 'service_request', u.t_del + (1 + 9 * of_gen.r(u.g, 82)) * interval '1 day',
                '{"topic": "installation question"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND of_gen.r(u.g, 83) < 0.08),
            (43, 'complaint', u.t_del + (1 + 4 * of_gen.r(u.g, 84)) * interval '1 day',
                '{"text": "not satisfied"}',
                NOT u.cancel_inq AND NOT u.cancel_quo
                AND (of_gen.r(u.g, 85) < 0.03 OR ((u.rework OR u.ret) AND of_gen.r(u.g, 85) < 0.3))),
            (44, 'exception', u.t_signed + interval '1 hour', '{"exception_type": "incomplete_address"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND of_gen.r(u.g, 86) < 0.04),
            (45, 'exception', u.t_tr + interval '24 hours', '{"exception_type": "carrier_delay"}',
                NOT u.cancel_inq AND NOT u.cancel_quo
                AND of_gen.r(u.g, 87) < CASE WHEN u.rainy THEN 0.07 ELSE 0.02 END),
            (46, 'exception', u.t_del + interval '2 hours', '{"exception_type": "damaged_goods"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND of_gen.r(u.g, 88) < 0.01),
            (47, 'exception', u.t_del + interval '3 hours', '{"exception_type": "wrong_item"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND of_gen.r(u.g, 89) < 0.007),
            (48, 'exception', u.t_rw + interval '1 hour', '{"exception_type": "reshipment"}',
                NOT u.cancel_inq AND NOT u.cancel_quo AND u.rework AND of_gen.r(u.g, 90) < 0.5),
            (49, 'exception', u.t_quoted + interval '2 hours', '{"exception_type": "pricing_error"}',
                NOT u.cancel_inq AND of_gen.r(u.g, 91) < 0.02)
          ) r(ord, action, occurred_at, extra, inc)
         WHERE r.inc AND r.occurred_at <= as_of) e
$gen$;

/*
 * bulk(orders, customers, months, as_of, batch, rollup): write the history
 * of orders 1..orders directly (superuser; see the header).  Order keys are
 * 'G0000001'...; tracked_order.tbl is 'public.gen_orders' (not a managed
 * table: nothing moves these orders afterwards).
 */
CREATE OR REPLACE PROCEDURE of_gen.bulk(orders bigint, customers integer, months integer DEFAULT 36,
                                        as_of timestamptz DEFAULT now(), batch integer DEFAULT 50000,
                                        rollup text DEFAULT 'trigger')
LANGUAGE plpgsql
AS $$
DECLARE
    lo bigint := 1;
    started timestamptz := clock_timestamp();
BEGIN
    IF rollup NOT IN ('trigger', 'rebuild') THEN
        RAISE EXCEPTION 'rollup must be trigger or rebuild';
    END IF;
    WHILE lo <= orders LOOP
        WITH ev AS MATERIALIZED (
            SELECT 'G' || lpad(e.order_no::text, 7, '0') AS order_key, e.*
              FROM of_gen.events(lo, least(lo + batch - 1, orders), customers, months, as_of) e
        ), ins AS (
            INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                              occurred_at, recorded_at, details)
            SELECT order_key, seq, action, from_state, to_state, 'of_gen', 'of_gen', occurred_at, occurred_at,
                   details
              FROM ev
             ORDER BY occurred_at
        )
        INSERT INTO order_flow.tracked_order (order_key, tbl, workflow, state, entered_at, last_seq,
                                              last_occurred_at, customer_key, attributes, created_at,
                                              contract_signed_at, warehouse_confirmed_at,
                                              finance_approved_at, shipped_at)
        SELECT order_key, 'public.gen_orders', 'b2b_order',
               (array_agg(to_state ORDER BY seq DESC) FILTER (WHERE to_state IS NOT NULL))[1],
               max(occurred_at) FILTER (WHERE to_state IS NOT NULL),
               max(seq), max(occurred_at), min(customer_key), min(attributes::text)::jsonb, min(occurred_at),
               min(occurred_at) FILTER (WHERE to_state = 'contract_signed'),
               min(occurred_at) FILTER (WHERE to_state = 'warehouse_confirmed'),
               min(occurred_at) FILTER (WHERE to_state = 'finance_approved'),
               min(occurred_at) FILTER (WHERE to_state = 'shipped')
          FROM ev
         GROUP BY order_key;
        COMMIT;
        RAISE NOTICE 'of_gen.bulk: % of % orders (% s)', least(lo + batch - 1, orders), orders,
            round(extract(epoch FROM clock_timestamp() - started));
        lo := lo + batch;
    END LOOP;
    -- rows written by SQL are not folded as they are written: fold them all
    -- now, order by order (trigger), or recompute the rollup (rebuild)
    IF rollup = 'rebuild' THEN
        PERFORM order_flow.metrics_rebuild();
    ELSE
        PERFORM _order_flow._metrics_fold_window(NULL, NULL);
    END IF;
    COMMIT;
END
$$;

/*
 * load_api(orders, customers, months, as_of): the same histories through
 * the API, for tests and the demo (see the header).  Returns the number of
 * events written.  Order keys 'A0001'...
 */
CREATE OR REPLACE FUNCTION of_gen.load_api(orders integer, customers integer, months integer DEFAULT 36,
                                           as_of timestamptz DEFAULT now(),
                                           tbl text DEFAULT 'public.gen_orders', key_prefix text DEFAULT 'A',
                                           customer_digits integer DEFAULT 5)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    e record;
    before bigint;
    width integer := greatest(4, length(orders::text));
BEGIN
    SELECT count(*) INTO before FROM order_flow.audit_log;
    EXECUTE format('CREATE TABLE %s (
        id text PRIMARY KEY, status text NOT NULL, customer text, region text, grade text,
        category text, amount numeric, promised_ship_date date)', tbl);
    EXECUTE format('INSERT INTO %s
    SELECT DISTINCT ON (x.order_no) $1 || lpad(x.order_no::text, $2, ''0''), ''inquiry'',
           ''C'' || lpad(ltrim(substr(x.customer_key, 2), ''0''), $3, ''0''),
           x.attributes->>''region'', x.attributes->>''grade'', x.attributes->>''category'',
           (x.attributes->>''amount'')::numeric, (x.attributes->>''promised_ship_date'')::date
      FROM of_gen.events(1, $4, $5, $6, $7) x
     ORDER BY x.order_no', tbl)
    USING key_prefix, width, customer_digits, orders, customers, months, as_of;
    PERFORM order_flow.manage(tbl::regclass, customer_column => 'customer',
                              attributes => '{region,grade,category,amount,promised_ship_date}');
    FOR e IN SELECT * FROM of_gen.events(1, orders, customers, months, as_of) x
              WHERE x.action NOT IN ('created', 'logistics')
              ORDER BY x.order_no, x.to_state IS NULL, x.seq
    LOOP
        IF e.to_state IS NOT NULL THEN
            PERFORM order_flow.import_transition(tbl::regclass, key_prefix || lpad(e.order_no::text, width, '0'),
                                                 e.to_state, e.occurred_at,
                                                 e.details - 'attributes' - 'customer' - 'exception_type'
                                                           - 'resumed');
        ELSE
            PERFORM order_flow.record(key_prefix || lpad(e.order_no::text, width, '0'), e.action, e.details);
        END IF;
    END LOOP;
    RETURN (SELECT count(*) FROM order_flow.audit_log) - before;
END
$$;
