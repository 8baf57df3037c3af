-- test/pgtap/trust.sql -- what an attacker with some rights, or a table
-- owner, or a superuser editing behind the extension's back, can no longer
-- do unseen (1.2):
--   * manage() runs no user code with the caller's rights;
--   * PUBLIC may execute exactly the documented functions (acknowledge()
--     is not among them);
--   * the chain is the truth: a row changed while the trigger was disabled
--     cannot be moved on (order_flow_chain_drift) until repair_drift()
--     records the drift; verify_audit() finds state discontinuities, heads
--     that disagree with their chains and rows that drifted;
--   * a COPY into the configuration by anyone but a superuser is
--     validated and audited like any edit;
--   * witness checkpoints find what the hash chain cannot: a tail deleted
--     with its head moved back, a chain re-hashed, a chain removed;
--   * DELETE of a managed order is recorded, its key cannot come back,
--     TRUNCATE is refused;
--   * non-finite times are refused, and the metrics survive ones already
--     stored;
--   * an exception type comes from the rule, never from caller details.
-- Each refusal: its SQLSTATE and nothing written.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(88);

CREATE ROLE tw_tr_nobody NOLOGIN;              -- only what PUBLIC has
CREATE ROLE tw_tr_admin NOLOGIN IN ROLE order_flow_admin;
CREATE ROLE tw_tr_owner NOLOGIN;               -- owns a table, nothing else
GRANT USAGE, CREATE ON SCHEMA public TO tw_tr_owner, tw_tr_admin;

CREATE TABLE orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', region text);
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO tw_tr_admin;
INSERT INTO orders VALUES ('tr-1', 'inquiry', 'east'), ('tr-2', 'inquiry', 'west'),
                          ('tr-3', 'inquiry', 'east'), ('tr-4', 'inquiry', 'north');
SELECT order_flow.manage('orders', attributes => '{region}');
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed' WHERE id IN ('tr-1', 'tr-2');

-- problems(key): verify_audit()'s findings for one order, as text
CREATE FUNCTION pg_temp.problems(k text DEFAULT NULL) RETURNS text[]
LANGUAGE sql AS $$
    SELECT coalesce(array_agg(coalesce(v.order_key, '*') || ': ' || v.problem ORDER BY v.order_key, v.problem), '{}')
      FROM order_flow.verify_audit(k) v
