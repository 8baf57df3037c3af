-- test/pgtap/broadcast_reminders.sql -- stale-order reminders (SPEC 1.3,
-- 3.4): an order that has not progressed for its state's "cannot wait"
-- threshold gets reminder levels 1..3 at 1x, 1.5x and 2x the threshold
-- (48 h, 72 h, 96 h by default) relative to the sweep's as_of, each audited
-- as 'remind' and sent through the outbox; a transition resets the count;
-- changing a state's max_dwell or the reminder factors (reminder_policy)
-- re-times orders already waiting; terminal states are never stale; the
-- stale_orders view.
--
-- Orders are put into a state long ago with import_transition() (adopted
-- rows have no events, so their history may be imported).  One transaction,
-- rolled back at the end: the background worker never sees these rows.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(68);

CREATE TABLE br_orders (id text PRIMARY KEY, status text NOT NULL, customer text);
INSERT INTO br_orders VALUES ('br-1', 'quoted', 'Huadong Hardware'), ('br-2', 'quoted', 'Beifang Tools'),
                             ('br-3', 'quoted', 'Nanfang Fasteners'), ('br-4', 'quoted', 'Xibu Metals'),
                             ('br-5', 'quoted', 'Zhongyuan Supply'), ('br-6', 'quoted', 'Dongbei Steel'),
                             ('br-7', 'quoted', 'Xinan Parts'), ('br-8', 'quoted', 'Huabei Tools');
SELECT order_flow.manage('br_orders', customer_column => 'customer');

-- e: the times the orders entered their states, fixed relative to now()
CREATE TEMP TABLE e AS
SELECT now() - interval '100 hours' AS e1, now() - interval '80 hours' AS e2,
       now() - interval '10 hours' AS e3, now() - interval '50 hours' AS e4,
       now() - interval '200 hours' AS e5;

-- hub_snapshot(): digests of everything a sweep writes
CREATE FUNCTION pg_temp.hub_snapshot() RETURNS text LANGUAGE sql AS $f$
    SELECT pg_temp.snapshot() || ' hub=' || md5(
           coalesce((SELECT string_agg(n::text, '|' ORDER BY n.id) FROM order_flow.notification n), '')
        || coalesce((SELECT string_agg(o::text, '|' ORDER BY o.id) FROM order_flow.outbox o), ''))
$f$;

-- reminders(order): its remind events as 'level/from/to/department/threshold'
CREATE FUNCTION pg_temp.reminders(k text) RETURNS text LANGUAGE sql AS $f$
    SELECT string_agg(format('%s/%s/%s/%s/%s', details->>'level', from_state, to_state,
                             details->>'department', details->>'threshold'), ' ' ORDER BY seq)
      FROM order_flow.audit_log WHERE order_key = k AND action = 'remind'
$f$;

-- ------------------------------------------------- an order waiting 100 h
SELECT lives_ok($$SELECT order_flow.import_transition('br_orders', 'br-1', 'contract_signed', (SELECT e1 FROM e))$$,
                'br-1 imported into contract_signed 100 hours ago');
SELECT results_eq(
    $$SELECT t.state, t.entered_at = e.e1, t.reminder_level, t.stale_after = e.e1 + interval '48 hours'
        FROM order_flow.tracked_order t, e WHERE t.order_key = 'br-1'$$,
    $$VALUES ('contract_signed', true, 0, true)$$,
    'br-1: entered 100 h ago, no reminder yet, first reminder due at entry + 48 h');
SELECT results_eq(
    $$SELECT s.order_key, s.tbl, s.workflow, s.state, s.owner_department, s.waiting, s.max_dwell,
             s.reminder_level, s.customer_key, s.entered_at = e.e1
        FROM order_flow.stale_orders s, e WHERE s.order_key LIKE 'br-%'$$,
    $$VALUES ('br-1', 'public.br_orders', 'b2b_order', 'contract_signed', 'sales', interval '100 hours',
              interval '48 hours', 0, 'Huadong Hardware', true)$$,
    'stale_orders lists br-1 (waiting 100 h > 48 h) and none of the fresh orders');
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key LIKE 'br-%'), 0,
          'imports opened no notification');

