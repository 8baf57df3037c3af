-- test/pgtap/broadcast_ack.sql -- the broadcast hub (SPEC 3.4): the
-- notifications a contract signature opens for warehouse, finance and
-- logistics (payload, 15-minute deadline, outbox), none for rolled-back or
-- imported transitions; acknowledge() 'ack' and 'need_info' (the form goes
-- back to sales, the order does not move); and every bad answer, each
-- refused with its SQLSTATE and leaving notifications, outbox and audit log
-- untouched (SPEC 5).
--
-- Everything runs in one transaction that is rolled back: the background
-- worker of the test database never sees these rows.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql
\ir include/refusal_name.psql

SELECT plan(124);

CREATE TABLE bc_orders (id text PRIMARY KEY, status text NOT NULL, customer text,
                        grade text, urgency text, ship_by date);

-- hub_snapshot(): pg_temp.snapshot() plus a digest of every notification,
-- outbox and audit row, so an UPDATE of a notification's status counts too.
CREATE FUNCTION pg_temp.hub_snapshot() RETURNS text LANGUAGE sql AS $f$
    SELECT pg_temp.snapshot() || ' hub=' || md5(
           coalesce((SELECT string_agg(n::text, '|' ORDER BY n.id) FROM order_flow.notification n), '')
        || coalesce((SELECT string_agg(o::text, '|' ORDER BY o.id) FROM order_flow.outbox o), '')
        || coalesce((SELECT string_agg(a.id::text || a.action, '|' ORDER BY a.id) FROM order_flow.audit_log a), '')
        || coalesce((SELECT string_agg(b::text, '|' ORDER BY b.id) FROM bc_orders b), ''))
$f$;

-- hub_refused(cmd, want_state, descr, [want_msg], [as_role], [actor]): two
-- assertions: the SQLSTATE (and message), and nothing written at all.
CREATE FUNCTION pg_temp.hub_refused(cmd text, want_state text, descr text, want_msg text DEFAULT '%',
                                    as_role text DEFAULT NULL, actor text DEFAULT NULL)
RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT * FROM pg_temp.refused_in('SELECT pg_temp.hub_snapshot()', cmd, want_state, descr, want_msg,
                                     as_role, actor)
$f$;

-- nid(order, department, [level]): the notification of that order for that
-- department (level 1 unless given).
CREATE FUNCTION pg_temp.nid(k text, d text, l int DEFAULT 1) RETURNS bigint LANGUAGE sql AS $f$
    SELECT id FROM order_flow.notification
     WHERE order_key = k AND department = d AND level = l AND kind = 'ack_request'
$f$;

-- ------------------------------------------------------------ fixtures
-- ba-imp exists before manage(): it is adopted without events, so its
-- history can be imported
INSERT INTO bc_orders VALUES ('ba-imp', 'quoted', 'Old Customer', 'C', 'low', NULL);
SELECT order_flow.manage('bc_orders', customer_column => 'customer',
                         attributes => '{grade,urgency,ship_by}');

INSERT INTO bc_orders VALUES
    ('ba-1', 'inquiry', 'Huadong Hardware', 'A', 'high', '2030-03-01'),
    ('ba-2', 'inquiry', 'Beifang Tools', 'B', 'normal', NULL),
    ('ba-3', 'inquiry', 'Nanfang Fasteners', 'A', 'high', NULL);
UPDATE bc_orders SET status = 'quoted';

-- a clerk role: department members answer through it, claiming their name
CREATE ROLE tw_bc_clerk NOLOGIN;
CREATE ROLE tw_bc_admin NOLOGIN IN ROLE order_flow_admin;
GRANT EXECUTE ON FUNCTION order_flow.acknowledge(bigint, text, jsonb) TO tw_bc_clerk;
INSERT INTO order_flow.member (actor, department, level) VALUES
    ('wh_li', 'warehouse', 1), ('fin_wang', 'finance', 1), ('log_chen', 'logistics', 1),
    ('sales_zhao', 'sales', 1), ('wh_boss', 'warehouse', 2), ('log_boss', 'logistics', 2);

