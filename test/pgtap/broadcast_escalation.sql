-- test/pgtap/broadcast_escalation.sql -- escalation (SPEC 3.4):
-- escalate_due(as_of) moves each overdue notification up one level per
-- sweep (level 2 due as_of + 30 min, level 3 due as_of + 1 h), is idempotent
-- for a given as_of, leaves the last level pending and overdue, audits each
-- step as 'escalate', honours order_flow.batch_size; the pending_acks
-- countdown; escalation chains validated at commit (levels 1..n without
-- gaps, n >= 3, delay > 0) and given to new departments.
--
-- Deadlines are real (now + 15 min) and sweeps are driven with explicit
-- as_of values in the future, all inside one transaction that is rolled
-- back: the background worker of the test database never sees these rows.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(93);

CREATE TABLE be_orders (id text PRIMARY KEY, status text NOT NULL, region text);

-- hub_snapshot(): pg_temp.snapshot() plus digests of every notification,
-- outbox and audit row and of the escalation chains.
CREATE FUNCTION pg_temp.hub_snapshot() RETURNS text LANGUAGE sql AS $f$
    SELECT pg_temp.snapshot() || ' hub=' || md5(
           coalesce((SELECT string_agg(n::text, '|' ORDER BY n.id) FROM order_flow.notification n), '')
        || coalesce((SELECT string_agg(o::text, '|' ORDER BY o.id) FROM order_flow.outbox o), '')
        || coalesce((SELECT string_agg(a.id::text || a.action, '|' ORDER BY a.id) FROM order_flow.audit_log a), '')
        || coalesce((SELECT string_agg(p::text, '|' ORDER BY p.department, p.level)
                       FROM order_flow.escalation_policy p), ''))
$f$;

CREATE FUNCTION pg_temp.hub_refused(cmd text, want_state text, descr text, want_msg text DEFAULT '%',
                                    as_role text DEFAULT NULL)
RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT * FROM pg_temp.refused_in('SELECT pg_temp.hub_snapshot()', cmd, want_state, descr, want_msg, as_role)
$f$;

-- config_check(cmd, want_state, descr, [want_msg]): an edit that is only
-- judged at commit: accepted when made, refused by the commit-time checks
-- (SET CONSTRAINTS ALL IMMEDIATE runs them as COMMIT would), nothing left.
CREATE FUNCTION pg_temp.config_check(cmd text, want_state text, descr text, want_msg text DEFAULT '%')
RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT * FROM pg_temp.config_check_in('SELECT pg_temp.hub_snapshot()', cmd, want_state, descr, want_msg)
$f$;

-- n(order, department, level): that notification's id
CREATE FUNCTION pg_temp.n(k text, d text, l int) RETURNS bigint LANGUAGE sql AS $f$
    SELECT id FROM order_flow.notification WHERE order_key = k AND department = d AND level = l
$f$;

-- the sweep times, fixed relative to the transaction's now()
CREATE TEMP TABLE t AS
SELECT now() + interval '20 minutes' AS t1,
       now() + interval '51 minutes' AS t2;

SELECT order_flow.manage('be_orders', attributes => '{region}');
INSERT INTO be_orders VALUES ('be-1', 'inquiry', 'east'), ('be-2', 'inquiry', 'west'),
                             ('be-3', 'inquiry', 'north'), ('be-4', 'inquiry', 'south');
UPDATE be_orders SET status = 'quoted';
UPDATE be_orders SET status = 'contract_signed' WHERE id = 'be-1';
CREATE TEMP TABLE mark AS SELECT max(id) AS a_id FROM order_flow.audit_log;
CREATE TEMP TABLE omark AS SELECT max(id) AS o_id FROM order_flow.outbox;

-- ------------------------------------------------------------ not yet due
SELECT is(order_flow.escalate_due(), 0, 'escalate_due() at the real now escalates nothing (deadlines 15 min ahead)');
SELECT is(order_flow.escalate_due(now() + interval '14 minutes'), 0, 'a sweep 14 minutes ahead: nothing is due yet');
SELECT * FROM pg_temp.hub_refused($$SELECT order_flow.escalate_due(NULL)$$, '22004', 'escalate_due(NULL)');
SELECT * FROM pg_temp.hub_refused($$SELECT order_flow.escalate_due(NULL::timestamptz)$$, '22004',
                                  'escalate_due(NULL::timestamptz)');