$$;
-- behind(cmd): run cmd as a superuser who has switched the extension's
-- triggers off (session_replication_role = replica), as an attacker would
CREATE FUNCTION pg_temp.behind(cmd text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL session_replication_role = replica;
    EXECUTE cmd;
    SET LOCAL session_replication_role = origin;
END
$$;
-- rehash(key): recompute every hash of one chain, as a forger with the
-- public event_hash() would, and move the head to match
CREATE FUNCTION pg_temp.rehash(k text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    e record;
    prev bytea := NULL;
    h bytea;
BEGIN
    SET LOCAL session_replication_role = replica;
    FOR e IN SELECT * FROM order_flow.audit_log WHERE order_key = k ORDER BY seq LOOP
        h := order_flow.event_hash(prev, e.order_key, e.seq, e.action, e.from_state, e.to_state,
                                   e.actor, e.db_user, e.occurred_at, e.recorded_at, e.details);
        UPDATE order_flow.audit_log SET prev_hash = prev, hash = h WHERE id = e.id;
        prev := h;
    END LOOP;
    UPDATE order_flow.tracked_order SET last_hash = prev,
           last_seq = (SELECT max(seq) FROM order_flow.audit_log WHERE order_key = k)
     WHERE order_key = k;
    SET LOCAL session_replication_role = origin;
END
$$;

-- ==================================================== 4. manage() as owner
-- The owner of a table gives its customer column a composite type whose
-- cast to text is his own function; manage() must run it as him, under a
-- restricted operation, never as the superuser calling manage().
SET ROLE tw_tr_owner;
CREATE TYPE tr_cust AS (name text);
CREATE TABLE tr_seen (who text, was_superuser boolean);
CREATE FUNCTION tr_cust_text(c tr_cust) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.tr_seen VALUES (current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
    BEGIN
        EXECUTE 'ALTER ROLE tw_tr_owner SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN c.name;
END $f$;
CREATE CAST (tr_cust AS text) WITH FUNCTION tr_cust_text(tr_cust);
CREATE TABLE owned_orders (id text PRIMARY KEY, status text NOT NULL, cust tr_cust);
INSERT INTO owned_orders VALUES ('tr-o1', 'inquiry', ROW('acme'));
RESET ROLE;
SELECT order_flow.manage('owned_orders', customer_column => 'cust');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'tw_tr_owner'), false,
          'manage() by a superuser does not let a table owner''s cast make him superuser');
SELECT is((SELECT array_agg(DISTINCT who) FROM tr_seen), ARRAY['tw_tr_owner']::name[]::text[],
          'the owner''s cast ran as the owner');
SELECT is((SELECT customer_key FROM order_flow.tracked_order WHERE order_key = 'tr-o1'), 'acme',
          'the customer was still adopted through the owner''s cast');
SELECT * FROM pg_temp.refused($$SELECT * FROM _order_flow._read_as_owner('orders', 'id', 'status')$$, '42501',
                              'the row reader for a role that may not read the table', as_role => 'tw_tr_nobody');

-- ================================================ 6. what PUBLIC may call
SELECT is(ARRAY(SELECT DISTINCT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace IN ('order_flow'::regnamespace, '_order_flow'::regnamespace)
                   AND has_function_privilege('tw_tr_nobody', p.oid, 'EXECUTE') ORDER BY 1),
          ARRAY(SELECT unnest(ARRAY[
            -- moving orders (rights judged on department membership)
            '_caller_may_read', '_loading', '_managed', '_move', '_set_context', '_take_context_result',
            '_citus_distributed', '_citus_move', 'allowed_transitions',
            -- what the views read of Citus's distributed tables (nothing for a caller who may not read them)
            '_citus_heads', '_citus_log', '_citus_pending', 'current_actor', 'is_admin', 'transition',
            -- which versions run
            '_library_version', 'version',
            -- the status type (its operators and min/max live in pg_catalog)
            'status_cmp', 'status_eq', 'status_from_text', 'status_ge', 'status_gt',
            'status_hash', 'status_hash_extended', 'status_in', 'status_larger', 'status_le', 'status_lt',
            'status_ne', 'status_out', 'status_position', 'status_recv', 'status_send', 'status_smaller',
            'status_to_text', 'status_lt_text', 'status_le_text', 'status_gt_text', 'status_ge_text',
            'text_lt_status', 'text_le_status', 'text_gt_status', 'text_ge_status',
            -- pure functions and aggregates the metrics views use (they read nothing);
            -- their internal-state support functions are the aggregates' owner's to call
            '_business_date', '_health_score', '_hours', '_kpi_merge', '_kpi_merge_trans', '_kpi_partial',
            '_metric_date', '_metric_number', 'breadth', 'business_hours', 'business_time_zone', 'health_profile',
            'kpi_summary', 'median', 'monthly_orders', 'order_frequency', 'order_value_trend',
            'order_volatility'
          ]::text[]) ORDER BY 1),
          'PUBLIC may execute exactly the functions the README lists');
SET LOCAL ROLE tw_tr_nobody;
SELECT is((SELECT order_flow.median(v) FROM (VALUES (1.0::float8), (3.0), (10.0)) t(v)), 3.0::float8,
          'PUBLIC computes with the aggregates, whose support functions it may not call itself');
RESET ROLE;
SELECT ok(NOT has_function_privilege('tw_tr_nobody', 'order_flow.acknowledge(bigint,text,jsonb)', 'EXECUTE'),
          'PUBLIC cannot acknowledge notifications');
SELECT ok(has_function_privilege('tw_tr_admin', 'order_flow.acknowledge(bigint,text,jsonb)', 'EXECUTE'),
          'order_flow_admin can');
SELECT * FROM pg_temp.refused(
    $$SELECT order_flow.acknowledge((SELECT min(id) FROM order_flow.notification))$$, '42501',
    'PUBLIC answering a notification', as_role => 'tw_tr_nobody', actor => 'wh_lead');

-- ====================================================== 7. chain is truth
SELECT pg_temp.behind($$UPDATE orders SET status = 'paid' WHERE id = 'tr-3'$$);
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'archived' WHERE id = 'tr-3'$$, '55000',
                              'moving a row whose status was changed behind the trigger''s back',
                              '%"paid" in public.orders but "quoted" in its audit chain%', tbl => 'orders');
