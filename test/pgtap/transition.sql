-- test/pgtap/transition.sql -- moving orders (SPEC 3.3): the C transition
-- path behind INSERT, UPDATE, transition() and import_transition();
-- validation, rights, reasons, stamps, notifications, holds, imports, the
-- catalogue cache, and the out-of-band log of refused attempts.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(174);

-- ------------------------------------------------------------ fixtures
CREATE TABLE orders (
    id          text PRIMARY KEY,
    status      order_flow.status NOT NULL DEFAULT 'inquiry',
    customer    text,
    region      text,
    amount      numeric);
DO $$ BEGIN PERFORM order_flow.manage('orders', customer_column => 'customer', attributes => '{region,amount}'); END $$;
CREATE TABLE unmanaged (id text PRIMARY KEY, status text);
INSERT INTO unmanaged VALUES ('tr-u1', 'inquiry');

INSERT INTO order_flow.member (actor, department) VALUES
    ('alice', 'sales'), ('carol', 'commerce'), ('wendy', 'warehouse'), ('fred', 'finance'),
    ('larry', 'logistics'), ('tw_tr_self', 'sales');
CREATE ROLE tw_tr_clerk NOLOGIN;
CREATE ROLE tw_tr_self NOLOGIN;
CREATE ROLE tw_tr_admin NOLOGIN IN ROLE order_flow_admin;
CREATE ROLE tw_tr_importer NOLOGIN;
GRANT SELECT, INSERT, UPDATE ON orders TO tw_tr_clerk, tw_tr_self, tw_tr_admin, tw_tr_importer;
GRANT USAGE ON SCHEMA public TO tw_tr_clerk, tw_tr_self, tw_tr_admin, tw_tr_importer;

-- events(key): the order's events as 'action:from>to', in chain order
CREATE FUNCTION pg_temp.events(k text) RETURNS text[] LANGUAGE sql AS $f$
    SELECT coalesce(array_agg(a.action || ':' || coalesce(a.from_state, '-') || '>' || coalesce(a.to_state, '-')
                              ORDER BY a.seq), '{}')
      FROM order_flow.audit_log a WHERE a.order_key = k
$f$;
-- last_event(key): the order's newest event
CREATE FUNCTION pg_temp.last_event(k text) RETURNS order_flow.audit_log LANGUAGE sql AS $f$
    SELECT a FROM order_flow.audit_log a WHERE a.order_key = k ORDER BY a.seq DESC LIMIT 1
$f$;
-- allowed_next(from): what the DETAIL of an invalid edge must list, from the catalogue
CREATE FUNCTION pg_temp.allowed_next(f text) RETURNS text LANGUAGE sql AS $f$
    SELECT 'Allowed next states: ' || coalesce(string_agg(r.to_state, ', ' ORDER BY r.to_state::order_flow.status),
                                               'none (terminal state)') || '.'
      FROM order_flow.transition_rule r WHERE r.workflow = 'b2b_order' AND r.from_state = f
$f$;

-- ------------------------------------------------------ INSERT: created
INSERT INTO orders VALUES ('tr-c1', 'inquiry', 'Acme', 'north', 100);
SELECT results_eq(
    $$SELECT seq, action, from_state, to_state, actor, db_user, details, prev_hash IS NULL
        FROM order_flow.audit_log WHERE order_key = 'tr-c1'$$,
    $$VALUES (1::bigint, 'created', NULL::text, 'inquiry', session_user::text COLLATE "default", current_user::text COLLATE "default",
              '{"customer": "Acme", "attributes": {"region": "north", "amount": 100}}'::jsonb, true)$$,
    'INSERT writes one created event with customer and attributes');
SELECT results_eq(
    $$SELECT o.tbl, o.workflow, o.state, o.last_seq, o.last_hash = a.hash, o.created_at = a.occurred_at,
             o.entered_at = a.occurred_at, o.customer_key, o.attributes
        FROM order_flow.tracked_order o JOIN order_flow.audit_log a ON a.order_key = o.order_key
       WHERE o.order_key = 'tr-c1'$$,
    $$VALUES ('public.orders', 'b2b_order', 'inquiry', 1::bigint, true, true, true, 'Acme',
              '{"region": "north", "amount": 100}'::jsonb)$$,
    'INSERT starts tracking: chain head, state, times, customer and attributes');
SELECT * FROM pg_temp.refused($$INSERT INTO orders VALUES ('tr-c2', 'quoted', 'Acme', 'north', 1)$$, '23514',
                              'a non-admin inserting an order in a later state', '%must start in state "inquiry"%',
                              as_role => 'tw_tr_clerk', actor => 'alice', tbl => 'orders');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_clerk', 'alice',
                    'INSERT INTO orders VALUES (''tr-c3'', ''inquiry'', ''Beta'', ''east'', 5)')$$,
                'a non-admin inserts an order in the initial state');