-- ------------------------------------------- contract signed: the broadcast
CREATE TEMP TABLE mark AS
SELECT (SELECT coalesce(max(id), 0) FROM order_flow.notification) AS n_id,
       (SELECT coalesce(max(id), 0) FROM order_flow.outbox) AS o_id;
SELECT is((SELECT count(*)::int FROM order_flow.notification), 0,
          'moves on edges that notify nobody open no notification (inquiry -> quoted)');

UPDATE bc_orders SET status = 'contract_signed' WHERE id = 'ba-1';

SELECT results_eq(
    $$SELECT department, level, status, kind, from_state, to_state, escalates, parent_id IS NULL
        FROM order_flow.notification WHERE order_key = 'ba-1' ORDER BY department$$,
    $$VALUES ('finance', 1, 'pending', 'ack_request', 'quoted', 'contract_signed', true, true),
             ('logistics', 1, 'pending', 'ack_request', 'quoted', 'contract_signed', true, true),
             ('warehouse', 1, 'pending', 'ack_request', 'quoted', 'contract_signed', true, true)$$,
    'contract signed opens one pending level-1 notification each for finance, logistics and warehouse');
SELECT is((SELECT count(DISTINCT n.deadline - a.occurred_at)::int || ' ' || min(n.deadline - a.occurred_at)::text
             FROM order_flow.notification n
             JOIN order_flow.audit_log a ON a.order_key = n.order_key AND a.seq = n.event_seq
            WHERE n.order_key = 'ba-1'),
          '1 00:15:00', 'each deadline is the transition''s time + exactly 15 minutes');
SELECT ok((SELECT bool_and(n.created_at - n.deadline BETWEEN interval '-15 minutes' AND interval '-14 minutes 55 seconds')
             FROM order_flow.notification n WHERE n.order_key = 'ba-1'),
          'deadline - created_at is 15 minutes (the window counts from now, not from some other time)');
SELECT is((SELECT string_agg(DISTINCT a.action || ':' || a.to_state, ',')
             FROM order_flow.notification n
             JOIN order_flow.audit_log a ON a.order_key = n.order_key AND a.seq = n.event_seq
            WHERE n.order_key = 'ba-1'),
          'transition:contract_signed', 'event_seq points at the contract_signed event');
SELECT results_eq(
    $$SELECT payload->>'order_key', payload->>'customer', payload->'attributes', payload->>'department',
             (payload->>'deadline')::timestamptz = deadline, (payload->>'level')::int,
             payload->>'from_state', payload->>'to_state', payload->>'table', payload->>'actor'
        FROM order_flow.notification WHERE order_key = 'ba-1' ORDER BY department$$,
    $$SELECT 'ba-1', 'Huadong Hardware',
             '{"grade": "A", "urgency": "high", "ship_by": "2030-03-01"}'::jsonb, d, true, 1,
             'quoted', 'contract_signed', 'public.bc_orders', current_user::text COLLATE "default"
        FROM unnest(ARRAY['finance', 'logistics', 'warehouse']) d$$,
    'the payload carries order key, customer, attributes, department, deadline, level, edge, table and actor');
SELECT results_eq(
    $$SELECT n.department, o.order_key, o.channel, o.payload = n.payload || jsonb_build_object('notification_id', n.id),
             o.delivered_at IS NULL, o.attempts
        FROM order_flow.notification n JOIN order_flow.outbox o ON o.notification_id = n.id
       WHERE n.order_key = 'ba-1' ORDER BY n.department$$,
    $$VALUES ('finance', 'ba-1', 'order_flow', true, true, 0),
             ('logistics', 'ba-1', 'order_flow', true, true, 0),
             ('warehouse', 'ba-1', 'order_flow', true, true, 0)$$,
    'one undelivered outbox row per notification, carrying its payload and id');