SELECT is((SELECT o.hint FROM pg_temp.outcome($$UPDATE orders SET status = 'archived' WHERE id = 'tr-3'$$) o),
          'An order_flow administrator can record the drift with order_flow.repair_drift(''public.orders'', ''tr-3'', ''reason''), or set the row back to "quoted".',
          'the drift refusal names the repair function');
SELECT is(pg_temp.problems('tr-3'), ARRAY['tr-3: drift: public.orders says paid, the chain says quoted'],
          'verify_audit() reports the drifted row');
SELECT * FROM pg_temp.refused($$SELECT order_flow.repair_drift('orders', 'tr-3', 'paid by cheque')$$, '42501',
                              'repair_drift() by PUBLIC', as_role => 'tw_tr_nobody', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.repair_drift('orders', 'tr-3', ' ')$$, '23514',
                              'repair_drift() without a note', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.repair_drift('orders', 'tr-4', 'nothing to repair')$$, '55000',
                              'repair_drift() of an order that has not drifted', tbl => 'orders');
-- setting the row back to its chain's state is allowed and records nothing
SELECT pg_temp.behind($$UPDATE orders SET status = 'paid' WHERE id = 'tr-4'$$);
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key = 'tr-4'), 1, '(tr-4 has one event)');
UPDATE orders SET status = 'quoted' WHERE id = 'tr-4';
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key = 'tr-4'), 1,
          'a drifted row set back to its chain''s state is accepted and records nothing');
SELECT is(pg_temp.problems('tr-4'), '{}', '... and nothing is left to report');
SELECT pg_temp.run_as('tw_tr_admin', 'auditor', $$SELECT order_flow.repair_drift('orders', 'tr-3', 'paid by cheque')$$);
SELECT is((SELECT format('%s %s>%s by %s: %s', action, from_state, to_state, actor, details->>'note')
             FROM order_flow.audit_log WHERE order_key = 'tr-3' ORDER BY seq DESC LIMIT 1),
          'drift quoted>paid by auditor: paid by cheque', 'repair_drift() appends a drift event with the note and the person');
UPDATE orders SET status = 'archived' WHERE id = 'tr-3';
SELECT is(pg_temp.problems(), '{}', 'after the repair the order moves on and everything verifies');

-- continuity: a forged, well-hashed event that starts in the wrong state
SELECT pg_temp.behind($$
    INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                      occurred_at, recorded_at, details, prev_hash, hash)
    SELECT order_key, last_seq + 1, 'transition', 'finance_approved', 'picking', 'forger', 'postgres',
           '2030-01-01', '2030-01-01', '{}', last_hash,
           order_flow.event_hash(last_hash, order_key, last_seq + 1, 'transition', 'finance_approved', 'picking',
                                 'forger', 'postgres', '2030-01-01', '2030-01-01', '{}')
      FROM order_flow.tracked_order WHERE order_key = 'tr-4'$$);
SELECT pg_temp.rehash('tr-4');
SELECT pg_temp.behind($$UPDATE order_flow.tracked_order SET state = 'picking' WHERE order_key = 'tr-4';
                        UPDATE orders SET status = 'picking' WHERE id = 'tr-4'$$);
SELECT is(pg_temp.problems('tr-4'),
          ARRAY['tr-4: state discontinuity: the event starts from finance_approved but the previous event ended in quoted'],
          'a well-hashed forged event that skips states is found by state continuity');
SELECT pg_temp.behind($$DELETE FROM order_flow.audit_log WHERE order_key = 'tr-4' AND actor = 'forger';
                        UPDATE order_flow.tracked_order SET state = 'quoted' WHERE order_key = 'tr-4';
                        UPDATE orders SET status = 'quoted' WHERE id = 'tr-4'$$);
SELECT pg_temp.rehash('tr-4');
-- a head whose state was moved alone
SELECT pg_temp.behind($$UPDATE order_flow.tracked_order SET state = 'shipped' WHERE order_key = 'tr-2'$$);
SELECT is(pg_temp.problems('tr-2'),
          ARRAY['tr-2: chain head says the order is in state shipped but its last event left it in contract_signed',
                'tr-2: drift: public.orders says contract_signed, the chain says shipped'],
          'a chain head whose state was moved is found');