SELECT results_eq($$SELECT action, to_state, actor, db_user FROM order_flow.audit_log WHERE order_key = 'tr-c3'$$,
                  $$VALUES ('created', 'inquiry', 'alice', 'tw_tr_clerk')$$,
                  'the created event keeps the claimed actor and the database user');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_admin', 'nobody',
                    'INSERT INTO orders VALUES (''tr-c4'', ''shipped'', ''Beta'', ''east'', 5)')$$,
                'an order_flow_admin inserts an order in a later state');
SELECT results_eq($$SELECT action, from_state, to_state FROM order_flow.audit_log WHERE order_key = 'tr-c4'$$,
                  $$VALUES ('created', NULL::text, 'shipped')$$, 'its created event names the later state');
SELECT * FROM pg_temp.refused($$INSERT INTO orders VALUES ('tr-c5', NULL, 'Acme', 'north', 1)$$, '23502',
                              'inserting an order with a NULL status', tbl => 'orders');
SELECT * FROM pg_temp.refused($$INSERT INTO orders VALUES ('tr-c5', 'inqiury', 'Acme', 'north', 1)$$, '22P02',
                              'inserting an order in an unknown state', tbl => 'orders');
SELECT * FROM pg_temp.refused($$INSERT INTO orders VALUES ('tr-c1', 'inquiry', 'Acme', 'north', 1)$$, '23505',
                              'inserting a duplicate key', tbl => 'orders');

-- ----------------------------------------- UPDATE and transition(): one path
INSERT INTO orders VALUES ('tr-a', 'inquiry', 'Same', 'west', 7), ('tr-b', 'inquiry', 'Same', 'west', 7);
SELECT lives_ok($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-a'$$, 'plain UPDATE moves an order');
SELECT lives_ok($$SELECT order_flow.transition('orders', 'tr-b', 'quoted')$$, 'transition() moves an order');
SELECT results_eq(
    $$SELECT seq, action, from_state, to_state, actor, db_user, details FROM order_flow.audit_log
       WHERE order_key = 'tr-a' ORDER BY seq$$,
    $$SELECT seq, action, from_state, to_state, actor, db_user, details FROM order_flow.audit_log
       WHERE order_key = 'tr-b' ORDER BY seq$$,
    'UPDATE and transition() record identical events');
SELECT is((SELECT status::text FROM orders WHERE id = 'tr-b'), 'quoted', 'transition() updated the table row');
SELECT results_eq(
    $$SELECT o.state, o.last_seq, o.entered_at = a.occurred_at, o.last_hash = a.hash,
             a.prev_hash = (SELECT p.hash FROM order_flow.audit_log p WHERE p.order_key = 'tr-a' AND p.seq = 1)
        FROM order_flow.tracked_order o JOIN order_flow.audit_log a ON a.order_key = o.order_key AND a.seq = o.last_seq
       WHERE o.order_key = 'tr-a'$$,
    $$VALUES ('quoted', 2::bigint, true, true, true)$$,
    'a transition moves the chain head and links to the previous event');
SELECT lives_ok($$SELECT order_flow.transition('orders', 'tr-b', 'contract_signed', 'signed at the fair',
                                               '{"po": "PO-17", "note": "overridden?"}')$$,
                'transition() with a note and details');
SELECT results_eq($$SELECT details->>'po', details ? 'note' FROM order_flow.audit_log
                     WHERE order_key = 'tr-b' AND seq = 3$$,
                  $$VALUES ('PO-17', true)$$, 'transition() details are kept in the event');
INSERT INTO orders VALUES ('tr-f', 'inquiry', 'Real', 'north', 9);
SELECT lives_ok($$SELECT order_flow.transition('orders', 'tr-f', 'cancelled', 'real reason',
                    '{"exception_type": "none", "customer": "Forged", "attributes": {"region": "south"},
                      "note": "forged note", "ref": "T-1"}')$$,
                'transition() with details that reuse the names of recorded facts');
SELECT results_eq($$SELECT details->>'exception_type', details->>'customer', details->'attributes', details->>'note',
                           details->>'ref'
                      FROM order_flow.audit_log WHERE order_key = 'tr-f' AND seq = 2$$,
                  $$VALUES ('cancelled', 'Real', '{"region": "north", "amount": 9}'::jsonb, 'real reason', 'T-1')$$,
                  'caller details cannot overwrite the recorded exception type, customer, attributes or note');

-- ------------------------------------------------------- invalid moves
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'shipped' WHERE id = 'tr-a'$$, '23514',
                              'an invalid edge', 'invalid transition of order tr-a from "quoted" to "shipped"',
                              tbl => 'orders');
SELECT is((pg_temp.outcome($$UPDATE orders SET status = 'shipped' WHERE id = 'tr-a'$$)).detail,
          pg_temp.allowed_next('quoted'), 'the DETAIL lists the allowed next states, in process order');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-a', 'shipped')$$, '23514',
                              'an invalid edge through transition()', tbl => 'orders');
SELECT is((pg_temp.outcome($$SELECT order_flow.transition('orders', 'tr-a', 'paid')$$)).detail,
          pg_temp.allowed_next('quoted'), 'transition() reports the same DETAIL');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'inquiry' WHERE id = 'tr-a'$$, '23514',
                              'moving backwards without an edge', tbl => 'orders');