-- ------------------------------------------------------------ level 1 -> 2
SELECT is(order_flow.escalate_due((SELECT t1 FROM t)), 3, 'a sweep 20 minutes ahead escalates the 3 notifications');
SELECT results_eq(
    $$SELECT department, status, answered_at IS NOT NULL, answered_by IS NULL
        FROM order_flow.notification WHERE order_key = 'be-1' AND level = 1 ORDER BY department$$,
    $$VALUES ('finance', 'escalated', true, true), ('logistics', 'escalated', true, true),
             ('warehouse', 'escalated', true, true)$$,
    'the level-1 notifications are marked escalated (answered by nobody)');
SELECT results_eq(
    $$SELECT c.department, c.status, c.kind, c.parent_id = p.id, c.deadline = t.t1 + interval '30 minutes',
             c.from_state, c.to_state, c.event_seq = p.event_seq, c.escalates
        FROM order_flow.notification c
        JOIN order_flow.notification p ON p.order_key = c.order_key AND p.department = c.department AND p.level = 1, t
       WHERE c.order_key = 'be-1' AND c.level = 2 ORDER BY c.department$$,
    $$VALUES ('finance', 'pending', 'ack_request', true, true, 'quoted', 'contract_signed', true, true),
             ('logistics', 'pending', 'ack_request', true, true, 'quoted', 'contract_signed', true, true),
             ('warehouse', 'pending', 'ack_request', true, true, 'quoted', 'contract_signed', true, true)$$,
    'one pending level-2 row per department, child of the level-1 row, due as_of + 30 minutes');
SELECT results_eq(
    $$SELECT c.payload->>'order_key', c.payload->>'department', (c.payload->>'level')::int,
             (c.payload->>'escalated_from')::bigint = c.parent_id, c.payload->>'title',
             (c.payload->>'deadline')::timestamptz = c.deadline, c.payload->'attributes'
        FROM order_flow.notification c WHERE c.order_key = 'be-1' AND c.level = 2 ORDER BY c.department$$,
    $$SELECT 'be-1', d, 2, true, 'manager', true, '{"region": "east"}'::jsonb
        FROM unnest(ARRAY['finance', 'logistics', 'warehouse']) d$$,
    'the level-2 payload keeps the order and names level 2, the manager, its deadline and where it came from');
SELECT results_eq(
    $$SELECT n.department, o.payload = n.payload || jsonb_build_object('notification_id', n.id)
        FROM order_flow.outbox o, omark, order_flow.notification n
       WHERE o.id > omark.o_id AND n.id = o.notification_id ORDER BY n.department$$,
    $$VALUES ('finance', true), ('logistics', true), ('warehouse', true)$$,
    'one outbox row per escalation, for the level-2 notification');
SELECT results_eq(
    $$SELECT a.order_key, a.action, a.from_state, a.to_state, a.actor, a.details->>'department',
             (a.details->>'level')::int, a.details->>'title',
             (a.details->>'notification_id')::bigint = pg_temp.n('be-1', a.details->>'department', 2),
             (a.details->>'escalated_from')::bigint = pg_temp.n('be-1', a.details->>'department', 1),
             (a.details->>'deadline')::timestamptz = t.t1 + interval '30 minutes',
             (a.details->>'overdue_since')::timestamptz =
                 (SELECT deadline FROM order_flow.notification WHERE id = pg_temp.n('be-1', a.details->>'department', 1))
        FROM order_flow.audit_log a, mark, t WHERE a.id > mark.a_id ORDER BY a.details->>'department'$$,
    $$SELECT 'be-1', 'escalate', NULL::text, NULL::text, current_user::text COLLATE "default", d, 2, 'manager',
             true, true, true, true
        FROM unnest(ARRAY['finance', 'logistics', 'warehouse']) d$$,
    'each escalation is one escalate event in the order''s chain with its details');
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'the chains verify after the first sweep');

-- idempotent, one level per sweep
SELECT * FROM pg_temp.hub_refused($q$DO $d$ BEGIN
                                        IF order_flow.escalate_due((SELECT t1 FROM t)) <> 0 THEN
                                            RAISE EXCEPTION 'escalated again' USING ERRCODE = 'XX999';
                                        END IF;
                                        RAISE EXCEPTION 'no-op' USING ERRCODE = 'XX998';
                                    END $d$$q$, 'XX998',
                                  'the same sweep again escalates nothing');
