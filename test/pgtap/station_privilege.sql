-- test/pgtap/station_privilege.sql -- least privilege at the shipping
-- station (SPEC 3.6, issue 4): order_flow.grant_station_operator(role)
-- grants EXECUTE on station_scan and station_ship and nothing else.  With a
-- real LOGIN role as the session user (SET SESSION AUTHORIZATION), scanning
-- and shipping work, while reading costs, prices, stock, shipments, the
-- audit log, customer history or the managed order table fails with 42501,
-- and so do record(), manage(), the other station functions and moving the
-- order around the station.  Code that a non-superuser admin controls (its
-- managed table's triggers, the stock source view) must not run with
-- superuser rights inside the station functions.  The roles are created
-- inside the test's transaction and vanish with its ROLLBACK.
\ir include/preamble.psql
BEGIN;

SELECT plan(73);

-- ------------------------------------------------------------ helpers
\ir include/station_helpers.psql
-- as_op(role, label, cmd): run cmd (returning jsonb) with role as session
-- user, keep its effects and its answer in op_results
CREATE TEMP TABLE op_results (label text PRIMARY KEY, who text, res jsonb);
CREATE FUNCTION pg_temp.as_op(as_role text, lbl text, cmd text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    r jsonb;
    w text;
BEGIN
    EXECUTE format('SET LOCAL SESSION AUTHORIZATION %I', as_role);
    w := session_user || '/' || current_user;
    EXECUTE cmd INTO r;
    RESET SESSION AUTHORIZATION;
    INSERT INTO op_results VALUES (lbl, w, r);
END
$f$;
-- denied(role, relation): SELECT from it as role fails with 42501, nothing written
CREATE FUNCTION pg_temp.denied(as_role text, rel text, what text) RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT * FROM pg_temp.st_refused(format('SELECT * FROM %s LIMIT 1', rel), '42501',
                                     'operator reads ' || rel || ' (' || what || ')', as_role => as_role,
                                     want_msg => '%permission denied%')
$f$;

-- ------------------------------------------------------------ fixtures
CREATE TABLE orders (
    id           text PRIMARY KEY,
    status       order_flow.status NOT NULL DEFAULT 'inquiry',
    customer     text,
    region       text,
    addressee    text,
    credit_limit numeric);
SELECT order_flow.manage('orders', customer_column => 'customer', attributes => '{region,addressee,credit_limit}');
INSERT INTO order_flow.sku (sku, barcode, name, weight_kg, unit_price, unit_cost) VALUES
    ('SKU-A', '6901234500017', 'Adapter A', 0.5, 12, 7),
    ('SKU-B', '6901234500062', 'Bracket B', 1.0, 20, 11);
INSERT INTO order_flow.stock VALUES ('SKU-A', 10), ('SKU-B', 10);
INSERT INTO order_flow.package_preset (code, max_weight_kg, tare_kg) VALUES ('BOX', 20, 0.5);
INSERT INTO order_flow.freight_rule (carrier, region, min_kg, max_kg, base_fee, per_kg) VALUES ('YT', '*', 0, 20, 8, 2);
INSERT INTO order_flow.waybill_pool (carrier, prefix, next_no, last_no, digits, check_digit)
VALUES ('YT', 'YT', 1, 100, 8, 'mod7');
INSERT INTO orders VALUES
    ('pv-1', 'packed', 'Acme', 'north', 'Ms Li', 50000),
    ('pv-2', 'packed', 'Acme', 'north', 'Ms Li', 50000),
    ('pv-3', 'packed', 'Bolt', 'south', 'Mr Wu', 90000);
INSERT INTO order_flow.order_line (order_key, sku, qty, unit_price) VALUES
    ('pv-1', 'SKU-A', 2, 12), ('pv-1', 'SKU-B', 1, 20),
    ('pv-2', 'SKU-A', 1, 12),
    ('pv-3', 'SKU-B', 1, 20);
-- history: a payment and a complaint about this customer
SELECT order_flow.record('pv-1', 'payment', '{"amount": 1000}') IS NOT NULL AS recorded;
SELECT order_flow.record('pv-1', 'complaint', '{"text": "late"}') IS NOT NULL AS recorded;

-- a real login role for the station (warehouse staff: the packed -> shipped
-- edge is taken by warehouse or logistics), one whose name needs quoting,
-- and one never granted anything
CREATE ROLE tw_st_operator LOGIN;
CREATE ROLE "tw_st Op ""quoted""; --" LOGIN;
CREATE ROLE tw_st_nobody LOGIN;
INSERT INTO order_flow.member (actor, department) VALUES ('tw_st_operator', 'warehouse');

-- ------------------------------------------------------------ the grant
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_scan('pv-1', '6901234500017')$$, '42501',
                                 'an ungranted role scans', as_role => 'tw_st_nobody');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.grant_station_operator(NULL)$$, '22004',
                                 'grant_station_operator(NULL)');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.grant_station_operator('tw_st_no_such_role')$$, '42704',
                                 'grant_station_operator of an unknown role');