INSERT INTO orders VALUES ('tr-z', 'archived', 'Z', 'z', 0);
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'paid' WHERE id = 'tr-z'$$, '23514',
                              'leaving a terminal state', tbl => 'orders');
SELECT is((pg_temp.outcome($$UPDATE orders SET status = 'paid' WHERE id = 'tr-z'$$)).detail,
          'Allowed next states: none (terminal state).', 'a terminal state has no next states');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = NULL WHERE id = 'tr-a'$$, '23502',
                              'a NULL status', tbl => 'orders');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'qoted' WHERE id = 'tr-a'$$, '22P02',
                              'an unknown state name', tbl => 'orders');
DO $$ BEGIN PERFORM order_flow.create_status('tw_tr_elsewhere'); END $$;
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'tw_tr_elsewhere' WHERE id = 'tr-a'$$, '22P02',
                              'a status the workflow does not have', '%not a state of workflow%', tbl => 'orders');
SELECT * FROM pg_temp.refused($$UPDATE orders SET id = 'tr-a2' WHERE id = 'tr-a'$$, '0A000',
                              'changing the order key', tbl => 'orders');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'contract_signed' WHERE id IN ('tr-a', 'tr-c1')$$, '23514',
                              'a statement moving two orders, one invalidly (the valid one is undone too)',
                              tbl => 'orders');

-- same state: not a transition
CREATE TEMP TABLE n_before AS SELECT count(*) AS n FROM order_flow.audit_log;
SELECT lives_ok($$UPDATE orders SET status = 'quoted', customer = customer WHERE id = 'tr-a'$$,
                'setting the state an order is already in');
SELECT lives_ok($$UPDATE orders SET amount = amount + 1 WHERE id = 'tr-a'$$, 'updating another column');
SELECT is((SELECT count(*) FROM order_flow.audit_log), (SELECT n FROM n_before), 'neither wrote an event');

-- ----------------------------------------------------- transition() errors
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-nope', 'quoted')$$, 'P0002',
                              'transition() of an unknown order', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-a', 'quoted')$$, '23514',
                              'transition() to the state the order is in', '%already in state%', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('unmanaged', 'tr-u1', 'quoted')$$, '42704',
                              'transition() on a table that is not managed', tbl => 'unmanaged');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition(NULL, 'tr-a', 'contract_signed')$$, '22004',
                              'transition() with a NULL table', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', NULL, 'contract_signed')$$, '22004',
                              'transition() with a NULL key', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-a', NULL)$$, '22004',
                              'transition() with a NULL target state', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-a', 'contract_signed', NULL, '[1, 2]')$$,
                              '22023', 'transition() with array details', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-a', 'contract_signed', NULL, '"text"')$$,
                              '22023', 'transition() with scalar details', tbl => 'orders');
SELECT * FROM pg_temp.refused(format('SELECT order_flow.transition(''orders'', ''tr-a'', ''contract_signed'', NULL, %L)',
                                     jsonb_build_object('blob', repeat('x', 70000))),
                              '54000', 'transition() with details over 64 kB', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-a', 'contract_sined')$$, '22P02',
                              'transition() to an unknown state', tbl => 'orders');

-- ------------------------------------------------------------- reasons
INSERT INTO orders VALUES ('tr-r1', 'inquiry', 'R', 'r', 1), ('tr-r2', 'inquiry', 'R', 'r', 1),
                          ('tr-r3', 'inquiry', 'R', 'r', 1), ('tr-r4', 'inquiry', 'R', 'r', 1);
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'cancelled' WHERE id = 'tr-r1'$$, '23514',
                              'a reason-required edge without a reason', '%requires a reason%', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-r1', 'cancelled')$$, '23514',
                              'transition() on a reason-required edge without a reason', '%requires a reason%',
                              tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-r1', 'cancelled', NULL,
                                                             '{"comment": "reason"}')$$, '23514',
                              'details that merely contain the word "reason" are not a reason', '%requires a reason%',
                              tbl => 'orders');
SELECT lives_ok($$SET LOCAL order_flow.reason = 'customer withdrew';
                  UPDATE orders SET status = 'cancelled' WHERE id = 'tr-r1';
                  SET LOCAL order_flow.reason = ''$$,
                'the reason may come from SET order_flow.reason');
SELECT results_eq($$SELECT details->>'note', details->>'exception_type' FROM order_flow.audit_log
                     WHERE order_key = 'tr-r1' AND seq = 2$$,
                  $$VALUES ('customer withdrew', 'cancelled')$$,
                  'the reason and the edge''s exception type are recorded');
SELECT lives_ok($$SELECT order_flow.transition('orders', 'tr-r2', 'cancelled', 'duplicate order')$$,
                'the reason may come from transition()''s note');
SELECT is((pg_temp.last_event('tr-r2')).details->>'note', 'duplicate order', 'the note is recorded');
SELECT lives_ok($$SELECT order_flow.transition('orders', 'tr-r3', 'cancelled', NULL, '{"reason": "fraud"}')$$,
                'the reason may come from details.reason');