SELECT is(order_flow.escalate_due((SELECT t1 FROM t)), 0, 'the same as_of twice: 0 the second time');
SELECT is(order_flow.escalate_due((SELECT t1 + interval '29 minutes 59 seconds' FROM t)), 0,
          'a sweep one second before the level-2 deadline escalates nothing');
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key = 'be-1'), 6,
          'still 6 rows: 3 escalated, 3 pending at level 2');

-- ------------------------------------------------------------ level 2 -> 3
CREATE TEMP TABLE mark2 AS SELECT max(id) AS a_id FROM order_flow.audit_log;
SELECT is(order_flow.escalate_due((SELECT t2 FROM t)), 3, 'the sweep 31 minutes later escalates level 2 -> 3');
SELECT results_eq(
    $$SELECT level, status, count(*)::int FROM order_flow.notification WHERE order_key = 'be-1'
       GROUP BY level, status ORDER BY level$$,
    $$VALUES (1, 'escalated', 3), (2, 'escalated', 3), (3, 'pending', 3)$$,
    'be-1: levels 1 and 2 escalated, level 3 pending');
SELECT results_eq(
    $$SELECT c.department, c.parent_id = p.id, c.deadline = t.t2 + interval '1 hour', c.escalates,
             c.payload->>'title', (c.payload->>'level')::int
        FROM order_flow.notification c
        JOIN order_flow.notification p ON p.order_key = c.order_key AND p.department = c.department AND p.level = 2, t
       WHERE c.order_key = 'be-1' AND c.level = 3 ORDER BY c.department$$,
    $$SELECT d, true, true, false, 'director', 3 FROM unnest(ARRAY['finance', 'logistics', 'warehouse']) d$$,
    'level 3 (director) is due as_of + 1 hour and is the last level (escalates = false)');
SELECT is((SELECT string_agg(DISTINCT a.action || ':' || (a.details->>'level'), ',') || ' x' || count(*)
             FROM order_flow.audit_log a, mark2 WHERE a.id > mark2.a_id),
          'escalate:3 x3', 'three escalate events to level 3');

-- the last level never escalates
SELECT is(order_flow.escalate_due((SELECT t2 + interval '2 hours' FROM t)), 0,
          'a sweep after the level-3 deadline escalates nothing');
SELECT is(order_flow.escalate_due(now() + interval '40 hours'), 0,
          'nor does a sweep 40 hours ahead (before any stale-order reminder is due)');
SELECT results_eq(
    $$SELECT department, level, level_title, seconds_left, overdue,
             deadline = (SELECT t2 + interval '1 hour' FROM t)
        FROM order_flow.pending_acks WHERE order_key = 'be-1' ORDER BY department$$,
    $$VALUES ('finance', 3, 'director', 6660::bigint, false, true),
             ('logistics', 3, 'director', 6660::bigint, false, true),
             ('warehouse', 3, 'director', 6660::bigint, false, true)$$,
    'pending_acks: level 3, director, 6660 seconds left (deadline = now + 111 min), not overdue');
-- let time pass for one of them: its deadline moves behind now()
UPDATE order_flow.notification SET deadline = now() - interval '90 seconds'
 WHERE id = pg_temp.n('be-1', 'warehouse', 3);
SELECT results_eq(
    $$SELECT level, seconds_left, overdue, notification_id = pg_temp.n('be-1', 'warehouse', 3)
        FROM order_flow.pending_acks WHERE order_key = 'be-1' AND department = 'warehouse'$$,
    $$VALUES (3, 0::bigint, true, true)$$,
    'an overdue last level: still pending, 0 seconds left (never negative), overdue');
SELECT is(order_flow.escalate_due(now()), 0, 'sweeping at now: the overdue last level is not escalated');
SELECT is((SELECT status FROM order_flow.notification WHERE id = pg_temp.n('be-1', 'warehouse', 3)), 'pending',
          'it stays pending');
SELECT ok(COALESCE(_order_flow._next_due() > now(), true),
          'the scheduler''s next due time ignores the overdue last level');

-- ------------------------------------------------------------ batch size
UPDATE be_orders SET status = 'contract_signed' WHERE id = 'be-2';
UPDATE be_orders SET status = 'contract_signed' WHERE id = 'be-3';
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key IN ('be-2', 'be-3') AND status = 'pending'),
          6, 'be-2 and be-3 signed: 6 notifications pending');