SELECT is((SELECT count(*)::int FROM order_flow.outbox WHERE order_key = 'ba-1'), 3,
          'no other outbox rows for the transition');
SELECT results_eq(
    $$SELECT department, level, overdue, seconds_left BETWEEN 900 AND 960, level_title, kind
        FROM order_flow.pending_acks WHERE order_key = 'ba-1' ORDER BY department$$,
    $$VALUES ('finance', 1, false, true, 'supervisor', 'ack_request'),
             ('logistics', 1, false, true, 'supervisor', 'ack_request'),
             ('warehouse', 1, false, true, 'supervisor', 'ack_request')$$,
    'pending_acks shows the three countdowns at level 1 (supervisor), not overdue');

-- a transition that is rolled back leaves no notification and no outbox row
SELECT is((pg_temp.outcome($$UPDATE bc_orders SET status = 'contract_signed' WHERE id = 'ba-2'$$)).state,
          '00000', 'a contract signature that is then rolled back succeeds on its own');
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key = 'ba-2'), 0,
          'a rolled-back contract signature leaves no notification');
SELECT is((SELECT count(*)::int FROM order_flow.outbox WHERE order_key = 'ba-2'), 0,
          'a rolled-back contract signature leaves no outbox row');
SELECT is((SELECT status FROM bc_orders WHERE id = 'ba-2'), 'quoted', 'and the order is still quoted');

-- a refused contract signature (reason-less cancel is refused; invalid edge) opens nothing
SELECT * FROM pg_temp.hub_refused($$UPDATE bc_orders SET status = 'warehouse_confirmed' WHERE id = 'ba-2'$$,
                                  '23514', 'an invalid edge');

-- import_transition back-dates a move and opens nothing
SELECT lives_ok($$SELECT order_flow.import_transition('bc_orders', 'ba-imp', 'contract_signed',
                                                      now() - interval '1 day')$$,
                'import quoted -> contract_signed');
SELECT is((SELECT string_agg(action || ':' || to_state, ',') FROM order_flow.audit_log WHERE order_key = 'ba-imp'),
          'import:contract_signed', 'the import is audited as action import');
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key = 'ba-imp'), 0,
          'an imported contract signature opens no notification');
SELECT is((SELECT count(*)::int FROM order_flow.outbox WHERE order_key = 'ba-imp'), 0,
          'an imported contract signature writes no outbox row');

-- transition() opens the same broadcast as a plain UPDATE
SELECT lives_ok($$SELECT order_flow.transition('bc_orders', 'ba-3', 'contract_signed', 'signed by fax')$$,
                'transition() to contract_signed');
SELECT is((SELECT string_agg(department, ',' ORDER BY department) FROM order_flow.notification
            WHERE order_key = 'ba-3' AND status = 'pending'),
          'finance,logistics,warehouse', 'transition() opens the same three notifications');

-- ------------------------------------------------------------ ack
CREATE TEMP TABLE amark AS SELECT coalesce(max(id), 0) AS a_id FROM order_flow.audit_log;
CREATE TEMP TABLE omark AS SELECT coalesce(max(id), 0) AS o_id FROM order_flow.outbox;
CREATE TEMP TABLE ack1 (ret bigint);
GRANT ALL ON ack1 TO tw_bc_clerk;
SELECT lives_ok($$SELECT pg_temp.run_as('tw_bc_clerk', 'wh_li',
                    format('INSERT INTO ack1 SELECT order_flow.acknowledge(%s, %L, %L)',
                           pg_temp.nid('ba-1', 'warehouse'), 'ack', '{"comment": "stock reserved"}'))$$,
                'a warehouse member acknowledges the warehouse notification');
SELECT is((SELECT ret FROM ack1), pg_temp.nid('ba-1', 'warehouse'), 'ack returns the answered notification''s id');
SELECT results_eq(
    $$SELECT status, answered_by, answered_at IS NOT NULL, response
        FROM order_flow.notification WHERE id = pg_temp.nid('ba-1', 'warehouse')$$,
    $$VALUES ('acknowledged', 'wh_li', true, '{"comment": "stock reserved"}'::jsonb)$$,
    'the notification is acknowledged, by the claimed actor, with a time and the details');