SELECT is((pg_temp.last_event('tr-r3')).details->>'reason', 'fraud', 'details.reason is recorded');

-- ------------------------------------------------------------- stamps
INSERT INTO orders VALUES ('tr-s', 'inquiry', 'S', 's', 1);
UPDATE orders SET status = 'quoted' WHERE id = 'tr-s';
SELECT results_eq($$SELECT contract_signed_at, warehouse_confirmed_at, finance_approved_at, shipped_at
                      FROM order_flow.tracked_order WHERE order_key = 'tr-s'$$,
                  $$VALUES (NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz)$$,
                  'no core time is stamped before its state is reached');
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-s';
SELECT results_eq($$SELECT contract_signed_at = (pg_temp.last_event('tr-s')).occurred_at, warehouse_confirmed_at IS NULL
                      FROM order_flow.tracked_order WHERE order_key = 'tr-s'$$,
                  $$VALUES (true, true)$$, 'entering contract_signed stamps contract_signed_at only');
UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 'tr-s';
UPDATE orders SET status = 'finance_approved' WHERE id = 'tr-s';
UPDATE orders SET status = 'picking' WHERE id = 'tr-s';
UPDATE orders SET status = 'packed' WHERE id = 'tr-s';
UPDATE orders SET status = 'shipped' WHERE id = 'tr-s';
SELECT results_eq(
    $$SELECT o.contract_signed_at, o.warehouse_confirmed_at, o.finance_approved_at, o.shipped_at, o.entered_at
        FROM order_flow.tracked_order o WHERE o.order_key = 'tr-s'$$,
    $$SELECT (SELECT occurred_at FROM order_flow.audit_log WHERE order_key = 'tr-s' AND to_state = 'contract_signed'),
             (SELECT occurred_at FROM order_flow.audit_log WHERE order_key = 'tr-s' AND to_state = 'warehouse_confirmed'),
             (SELECT occurred_at FROM order_flow.audit_log WHERE order_key = 'tr-s' AND to_state = 'finance_approved'),
             (SELECT occurred_at FROM order_flow.audit_log WHERE order_key = 'tr-s' AND to_state = 'shipped'),
             (SELECT occurred_at FROM order_flow.audit_log WHERE order_key = 'tr-s' AND to_state = 'shipped')$$,
    'the four core times are the times their states were entered');
SELECT is(pg_temp.events('tr-s'),
          ARRAY['created:->inquiry', 'transition:inquiry>quoted', 'transition:quoted>contract_signed',
                'transition:contract_signed>warehouse_confirmed', 'transition:warehouse_confirmed>finance_approved',
                'transition:finance_approved>picking', 'transition:picking>packed', 'transition:packed>shipped'],
          'the main path is recorded event by event');
-- re-entering a stamped state keeps the first time
INSERT INTO orders VALUES ('tr-s2', 'inquiry', 'S', 's', 1);
UPDATE orders SET status = 'quoted' WHERE id = 'tr-s2';
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-s2';
DO $$ BEGIN PERFORM order_flow.transition('orders', 'tr-s2', 'need_info', 'which pallet size?'); END $$;
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-s2';
SELECT results_eq(
    $$SELECT o.contract_signed_at = min(a.occurred_at), o.contract_signed_at < max(a.occurred_at), count(*)::int
        FROM order_flow.tracked_order o JOIN order_flow.audit_log a
          ON a.order_key = o.order_key AND a.to_state = 'contract_signed'
       WHERE o.order_key = 'tr-s2' GROUP BY o.contract_signed_at$$,
    $$VALUES (true, true, 2)$$,
    're-entering contract_signed keeps the first stamp');

-- ------------------------------------------------------- notifications
INSERT INTO orders VALUES ('tr-n', 'inquiry', 'Nico', 'south', 250);
CREATE TEMP TABLE nmark AS SELECT (SELECT count(*) FROM order_flow.notification) AS n,
                                  (SELECT count(*) FROM order_flow.outbox) AS o;
UPDATE orders SET status = 'quoted' WHERE id = 'tr-n';
SELECT is((SELECT count(*) FROM order_flow.notification) - (SELECT n FROM nmark), 0::bigint,
          'an edge without notify opens no notification');
SELECT is((SELECT count(*) FROM order_flow.outbox) - (SELECT o FROM nmark), 0::bigint,
          'an edge without notify writes no outbox row');
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-n';
SELECT set_eq($$SELECT department FROM order_flow.notification WHERE order_key = 'tr-n'$$,
              $$SELECT unnest(notify) FROM order_flow.transition_rule
                 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed'$$,
              'a notifying edge opens one notification per department of its notify list');