SELECT pg_temp.behind($$UPDATE order_flow.tracked_order SET state = 'contract_signed' WHERE order_key = 'tr-2'$$);
-- rows written or deleted behind the trigger's back
SELECT pg_temp.behind($$INSERT INTO orders VALUES ('tr-ghost', 'quoted', 'east')$$);
SELECT is(pg_temp.problems('tr-ghost'),
          ARRAY['tr-ghost: row of public.orders in state quoted has no chain (written while the trigger was not running)'],
          'a row inserted with the trigger off is found');
SELECT pg_temp.behind($$DELETE FROM orders WHERE id = 'tr-ghost'$$);

-- ============================================ 8. COPY is an edit for admins
SET ROLE tw_tr_admin;
SET row_security = off;
SAVEPOINT copy_edge;
COPY order_flow.transition_rule (workflow, from_state, to_state) FROM STDIN;
b2b_order	inquiry	paid
\.
RESET ROLE;
RESET row_security;
SELECT is((SELECT count(*)::int FROM order_flow.audit_log
            WHERE order_key = 'order_flow:config' AND action = 'config_change' AND details->>'table' = 'transition_rule'
              AND details->'new'->>'to_state' = 'paid' AND db_user = 'tw_tr_admin'), 1,
          'an admin''s COPY into the rules (row security off) is audited as a config change');
ROLLBACK TO SAVEPOINT copy_edge;
SET ROLE tw_tr_admin;
SET row_security = off;
SAVEPOINT copy_bad;
COPY order_flow.transition_rule (workflow, from_state, to_state) FROM STDIN;
b2b_order	archived	inquiry
\.
\set ON_ERROR_STOP 0
SET CONSTRAINTS ALL IMMEDIATE;  -- refused (psql prints the error: expected)
\set ON_ERROR_STOP 1
ROLLBACK TO SAVEPOINT copy_bad;
RESET ROLE;
RESET row_security;
SELECT is(:'LAST_ERROR_SQLSTATE'::text, '23514', 'an admin''s COPY of an edge out of a terminal state is validated and refused');
SELECT is((SELECT count(*)::int FROM order_flow.transition_rule WHERE from_state = 'archived'), 0,
          'and the edge is not there');

-- ============================================================ 9. witness
SELECT order_flow.audit_checkpoint() AS cp \gset
SELECT is((:'cp'::jsonb) ?& ARRAY['checkpoint', 'taken_at', 'events', 'chains', 'digest'], true,
          'audit_checkpoint() returns id, time, event and chain counts and a digest');
SELECT is((:'cp'::jsonb->>'events')::bigint, (SELECT count(*) FROM order_flow.audit_log),
          'the checkpoint counts every event');
SELECT is(ARRAY(SELECT problem FROM order_flow.verify_audit(:'cp'::jsonb)), '{}',
          'right after the checkpoint: nothing to report');
UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 'tr-1';
SELECT is(ARRAY(SELECT problem FROM order_flow.verify_audit(:'cp'::jsonb)), '{}',
          'events appended since the checkpoint are fine');
-- (a) the tail deleted and the head moved back: invisible to the chain alone
SELECT pg_temp.behind($$
    DELETE FROM order_flow.audit_log WHERE order_key = 'tr-2' AND seq = (SELECT max(seq) FROM order_flow.audit_log WHERE order_key = 'tr-2');
    UPDATE order_flow.tracked_order t SET last_seq = a.seq, last_hash = a.hash, state = a.to_state
      FROM (SELECT seq, hash, to_state FROM order_flow.audit_log WHERE order_key = 'tr-2' ORDER BY seq DESC LIMIT 1) a
     WHERE t.order_key = 'tr-2';
    UPDATE orders SET status = 'quoted' WHERE id = 'tr-2'$$);
SELECT is(pg_temp.problems('tr-2'), '{}', 'without a checkpoint, a tail deleted with its head moved back is not seen');
-- witnessed(cp): verify_audit(cp)'s findings, each cut before its first ':' or ';'
CREATE FUNCTION pg_temp.witnessed(cp jsonb) RETURNS text[]
LANGUAGE sql AS $$
    SELECT array_agg(x ORDER BY x)
      FROM (SELECT coalesce(v.order_key, '*') || ': ' || split_part(split_part(v.problem, ':', 1), ';', 1) AS x
              FROM order_flow.verify_audit(cp) v) w