SET LOCAL order_flow.batch_size = 2;
SELECT is(order_flow.escalate_due(now() + interval '10 hours'), 2, 'batch_size 2: the first sweep escalates 2');
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key IN ('be-2', 'be-3') AND level = 2), 2,
          'exactly 2 level-2 rows exist');
SELECT is((SELECT string_agg(order_key, ',' ORDER BY order_key) FROM order_flow.notification
            WHERE order_key IN ('be-2', 'be-3') AND level = 2),
          'be-2,be-2', 'the earliest deadlines go first (be-2 was signed first)');
SELECT is(order_flow.escalate_due(now() + interval '10 hours'), 2, 'the second sweep escalates 2 more');
SELECT is(order_flow.escalate_due(now() + interval '10 hours'), 2, 'the third sweep escalates the last 2');
SELECT is(order_flow.escalate_due(now() + interval '10 hours'), 0, 'the fourth finds nothing');
RESET order_flow.batch_size;
SELECT results_eq(
    $$SELECT level, status, count(*)::int, bool_and(deadline = now() + interval '10 hours 30 minutes') FILTER (WHERE level = 2)
        FROM order_flow.notification WHERE order_key IN ('be-2', 'be-3') GROUP BY level, status ORDER BY level$$,
    $$VALUES (1, 'escalated', 6, NULL::boolean), (2, 'pending', 6, true)$$,
    'ten hours overdue is still one level per sweep: all 6 at level 2, due as_of + 30 min');
SELECT * FROM pg_temp.hub_refused($$SET LOCAL order_flow.batch_size = 0$$, '22023', 'batch_size 0');
SELECT * FROM pg_temp.hub_refused($$SET LOCAL order_flow.batch_size = -5$$, '22023', 'a negative batch_size');

-- the sweep is for administrators only
CREATE ROLE tw_be_user NOLOGIN;
CREATE ROLE tw_be_admin NOLOGIN IN ROLE order_flow_admin;
SELECT * FROM pg_temp.hub_refused($$SELECT order_flow.escalate_due(now() + interval '10 hours')$$, '42501',
                                  'escalate_due by a role that is no order_flow administrator', as_role => 'tw_be_user');
SELECT is((pg_temp.outcome($$SELECT order_flow.escalate_due(now() + interval '11 hours')$$, 'tw_be_admin')).state,
          '00000', 'an order_flow_admin member may sweep');

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'the chains verify after the sweeps');

-- ------------------------------------------------ escalation chain rules
-- run the commit-time checks queued so far once (they pass), so that each
-- check below fires only its own
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT results_eq(
    $$SELECT level, title, delay FROM order_flow.escalation_policy WHERE department = 'warehouse' ORDER BY level$$,
    $$VALUES (1, 'supervisor', interval '15 minutes'), (2, 'manager', interval '30 minutes'),
             (3, 'director', interval '1 hour')$$,
    'the shipped chain: supervisor 15 min, manager 30 min, director 1 h');
SELECT is((SELECT count(DISTINCT department)::int FROM order_flow.escalation_policy
            WHERE department IN (SELECT department FROM order_flow.department)), 6,
          'every shipped department has a chain');
SELECT * FROM pg_temp.config_check($$DELETE FROM order_flow.escalation_policy WHERE department = 'warehouse' AND level = 2$$,
                                   '23514', 'a gap in the chain (level 2 deleted)', '%without gaps%');
SELECT * FROM pg_temp.config_check($$DELETE FROM order_flow.escalation_policy WHERE department = 'warehouse' AND level = 3$$,
                                   '23514', 'a chain of 2 levels');
SELECT * FROM pg_temp.config_check($$DELETE FROM order_flow.escalation_policy WHERE department = 'finance' AND level > 1$$,
                                   '23514', 'a chain of 1 level');
SELECT * FROM pg_temp.config_check($$DELETE FROM order_flow.escalation_policy WHERE department = 'finance'$$,
                                   '23514', 'no chain at all for a department');
SELECT * FROM pg_temp.config_check($$INSERT INTO order_flow.escalation_policy VALUES ('logistics', 5, 'ceo', '2 hours')$$,
                                   '23514', 'a level 5 after level 3 (gap at 4)');
SELECT * FROM pg_temp.config_check($$UPDATE order_flow.escalation_policy SET level = 4
                                      WHERE department = 'sales' AND level = 3$$,
                                   '23514', 'level 3 renumbered to 4');
SELECT * FROM pg_temp.hub_refused($$UPDATE order_flow.escalation_policy SET delay = '0' WHERE department = 'sales' AND level = 2$$,
                                  '23514', 'a zero delay');