SELECT lives_ok($$SELECT order_flow.grant_station_operator('tw_st_operator')$$, 'grant_station_operator(tw_st_operator)');
SELECT lives_ok($$SELECT order_flow.grant_station_operator('"tw_st Op ""quoted""; --"')$$,
                'grant_station_operator of a role whose name needs quoting');
SELECT results_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'order_flow'::regnamespace
         AND has_function_privilege('tw_st_operator', p.oid, 'EXECUTE')
         AND NOT has_function_privilege('tw_st_nobody', p.oid, 'EXECUTE')
       ORDER BY 1$$,
    $$VALUES ('order_flow.station_scan(text,text,integer)'), ('order_flow.station_ship(text,text)')$$,
    'the operator gained EXECUTE on exactly station_scan and station_ship');
SELECT results_eq(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'order_flow'::regnamespace
         AND has_function_privilege('tw_st Op "quoted"; --', p.oid, 'EXECUTE')
         AND NOT has_function_privilege('tw_st_nobody', p.oid, 'EXECUTE')
       ORDER BY 1$$,
    $$VALUES ('order_flow.station_scan(text,text,integer)'), ('order_flow.station_ship(text,text)')$$,
    'the quoted name got the same two and nothing else');
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S')
              AND (has_table_privilege('tw_st_operator', c.oid, 'SELECT, INSERT, UPDATE, DELETE')
                   AND NOT has_table_privilege('tw_st_nobody', c.oid, 'SELECT'))), 0,
          'the operator gained no table or sequence privilege in order_flow');

-- ------------------------------------------------------------ the operator works
SELECT lives_ok($$SELECT pg_temp.as_op('tw_st_operator', 'scan A',
                    $c$SELECT order_flow.station_scan('pv-1', '6901234500017', 2)$c$)$$,
                'as the operator (session user): scan');
SELECT lives_ok($$SELECT pg_temp.as_op('tw_st_operator', 'scan B',
                    $c$SELECT order_flow.station_scan('pv-1', '6901234500062')$c$)$$,
                'as the operator: scan the second line');
SELECT lives_ok($$SELECT pg_temp.as_op('tw_st_operator', 'unknown',
                    $c$SELECT order_flow.station_scan('pv-1', '0000')$c$)$$,
                'as the operator: an unknown barcode is a warning, not an error');
SELECT results_eq($$SELECT label, who, res->>'warning', (res->'complete')::boolean FROM op_results ORDER BY label$$,
                  $$VALUES ('scan A', 'tw_st_operator/tw_st_operator', NULL, false),
                           ('scan B', 'tw_st_operator/tw_st_operator', NULL, true),
                           ('unknown', 'tw_st_operator/tw_st_operator', 'unknown_barcode', true)$$,
                  'the operator''s scans are answered, the order is complete');