SELECT results_eq(
    $$SELECT count(*)::int, bool_and(n.level = 1), bool_and(n.status = 'pending'), bool_and(n.kind = 'ack_request'),
             bool_and(n.from_state = 'quoted' AND n.to_state = 'contract_signed'), bool_and(n.event_seq = a.seq),
             bool_and(n.deadline = a.recorded_at + r.ack_within)
        FROM order_flow.notification n
        JOIN order_flow.audit_log a ON a.order_key = n.order_key AND a.to_state = 'contract_signed'
        JOIN order_flow.transition_rule r ON r.workflow = 'b2b_order' AND r.from_state = 'quoted'
                                         AND r.to_state = 'contract_signed'
       WHERE n.order_key = 'tr-n'$$,
    $$VALUES (3, true, true, true, true, true, true)$$,
    'notifications: level 1, pending, linked to the event, deadline = event time + ack window');
SELECT results_eq(
    $$SELECT DISTINCT payload->>'order_key', payload->>'from_state', payload->>'to_state', payload->>'customer',
             payload->'attributes', payload->>'table'
        FROM order_flow.notification WHERE order_key = 'tr-n'$$,
    $$VALUES ('tr-n', 'quoted', 'contract_signed', 'Nico', '{"region": "south", "amount": 250}'::jsonb, 'public.orders')$$,
    'the notification payload carries the order, move, customer and attributes');
SELECT results_eq(
    $$SELECT count(*)::int, count(DISTINCT o.notification_id)::int,
             bool_and(o.payload->>'order_key' = 'tr-n'), bool_and(o.delivered_at IS NULL)
        FROM order_flow.outbox o JOIN order_flow.notification n ON n.id = o.notification_id
       WHERE n.order_key = 'tr-n'$$,
    $$VALUES (3, 3, true, true)$$,
    'one undelivered outbox row per notification');
INSERT INTO orders VALUES ('tr-n2', 'inquiry', 'Nico', 'south', 250);
UPDATE orders SET status = 'quoted' WHERE id = 'tr-n2';
SELECT lives_ok($$SELECT order_flow.transition('orders', 'tr-n2', 'contract_signed')$$,
                'transition() over a notifying edge');
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key = 'tr-n2'), 3,
          'transition() opens the same notifications as UPDATE');
INSERT INTO orders VALUES ('tr-n3', 'inquiry', 'Nico', 'south', 250);
UPDATE orders SET status = 'quoted' WHERE id = 'tr-n3';
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'contract_signed' WHERE id IN ('tr-n3', 'tr-c1')$$, '23514',
                              'a notifying move rolled back with its statement leaves no notification or outbox row',
                              tbl => 'orders');

-- --------------------------------------------------------- on_hold
INSERT INTO orders VALUES ('tr-h', 'inquiry', 'H', 'h', 1);
UPDATE orders SET status = 'quoted' WHERE id = 'tr-h';
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-h';
SELECT lives_ok($$SELECT order_flow.transition('orders', 'tr-h', 'on_hold', 'customer asked to wait')$$,
                'hold an order (with a reason)');
SELECT is((SELECT held_from FROM order_flow.tracked_order WHERE order_key = 'tr-h'), 'contract_signed',
          'the tracking row remembers where the order was held from');
SELECT results_eq($$SELECT to_state FROM order_flow.allowed_transitions('orders', 'tr-h')$$,
                  $$SELECT x FROM unnest(ARRAY['contract_signed']
                                         || ARRAY(SELECT to_state FROM order_flow.transition_rule
                                                   WHERE workflow = 'b2b_order' AND from_state = 'on_hold'
                                                   ORDER BY to_state::order_flow.status)) x$$,
                  'allowed_transitions of a held order: back to its origin, plus the edges out of on_hold');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 'tr-h'$$, '23514',
                              'leaving on_hold to a state other than its origin', tbl => 'orders');
SELECT alike((pg_temp.outcome($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-h'$$)).detail,
             'Allowed next states: contract_signed (resume)%', 'the DETAIL offers the resume first');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-h'$$, '42501',
                              'resuming by an actor who may not take the holding edge', '%may not move%',
                              as_role => 'tw_tr_clerk', actor => 'wendy', tbl => 'orders');
CREATE TEMP TABLE hmark AS SELECT count(*) AS n FROM order_flow.notification;
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_clerk', 'fred',
                    'UPDATE orders SET status = ''contract_signed'' WHERE id = ''tr-h''')$$,
                'resume to the origin by a member of a department of the holding edge');
SELECT results_eq($$SELECT from_state, to_state, (details->>'resumed')::boolean, actor FROM order_flow.audit_log
                     WHERE order_key = 'tr-h' ORDER BY seq DESC LIMIT 1$$,
                  $$VALUES ('on_hold', 'contract_signed', true, 'fred')$$, 'the resume is recorded as such');
SELECT is((SELECT held_from FROM order_flow.tracked_order WHERE order_key = 'tr-h'), NULL,
          'resuming clears the held-from state');
SELECT is((SELECT count(*) FROM order_flow.notification), (SELECT n FROM hmark),
          'resuming opens no notifications');
INSERT INTO orders VALUES ('tr-h2', 'inquiry', 'H', 'h', 1);
UPDATE orders SET status = 'quoted' WHERE id = 'tr-h2';
DO $$ BEGIN PERFORM order_flow.transition('orders', 'tr-h2', 'on_hold', 'price check'); END $$;
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-h2'$$, '23514',
                              'an order held from quoted cannot resume to contract_signed', tbl => 'orders');