SELECT * FROM pg_temp.hub_refused($$UPDATE order_flow.escalation_policy SET delay = '-5 minutes'
                                     WHERE department = 'sales' AND level = 2$$,
                                  '23514', 'a negative delay');
SELECT * FROM pg_temp.hub_refused($$INSERT INTO order_flow.escalation_policy VALUES ('sales', 0, 'intern', '5 minutes')$$,
                                  '23514', 'a level 0');
SELECT * FROM pg_temp.hub_refused($$INSERT INTO order_flow.escalation_policy VALUES ('nobody', 1, 'x', '5 minutes')$$,
                                  '23503', 'a chain for an unknown department');
SELECT is((pg_temp.outcome($$INSERT INTO order_flow.escalation_policy VALUES ('logistics', 4, 'ceo', '2 hours');
                             SET CONSTRAINTS ALL IMMEDIATE$$)).state,
          '00000', 'a fourth level is accepted at commit');
SELECT is((pg_temp.outcome($$UPDATE order_flow.escalation_policy SET delay = '45 minutes', title = 'head'
                              WHERE department = 'logistics' AND level = 2;
                             SET CONSTRAINTS ALL IMMEDIATE$$)).state,
          '00000', 'changing a level''s delay and title is accepted at commit');

-- a new department gets the default chain; a fourth level is used
CREATE TEMP TABLE cmark AS SELECT max(id) AS a_id FROM order_flow.audit_log;
INSERT INTO order_flow.department (department, name) VALUES ('quality', 'Quality control');
SELECT results_eq(
    $$SELECT level, title, delay FROM order_flow.escalation_policy WHERE department = 'quality' ORDER BY level$$,
    $$VALUES (1, 'supervisor', interval '15 minutes'), (2, 'manager', interval '30 minutes'),
             (3, 'director', interval '1 hour')$$,
    'a new department gets the three-level default chain');
SELECT is((SELECT string_agg(DISTINCT a.details->>'table', ',' ORDER BY a.details->>'table')
             FROM order_flow.audit_log a, cmark WHERE a.id > cmark.a_id AND a.action = 'config_change'),
          'department,escalation_policy', 'the department and its chain are audited as config changes');
INSERT INTO order_flow.escalation_policy VALUES ('quality', 4, 'general manager', '2 hours');
UPDATE order_flow.transition_rule SET notify = notify || '{quality}'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
SELECT is((pg_temp.outcome('SET CONSTRAINTS ALL IMMEDIATE')).state, '00000', 'the new configuration is valid');

-- answer everything still open so the sweeps below count only be-4
SELECT is((SELECT count(order_flow.acknowledge(id))::int FROM order_flow.notification
            WHERE status = 'pending'), 9, 'the 9 open notifications are acknowledged');
UPDATE be_orders SET status = 'contract_signed' WHERE id = 'be-4';
SELECT results_eq(
    $$SELECT department, escalates FROM order_flow.notification WHERE order_key = 'be-4' ORDER BY department$$,
    $$VALUES ('finance', true), ('logistics', true), ('quality', true), ('warehouse', true)$$,
    'be-4 signed: quality is notified too');
CREATE TEMP TABLE t4 AS SELECT now() + interval '20 minutes' AS s1, now() + interval '51 minutes' AS s2,
                               now() + interval '112 minutes' AS s3;
SELECT is(order_flow.escalate_due((SELECT s1 FROM t4)), 4, 'be-4: 4 escalations to level 2');
SELECT is(order_flow.escalate_due((SELECT s2 FROM t4)), 4, 'be-4: 4 escalations to level 3');
SELECT results_eq(
    $$SELECT department, escalates FROM order_flow.notification WHERE order_key = 'be-4' AND level = 3 ORDER BY department$$,
    $$VALUES ('finance', false), ('logistics', false), ('quality', true), ('warehouse', false)$$,
    'only quality''s level 3 escalates further (it has a level 4)');
