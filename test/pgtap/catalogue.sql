-- test/pgtap/catalogue.sql -- the workflow catalogue (SPEC 3.2): structural
-- validation at commit, auditing of every configuration edit, rights to
-- edit it, and the shape of the shipped b2b_order workflow.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(86);

-- config_check(cmd, want_state, descr, want_msg): the edit is accepted when
-- made (validation is deferred), refused at commit time (SET CONSTRAINTS ALL
-- IMMEDIATE runs the deferred checks exactly as COMMIT would) with that
-- SQLSTATE and message, and leaves nothing behind.  Three assertions; both
-- runs are rolled back by pg_temp.outcome().
CREATE FUNCTION pg_temp.config_check(cmd text, want_state text, descr text, want_msg text DEFAULT '%')
RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT * FROM pg_temp.config_check_in('SELECT pg_temp.snapshot()', cmd, want_state, descr, want_msg)
$f$;

-- ---------------------------------------------- the shipped workflow shape
SELECT ok(EXISTS (SELECT 1 FROM order_flow.workflow WHERE workflow = 'b2b_order'), 'workflow b2b_order ships');
SELECT ok((SELECT count(*) FROM order_flow.state WHERE workflow = 'b2b_order')
          BETWEEN 21 AND 23, 'b2b_order has 21 to 23 states');
SELECT ok(ARRAY(SELECT state FROM order_flow.state WHERE workflow = 'b2b_order') @>
          ARRAY['inquiry', 'quoted', 'contract_signed', 'warehouse_confirmed', 'finance_approved', 'scheduled',
                'picking', 'packed', 'shipped', 'in_transit', 'delivered', 'accepted', 'invoiced', 'paid',
                'archived', 'need_info', 'on_hold', 'stock_shortage', 'rework', 'returned', 'cancelled'],
          'b2b_order has every state SPEC 3.2 names');
SELECT results_eq($$SELECT state FROM order_flow.state WHERE workflow = 'b2b_order' AND category = 'initial'$$,
                  ARRAY['inquiry'], 'inquiry is the one initial state');
SELECT ok((SELECT array_agg(state) FROM order_flow.state WHERE workflow = 'b2b_order' AND category = 'terminal')
          @> ARRAY['archived', 'cancelled'], 'archived and cancelled are terminal');
SELECT is((SELECT count(*)::int FROM order_flow.transition_rule r
             JOIN order_flow.state s ON s.workflow = r.workflow AND s.state = r.from_state
            WHERE r.workflow = 'b2b_order' AND s.category = 'terminal'), 0,
          'no edge leaves a terminal state');
SELECT set_eq($$SELECT department FROM order_flow.department$$,
              ARRAY['sales', 'commerce', 'warehouse', 'finance', 'logistics', 'after_sales'],
              'the six departments of SPEC 3.2');

SELECT is(
    (SELECT count(*)::int
       FROM unnest(ARRAY['inquiry', 'quoted', 'contract_signed', 'warehouse_confirmed', 'finance_approved',
                         'scheduled', 'picking', 'packed', 'shipped', 'in_transit', 'delivered', 'accepted',
                         'invoiced', 'paid', 'archived']) WITH ORDINALITY a(f, i)
       JOIN unnest(ARRAY['inquiry', 'quoted', 'contract_signed', 'warehouse_confirmed', 'finance_approved',
                         'scheduled', 'picking', 'packed', 'shipped', 'in_transit', 'delivered', 'accepted',
                         'invoiced', 'paid', 'archived']) WITH ORDINALITY b(t, j) ON j = i + 1
      WHERE EXISTS (SELECT 1 FROM order_flow.transition_rule r
                     WHERE r.workflow = 'b2b_order' AND r.from_state = a.f AND r.to_state = b.t)),
    14, 'each consecutive pair of the main path is an edge (14 edges)');