$$;
SELECT is(pg_temp.witnessed(:'cp'),
          ARRAY['*: checkpoint ' || (:'cp'::jsonb->>'checkpoint') || ' witnessed ' || (:'cp'::jsonb->>'events') || ' events',
                'tr-2: chain shortened since checkpoint ' || (:'cp'::jsonb->>'checkpoint')]::text[],
          'with the checkpoint it is: the chain is shortened, and the event count is short');
-- (b) a whole chain re-hashed after an edit
SELECT pg_temp.behind($$UPDATE order_flow.audit_log SET actor = 'someone_else' WHERE order_key = 'tr-1' AND seq = 1$$);
SELECT pg_temp.rehash('tr-1');
SELECT is(pg_temp.problems('tr-1'), '{}', 'without a checkpoint, a chain re-hashed with event_hash() is not seen');
SELECT ok(pg_temp.witnessed(:'cp') @> ARRAY['tr-1: chain rewritten since checkpoint ' || (:'cp'::jsonb->>'checkpoint')],
          'with the checkpoint it is: the chain is rewritten');
-- (c) a whole chain removed
SELECT pg_temp.behind($$DELETE FROM order_flow.audit_log WHERE order_key = 'tr-3';
                        DELETE FROM order_flow.tracked_order WHERE order_key = 'tr-3';
                        DELETE FROM orders WHERE id = 'tr-3'$$);
SELECT is(pg_temp.problems('tr-3'), '{}', 'without a checkpoint, a chain removed whole (row and head too) is not seen');
SELECT ok(pg_temp.witnessed(:'cp') @> ARRAY['tr-3: chain shortened since checkpoint ' || (:'cp'::jsonb->>'checkpoint')],
          'a chain removed whole is found with the checkpoint');
-- (d) the checkpoint's own record in the database altered to hide it
SELECT pg_temp.behind($$DELETE FROM order_flow.audit_checkpoint_head WHERE order_key IN ('tr-1', 'tr-2', 'tr-3')$$);
SELECT ok(EXISTS (SELECT FROM order_flow.verify_audit(:'cp'::jsonb) v
                   WHERE v.problem LIKE '%do not match the digest given%'),
          'heads deleted from audit_checkpoint_head do not match the digest kept outside');
-- (e) what a checkpoint cannot see: events written after it, rewritten and
-- re-hashed consistently; a well-hashed event appended that continues the
-- states (the README's table says so)
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-4';
SELECT pg_temp.behind($$UPDATE order_flow.audit_log SET actor = 'someone_else'
                         WHERE order_key = 'tr-4' AND to_state = 'contract_signed'$$);
SELECT pg_temp.rehash('tr-4');
SELECT pg_temp.behind($$
    INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                      occurred_at, recorded_at, details, prev_hash, hash)
    SELECT order_key, last_seq + 1, 'transition', 'contract_signed', 'warehouse_confirmed', 'forger', 'postgres',
           '2030-01-01', '2030-01-01', '{}', last_hash,
           order_flow.event_hash(last_hash, order_key, last_seq + 1, 'transition', 'contract_signed', 'warehouse_confirmed',
                                 'forger', 'postgres', '2030-01-01', '2030-01-01', '{}')
      FROM order_flow.tracked_order WHERE order_key = 'tr-4';
    UPDATE order_flow.tracked_order SET last_seq = last_seq + 1, state = 'warehouse_confirmed',
           last_hash = (SELECT hash FROM order_flow.audit_log WHERE order_key = 'tr-4' ORDER BY seq DESC LIMIT 1)
     WHERE order_key = 'tr-4';
    UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 'tr-4'$$);
SELECT is(ARRAY(SELECT problem FROM order_flow.verify_audit(:'cp'::jsonb) WHERE order_key = 'tr-4'), '{}',
          'not seen, even with a checkpoint: events after it rewritten and re-hashed, a forged event that continues the states');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.verify_audit('{"checkpoint": "x"}'::jsonb)$$, '22023',
                              'verify_audit() with something that is not a checkpoint');
SELECT * FROM pg_temp.refused($$SELECT order_flow.audit_checkpoint()$$, '42501',
                              'audit_checkpoint() by PUBLIC', as_role => 'tw_tr_nobody');