SELECT results_eq(
    $$SELECT a.order_key, a.action, a.from_state, a.to_state, a.actor, a.db_user,
             (a.details->>'notification_id')::bigint = pg_temp.nid('ba-1', 'warehouse'),
             a.details->>'department', (a.details->>'level')::int, a.details->'response'
        FROM order_flow.audit_log a, amark WHERE a.id > amark.a_id ORDER BY a.id$$,
    $$VALUES ('ba-1', 'acknowledge', NULL::text, NULL::text, 'wh_li', 'tw_bc_clerk', true, 'warehouse', 1,
              '{"comment": "stock reserved"}'::jsonb)$$,
    'one acknowledge event in the order''s chain: claimed actor, database user, notification and department');
SELECT is((SELECT count(*)::int FROM order_flow.outbox, omark WHERE id > omark.o_id), 0,
          'an ack writes no outbox row');
SELECT is((SELECT count(*)::int FROM order_flow.pending_acks WHERE notification_id = pg_temp.nid('ba-1', 'warehouse')),
          0, 'an acknowledged notification leaves pending_acks');
SELECT is((SELECT status FROM bc_orders WHERE id = 'ba-1') || '/' ||
          (SELECT state FROM order_flow.tracked_order WHERE order_key = 'ba-1'),
          'contract_signed/contract_signed', 'an ack does not move the order');
SELECT is((SELECT status FROM order_flow.notification WHERE id = pg_temp.nid('ba-1', 'finance')) || '/' ||
          (SELECT status FROM order_flow.notification WHERE id = pg_temp.nid('ba-1', 'logistics')),
          'pending/pending', 'the other departments'' notifications stay pending');

-- ------------------------------------------------------------ need_info
TRUNCATE amark; INSERT INTO amark SELECT max(id) FROM order_flow.audit_log;
TRUNCATE omark; INSERT INTO omark SELECT max(id) FROM order_flow.outbox;
CREATE TEMP TABLE ni (ret bigint, before timestamptz, after timestamptz);
GRANT ALL ON ni TO tw_bc_clerk;
INSERT INTO ni (before) VALUES (clock_timestamp());
SELECT lives_ok($$SELECT pg_temp.run_as('tw_bc_clerk', 'fin_wang',
                    format('UPDATE ni SET ret = order_flow.acknowledge(%s, %L, %L)',
                           pg_temp.nid('ba-1', 'finance'), 'need_info',
                           '{"text": "Which payment terms were agreed?", "attachments": ["contract-77.pdf", "mail-12"]}'))$$,
                'a finance member answers need_info with a form');
UPDATE ni SET after = clock_timestamp();
SELECT results_eq(
    $$SELECT status, answered_by, response FROM order_flow.notification WHERE id = pg_temp.nid('ba-1', 'finance')$$,
    $$VALUES ('need_info', 'fin_wang',
              '{"text": "Which payment terms were agreed?", "attachments": ["contract-77.pdf", "mail-12"]}'::jsonb)$$,
    'the finance notification is answered need_info, with the form as response');
SELECT results_eq(
    $$SELECT n.id = ni.ret, n.department, n.level, n.kind, n.status, n.parent_id = pg_temp.nid('ba-1', 'finance'),
             n.from_state, n.to_state
        FROM order_flow.notification n, ni WHERE n.order_key = 'ba-1' AND n.kind = 'need_info'$$,
    $$VALUES (true, 'sales', 1, 'need_info', 'pending', true, 'quoted', 'contract_signed')$$,
    'need_info opens one pending level-1 notification for sales (the originating department); its id is returned');