CREATE TEMP TABLE mark AS SELECT max(id) AS a_id FROM order_flow.audit_log;
CREATE TEMP TABLE omark AS SELECT coalesce(max(id), 0) AS o_id FROM order_flow.outbox;
SELECT is(order_flow.escalate_due((SELECT e1 + interval '47 hours 59 minutes' FROM e)), 0,
          'as_of = entry + 47:59: no reminder yet');
SELECT is(order_flow.escalate_due((SELECT e1 + interval '48 hours' FROM e)), 1,
          'as_of = entry + 48 h: one reminder');
SELECT is(pg_temp.reminders('br-1'), '1/contract_signed/contract_signed/sales/48:00:00',
          'reminder 1: audited as remind, from = to = the waiting state, to the owner department, threshold 48 h');
SELECT results_eq(
    $$SELECT a.actor, a.details->>'order_key', (a.details->>'waiting_since')::timestamptz = e.e1, a.details->>'event'
        FROM order_flow.audit_log a, mark, e WHERE a.id > mark.a_id$$,
    $$VALUES (current_user::text COLLATE "default", 'br-1', true, 'remind')$$,
    'the remind event names the order and since when it waits');
SELECT results_eq(
    $$SELECT o.order_key, o.notification_id, o.payload->>'event', (o.payload->>'level')::int, o.payload->>'department',
             o.payload->>'state'
        FROM order_flow.outbox o, omark WHERE o.id > omark.o_id$$,
    $$VALUES ('br-1', NULL::bigint, 'remind', 1, 'sales', 'contract_signed')$$,
    'the reminder goes out through the outbox');
SELECT results_eq(
    $$SELECT t.reminder_level, t.stale_after = e.e1 + interval '72 hours' FROM order_flow.tracked_order t, e
       WHERE t.order_key = 'br-1'$$,
    $$VALUES (1, true)$$, 'reminder level 1 reached; the next is due at entry + 72 h');
SELECT is(order_flow.escalate_due((SELECT e1 + interval '48 hours' FROM e)), 0, 'the same as_of again: nothing (idempotent)');
SELECT is(order_flow.escalate_due((SELECT e1 + interval '71 hours 59 minutes' FROM e)), 0, 'entry + 71:59: nothing');
SELECT is(order_flow.escalate_due((SELECT e1 + interval '72 hours' FROM e)), 1, 'entry + 72 h: reminder 2');
SELECT results_eq(
    $$SELECT t.reminder_level, t.stale_after = e.e1 + interval '96 hours' FROM order_flow.tracked_order t, e
       WHERE t.order_key = 'br-1'$$,
    $$VALUES (2, true)$$, 'reminder level 2 reached; the next is due at entry + 96 h');
SELECT is(order_flow.escalate_due((SELECT e1 + interval '95 hours' FROM e)), 0, 'entry + 95 h: nothing');
SELECT is(order_flow.escalate_due((SELECT e1 + interval '96 hours' FROM e)), 1, 'entry + 96 h: reminder 3');
SELECT results_eq(
    $$SELECT reminder_level, stale_after FROM order_flow.tracked_order WHERE order_key = 'br-1'$$,
    $$VALUES (3, NULL::timestamptz)$$, 'reminder level 3 reached; no further reminder is scheduled');
SELECT is(order_flow.escalate_due(now() + interval '47 hours'), 0, 'later sweeps remind br-1 no more');
SELECT is(pg_temp.reminders('br-1'),
          '1/contract_signed/contract_signed/sales/48:00:00 2/contract_signed/contract_signed/sales/72:00:00 '
          '3/contract_signed/contract_signed/sales/96:00:00',
          'br-1 has exactly three remind events: levels 1, 2, 3 at 48, 72, 96 h');
SELECT is((SELECT count(*)::int FROM order_flow.outbox o, omark WHERE o.id > omark.o_id), 3,
          'three outbox rows for the three reminders');
SELECT is((SELECT reminder_level FROM order_flow.stale_orders WHERE order_key = 'br-1'), 3,
          'stale_orders shows the reminder level reached');
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit('br-1')), 0, 'br-1''s chain verifies');