SELECT lives_ok($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-h2'$$, 'it resumes to quoted');

-- ------------------------------------------------------- actor rights
INSERT INTO orders VALUES ('tr-p1', 'inquiry', 'P', 'p', 1), ('tr-p2', 'inquiry', 'P', 'p', 1),
                          ('tr-p3', 'inquiry', 'P', 'p', 1), ('tr-p4', 'inquiry', 'P', 'p', 1),
                          ('tr-p5', 'inquiry', 'P', 'p', 1), ('tr-probe', 'inquiry', 'P', 'p', 1);
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-p1'$$, '42501',
                              'an actor outside the edge''s departments', 'actor "wendy" may not move order tr-p1%',
                              as_role => 'tw_tr_clerk', actor => 'wendy', tbl => 'orders');
SELECT is((pg_temp.outcome($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-p1'$$, 'tw_tr_clerk', 'wendy')).detail,
          'This edge is taken by members of: sales, commerce.', 'the DETAIL names the departments that may act');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-p1'$$, '42501',
                              'an actor who is no member at all', '%may not move%',
                              as_role => 'tw_tr_clerk', actor => 'mallory', tbl => 'orders');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-p1'$$, '42501',
                              'a non-admin claiming to be the superuser is still judged as an actor', '%may not move%',
                              as_role => 'tw_tr_clerk', actor => 'postgres', tbl => 'orders');
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-p1'$$, '42501',
                              'a non-admin without order_flow.actor acts as its session user', '%may not move%',
                              as_role => 'tw_tr_clerk', tbl => 'orders');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_clerk', 'alice', 'UPDATE orders SET status = ''quoted'' WHERE id = ''tr-p1''')$$,
                'a member of a performing department takes the edge');
SELECT results_eq($$SELECT actor, db_user FROM order_flow.audit_log WHERE order_key = 'tr-p1' AND seq = 2$$,
                  $$VALUES ('alice', 'tw_tr_clerk')$$, 'the event keeps the claimed actor and the database user');
SELECT lives_ok($$SET LOCAL SESSION AUTHORIZATION tw_tr_self;
                  UPDATE orders SET status = 'quoted' WHERE id = 'tr-p2';
                  RESET SESSION AUTHORIZATION$$,
                'without order_flow.actor the session user is the actor (a sales member here)');
SELECT results_eq($$SELECT actor, db_user FROM order_flow.audit_log WHERE order_key = 'tr-p2' AND seq = 2$$,
                  $$VALUES ('tw_tr_self', 'tw_tr_self')$$, 'the session user is recorded as actor');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_admin', 'nobody', 'UPDATE orders SET status = ''quoted'' WHERE id = ''tr-p3''')$$,
                'an order_flow_admin member bypasses the edge rights');
SELECT lives_ok($$SET LOCAL order_flow.actor = 'nobody';
                  UPDATE orders SET status = 'quoted' WHERE id = 'tr-p4';
                  SET LOCAL order_flow.actor = ''$$,
                'a superuser bypasses the edge rights');
SELECT results_eq($$SELECT actor, db_user FROM order_flow.audit_log WHERE order_key = 'tr-p3' AND seq = 2$$,
                  $$VALUES ('nobody', 'tw_tr_admin')$$, 'the bypass is still recorded under the claimed actor');
SELECT * FROM pg_temp.refused($$SELECT order_flow.transition('orders', 'tr-p5', 'quoted')$$, '42501',
                              'transition() by an actor outside the edge''s departments', '%may not move%',
                              as_role => 'tw_tr_clerk', actor => 'wendy', tbl => 'orders');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_clerk', 'alice', 'SELECT order_flow.transition(''orders'', ''tr-p5'', ''quoted'')')$$,
                'transition() by a non-admin member of a performing department');
SELECT is((SELECT status::text FROM orders WHERE id = 'tr-p5'), 'quoted', 'the non-admin''s transition() moved the order');
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-p4';
SELECT results_eq($$SELECT to_state FROM order_flow.allowed_transitions('orders', 'tr-p4')$$,
                  $$SELECT to_state FROM order_flow.transition_rule WHERE workflow = 'b2b_order'
                       AND from_state = 'contract_signed' ORDER BY to_state::order_flow.status$$,
                  'allowed_transitions for an admin: every edge out of the state');
CREATE TEMP TABLE allowed_alice (to_state text, notify text[], reason_required boolean, exception_type text);
GRANT ALL ON allowed_alice TO tw_tr_clerk;
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_clerk', 'alice',
                    'INSERT INTO allowed_alice SELECT * FROM order_flow.allowed_transitions(''orders'', ''tr-p4'')')$$,
                'allowed_transitions() called by a non-admin');
SELECT results_eq(
    $$SELECT r.to_state, r.notify, r.reason_required, r.exception_type FROM order_flow.transition_rule r
       WHERE r.workflow = 'b2b_order' AND r.from_state = 'contract_signed'
         AND (r.performed_by IS NULL OR 'sales' = ANY (r.performed_by))
       ORDER BY r.to_state::order_flow.status$$,
    $$SELECT * FROM allowed_alice ORDER BY to_state::order_flow.status$$,
    'allowed_transitions for a non-admin sales member: only the edges sales may take');

