-- test/pgtap/privileges.sql -- what PUBLIC and order_flow_admin may do
-- (SPEC 5): PUBLIC gets nothing it does not need; every SECURITY DEFINER
-- function pins its search_path.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(74);

CREATE ROLE tw_pv_nobody NOLOGIN;          -- only what PUBLIC has
CREATE ROLE tw_pv_admin NOLOGIN IN ROLE order_flow_admin;
CREATE TABLE orders (id text PRIMARY KEY, status text NOT NULL);
DO $$ BEGIN PERFORM order_flow.manage('orders'); END $$;
INSERT INTO orders VALUES ('pv-1', 'inquiry');
GRANT SELECT, UPDATE ON orders TO tw_pv_nobody;

-- ------------------------------------------------- PUBLIC and the tables
SELECT ok(NOT has_table_privilege('tw_pv_nobody', 'order_flow.' || t, 'SELECT'),
          'PUBLIC cannot read order_flow.' || t)
  FROM unnest(ARRAY['audit_log', 'tracked_order', 'notification', 'outbox', 'member', 'managed_table',
                    'refused_attempt', 'escalation_policy', 'reminder_policy']) t;
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname)
             FROM pg_class c
            WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind IN ('r', 'p')
              AND (has_table_privilege('tw_pv_nobody', c.oid, 'INSERT') OR has_table_privilege('tw_pv_nobody', c.oid, 'UPDATE')
                   OR has_table_privilege('tw_pv_nobody', c.oid, 'DELETE') OR has_table_privilege('tw_pv_nobody', c.oid, 'TRUNCATE'))),
          NULL, 'PUBLIC can write no table of the extension');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname)
             FROM pg_class c
            WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind = 'S'
              AND (has_sequence_privilege('tw_pv_nobody', c.oid, 'USAGE') OR has_sequence_privilege('tw_pv_nobody', c.oid, 'UPDATE'))),
          NULL, 'PUBLIC can use no sequence of the extension');
SELECT * FROM pg_temp.refused($$SELECT count(*) FROM order_flow.audit_log$$, '42501', 'PUBLIC reading the audit log',
                              as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$INSERT INTO order_flow.audit_log (order_key, action, actor, details) VALUES ('pv-1', 'x', 'y', '{}')$$,
                              '42501', 'PUBLIC writing the audit log', as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$INSERT INTO order_flow.member (actor, department) VALUES ('tw_pv_me', 'finance')$$,
                              '42501', 'PUBLIC granting itself a department', as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$UPDATE order_flow.tracked_order SET state = 'paid' WHERE order_key = 'pv-1'$$,
                              '42501', 'PUBLIC rewriting a tracking row', as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$INSERT INTO order_flow.notification (order_key, department) VALUES ('pv-1', 'sales')$$,
                              '42501', 'PUBLIC forging a notification', as_role => 'tw_pv_nobody');
SELECT ok(has_table_privilege('tw_pv_nobody', 'order_flow.' || t, 'SELECT'), 'PUBLIC may read the catalogue table ' || t)
  FROM unnest(ARRAY['workflow', 'state', 'transition_rule', 'status_label']) t;

-- ---------------------------------------------- PUBLIC and the functions
SELECT ok(NOT has_function_privilege('tw_pv_nobody', f, 'EXECUTE'), 'PUBLIC cannot call ' || f)
  FROM unnest(ARRAY['order_flow.manage(regclass,name,name,text,name,name[])',
                    'order_flow.unmanage(regclass, boolean)',
                    'order_flow.record(text,text,jsonb)',
                    'order_flow.import_transition(regclass,text,text,timestamptz,jsonb)',
                    '_order_flow._append_event(text,text,text,text,jsonb,timestamptz)',
                    'order_flow.verify_audit(text)',
                    'order_flow.create_status(text,text,text)',
                    'order_flow.validate_workflow(text)',
                    'order_flow.event_hash(bytea,text,bigint,text,text,text,text,text,timestamptz,timestamptz,jsonb)']) f;
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('orders')$$, '42501', 'PUBLIC calling manage()',
                              as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('pv-1', 'note', '{}')$$, '42501', 'PUBLIC calling record()',
                              as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('orders', 'pv-1', 'quoted', '2024-01-01')$$, '42501',
                              'PUBLIC calling import_transition()', as_role => 'tw_pv_nobody', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT _order_flow._append_event('pv-1', 'transition', 'inquiry', 'paid', '{}', NULL)$$,
                              '42501', 'PUBLIC calling _append_event()', as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$SELECT _order_flow._append_event('order_flow:forged', 'config_change', NULL, NULL, '{}', NULL)$$,
                              '42501', 'PUBLIC opening a pseudo-order chain with _append_event()', as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.verify_audit()$$, '42501', 'PUBLIC calling verify_audit()',
                              as_role => 'tw_pv_nobody');
SELECT ok(has_function_privilege('tw_pv_nobody', f, 'EXECUTE'), 'PUBLIC may call ' || f)
  FROM unnest(ARRAY['order_flow.transition(regclass,text,text,text,jsonb)',
                    'order_flow.allowed_transitions(regclass,text)',
                    '_order_flow.status_in(cstring)', '_order_flow.status_out(order_flow.status)',
                    '_order_flow.status_recv(internal)', '_order_flow.status_send(order_flow.status)']) f;