-- if level 4 goes away before the sweep, level 3 becomes the last: it stays pending
SELECT is((pg_temp.outcome($q$DELETE FROM order_flow.escalation_policy WHERE department = 'quality' AND level = 4;
                             DO $d$ BEGIN
                                 IF order_flow.escalate_due((SELECT s3 FROM t4)) <> 0 THEN
                                     RAISE EXCEPTION 'escalated past the last level' USING ERRCODE = 'XX999';
                                 END IF;
                                 IF (SELECT status || escalates::text FROM order_flow.notification
                                      WHERE id = pg_temp.n('be-4', 'quality', 3)) <> 'pendingfalse' THEN
                                     RAISE EXCEPTION 'level 3 not kept pending as the last level' USING ERRCODE = 'XX998';
                                 END IF;
                             END $d$$q$)).state,
          '00000', 'with level 4 deleted, the sweep leaves quality''s level 3 pending and marks it last');
SELECT is(order_flow.escalate_due((SELECT s3 FROM t4)), 1, 'be-4: quality escalates to level 4');
SELECT results_eq(
    $$SELECT level, status, escalates, payload->>'title', deadline = (SELECT s3 + interval '2 hours' FROM t4)
        FROM order_flow.notification WHERE order_key = 'be-4' AND department = 'quality' ORDER BY level$$,
    $$VALUES (1, 'escalated', true, NULL, false), (2, 'escalated', true, 'manager', false),
             (3, 'escalated', true, 'director', false), (4, 'pending', false, 'general manager', true)$$,
    'quality: levels 1-3 escalated, level 4 (general manager) pending, due as_of + 2 h, the last');
SELECT is(order_flow.escalate_due(now() + interval '40 hours'), 0, 'nothing escalates past level 4');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key = 'be-4' AND action = 'escalate'), 9,
          'be-4 has 9 escalate events (4 + 4 + 1)');

-- ------------------------------------------------------------ the one-by-one fallback
-- a failure anywhere in the batch (here: a trigger refusing be-6's level 2)
-- makes the sweep escalate one notification at a time, each in its own
-- subtransaction: be-5's go up, be-6's stay where they were, and the
-- fallback writes exactly the payload the batch writes
INSERT INTO be_orders VALUES ('be-5', 'inquiry', 'east'), ('be-6', 'inquiry', 'west');
UPDATE be_orders SET status = 'quoted' WHERE id IN ('be-5', 'be-6');
UPDATE be_orders SET status = 'contract_signed' WHERE id IN ('be-5', 'be-6');
CREATE FUNCTION pg_temp.refuse_be6() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF NEW.order_key = 'be-6' AND NEW.level = 2 THEN
        RAISE EXCEPTION 'be-6 may not escalate';
    END IF;
    RETURN NEW;
END
$f$;
CREATE TRIGGER be6_refused BEFORE INSERT ON order_flow.notification
    FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_be6();
SET LOCAL client_min_messages = error;      -- the sweep warns about the batch and about be-6
CREATE TEMP TABLE be5 AS
SELECT count(*)::int AS n FROM order_flow.notification WHERE order_key = 'be-5' AND level = 1;
SELECT is(order_flow.escalate_due(now() + interval '20 minutes') || ' of ' || (SELECT n FROM be5),
          (SELECT n || ' of ' || n FROM be5 WHERE n >= 3),
          'the batch fails on be-6: the fallback escalates be-5''s notifications (3 or more) one by one');
RESET client_min_messages;
DROP TRIGGER be6_refused ON order_flow.notification;
SELECT is((SELECT string_agg(order_key || ' ' || level || ' ' || status, ', ' ORDER BY order_key, level, status)
             FROM (SELECT DISTINCT order_key, level, status FROM order_flow.notification
                    WHERE order_key IN ('be-5', 'be-6')) x),
          'be-5 1 escalated, be-5 2 pending, be-6 1 pending', '... and leaves be-6''s pending at level 1');
SELECT is((SELECT count(*)::int FROM order_flow.notification n
            WHERE n.order_key = 'be-5' AND n.level = 2
              AND n.payload ?& ARRAY['level', 'deadline', 'escalated_from', 'title', 'overdue_since']
              AND (n.payload->>'overdue_since')::timestamptz =
                  (SELECT p.deadline FROM order_flow.notification p
                    WHERE p.order_key = n.order_key AND p.id = (n.payload->>'escalated_from')::bigint)),
          (SELECT n FROM be5),
          '... with the batch''s payload: level, deadline, escalated_from, title and overdue_since');
SELECT is((SELECT count(*)::int FROM order_flow.outbox o
            WHERE o.order_key = 'be-5' AND o.kind = 'escalation' AND o.payload ? 'overdue_since'
              AND o.event_seq IS NOT NULL), (SELECT n FROM be5),
          '... and their outbox messages carry it too, with the escalate event''s place in the chain');

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