SELECT results_eq(
    $$SELECT n.payload->'form', n.payload->>'requesting_department', n.payload->>'requested_by',
             (n.payload->>'in_reply_to')::bigint = pg_temp.nid('ba-1', 'finance'), n.payload->>'department',
             n.payload->>'order_key', n.payload->>'customer', (n.payload->>'deadline')::timestamptz = n.deadline
        FROM order_flow.notification n WHERE n.order_key = 'ba-1' AND n.kind = 'need_info'$$,
    $$VALUES ('{"text": "Which payment terms were agreed?", "attachments": ["contract-77.pdf", "mail-12"]}'::jsonb,
              'finance', 'fin_wang', true, 'sales', 'ba-1', 'Huadong Hardware', true)$$,
    'the sales notification''s payload carries the form, who asked, and the order');
SELECT ok((SELECT n.deadline BETWEEN ni.before + interval '15 minutes' AND ni.after + interval '15 minutes'
             FROM order_flow.notification n, ni WHERE n.order_key = 'ba-1' AND n.kind = 'need_info'),
          'the sales notification is due within the edge''s 15-minute window');
SELECT results_eq(
    $$SELECT o.notification_id = ni.ret, o.payload->'form'->>'text'
        FROM order_flow.outbox o, omark, ni WHERE o.id > omark.o_id$$,
    $$VALUES (true, 'Which payment terms were agreed?')$$,
    'need_info writes one outbox row for the sales notification');
SELECT results_eq(
    $$SELECT a.action, a.actor, a.details->>'department', a.details->>'for_department',
             (a.details->>'opened')::bigint = ni.ret, a.details->'form'->>'text'
        FROM order_flow.audit_log a, amark, ni WHERE a.id > amark.a_id ORDER BY a.id$$,
    $$VALUES ('need_info', 'fin_wang', 'finance', 'sales', true, 'Which payment terms were agreed?')$$,
    'one need_info event in the chain, naming the notification opened for sales');
SELECT is((SELECT status FROM bc_orders WHERE id = 'ba-1') || '/' ||
          (SELECT state FROM order_flow.tracked_order WHERE order_key = 'ba-1'),
          'contract_signed/contract_signed', 'need_info does not move the order');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key = 'ba-1' AND action IN ('transition', 'created')),
          3, 'no transition event was written by the answers');

-- sales answers its need_info notification
SELECT lives_ok($$SELECT pg_temp.run_as('tw_bc_clerk', 'sales_zhao',
                    format('SELECT order_flow.acknowledge(%s)', (SELECT ret FROM ni)))$$,
                'a sales member acknowledges the need_info notification (default response ack)');
SELECT is((SELECT status || '/' || answered_by FROM order_flow.notification WHERE id = (SELECT ret FROM ni)),
          'acknowledged/sales_zhao', 'the need_info notification is acknowledged');

-- need_info with the biggest form allowed: 50 attachments, 4000 characters
SELECT is((pg_temp.outcome(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                  'need_info',
                                  jsonb_build_object('text', repeat('x', 4000),
                                                     'attachments', (SELECT jsonb_agg('ref-' || i) FROM generate_series(1, 50) i))),
                           'tw_bc_clerk', 'log_chen')).state,
          '00000', 'need_info with 4000 characters and 50 attachments is accepted');
SELECT is((pg_temp.outcome(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                  'need_info', '{"text": "no attachments at all"}'),
                           'tw_bc_clerk', 'log_chen')).state,
          '00000', 'need_info without attachments is accepted');