-- ============================================== 10. DELETE and TRUNCATE
CREATE TABLE del_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
INSERT INTO del_orders VALUES ('tr-d1'), ('tr-d2');
SELECT order_flow.manage('del_orders');
UPDATE del_orders SET status = 'quoted';
UPDATE del_orders SET status = 'contract_signed' WHERE id = 'tr-d1';
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key = 'tr-d1' AND status = 'pending'), 3,
          'contract signed opened three notifications');
SELECT pg_temp.run_as(NULL, 'clerk_carl', $$DELETE FROM del_orders WHERE id = 'tr-d1'$$);
SELECT is((SELECT format('%s from %s to %s by %s', action, from_state, coalesce(to_state, '-'), actor)
             FROM order_flow.audit_log WHERE order_key = 'tr-d1' ORDER BY seq DESC LIMIT 1),
          'deleted from contract_signed to - by clerk_carl', 'DELETE appends a deleted event with the last state and the person');
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key = 'tr-d1' AND status = 'pending'), 0,
          'its open notifications are closed');
SELECT is((SELECT count(*)::int FROM order_flow.pending_acks WHERE order_key = 'tr-d1'), 0, 'and leave pending_acks');
SELECT is((SELECT stale_after FROM order_flow.tracked_order WHERE order_key = 'tr-d1'), NULL,
          'its reminders stop');
SELECT is(pg_temp.problems('tr-d1'), '{}', 'the deleted order''s chain verifies');
SELECT * FROM pg_temp.refused($$INSERT INTO del_orders VALUES ('tr-d1')$$, '23505',
                              're-inserting the key of a deleted order', '%was deleted%', tbl => 'del_orders');
SELECT is((SELECT o.hint FROM pg_temp.outcome($$INSERT INTO del_orders VALUES ('tr-d1')$$) o),
          'Give the new order a new key.', 'the refusal says what to do');
SELECT * FROM pg_temp.refused($$TRUNCATE del_orders$$, '55000', 'TRUNCATE of a managed table', tbl => 'del_orders');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key = 'tr-d2'), 1,
          '(tr-d2 has its one event)');
INSERT INTO del_orders VALUES ('tr-d2', 'inquiry') ON CONFLICT (id) DO UPDATE SET status = 'contract_signed';
SELECT is((SELECT string_agg(action || ':' || to_state, ',' ORDER BY seq) FROM order_flow.audit_log WHERE order_key = 'tr-d2'),
          'transition:quoted,transition:contract_signed',
          'an upsert of a live order records only its update, no second created event');
SELECT order_flow.escalate_due(now() + interval '30 days' * g) FROM generate_series(1, 4) g;
SELECT ok((SELECT count(*) FROM order_flow.audit_log WHERE order_key = 'tr-d2' AND action IN ('escalate', 'remind')) > 0,
          'sweeps a month apart escalate and remind a live order ...');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key = 'tr-d1' AND action IN ('escalate', 'remind')), 0,
          '... but not the deleted one');
SELECT order_flow.unmanage('del_orders');
TRUNCATE del_orders;
SELECT is((SELECT count(*)::int FROM del_orders), 0, 'an unmanaged table may be truncated');

-- the refusals carry a constraint name and the managed table
CREATE FUNCTION pg_temp.refusal_names(cmd text, as_role text DEFAULT NULL, actor text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
    st text; cn text; sn text; tn text;
BEGIN
    BEGIN
        IF as_role IS NOT NULL THEN
            EXECUTE format('SET LOCAL ROLE %I', as_role);
        END IF;
        PERFORM set_config('order_flow.actor', coalesce(actor, ''), true);
        EXECUTE cmd;
        RETURN 'no error';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, cn = CONSTRAINT_NAME, sn = SCHEMA_NAME, tn = TABLE_NAME;
        RETURN format('%s %s %s.%s', st, cn, sn, tn);
    END;
END
$f$;
CREATE TABLE names_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
INSERT INTO names_orders VALUES ('tr-n1');
SELECT order_flow.manage('names_orders');
GRANT SELECT, UPDATE ON names_orders TO tw_tr_nobody;
SELECT is(pg_temp.refusal_names($$UPDATE names_orders SET status = 'shipped'$$),
          '23514 order_flow_transition public.names_orders', 'no such edge: 23514, order_flow_transition, the table');
SELECT is(pg_temp.refusal_names($$UPDATE names_orders SET status = 'cancelled'$$),
          '23514 order_flow_reason_required public.names_orders', 'no reason: 23514, order_flow_reason_required');
SELECT is(pg_temp.refusal_names($$UPDATE names_orders SET status = 'quoted'$$, 'tw_tr_nobody', 'nobody_at_all'),
          '42501 order_flow_not_authorised public.names_orders', 'not a member: 42501, order_flow_not_authorised');

-- ====================================================== 11. finite times
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('orders', 'tr-4', 'cancelled', '-infinity')$$, '22008',
                              'an import at -infinity', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('orders', 'tr-4', 'cancelled', 'infinity')$$, '22008',
                              'an import at infinity', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.escalate_due('infinity')$$, '22008', 'escalate_due(infinity)');