-- a sweep that comes late catches up every level passed, in order
SELECT lives_ok($$SELECT order_flow.import_transition('br_orders', 'br-2', 'contract_signed', (SELECT e2 FROM e))$$,
                'br-2 imported into contract_signed 80 hours ago');
SELECT is(order_flow.escalate_due(now()), 2, 'a sweep at now (80 h of waiting): reminders 1 and 2 at once');
SELECT is(pg_temp.reminders('br-2'),
          '1/contract_signed/contract_signed/sales/48:00:00 2/contract_signed/contract_signed/sales/72:00:00',
          'br-2: levels 1 and 2, in order');
SELECT results_eq(
    $$SELECT t.reminder_level, t.stale_after = e.e2 + interval '96 hours' FROM order_flow.tracked_order t, e
       WHERE t.order_key = 'br-2'$$,
    $$VALUES (2, true)$$, 'br-2 at level 2, level 3 due at entry + 96 h');

-- ------------------------------------------------ a transition resets
SELECT lives_ok($$UPDATE br_orders SET status = 'warehouse_confirmed' WHERE id = 'br-1'$$,
                'br-1 (reminded 3 times) moves on to warehouse_confirmed');
SELECT results_eq(
    $$SELECT state, reminder_level, stale_after - entered_at, entered_at > now() - interval '1 minute'
        FROM order_flow.tracked_order WHERE order_key = 'br-1'$$,
    $$VALUES ('warehouse_confirmed', 0, interval '48 hours', true)$$,
    'the transition resets the reminder level to 0 and schedules the first reminder 48 h after the new entry');
SELECT is((SELECT count(*)::int FROM order_flow.stale_orders WHERE order_key = 'br-1'), 0,
          'br-1 is not stale any more');
SELECT is(order_flow.escalate_due(now() + interval '15 hours'), 0, 'nothing is due within the next 15 hours');
SELECT lives_ok($$SELECT order_flow.import_transition('br_orders', 'br-7', 'contract_signed', now() - interval '12 hours')$$,
                'br-7 imported into contract_signed 12 hours ago');
SELECT lives_ok($$SELECT order_flow.import_transition('br_orders', 'br-7', 'warehouse_confirmed', (SELECT e3 FROM e))$$,
                'br-7 imported into warehouse_confirmed 10 hours ago');
SELECT results_eq(
    $$SELECT t.state, t.reminder_level, t.entered_at = e.e3, t.stale_after = e.e3 + interval '48 hours'
        FROM order_flow.tracked_order t, e WHERE t.order_key = 'br-7'$$,
    $$VALUES ('warehouse_confirmed', 0, true, true)$$,
    'an imported transition times the first reminder from its business time');

-- ------------------------------------------------ max_dwell re-times waiting orders
CREATE TEMP TABLE cmark AS SELECT max(id) AS a_id FROM order_flow.audit_log;
UPDATE order_flow.state SET max_dwell = '4 hours' WHERE workflow = 'b2b_order' AND state = 'warehouse_confirmed';
SELECT results_eq(
    $$SELECT t.order_key, t.stale_after = t.entered_at + interval '4 hours'
        FROM order_flow.tracked_order t WHERE t.order_key IN ('br-1', 'br-7') ORDER BY 1$$,
    $$VALUES ('br-1', true), ('br-7', true)$$,
    'max_dwell lowered to 4 h: both waiting orders'' first reminder moves to entry + 4 h');
SELECT is((SELECT string_agg(a.details->>'table' || ':' || a.action, ',') FROM order_flow.audit_log a, cmark
            WHERE a.id > cmark.a_id), 'state:config_change',
          'the threshold change is audited as a config change (and nothing else is written)');
SELECT results_eq(
    $$SELECT order_key, max_dwell, waiting, reminder_level FROM order_flow.stale_orders
       WHERE order_key IN ('br-1', 'br-7') ORDER BY 1$$,
    $$VALUES ('br-7', interval '4 hours', interval '10 hours', 0)$$,
    'stale_orders now lists br-7 (10 h > 4 h), not br-1 (just entered)');