SELECT results_eq($$SELECT operator, step FROM order_flow.station_event WHERE order_key = 'pv-1' ORDER BY id$$,
                  $$VALUES ('tw_st_operator', 'scan'), ('tw_st_operator', 'scan'), ('tw_st_operator', 'error')$$,
                  'station events name the login role as operator');
SELECT lives_ok($$SELECT pg_temp.as_op('tw_st_operator', 'ship',
                    $c$SELECT order_flow.station_ship('pv-1', 'BOX')$c$)$$,
                'as the operator: ship');
-- 2*0.5 + 1 + 0.5 = 2.5 kg: YT 8 + 2*2.5 = 13; serial 1 -> mod7 1
SELECT results_eq($$SELECT res->>'waybill', (res->>'freight')::numeric FROM op_results WHERE label = 'ship'$$,
                  $$VALUES ('YT000000011', 13::numeric)$$, 'the operator gets the label');
SELECT results_eq($$SELECT action, actor, db_user FROM order_flow.audit_log WHERE order_key = 'pv-1' AND seq > 3 ORDER BY seq$$,
                  $$VALUES ('transition', 'tw_st_operator', 'tw_st_operator'), ('ship', 'tw_st_operator', 'tw_st_operator')$$,
                  'the shipped events name the operator as actor and database user');
SELECT results_eq($$SELECT available FROM order_flow.stock ORDER BY sku$$, $$VALUES (8), (9)$$,
                  'the operator''s shipment decremented stock');
SELECT is((SELECT status::text FROM orders WHERE id = 'pv-1'), 'shipped', 'pv-1 is shipped');
SELECT lives_ok($$SELECT pg_temp.as_op('tw_st Op "quoted"; --', 'quoted scan',
                    $c$SELECT order_flow.station_scan('pv-2', '6901234500017')$c$)$$,
                'the role with the quoted name scans as well');
-- not warehouse staff: the edge's rights still apply inside station_ship
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.station_ship('pv-2', 'BOX')$$, '42501',
                                 'an operator who is no warehouse or logistics member ships',
                                 as_role => 'tw_st Op "quoted"; --', want_msg => '%may not move%');