SELECT * FROM pg_temp.refused($$SELECT order_flow.escalate_due('-infinity')$$, '22008', 'escalate_due(-infinity)');
SELECT * FROM pg_temp.refused($$SELECT order_flow.logistics_update('NOPE-1', 'in_transit', '-infinity', 'x')$$, '22008',
                              'a carrier trace at -infinity');
-- a -infinity business time already stored (1.1 accepted it)
SELECT pg_temp.behind($$
    INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                      occurred_at, recorded_at, details, prev_hash, hash)
    SELECT order_key, last_seq + 1, 'import', 'contract_signed', 'warehouse_confirmed', 'importer', 'postgres',
           '-infinity', '2030-01-01', '{"exception_type": "late_stock"}', last_hash,
           order_flow.event_hash(last_hash, order_key, last_seq + 1, 'import', 'contract_signed', 'warehouse_confirmed',
                                 'importer', 'postgres', '-infinity', '2030-01-01', '{"exception_type": "late_stock"}')
      FROM order_flow.tracked_order WHERE order_key = 'tr-1'$$);
SELECT lives_ok($$SELECT count(*) FROM (SELECT * FROM order_flow.state_durations) x$$, 'state_durations reads a -infinity event');
SELECT lives_ok($$SELECT * FROM order_flow.delay_events$$, 'delay_events too');
SELECT lives_ok($$SELECT * FROM order_flow.delay_reasons$$, 'delay_reasons too');
SELECT lives_ok($$SELECT * FROM order_flow.top_delay_reasons(NULL, NULL, NULL, 5)$$, 'top_delay_reasons() too');
SELECT lives_ok($$SELECT * FROM order_flow.order_timeline$$, 'order_timeline too');
SELECT is((SELECT array_agg(wall_hours) FROM order_flow.state_durations WHERE order_key = 'tr-1' AND entered_at = '-infinity'),
          ARRAY[NULL]::float8[], 'a visit with a non-finite start has no duration');

-- ================================================ 12. exception types
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-4' AND false;
CREATE TABLE ex_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
INSERT INTO ex_orders VALUES ('tr-e1');
SELECT order_flow.manage('ex_orders');
SELECT order_flow.transition('ex_orders', 'tr-e1', 'quoted', details => '{"exception_type": "fraud_suspected", "ref": 7}');
SELECT is((SELECT details ? 'exception_type' FROM order_flow.audit_log WHERE order_key = 'tr-e1' AND to_state = 'quoted'),
          false, 'a caller''s exception_type is not recorded on a transition');
SELECT is((SELECT details->>'ref' FROM order_flow.audit_log WHERE order_key = 'tr-e1' AND to_state = 'quoted'),
          '7', 'the rest of the caller''s details is');
SELECT is((SELECT count(*)::int FROM order_flow.exception_pareto WHERE exception_type = 'fraud_suspected'), 0,
          'exception_pareto does not count it');
SELECT is((SELECT count(*)::int FROM order_flow.exception_fact WHERE exception_type = 'fraud_suspected'), 0,
          'nor does the rollup');
SELECT order_flow.record('tr-e1', 'exception', '{"exception_type": "fraud_suspected"}');
SELECT is((SELECT count FROM order_flow.exception_pareto WHERE exception_type = 'fraud_suspected')::int, 1,
          'record(..., ''exception'', ...) does');

SELECT * FROM finish();
ROLLBACK;