-- the out-of-band log of refused attempts
CREATE FUNCTION pg_temp.wait_for_refusal(k text, who text, secs numeric) RETURNS boolean
LANGUAGE plpgsql AS $f$
DECLARE
    give_up timestamptz := clock_timestamp() + secs * interval '1 second';
BEGIN
    LOOP
        IF EXISTS (SELECT 1 FROM order_flow.refused_attempt r WHERE r.order_key = k AND r.actor = who) THEN
            RETURN true;
        END IF;
        EXIT WHEN clock_timestamp() > give_up;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END
$f$;
SELECT is((pg_temp.outcome($$UPDATE orders SET status = 'cancelled' WHERE id = 'tr-r4'$$, 'tw_tr_clerk', 'tw_tr_prober')).state,
          '42501', 'a probing actor is refused');
SELECT ok(pg_temp.wait_for_refusal('tr-r4', 'tw_tr_prober', 2.0),
          'the refused attempt appears in order_flow.refused_attempt within a second or two, though its transaction rolled back');
SELECT results_eq($$SELECT tbl, from_state, to_state, sqlstate, db_user FROM order_flow.refused_attempt
                     WHERE order_key = 'tr-r4' AND actor = 'tw_tr_prober'$$,
                  $$VALUES ('public.orders', 'inquiry', 'cancelled', '42501', 'tw_tr_clerk')$$,
                  'the refused attempt records table, move, SQLSTATE and database user');