-- ------------------------------------------------------------ bad input
SELECT * FROM pg_temp.hub_refused($$SELECT order_flow.acknowledge(NULL)$$, '22004', 'acknowledge(NULL)');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, NULL)', pg_temp.nid('ba-1', 'logistics')),
                                  '22004', 'a NULL response');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L)', pg_temp.nid('ba-1', 'logistics'), 'maybe'),
                                  '22023', 'an unknown response', '%maybe%');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L)', pg_temp.nid('ba-1', 'logistics'), 'ACK'),
                                  '22023', 'a response in the wrong case');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L)', pg_temp.nid('ba-1', 'logistics'), 'acknowledged'),
                                  '22023', 'a status given as response');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'ack', '["a", "b"]'),
                                  '22023', 'details that are an array');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'ack', '"just text"'),
                                  '22023', 'details that are a string');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'ack', jsonb_build_object('comment', repeat('y', 16400))),
                                  '54000', 'details over 16384 bytes');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', jsonb_build_object('text', 'q', 'pad', repeat('z', 16400))),
                                  '54000', 'a need_info form over 16384 bytes');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info'),
                                  '22023', 'need_info without a form');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"attachments": ["a"]}'),
                                  '22023', 'need_info without text');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"text": ""}'),
                                  '22023', 'need_info with empty text');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"text": "   "}'),
                                  '22023', 'need_info with blank text');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"text": 42}'),
                                  '22023', 'need_info with a number as text');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"text": null}'),
                                  '22023', 'need_info with a JSON null as text');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', jsonb_build_object('text', repeat('w', 4001))),
                                  '54000', 'need_info text over 4000 characters');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"text": "q", "attachments": "doc-1"}'),
                                  '22023', 'attachments that are not an array');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"text": "q", "attachments": ["doc-1", 7]}'),
                                  '22023', 'attachments with a number');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"text": "q", "attachments": [{"ref": "doc-1"}]}'),
                                  '22023', 'attachments with an object');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', jsonb_build_object('text', 'q', 'attachments',
                                             (SELECT jsonb_agg('ref-' || i) FROM generate_series(1, 51) i))),
                                  '22023', '51 attachments');
SELECT * FROM pg_temp.hub_refused($$SELECT order_flow.acknowledge((SELECT max(id) + 1000 FROM order_flow.notification))$$,
                                  'P0002', 'an unknown notification id');
SELECT * FROM pg_temp.hub_refused($$SELECT order_flow.acknowledge(-1, 'need_info', '{"text": "q"}')$$,
                                  'P0002', 'a negative notification id with need_info');

SELECT is(pg_temp.refusal_name($$SELECT order_flow.acknowledge((SELECT max(id) + 1000 FROM order_flow.notification))$$),
          'order_flow_unknown_notification', '... named order_flow_unknown_notification');
-- wrong department: a non-admin database user claiming a member of another
-- department, of no department, or nobody at all
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'logistics')),
                                  '42501', 'a finance member acknowledges the logistics notification',
                                  '%fin_wang%', as_role => 'tw_bc_clerk', actor => 'fin_wang');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'logistics'),
                                         'need_info', '{"text": "who are you?"}'),
                                  '42501', 'a warehouse member answers need_info to the logistics notification',
                                  as_role => 'tw_bc_clerk', actor => 'wh_li');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'logistics')),
                                  '42501', 'an actor who is no member at all',
                                  as_role => 'tw_bc_clerk', actor => 'stranger');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'logistics')),
                                  '42501', 'no claimed actor (the database user is no member)',
                                  as_role => 'tw_bc_clerk');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', (SELECT ret FROM ni)),
                                  '42501', 'a finance member answers the sales need_info notification',
                                  as_role => 'tw_bc_clerk', actor => 'fin_wang');

SELECT is(pg_temp.refusal_name(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'logistics')),
                               'tw_bc_clerk', 'fin_wang'),
          'order_flow_not_member', '... named order_flow_not_member');
-- already answered: 55000, whoever asks and however
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'warehouse')),
                                  '55000', 'acknowledging an acknowledged notification again', '%already answered%',
                                  as_role => 'tw_bc_clerk', actor => 'wh_li');
SELECT is(pg_temp.refusal_name(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'warehouse')),
                               'tw_bc_clerk', 'wh_li'),
          'order_flow_already_answered', '... named order_flow_already_answered');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s, %L, %L)', pg_temp.nid('ba-1', 'warehouse'),
                                         'need_info', '{"text": "changed my mind"}'),
                                  '55000', 'need_info on an acknowledged notification',
                                  as_role => 'tw_bc_clerk', actor => 'wh_boss');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'finance')),
                                  '55000', 'ack of a notification answered need_info',
                                  as_role => 'tw_bc_clerk', actor => 'fin_wang');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'finance')),
                                  '55000', 'a superuser cannot answer an answered notification either');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', (SELECT ret FROM ni)),
                                  '55000', 'the answered need_info notification cannot be answered again',
                                  as_role => 'tw_bc_clerk', actor => 'sales_zhao');