-- SECURITY DEFINER functions PUBLIC may call must not open the tables they
-- read: a role without SELECT on a managed table learns nothing of its orders
CREATE ROLE tw_pv_outsider NOLOGIN;
INSERT INTO order_flow.member (actor, department) VALUES ('tw_pv_sales', 'sales');
INSERT INTO orders VALUES ('pv-2', 'inquiry');
CREATE FUNCTION pg_temp.outsider_probe() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    n int;
BEGIN
    BEGIN
        SET LOCAL ROLE tw_pv_outsider;
        PERFORM set_config('order_flow.actor', 'tw_pv_sales', true);
        SELECT count(*) INTO n FROM order_flow.allowed_transitions('orders', 'pv-2');
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = n::text;
    EXCEPTION
        WHEN insufficient_privilege THEN
            RETURN 'refused';
        WHEN raise_exception THEN
            RETURN CASE WHEN SQLERRM = '0' THEN 'nothing' ELSE SQLERRM || ' next states' END;
    END;
END
$f$;
SELECT is(CASE WHEN r IN ('refused', 'nothing') THEN 'nothing revealed' ELSE r END, 'nothing revealed',
          'allowed_transitions() reveals nothing about the orders of a table the caller may not read')
  FROM pg_temp.outsider_probe() r;
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text)
             FROM pg_proc p
            WHERE p.pronamespace = 'order_flow'::regnamespace AND p.prorettype = 'trigger'::regtype
              AND has_function_privilege('tw_pv_nobody', p.oid, 'EXECUTE')),
          NULL, 'PUBLIC can call no trigger function directly');

-- PUBLIC cannot reach the write paths through the helpers it may call
SELECT * FROM pg_temp.refused($$SELECT _order_flow._move('orders', 'pv-1', 'quoted', NULL, '{}', 'import', '2024-01-01')$$,
                              '42501', 'PUBLIC importing through _move()', as_role => 'tw_pv_nobody', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT _order_flow._set_context('pv-1', 'import', NULL, '{}', '2024-01-01')$$,
                              '42501', 'PUBLIC setting an import context', as_role => 'tw_pv_nobody');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'quoted' WHERE id = 'pv-1'$$, '42501',
                              'PUBLIC moving an order without a department', '%may not move%',
                              as_role => 'tw_pv_nobody', actor => 'tw_pv_me', tbl => 'orders');

-- ------------------------------------------------------ order_flow_admin
SELECT ok(has_table_privilege('tw_pv_admin', 'order_flow.audit_log', 'SELECT'), 'order_flow_admin may read the log');
SELECT ok(NOT has_table_privilege('tw_pv_admin', 'order_flow.audit_log', 'INSERT')
          AND NOT has_table_privilege('tw_pv_admin', 'order_flow.audit_log', 'UPDATE')
          AND NOT has_table_privilege('tw_pv_admin', 'order_flow.audit_log', 'DELETE')
          AND NOT has_table_privilege('tw_pv_admin', 'order_flow.audit_log', 'TRUNCATE'),
          'order_flow_admin may not write the log directly');
SELECT ok(has_function_privilege('tw_pv_admin', f, 'EXECUTE'), 'order_flow_admin may call ' || f)
  FROM unnest(ARRAY['order_flow.manage(regclass,name,name,text,name,name[])',
                    'order_flow.record(text,text,jsonb)',
                    'order_flow.import_transition(regclass,text,text,timestamptz,jsonb)',
                    'order_flow.verify_audit(text)']) f;
SELECT ok(NOT has_function_privilege('tw_pv_admin', '_order_flow._append_event(text,text,text,text,jsonb,timestamptz)', 'EXECUTE'),
          'order_flow_admin cannot append arbitrary events with _append_event()');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_pv_admin', NULL, 'CREATE TEMP TABLE pv_check AS SELECT * FROM order_flow.verify_audit()')$$,
                'order_flow_admin runs verify_audit()');
SELECT is((SELECT count(*)::int FROM pv_check), 0, 'and the log verifies');

-- -------------------------------------- SECURITY DEFINER and search_path
SELECT cmp_ok((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'order_flow'::regnamespace AND prosecdef), '>', 0,
              'the extension has SECURITY DEFINER functions to check');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
             FROM pg_proc p
            WHERE p.pronamespace = 'order_flow'::regnamespace AND p.prosecdef
              AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')),
          NULL, 'every SECURITY DEFINER function pins search_path');
SELECT is((SELECT array_agg(p.oid::regprocedure::text || ': ' || c ORDER BY 1)
             FROM pg_proc p, unnest(p.proconfig) c
            WHERE p.pronamespace = 'order_flow'::regnamespace AND p.prosecdef AND c LIKE 'search_path=%'
              AND (c ~* '(public|\$user)'
                   OR regexp_replace(c, '^search_path=', '') !~ 'pg_temp\s*$'
                   OR regexp_replace(c, '^search_path=', '') !~ '^\s*"?pg_catalog"?\s*,')),
          NULL, 'pinned search_paths are pg_catalog first, pg_temp last, no public or $user');
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1)
             FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
            WHERE p.pronamespace = 'order_flow'::regnamespace AND p.prosecdef AND NOT r.rolsuper
              AND r.rolname <> (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'order_flow')),
          NULL, 'SECURITY DEFINER functions are owned by the extension owner');
SELECT ok(NOT has_schema_privilege('tw_pv_nobody', 'order_flow', 'CREATE'),
          'PUBLIC cannot create objects in schema order_flow (no shadowing of its functions)');

SELECT * FROM finish();
ROLLBACK;