UPDATE order_flow.state SET max_dwell = '100 hours' WHERE workflow = 'b2b_order' AND state = 'warehouse_confirmed';
SELECT results_eq(
    $$SELECT t.stale_after = e.e3 + interval '100 hours' FROM order_flow.tracked_order t, e WHERE t.order_key = 'br-7'$$,
    $$VALUES (true)$$, 'max_dwell raised to 100 h: br-7''s first reminder moves to entry + 100 h');
SELECT is((SELECT count(*)::int FROM order_flow.stale_orders WHERE order_key IN ('br-1', 'br-7')), 0,
          'and neither is stale');
SELECT is(order_flow.escalate_due(now()), 0, 'a sweep at now reminds nobody');
UPDATE order_flow.state SET max_dwell = '4 hours' WHERE workflow = 'b2b_order' AND state = 'warehouse_confirmed';
SELECT is(order_flow.escalate_due(now()), 3, 'back to 4 h: a sweep at now gives br-7 all three reminders (4, 6, 8 h <= 10 h)');
SELECT is(pg_temp.reminders('br-7'),
          '1/warehouse_confirmed/warehouse_confirmed/warehouse/04:00:00 '
          '2/warehouse_confirmed/warehouse_confirmed/warehouse/06:00:00 '
          '3/warehouse_confirmed/warehouse_confirmed/warehouse/08:00:00',
          'br-7''s reminders go to warehouse (owner of warehouse_confirmed) at 4, 6 and 8 h');

-- orders that already had reminders: the change re-times their next level
SELECT lives_ok($$SELECT order_flow.import_transition('br_orders', 'br-3', 'contract_signed', (SELECT e4 FROM e))$$,
                'br-3 imported into contract_signed 50 hours ago');
SELECT is(order_flow.escalate_due(now()), 1, 'br-3 gets reminder 1 (50 h > 48 h)');
UPDATE order_flow.state SET max_dwell = '24 hours' WHERE workflow = 'b2b_order' AND state = 'contract_signed';
SELECT results_eq(
    $$SELECT t.order_key, t.reminder_level,
             t.stale_after = CASE t.order_key WHEN 'br-3' THEN e.e4 + interval '36 hours'
                                              ELSE e.e2 + interval '48 hours' END
        FROM order_flow.tracked_order t, e WHERE t.order_key IN ('br-2', 'br-3') ORDER BY 1$$,
    $$VALUES ('br-2', 2, true), ('br-3', 1, true)$$,
    'contract_signed lowered to 24 h: the next level is re-timed (br-2 at level 2: entry + 2 x 24 h; br-3 at level 1: entry + 1.5 x 24 h)');
SELECT is(order_flow.escalate_due(now()), 3, 'a sweep at now: br-3 gets levels 2 and 3, br-2 level 3');
SELECT is(pg_temp.reminders('br-3'),
          '1/contract_signed/contract_signed/sales/48:00:00 2/contract_signed/contract_signed/sales/36:00:00 '
          '3/contract_signed/contract_signed/sales/48:00:00',
          'br-3: level 1 at the old 48 h, levels 2 and 3 at 1.5 and 2 x the new 24 h');
SELECT is(pg_temp.reminders('br-2'),
          '1/contract_signed/contract_signed/sales/48:00:00 2/contract_signed/contract_signed/sales/72:00:00 '
          '3/contract_signed/contract_signed/sales/48:00:00',
          'br-2: level 3 at 2 x the new 24 h');

-- terminal states are never stale
SELECT lives_ok($$SELECT order_flow.import_transition('br_orders', 'br-4', 'cancelled', (SELECT e5 FROM e),
                                                      '{"reason": "customer went bankrupt"}')$$,
                'br-4 imported into cancelled (terminal) 200 hours ago');
SELECT results_eq($$SELECT state, stale_after FROM order_flow.tracked_order WHERE order_key = 'br-4'$$,
                  $$VALUES ('cancelled', NULL::timestamptz)$$, 'a terminal state schedules no reminder');
SELECT is((SELECT count(*)::int FROM order_flow.stale_orders WHERE order_key = 'br-4'), 0,
          'a terminal order is not in stale_orders');