-- ------------------------------------------------------------ nothing else
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.sku', 'unit costs and prices');
SELECT * FROM pg_temp.st_refused($$SELECT unit_cost FROM order_flow.sku$$, '42501',
                                 'operator reads unit costs', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.stock', 'stock levels');
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.order_line', 'line prices');
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.shipment', 'freight charged');
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.freight_rule', 'freight tariffs');
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.audit_log', 'customer history');
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.tracked_order', 'customer history');
SELECT * FROM pg_temp.denied('tw_st_operator', 'public.orders', 'the managed order table');
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.notification', 'notifications');
SELECT * FROM pg_temp.denied('tw_st_operator', 'order_flow.station_heatmap', 'the colleagues'' heat map');
SELECT * FROM pg_temp.st_refused($$UPDATE order_flow.stock SET available = 1000$$, '42501',
                                 'operator writes stock', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$UPDATE order_flow.order_line SET scanned = qty$$, '42501',
                                 'operator marks lines scanned by hand', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$UPDATE order_flow.waybill_pool SET next_no = 1$$, '42501',
                                 'operator rewinds a waybill pool', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$UPDATE orders SET status = 'shipped' WHERE id = 'pv-3'$$, '42501',
                                 'operator updates the order table', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.transition('orders', 'pv-3', 'shipped')$$, '42501',
                                 'operator moves an order to shipped around the station', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.record('pv-1', 'note', '{"text": "hi"}')$$, '42501',
                                 'operator calls record()', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.manage('orders')$$, '42501',
                                 'operator calls manage()', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.logistics_update('YT000000011', 'delivered', now())$$, '42501',
                                 'operator calls logistics_update()', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$SELECT order_flow.grant_station_operator('tw_st_nobody')$$, '42501',
                                 'operator grants the station to another role', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$SELECT * FROM order_flow.verify_audit()$$, '42501',
                                 'operator calls verify_audit()', as_role => 'tw_st_operator');
SELECT * FROM pg_temp.st_refused($$SELECT _order_flow._available('SKU-A')$$, '42501',
                                 'operator calls the stock lookup helper', as_role => 'tw_st_operator');

-- ------------------------------------------------------------ no superuser code paths
-- BUG (reported): station_scan/station_ship run SECURITY DEFINER as the
-- extension owner (a superuser), and they run code that a non-superuser
-- order_flow_admin controls: the triggers of the managed table it owns
-- (fired by the transition to shipped) and any function in the stock
-- source view it may configure.  That code then runs with superuser rights
-- (ALTER ROLE ... SUPERUSER works from it).  Correct: it never runs as a
-- superuser.  The probe below only notes current_user and its rolsuper.
CREATE ROLE tw_st_wh_admin LOGIN IN ROLE order_flow_admin;
GRANT CREATE ON SCHEMA public TO tw_st_wh_admin;
INSERT INTO order_flow.member (actor, department) VALUES ('tw_st_wh_admin', 'warehouse');
SET SESSION AUTHORIZATION tw_st_wh_admin;
CREATE FUNCTION public.tw_st_note_rights() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM set_config('tw_st.ran_as', current_user || '/'
                       || (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)::text, false);
    RETURN true;
END
$f$;
CREATE FUNCTION public.tw_st_note_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM public.tw_st_note_rights();
    RETURN NEW;
END
$f$;
CREATE TABLE public.wh_orders (id text PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('public.wh_orders') IS NULL AS managed;
CREATE TRIGGER note_rights BEFORE UPDATE ON public.wh_orders
    FOR EACH ROW EXECUTE FUNCTION public.tw_st_note_trigger();
INSERT INTO public.wh_orders VALUES ('pv-w1', 'packed');
INSERT INTO order_flow.order_line (order_key, sku, qty, scanned) VALUES ('pv-w1', 'SKU-B', 1, 1);
CREATE TABLE public.wh_stock (item text PRIMARY KEY, on_hand integer NOT NULL);
INSERT INTO public.wh_stock VALUES ('SKU-A', 5), ('SKU-B', 5);
CREATE VIEW public.wh_stock_v AS SELECT item AS sku, on_hand AS available FROM public.wh_stock
    WHERE public.tw_st_note_rights();
RESET SESSION AUTHORIZATION;
SELECT FROM set_config('tw_st.ran_as', 'nothing ran', false);
SELECT lives_ok($$SELECT pg_temp.as_op('tw_st_wh_admin', 'wh ship', $c$SELECT order_flow.station_ship('pv-w1', 'BOX')$c$)$$,
                'a non-superuser order_flow_admin ships an order of the table it owns');
SELECT matches(current_setting('tw_st.ran_as'), '^[^/]+/false$',
               'the table owner''s trigger fired by station_ship does not run with superuser rights');
SET SESSION AUTHORIZATION tw_st_wh_admin;
UPDATE order_flow.station_config SET value = 'public.wh_stock_v' WHERE key = 'stock_source';
RESET SESSION AUTHORIZATION;
SELECT FROM set_config('tw_st.ran_as', 'nothing ran', false);
SELECT lives_ok($$SELECT pg_temp.as_op('tw_st_operator', 'scan via wh view',
                    $c$SELECT order_flow.station_scan('pv-3', '6901234500062')$c$)$$,
                'the operator scans with the admin''s view as stock source');
SELECT matches(current_setting('tw_st.ran_as'), '^[^/]+/false$',
               'functions in the configured stock source do not run with superuser rights');
UPDATE order_flow.station_config SET value = 'order_flow.stock' WHERE key = 'stock_source';

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every audit chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