SELECT ok(EXISTS (SELECT 1 FROM order_flow.transition_rule
                   WHERE workflow = 'b2b_order' AND from_state = 'finance_approved' AND to_state = 'picking'),
          'finance_approved -> picking is an edge (scheduling is optional)');
SELECT set_eq($$SELECT unnest(notify) FROM order_flow.transition_rule
                 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed'$$,
              ARRAY['warehouse', 'finance', 'logistics'],
              'quoted -> contract_signed notifies warehouse, finance and logistics');
SELECT is((SELECT ack_within FROM order_flow.transition_rule
            WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed'),
          interval '15 minutes', 'quoted -> contract_signed has a 15-minute acknowledgement window');
SELECT is((SELECT count(*)::int FROM order_flow.state
            WHERE workflow = 'b2b_order' AND category <> 'terminal'
              AND max_dwell IS DISTINCT FROM interval '48 hours'), 0,
          'every non-terminal state has a 48 h "cannot wait" threshold');
SELECT ok((SELECT resumes_to_origin FROM order_flow.state WHERE workflow = 'b2b_order' AND state = 'on_hold'),
          'on_hold resumes to the state it was held from');
SELECT is((SELECT count(*)::int FROM order_flow.transition_rule
            WHERE workflow = 'b2b_order' AND from_state = 'on_hold' AND to_state NOT IN ('cancelled')), 0,
          'on_hold has no ordinary exit edge besides cancellation (it resumes to its origin)');
SELECT set_eq($$SELECT state FROM order_flow.state WHERE workflow = 'b2b_order' AND category = 'exception'$$,
              ARRAY['need_info', 'on_hold', 'stock_shortage', 'rework', 'returned'],
              'the exception states');
SELECT results_eq($$SELECT state, stamps FROM order_flow.state
                     WHERE workflow = 'b2b_order' AND stamps IS NOT NULL ORDER BY state$$,
                  $$VALUES ('contract_signed', 'contract_signed'), ('finance_approved', 'finance_approved'),
                           ('shipped', 'shipped'), ('warehouse_confirmed', 'warehouse_confirmed')$$,
                  'the four core times are stamped by their states');
SELECT is((SELECT count(*)::int FROM order_flow.transition_rule
            WHERE workflow = 'b2b_order' AND to_state IN ('on_hold', 'cancelled') AND NOT reason_required), 0,
          'holding or cancelling an order requires a reason');
SELECT is((SELECT count(*)::int FROM order_flow.state WHERE workflow = 'b2b_order' AND owner_department IS NULL), 0,
          'every state has an owner department');
SELECT is((SELECT count(*)::int FROM order_flow.department d
            WHERE (SELECT count(*) FROM order_flow.escalation_policy e WHERE e.department = d.department) < 3), 0,
          'every department has an escalation chain of at least three levels');
SELECT is((SELECT count(*)::int FROM order_flow.department WHERE calendar <> '24x7'), 0,
          'departments run on the 24x7 calendar by default');
SELECT ok((SELECT always_open FROM order_flow.calendar WHERE calendar = '24x7'), 'the 24x7 calendar is always open');
SELECT is((SELECT count(*)::int
             FROM unnest(ARRAY['inquiry', 'quoted', 'contract_signed', 'warehouse_confirmed', 'finance_approved',
                               'scheduled', 'picking', 'packed', 'shipped', 'in_transit', 'delivered', 'accepted',
                               'invoiced', 'paid', 'archived']) WITH ORDINALITY a(f, i)
             JOIN unnest(ARRAY['inquiry', 'quoted', 'contract_signed', 'warehouse_confirmed', 'finance_approved',
                               'scheduled', 'picking', 'packed', 'shipped', 'in_transit', 'delivered', 'accepted',
                               'invoiced', 'paid', 'archived']) WITH ORDINALITY b(t, j) ON j = i + 1
             JOIN order_flow.status_label la ON la.label = a.f
             JOIN order_flow.status_label lb ON lb.label = b.t
            WHERE la.sort_position >= lb.sort_position), 0,
          'the main path''s dictionary positions increase along the process');


-- ------------------------------------------------------------ validation
SELECT is((SELECT array_agg(tgrelid::regclass::text ORDER BY tgrelid::regclass::text) FROM pg_trigger
            WHERE tgfoid = '_order_flow._validate_config'::regproc
              AND tgconstraint <> 0 AND tgdeferrable AND tginitdeferred),
          ARRAY['order_flow.state', 'order_flow.transition_rule'],
          'state and transition_rule are validated by deferred constraint triggers (at commit)');
SELECT lives_ok($$SELECT order_flow.validate_workflow('b2b_order')$$,
                'the shipped workflow passes validate_workflow()');

SELECT * FROM pg_temp.config_check(
    $$UPDATE order_flow.state SET category = 'initial' WHERE workflow = 'b2b_order' AND state = 'quoted'$$,
    '23514', 'two initial states', '%exactly one initial state%');
SELECT * FROM pg_temp.config_check(
    $$UPDATE order_flow.state SET category = 'active' WHERE workflow = 'b2b_order' AND state = 'inquiry'$$,
    '23514', 'no initial state', '%exactly one initial state%');
SELECT * FROM pg_temp.config_check(
    $$INSERT INTO order_flow.transition_rule (workflow, from_state, to_state) VALUES ('b2b_order', 'archived', 'paid')$$,
    '23514', 'a terminal state with an outgoing edge', '%terminal%');
SELECT * FROM pg_temp.config_check(
    $$UPDATE order_flow.state SET category = 'terminal' WHERE workflow = 'b2b_order' AND state = 'paid'$$,
    '23514', 'making a state with outgoing edges terminal', '%terminal%');
SELECT * FROM pg_temp.config_check(
    $$INSERT INTO order_flow.state (workflow, state, category) VALUES ('b2b_order', 'tw_orphan', 'terminal')$$,
    '23514', 'an orphan state no edge leads to', '%orphan%');
SELECT * FROM pg_temp.config_check(
    $$DELETE FROM order_flow.transition_rule WHERE workflow = 'b2b_order' AND from_state = 'invoiced' AND to_state = 'paid'$$,
    '23514', 'deleting the only edge into a state (paid becomes an orphan)', '%orphan%');
SELECT * FROM pg_temp.config_check(
    $$INSERT INTO order_flow.state (workflow, state) VALUES ('b2b_order', 'tw_dead_end');
      INSERT INTO order_flow.transition_rule (workflow, from_state, to_state) VALUES ('b2b_order', 'paid', 'tw_dead_end')$$,
    '23514', 'a non-terminal dead end', '%dead-end%');
SELECT * FROM pg_temp.config_check(
    $$UPDATE order_flow.transition_rule SET notify = '{warehouse,tw_marketing}'
       WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed'$$,
    '23503', 'notify names an unknown department', '%unknown departments%');
SELECT * FROM pg_temp.config_check(
    $$UPDATE order_flow.transition_rule SET performed_by = '{tw_marketing}'
       WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'quoted'$$,
    '23503', 'performed_by names an unknown department', '%unknown departments%');
-- NULL is "anyone"; an empty list would be "no one" to allowed_transitions() and "anyone" to the trigger
SELECT * FROM pg_temp.config_check(
    $$UPDATE order_flow.transition_rule SET performed_by = '{}'
       WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'quoted'$$,
    '23514', 'performed_by as an empty list', '%performed_by names no department%');
SELECT * FROM pg_temp.config_check(
    $$UPDATE order_flow.transition_rule SET performed_by = '{NULL}'
       WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'quoted'$$,
    '23514', 'performed_by as a list of NULLs', '%performed_by names no department%');

-- unknown departments in plain columns are refused at once by foreign keys
SELECT * FROM pg_temp.refused(
    $$UPDATE order_flow.state SET owner_department = 'tw_marketing' WHERE workflow = 'b2b_order' AND state = 'quoted'$$,
    '23503', 'a state owned by an unknown department');
SELECT * FROM pg_temp.refused(
    $$INSERT INTO order_flow.member (actor, department) VALUES ('tw_someone', 'tw_marketing')$$,
    '23503', 'a member of an unknown department');
SELECT * FROM pg_temp.refused(
    $$INSERT INTO order_flow.transition_rule (workflow, from_state, to_state) VALUES ('b2b_order', 'inquiry', 'tw_nowhere')$$,
    '23503', 'an edge to a state the workflow does not have');
SELECT * FROM pg_temp.refused(
    $$INSERT INTO order_flow.transition_rule (workflow, from_state, to_state) VALUES ('b2b_order', 'quoted', 'quoted')$$,
    '23514', 'a self-loop edge');
SELECT * FROM pg_temp.refused(
    $$UPDATE order_flow.transition_rule SET ack_within = interval '0' WHERE workflow = 'b2b_order'
        AND from_state = 'quoted' AND to_state = 'contract_signed'$$,
    '23514', 'a zero acknowledgement window');

-- a valid edit in one transaction: new state with edges in and out
SELECT lives_ok($$INSERT INTO order_flow.state (workflow, state, owner_department)
                       VALUES ('b2b_order', 'tw_credit_check', 'finance');
                  INSERT INTO order_flow.transition_rule (workflow, from_state, to_state, performed_by)
                       VALUES ('b2b_order', 'warehouse_confirmed', 'tw_credit_check', '{finance}'),
                              ('b2b_order', 'tw_credit_check', 'finance_approved', '{finance}');
                  SET CONSTRAINTS ALL IMMEDIATE$$,
                'a new state with an edge in and an edge out passes validation');
SET CONSTRAINTS ALL DEFERRED;
SELECT ok(EXISTS (SELECT 1 FROM order_flow.status_label WHERE label = 'tw_credit_check'),
          'a state named in a workflow enters the status dictionary automatically');
SELECT is(('tw_credit_check'::order_flow.status)::text, 'tw_credit_check',
          'the new state is a valid status value at once');

-- -------------------------------------------------- config edits audited
CREATE TEMP TABLE cfg_mark AS SELECT coalesce(max(id), 0) AS last_id FROM order_flow.audit_log;
INSERT INTO order_flow.member (actor, department, level) VALUES ('tw_cat_alice', 'sales', 2);
SELECT results_eq(
    $$SELECT a.order_key, a.action, a.details->>'table', a.details->>'op', a.details->'new'->>'actor',
             (a.details->'old') IS NULL OR jsonb_typeof(a.details->'old') = 'null'
        FROM order_flow.audit_log a, cfg_mark WHERE a.id > cfg_mark.last_id ORDER BY a.id$$,
    $$VALUES ('order_flow:config', 'config_change', 'member', 'INSERT', 'tw_cat_alice', true)$$,
    'INSERT into member: one config_change event with the new row');
UPDATE cfg_mark SET last_id = (SELECT max(id) FROM order_flow.audit_log);
UPDATE order_flow.transition_rule SET ack_within = interval '20 minutes'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
SELECT results_eq(
    $$SELECT a.action, a.details->>'table', a.details->>'op', a.details->'old'->>'ack_within',
             a.details->'new'->>'ack_within'
        FROM order_flow.audit_log a, cfg_mark WHERE a.id > cfg_mark.last_id ORDER BY a.id$$,
    $$VALUES ('config_change', 'transition_rule', 'UPDATE', '00:15:00', '00:20:00')$$,
    'UPDATE of a transition rule: one config_change event with old and new values');
UPDATE cfg_mark SET last_id = (SELECT max(id) FROM order_flow.audit_log);
DELETE FROM order_flow.member WHERE actor = 'tw_cat_alice';
SELECT results_eq(
    $$SELECT a.action, a.details->>'table', a.details->>'op', a.details->'old'->>'actor'
        FROM order_flow.audit_log a, cfg_mark WHERE a.id > cfg_mark.last_id ORDER BY a.id$$,
    $$VALUES ('config_change', 'member', 'DELETE', 'tw_cat_alice')$$,
    'DELETE from member: one config_change event with the old row');
UPDATE cfg_mark SET last_id = (SELECT max(id) FROM order_flow.audit_log);
UPDATE order_flow.escalation_policy SET delay = delay WHERE department = 'sales';
SELECT is((SELECT count(*)::int FROM order_flow.audit_log a, cfg_mark
            WHERE a.id > cfg_mark.last_id AND a.action = 'config_change'
              AND a.details->>'table' = 'escalation_policy'),
          (SELECT count(*)::int FROM order_flow.escalation_policy WHERE department = 'sales'),
          'one config_change event per edited escalation_policy row');
UPDATE cfg_mark SET last_id = (SELECT max(id) FROM order_flow.audit_log);
INSERT INTO order_flow.calendar_holiday (calendar, day, description) VALUES ('office', '2031-01-01', 'tw');
UPDATE order_flow.department SET name = name || ' (tw)' WHERE department = 'finance';
UPDATE order_flow.reminder_policy SET factor = factor WHERE workflow = 'b2b_order' AND level = 1;
SELECT set_eq(
    $$SELECT a.details->>'table' FROM order_flow.audit_log a, cfg_mark
       WHERE a.id > cfg_mark.last_id AND a.action = 'config_change'$$,
    ARRAY['calendar_holiday', 'department', 'reminder_policy'],
    'edits of calendar_holiday, department and reminder_policy are audited too');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log
            WHERE order_key = 'order_flow:config' AND action <> 'config_change'), 0,
          'the configuration chain holds only config_change events');
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit('order_flow:config')), 0,
          'the configuration chain verifies');