SELECT is(order_flow.escalate_due(now() + interval '1 minute'), 0, 'a sweep reminds nobody');
SELECT is(pg_temp.reminders('br-4'), NULL, 'br-4 has no remind event');

-- the reminder factors come from reminder_policy
UPDATE order_flow.reminder_policy SET factor = 3.0 WHERE workflow = 'b2b_order' AND level = 3;
SELECT lives_ok($$SELECT order_flow.import_transition('br_orders', 'br-5', 'contract_signed', (SELECT e5 FROM e))$$,
                'br-5 imported into contract_signed 200 hours ago (threshold now 24 h)');
SELECT is(order_flow.escalate_due((SELECT e5 + interval '60 hours' FROM e)), 2,
          'entry + 60 h: levels 1 (24 h) and 2 (36 h)');
SELECT is(order_flow.escalate_due((SELECT e5 + interval '71 hours' FROM e)), 0,
          'entry + 71 h: level 3 is at 3 x 24 h = 72 h now, not 48 h');
SELECT is(order_flow.escalate_due((SELECT e5 + interval '72 hours' FROM e)), 1, 'entry + 72 h: level 3');

-- changed reminder factors apply to orders already waiting, as a changed
-- max_dwell does
SELECT lives_ok($$SELECT order_flow.import_transition('br_orders', 'br-8', 'contract_signed', now() - interval '20 hours')$$,
                'br-8 imported into contract_signed 20 hours ago (threshold 24 h: first reminder at 24 h)');
UPDATE order_flow.reminder_policy SET factor = 0.5 WHERE workflow = 'b2b_order' AND level = 1;
SELECT is((SELECT stale_after FROM order_flow.tracked_order WHERE order_key = 'br-8'),
          (SELECT entered_at + interval '12 hours' FROM order_flow.tracked_order WHERE order_key = 'br-8'),
          'level 1 lowered to 0.5 x: br-8''s first reminder moves to entry + 12 h');
SELECT is(order_flow.escalate_due(now()), 1, 'a sweep at now reminds br-8 (20 h > 12 h), nobody else');
SELECT is(pg_temp.reminders('br-8'), '1/contract_signed/contract_signed/sales/12:00:00',
          'br-8: reminder 1 at the new 12 h');
UPDATE order_flow.reminder_policy SET factor = 1.0 WHERE workflow = 'b2b_order' AND level = 1;
-- a fourth level for orders that had all three
INSERT INTO order_flow.reminder_policy (workflow, level, factor) VALUES ('b2b_order', 4, 2.4);
SELECT is(order_flow.escalate_due(now()), 3,
          'a fourth level (2.4 x): a sweep at now gives it to br-7 (10 h > 9.6 h), br-2 and br-5 (> 57.6 h)');
SELECT is(pg_temp.reminders('br-7') ~ ' 4/warehouse_confirmed/warehouse_confirmed/warehouse/09:36:00$', true,
          'br-7: reminder 4 at 2.4 x 4 h');
DELETE FROM order_flow.reminder_policy WHERE workflow = 'b2b_order' AND level = 4;

-- escalations and reminders are counted together
SELECT lives_ok($$UPDATE br_orders SET status = 'contract_signed' WHERE id = 'br-6'$$,
                'br-6 signed live (3 notifications due in 15 minutes)');
UPDATE order_flow.state SET max_dwell = '10 minutes' WHERE workflow = 'b2b_order' AND state = 'warehouse_confirmed';
SELECT is(order_flow.escalate_due(now() + interval '20 minutes'), 5,
          'one sweep 20 minutes ahead: 3 escalations (br-6) + 2 reminders (br-1 at 10 and 15 min) = 5');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key = 'br-6' AND action = 'escalate')
          || '+' || (SELECT count(*) FROM order_flow.audit_log WHERE order_key = 'br-1' AND action = 'remind'),
          '3+5', 'br-6: 3 escalate events; br-1: 5 remind events (3 in contract_signed, 2 in warehouse_confirmed)');
SELECT * FROM pg_temp.refused($$SELECT order_flow.escalate_due(NULL)$$, '22004', 'escalate_due(NULL)');

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