-- a non-admin's first transition after a configuration change (the
-- catalogue cache is rebuilt inside the non-admin's own transaction)
INSERT INTO order_flow.member (actor, department) VALUES ('tw_tr_newbie', 'sales');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_clerk', 'alice', 'UPDATE orders SET status = ''quoted'' WHERE id = ''tr-probe''')$$,
                'a non-admin transition right after a configuration change');

-- ------------------------------------------------------------- imports
CREATE TABLE legacy (id text PRIMARY KEY, status text NOT NULL, customer text);
INSERT INTO legacy VALUES ('tr-i1', 'inquiry', 'Old'), ('tr-i2', 'inquiry', 'Old'), ('tr-i3', 'inquiry', 'Old');
GRANT SELECT, UPDATE ON legacy TO tw_tr_clerk, tw_tr_importer;
DO $$ BEGIN PERFORM order_flow.manage('legacy', customer_column => 'customer'); END $$;
CREATE TEMP TABLE imark AS SELECT (SELECT count(*) FROM order_flow.notification) AS n,
                                  (SELECT count(*) FROM order_flow.outbox) AS o;
SELECT lives_ok($$SELECT order_flow.import_transition('legacy', 'tr-i1', 'quoted', '2024-03-01 09:00+00')$$,
                'import a back-dated transition');
SELECT lives_ok($$SELECT order_flow.import_transition('legacy', 'tr-i1', 'contract_signed', '2024-03-02 10:30+00',
                                                      '{"source": "erp7"}')$$,
                'import a back-dated transition over a notifying edge');
SELECT results_eq(
    $$SELECT seq, action, from_state, to_state, occurred_at, recorded_at >= now(), details->>'source'
        FROM order_flow.audit_log WHERE order_key = 'tr-i1' ORDER BY seq$$,
    $$VALUES (1::bigint, 'import', 'inquiry', 'quoted', '2024-03-01 09:00+00'::timestamptz, true, NULL::text),
             (2::bigint, 'import', 'quoted', 'contract_signed', '2024-03-02 10:30+00'::timestamptz, true, 'erp7')$$,
    'imports are audited as import with business time and server recorded_at');
SELECT results_eq($$SELECT state, entered_at, contract_signed_at FROM order_flow.tracked_order WHERE order_key = 'tr-i1'$$,
                  $$VALUES ('contract_signed', '2024-03-02 10:30+00'::timestamptz, '2024-03-02 10:30+00'::timestamptz)$$,
                  'an import moves the order and stamps business time');
SELECT is((SELECT status FROM legacy WHERE id = 'tr-i1'), 'contract_signed', 'an import moves the table row');
SELECT results_eq($$SELECT (SELECT count(*) FROM order_flow.notification) - n,
                           (SELECT count(*) FROM order_flow.outbox) - o FROM imark$$,
                  $$VALUES (0::bigint, 0::bigint)$$, 'imports open no notifications and write no outbox rows');
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('legacy', 'tr-i1', 'warehouse_confirmed',
                                                                    '2024-03-02 10:29+00')$$,
                              '22023', 'an import running backwards in time', '%runs backwards%', tbl => 'legacy');
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('legacy', 'tr-i1', 'warehouse_confirmed',
                                                                    now() + interval '1 hour')$$,
                              '22023', 'an import in the future', '%future%', tbl => 'legacy');
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('legacy', 'tr-i1', 'warehouse_confirmed', NULL)$$,
                              '22004', 'an import without a time', tbl => 'legacy');
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('legacy', 'tr-i1', 'shipped', '2024-03-03 00:00+00')$$,
                              '23514', 'an import over an invalid edge', tbl => 'legacy');
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('legacy', 'tr-i2', 'cancelled', '2024-03-03 00:00+00')$$,
                              '23514', 'an import over a reason-required edge without a reason', tbl => 'legacy');
SELECT lives_ok($$SELECT order_flow.import_transition('legacy', 'tr-i2', 'cancelled', '2024-03-03 00:00+00',
                                                      '{"reason": "legacy cancellation"}')$$,
                'an import over a reason-required edge with details.reason');
SELECT lives_ok($$SELECT order_flow.import_transition('legacy', 'tr-i1', 'warehouse_confirmed', '2024-03-02 10:30+00')$$,
                'an import at the same time as the previous event');
SELECT * FROM pg_temp.refused($$SELECT order_flow.import_transition('legacy', 'tr-i3', 'quoted', '2024-03-01 00:00+00')$$,
                              '42501', 'an import by a role not granted import_transition',
                              as_role => 'tw_tr_clerk', actor => 'alice', tbl => 'legacy');
SELECT * FROM pg_temp.refused($$SELECT _order_flow._move('legacy', 'tr-i3', 'quoted', NULL, '{}', 'import', '2024-03-01 00:00+00')$$,
                              '42501', 'an import through the internal _move() by a role not granted import_transition',
                              as_role => 'tw_tr_clerk', actor => 'alice', tbl => 'legacy');
SELECT * FROM pg_temp.refused($$SELECT _order_flow._set_context('tr-i3', 'import', NULL, '{}', '2024-03-01 00:00+00');
                                UPDATE legacy SET status = 'quoted' WHERE id = 'tr-i3'$$,
                              '42501', 'an import through _set_context() and UPDATE by a role not granted import_transition',
                              as_role => 'tw_tr_clerk', actor => 'alice', tbl => 'legacy');
SELECT * FROM pg_temp.refused($$SELECT _order_flow._move('orders', 'tr-p1', 'contract_signed', NULL, '{}', 'transition',
                                                        now() - interval '1 day')$$,
                              '22023', 'a live transition carrying a business time', tbl => 'orders');
GRANT EXECUTE ON FUNCTION order_flow.import_transition(regclass, text, text, timestamptz, jsonb) TO tw_tr_importer;
SELECT lives_ok($$SELECT pg_temp.run_as('tw_tr_importer', 'migration',
                    'SELECT order_flow.import_transition(''legacy'', ''tr-i3'', ''quoted'', ''2024-03-01 00:00+00'')')$$,
                'a role granted import_transition (not an admin) imports');

-- --------------------------------------------- the catalogue cache
INSERT INTO orders VALUES ('tr-k1', 'inquiry', 'K', 'k', 1), ('tr-k2', 'inquiry', 'K', 'k', 1),
                          ('tr-k3', 'inquiry', 'K', 'k', 1), ('tr-k4', 'inquiry', 'K', 'k', 1),
                          ('tr-k5', 'inquiry', 'K', 'k', 1);
UPDATE orders SET status = 'quoted' WHERE id = 'tr-k5';
UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-k5';
UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 'tr-k5';
UPDATE order_flow.transition_rule SET reason_required = true
 WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'quoted';
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-k1'$$, '23514',
                              'a rule changed in this session is obeyed by the next transition', '%requires a reason%',
                              tbl => 'orders');
UPDATE order_flow.transition_rule SET reason_required = false
 WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'quoted';
SELECT lives_ok($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-k1'$$, 'changing it back is obeyed too');
INSERT INTO order_flow.transition_rule (workflow, from_state, to_state, performed_by)
VALUES ('b2b_order', 'inquiry', 'contract_signed', '{commerce}');
SELECT lives_ok($$UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-k2'$$,
                'a new edge can be taken at once');
DELETE FROM order_flow.transition_rule WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'contract_signed';
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'contract_signed' WHERE id = 'tr-k3'$$, '23514',
                              'a deleted edge is refused at once', tbl => 'orders');
UPDATE order_flow.transition_rule SET performed_by = '{finance}'
 WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'quoted';
UPDATE orders SET status = 'quoted' WHERE id = 'tr-k4';
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'quoted' WHERE id = 'tr-k3'$$, '42501',
                              'changed performers are obeyed at once', 'actor "alice" may not move%',
                              as_role => 'tw_tr_clerk', actor => 'alice', tbl => 'orders');
DELETE FROM order_flow.member WHERE actor = 'fred';
INSERT INTO order_flow.member (actor, department) VALUES ('fred', 'commerce');
UPDATE orders SET status = 'quoted' WHERE id = 'tr-k3';
SELECT * FROM pg_temp.refused($$UPDATE orders SET status = 'finance_approved' WHERE id = 'tr-k5'$$, '42501',
                              'a membership removed in this session is obeyed at once', 'actor "fred" may not move%',
                              as_role => 'tw_tr_clerk', actor => 'fred', tbl => 'orders');

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