SELECT is((SELECT last_seq FROM order_flow.tracked_order WHERE order_key = 'order_flow:config'),
          (SELECT max(seq) FROM order_flow.audit_log WHERE order_key = 'order_flow:config'),
          'the configuration chain head points at its last event');

-- ------------------------------------------- who may edit the catalogue
CREATE ROLE tw_cat_admin NOLOGIN IN ROLE order_flow_admin;
CREATE ROLE tw_cat_user NOLOGIN;
UPDATE cfg_mark SET last_id = (SELECT max(id) FROM order_flow.audit_log);
SELECT lives_ok($$SELECT pg_temp.run_as('tw_cat_admin', NULL,
                    'INSERT INTO order_flow.member (actor, department) VALUES (''tw_cat_bob'', ''warehouse'')')$$,
                'an order_flow_admin member (not superuser) may edit the catalogue');
SELECT results_eq(
    $$SELECT a.action, a.db_user, a.details->'new'->>'actor' FROM order_flow.audit_log a, cfg_mark
       WHERE a.id > cfg_mark.last_id ORDER BY a.id$$,
    $$VALUES ('config_change', 'tw_cat_admin', 'tw_cat_bob')$$,
    'the admin''s edit is audited under the admin''s database user');
SELECT * FROM pg_temp.refused(
    $$INSERT INTO order_flow.member (actor, department) VALUES ('tw_cat_eve', 'finance')$$,
    '42501', 'a plain role adding itself to a department', as_role => 'tw_cat_user');
SELECT * FROM pg_temp.refused(
    $$UPDATE order_flow.transition_rule SET performed_by = NULL WHERE workflow = 'b2b_order'$$,
    '42501', 'a plain role opening every edge to everyone', as_role => 'tw_cat_user');
SELECT * FROM pg_temp.refused(
    $$SELECT order_flow.create_status('tw_cat_sneaky')$$,
    '42501', 'a plain role creating a status name', as_role => 'tw_cat_user');

SELECT * FROM finish();
ROLLBACK;