-- admins bypass the department check (judged by the database user)
SELECT lives_ok(format($$SELECT pg_temp.run_as('tw_bc_admin', 'stranger', 'SELECT order_flow.acknowledge(%s)')$$,
                       pg_temp.nid('ba-3', 'logistics')),
                'an order_flow_admin member answers any department''s notification');
SELECT is((SELECT status || '/' || answered_by FROM order_flow.notification WHERE id = pg_temp.nid('ba-3', 'logistics')),
          'acknowledged/stranger', 'the admin''s answer records the claimed actor');
SELECT lives_ok(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-3', 'finance')),
                'a superuser answers any department''s notification');
SELECT is((SELECT answered_by FROM order_flow.notification WHERE id = pg_temp.nid('ba-3', 'finance')),
          current_user::text, 'without a claimed actor the session user answers');
-- a level-2 member of the department may answer too
SELECT lives_ok(format($$SELECT pg_temp.run_as('tw_bc_clerk', 'wh_boss', 'SELECT order_flow.acknowledge(%s)')$$,
                       pg_temp.nid('ba-3', 'warehouse')),
                'a department member of another level answers its notification');

-- escalated notifications are answered at their new level only
SELECT is(order_flow.escalate_due(now() + interval '20 minutes'), 1,
          'a sweep 20 minutes ahead escalates the one notification still pending (ba-1 logistics)');
SELECT * FROM pg_temp.hub_refused(format('SELECT order_flow.acknowledge(%s)', pg_temp.nid('ba-1', 'logistics')),
                                  '55000', 'acknowledging an escalated notification', '%already answered%',
                                  as_role => 'tw_bc_clerk', actor => 'log_chen');
SELECT lives_ok(format($$SELECT pg_temp.run_as('tw_bc_clerk', 'log_boss', 'SELECT order_flow.acknowledge(%s)')$$,
                       pg_temp.nid('ba-1', 'logistics', 2)),
                'the level-2 notification opened by the escalation is answered (by the logistics manager)');
SELECT results_eq($$SELECT level, status FROM order_flow.notification
                     WHERE order_key = 'ba-1' AND department = 'logistics' ORDER BY level$$,
                  $$VALUES (1, 'escalated'), (2, 'acknowledged')$$,
                  'logistics: level 1 escalated, level 2 acknowledged');
SELECT is((SELECT count(*)::int FROM order_flow.pending_acks WHERE order_key IN ('ba-1', 'ba-3')), 0,
          'nothing is left pending for ba-1 and ba-3');

-- re-entering the state by a notifying edge opens new notifications; the old ones stay
SELECT lives_ok($$SELECT order_flow.transition('bc_orders', 'ba-3', 'need_info', 'delivery address unclear')$$,
                'ba-3: contract_signed -> need_info');
SELECT lives_ok($$SELECT order_flow.transition('bc_orders', 'ba-3', 'contract_signed')$$,
                'ba-3: need_info -> contract_signed (signed again)');
SELECT results_eq(
    $$SELECT department, count(*)::int, count(*) FILTER (WHERE status = 'pending')::int,
             count(DISTINCT event_seq)::int
        FROM order_flow.notification WHERE order_key = 'ba-3' AND kind = 'ack_request' GROUP BY department ORDER BY department$$,
    $$VALUES ('finance', 2, 1, 2), ('logistics', 2, 1, 2), ('sales', 1, 1, 1), ('warehouse', 2, 1, 2)$$,
    're-entering contract_signed opens a new notification per department (sales was notified of need_info)');

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
