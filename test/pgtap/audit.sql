-- test/pgtap/audit.sql -- the audit log (SPEC 3.5): append-only for every
-- role, tamper evidence through per-order hash chains, verify_audit(),
-- event_hash(), record(), indexes and dump registration.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(96);

-- ------------------------------------------------------------ fixtures
CREATE TABLE orders (id text PRIMARY KEY, status order_flow.status NOT NULL, customer text, amount numeric);
DO $$ BEGIN PERFORM order_flow.manage('orders', customer_column => 'customer', attributes => '{amount}'); END $$;
INSERT INTO orders VALUES ('au-1', 'inquiry', 'Acme', 10), ('au-2', 'inquiry', 'Beta', 20), ('au-3', 'inquiry', 'Cee', 30);
UPDATE orders SET status = 'quoted' WHERE id IN ('au-1', 'au-2', 'au-3');
UPDATE orders SET status = 'contract_signed' WHERE id IN ('au-1', 'au-2');
SET LOCAL order_flow.actor = 'auditor_alice';
UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 'au-1';
SET LOCAL order_flow.actor = '';
DO $$ BEGIN PERFORM order_flow.record('au-1', 'payment', '{"amount": 1250.50, "currency": "EUR"}'); END $$;
DO $$ BEGIN PERFORM order_flow.record('au-1', 'note', '{"text": "called the customer"}'); END $$;
CREATE ROLE tw_au_admin NOLOGIN IN ROLE order_flow_admin;
CREATE ROLE tw_au_user NOLOGIN;

-- tampered(cmd): problems verify_audit() reports after cmd ran with the
-- append-only triggers disabled; everything is rolled back afterwards.
CREATE FUNCTION pg_temp.tampered(cmd text, only_key text DEFAULT NULL)
RETURNS TABLE (order_key text, event_id bigint, problem text) LANGUAGE plpgsql AS $f$
BEGIN
    BEGIN
        ALTER TABLE order_flow.audit_log DISABLE TRIGGER audit_log_append_only;
        EXECUTE cmd;
        ALTER TABLE order_flow.audit_log ENABLE TRIGGER audit_log_append_only;
        RETURN QUERY SELECT v.order_key, v.event_id, v.problem FROM order_flow.verify_audit(only_key) v;
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = '__undo__';
    EXCEPTION WHEN OTHERS THEN
        IF SQLERRM <> '__undo__' THEN
            RAISE;
        END IF;
    END;
END
$f$;
CREATE FUNCTION pg_temp.ev_id(k text, s bigint) RETURNS bigint LANGUAGE sql AS $f$
    SELECT id FROM order_flow.audit_log WHERE order_key = k AND seq = s
$f$;
CREATE TEMP TABLE log_digest AS
SELECT count(*) AS n, md5(string_agg(a::text, '|' ORDER BY a.id)) AS d FROM order_flow.audit_log a;
CREATE FUNCTION pg_temp.log_unchanged() RETURNS boolean LANGUAGE sql AS $f$
    SELECT (SELECT count(*) FROM order_flow.audit_log) = n
       AND (SELECT md5(string_agg(a::text, '|' ORDER BY a.id)) FROM order_flow.audit_log a) = d
      FROM log_digest
$f$;

-- ------------------------------------------------------------ append-only
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'the untouched log verifies');
SELECT throws_ok($$UPDATE order_flow.audit_log SET details = '{}' WHERE order_key = 'au-1'$$, '42501',
                 'UPDATE of audit_log is not allowed: the audit log is append-only',
                 'UPDATE of the log is refused for the superuser (42501)');
SELECT throws_ok($$DELETE FROM order_flow.audit_log WHERE order_key = 'au-1'$$, '42501',
                 'DELETE of audit_log is not allowed: the audit log is append-only',
                 'DELETE from the log is refused for the superuser (42501)');
SELECT throws_ok($$TRUNCATE order_flow.audit_log$$, '42501',
                 'TRUNCATE of audit_log is not allowed: the audit log is append-only',
                 'TRUNCATE of the log is refused for the superuser (42501)');
SELECT throws_ok($$DELETE FROM order_flow.audit_log$$, '42501', NULL,
                 'an unqualified DELETE of the whole log is refused');
SELECT throws_ok($$UPDATE order_flow.audit_log SET hash = hash$$, '42501', NULL,
                 'even a no-op UPDATE of the log is refused');
SELECT ok(pg_temp.log_unchanged(), 'the log is unchanged after the refused statements');
SELECT * FROM pg_temp.refused($$UPDATE order_flow.audit_log SET actor = 'someone_else'$$, '42501',
                              'UPDATE of the log by an order_flow_admin member', as_role => 'tw_au_admin');
SELECT * FROM pg_temp.refused($$DELETE FROM order_flow.audit_log$$, '42501',
                              'DELETE from the log by an order_flow_admin member', as_role => 'tw_au_admin');
SELECT * FROM pg_temp.refused($$TRUNCATE order_flow.audit_log$$, '42501',
                              'TRUNCATE of the log by an order_flow_admin member', as_role => 'tw_au_admin');
SELECT * FROM pg_temp.refused($$INSERT INTO order_flow.audit_log (order_key, action, actor, details)
                                VALUES ('au-1', 'transition', 'forger', '{}')$$, '42501',
                              'a forged INSERT by an order_flow_admin member', as_role => 'tw_au_admin');
SELECT * FROM pg_temp.refused($$INSERT INTO order_flow.audit_log (order_key, action, actor, details)
                                VALUES ('au-1', 'transition', 'forger', '{}')$$, '42501',
                              'a forged INSERT by a plain role', as_role => 'tw_au_user');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
                       WHERE c.oid = 'order_flow.audit_log'::regclass AND a.grantee = c.relowner
                         AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')),
          'the owner''s own UPDATE, DELETE and TRUNCATE privileges on the log are revoked');
SELECT ok((SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger
            WHERE tgrelid = 'order_flow.audit_log'::regclass AND NOT tgisinternal AND tgenabled <> 'D')
          @> ARRAY['audit_log_append_only', 'audit_log_no_truncate'],
          'the append-only triggers are installed and enabled');

-- --------------------------------------------- the chain, recomputed in SQL
SELECT cmp_ok((SELECT count(*)::int FROM order_flow.audit_log), '>=', 10, 'the fixture wrote a log to check');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log a
            WHERE a.hash IS DISTINCT FROM order_flow.event_hash(a.prev_hash, a.order_key, a.seq, a.action,
                      a.from_state, a.to_state, a.actor, a.db_user, a.occurred_at, a.recorded_at, a.details)), 0,
          'event_hash() recomputes every stored hash (transitions, records and config events)');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log a
             LEFT JOIN order_flow.audit_log p ON p.order_key = a.order_key AND p.seq = a.seq - 1
            WHERE a.prev_hash IS DISTINCT FROM p.hash), 0,
          'every event links to the hash of the previous event of its order (first events to NULL)');
SELECT is((SELECT count(*)::int FROM (SELECT order_key, array_agg(seq ORDER BY seq) s, count(*) n
                                        FROM order_flow.audit_log GROUP BY order_key) c
            WHERE c.s <> ARRAY(SELECT generate_series(1, c.n::int)::bigint)), 0,
          'each order''s sequence numbers run 1, 2, 3, ... without gaps');
SELECT is((SELECT count(*)::int FROM order_flow.tracked_order t
            WHERE t.last_seq > 0 AND t.last_hash IS DISTINCT FROM
                  (SELECT a.hash FROM order_flow.audit_log a WHERE a.order_key = t.order_key AND a.seq = t.last_seq)), 0,
          'each chain head stores the hash of its order''s last event');
SELECT is((SELECT octet_length(hash) FROM order_flow.audit_log WHERE order_key = 'au-1' AND seq = 1), 32,
          'hashes are SHA-256 (32 bytes)');
SELECT isnt(order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01', '2024-01-01', '{}'),
            order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'b', 'u', '2024-01-01', '2024-01-01', '{}'),
            'event_hash depends on the actor');
SELECT isnt(order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01', '2024-01-01', '{}'),
            order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01 00:00:00.000001', '2024-01-01', '{}'),
            'event_hash depends on occurred_at to the microsecond');
SELECT isnt(order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01', '2024-01-01', '{}'),
            order_flow.event_hash('\x00'::bytea, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01', '2024-01-01', '{}'),
            'event_hash depends on the previous hash');
SELECT isnt(order_flow.event_hash(NULL, 'ab', 1, 'created', 'c', NULL, 'a', 'u', '2024-01-01', '2024-01-01', '{}'),
            order_flow.event_hash(NULL, 'a', 1, 'created', 'bc', NULL, 'a', 'u', '2024-01-01', '2024-01-01', '{}'),
            'event_hash separates its fields (no ambiguous concatenation)');
SELECT isnt(order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01', '2024-01-01', '{"x": 1}'),
            order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01', '2024-01-01', '{"x": 2}'),
            'event_hash depends on the details');
SELECT is(order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01', '2024-01-01', '{"b": 1, "a": 2}'),
          order_flow.event_hash(NULL, 'k', 1, 'created', NULL, 'inquiry', 'a', 'u', '2024-01-01', '2024-01-01', '{"a":2,"b":1}'),
          'event_hash hashes the canonical jsonb (key order and spacing do not matter)');

-- ------------------------------------------------------------ tampering
-- tamper_is(cmd, want_sql, descr, [key], [prefix]): the problems found after
-- cmd, as 'order_key #event_id problem' (problem cut to prefix characters),
-- equal as a set to the rows of want_sql (one text column, computed before
-- the tampering).
CREATE FUNCTION pg_temp.tamper_is(cmd text, want_sql text, descr text, only_key text DEFAULT NULL,
                                  prefix int DEFAULT 200)
RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    want text[];
    have text[];
BEGIN
    EXECUTE 'SELECT ARRAY(SELECT w.x FROM (' || want_sql || ') w(x) ORDER BY 1)' INTO want;
    have := ARRAY(SELECT t.order_key || ' #' || coalesce(t.event_id::text, '-') || ' ' || left(t.problem, prefix)
                    FROM pg_temp.tampered(cmd, only_key) t ORDER BY 1);
    RETURN is(have, want, descr);
END
$f$;

SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET details = details || '{"amount": 1}' WHERE order_key = 'au-1' AND seq = 2$t$,
    $w$SELECT 'au-1 #' || pg_temp.ev_id('au-1', 2) || ' bad hash: the event''s content does not match its hash'$w$,
    'altered details are found: exactly that event has a bad hash');
SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET actor = 'postgres' WHERE order_key = 'au-1' AND actor = 'auditor_alice'$t$,
    $w$SELECT 'au-1 #' || id || ' bad hash' FROM order_flow.audit_log WHERE order_key = 'au-1' AND actor = 'auditor_alice'$w$,
    'an altered actor is found', prefix => 8);
SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET occurred_at = occurred_at - interval '1 day' WHERE order_key = 'au-2' AND seq = 3$t$,
    $w$SELECT 'au-2 #' || pg_temp.ev_id('au-2', 3) || ' bad hash'$w$,
    'a back-dated event is found', prefix => 8);
SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET to_state = 'cancelled' WHERE order_key = 'au-3' AND seq = 2$t$,
    $w$VALUES ('au-3 #' || pg_temp.ev_id('au-3', 2) || ' bad hash'), ('au-3 #- chain he')$w$,
    'an altered target state is found (and the head no longer agrees with the chain)', prefix => 8);
SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET details = jsonb_set(details, '{amount}', '99999') WHERE order_key = 'au-1' AND action = 'payment'$t$,
    $w$SELECT 'au-1 #' || id || ' bad hash' FROM order_flow.audit_log WHERE order_key = 'au-1' AND action = 'payment'$w$,
    'an altered payment record is found', prefix => 8);
SELECT pg_temp.tamper_is(
    $t$DELETE FROM order_flow.audit_log WHERE order_key = 'au-1' AND seq = 2$t$,
    $w$VALUES ('au-1 #' || pg_temp.ev_id('au-1', 3) || ' sequence 3 where 2 was expected'),
              ('au-1 #' || pg_temp.ev_id('au-1', 3) || ' broken link: prev_hash does not match the previous event''s hash'),
              ('au-1 #' || pg_temp.ev_id('au-1', 3) || ' state discontinuity: the event starts from quoted but the previous event ended in inquiry')$w$,
    'a deleted middle event is found at the next event: sequence gap, broken link and state discontinuity');
SELECT pg_temp.tamper_is(
    $t$DELETE FROM order_flow.audit_log WHERE order_key = 'au-2'
          AND seq = (SELECT max(seq) FROM order_flow.audit_log WHERE order_key = 'au-2')$t$,
    $w$SELECT 'au-2 #- chain head'$w$,
    'a deleted last event is found through the chain head', prefix => 10);
SELECT pg_temp.tamper_is(
    $t$DELETE FROM order_flow.audit_log WHERE order_key = 'au-3'$t$,
    $w$SELECT 'au-3 #- chain head'$w$,
    'an order whose whole history was deleted is found', prefix => 10);
SELECT pg_temp.tamper_is(
    $t$INSERT INTO order_flow.audit_log (order_key, seq, action, from_state, to_state, actor, db_user,
                                         occurred_at, recorded_at, details, prev_hash, hash)
       SELECT order_key, seq + 1, 'transition', to_state, 'cancelled', actor, db_user,
              '2030-01-01', '2030-01-01', '{}', hash,
              order_flow.event_hash(hash, order_key, seq + 1, 'transition', to_state, 'cancelled', actor, db_user,
                                    '2030-01-01', '2030-01-01', '{}')
         FROM order_flow.audit_log WHERE order_key = 'au-3' ORDER BY seq DESC LIMIT 1$t$,
    $w$SELECT 'au-3 #- chain head'$w$,
    'a well-formed forged event appended at the end is found through the chain head', prefix => 10);
SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET seq = -seq WHERE order_key = 'au-1' AND seq IN (2, 3);
       UPDATE order_flow.audit_log SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE order_key = 'au-1' AND seq IN (-2, -3)$t$,
    $w$VALUES ('au-1 #' || pg_temp.ev_id('au-1', 2) || ' bad hash'), ('au-1 #' || pg_temp.ev_id('au-1', 3) || ' bad hash'),
              ('au-1 #' || pg_temp.ev_id('au-1', 2) || ' broken l'), ('au-1 #' || pg_temp.ev_id('au-1', 3) || ' broken l'),
              ('au-1 #' || pg_temp.ev_id('au-1', 4) || ' broken l'),
              ('au-1 #' || pg_temp.ev_id('au-1', 2) || ' state di'), ('au-1 #' || pg_temp.ev_id('au-1', 3) || ' state di'),
              ('au-1 #' || pg_temp.ev_id('au-1', 4) || ' state di')$w$,
    'two events swapped in order are found (links, hashes and the state continuity around them)', prefix => 8);
SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET details = details || '{"tw": 1}' WHERE order_key = 'order_flow:config' AND seq = 1$t$,
    $w$SELECT 'order_flow:config #' || pg_temp.ev_id('order_flow:config', 1) || ' bad hash'$w$,
    'an altered configuration event is found', prefix => 8);
SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET details = details || '{"x": 1}' WHERE order_key = 'au-1' AND seq = 2$t$,
    $w$SELECT x FROM (VALUES (NULL::text)) v(x) WHERE false$w$,
    'verify_audit(key) checks only that order', only_key => 'au-2');
SELECT pg_temp.tamper_is(
    $t$UPDATE order_flow.audit_log SET details = details || '{"x": 1}' WHERE order_key = 'au-1' AND seq = 2$t$,
    $w$SELECT 'au-1 #' || pg_temp.ev_id('au-1', 2) || ' bad hash'$w$,
    'verify_audit(key) finds the tampering in that order', only_key => 'au-1', prefix => 8);
SELECT ok(pg_temp.log_unchanged(), 'the tampering experiments left the log unchanged');
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'the log still verifies');

-- -------------------------------------------------------------- record()
SELECT results_eq($$SELECT action, from_state, to_state, details->>'currency', (details->>'amount')::numeric
                      FROM order_flow.audit_log WHERE order_key = 'au-1' AND action = 'payment'$$,
                  $$VALUES ('payment', 'warehouse_confirmed', 'warehouse_confirmed', 'EUR', 1250.50)$$,
                  'record(payment) appends an event in the order''s current state');
SELECT is((SELECT last_seq FROM order_flow.tracked_order WHERE order_key = 'au-1'),
          (SELECT max(seq) FROM order_flow.audit_log WHERE order_key = 'au-1'), 'record() moves the chain head');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-1', 'gossip', '{}')$$, '22023', 'record() of an unknown kind');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-1', 'payment', '{"amount": "lots"}')$$, '22023',
                              'record(payment) without a numeric amount');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-1', 'payment', '{"amount": -5}')$$, '22023',
                              'record(payment) with a negative amount', '%must not be negative%');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-1', 'payment', '{"amount": 5, "due_date": "2026-02-30"}')$$,
                              '22007', 'record(payment) with an impossible due_date', '%due_date must be a date%');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-1', 'payment', '{"amount": 5, "paid_date": 20261201}')$$,
                              '22007', 'record(payment) with a paid_date that is not a date string',
                              '%paid_date must be a date%');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-1', 'payment', '{"amount": 5, "due_date": "soon"}')$$,
                              '22007', 'record(payment) with a due_date that is not a date');
SELECT lives_ok($$SELECT order_flow.record('au-1', 'payment',
                    '{"amount": 0, "due_date": "2026-12-31", "paid_date": null}')$$,
                'record(payment) takes a zero amount, a valid due_date and a null paid_date');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-1', 'exception', '{"text": "broken pallet"}')$$, '22023',
                              'record(exception) without an exception_type');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-1', 'note', '[1]')$$, '22023', 'record() with array details');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('au-nope', 'note', '{}')$$, 'P0002', 'record() for an untracked order');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record('order_flow:config', 'note', '{}')$$, 'P0002',
                              'record() into the configuration chain');
SELECT * FROM pg_temp.refused($$SELECT order_flow.record(NULL, 'note', '{}')$$, '22004', 'record() with a NULL key');
SELECT * FROM pg_temp.refused(format('SELECT order_flow.record(''au-1'', ''note'', %L)',
                                     jsonb_build_object('blob', repeat('x', 70000))),
                              '54000', 'record() with details over 64 kB');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_au_admin', 'clerk_carl',
                    'SELECT order_flow.record(''au-2'', ''complaint'', ''{"text": "late"}'')')$$,
                'an order_flow_admin member records a complaint');
SELECT results_eq($$SELECT action, actor, db_user FROM order_flow.audit_log WHERE order_key = 'au-2' AND action = 'complaint'$$,
                  $$VALUES ('complaint', 'clerk_carl', 'tw_au_admin')$$,
                  'record() (SECURITY DEFINER) keeps the caller as database user, not the function owner');

-- -------------------------------------------------------------- indexes
SELECT ok(EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = 'order_flow.audit_log'::regclass AND a.attname = 'order_key'),
          'the log has an index leading with order_key (search by order)');
SELECT ok(EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = 'order_flow.audit_log'::regclass AND a.attname = 'actor'),
          'the log has an index leading with actor (search by actor)');
SELECT ok(EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = 'order_flow.audit_log'::regclass AND a.attname IN ('occurred_at', 'recorded_at')),
          'the log has an index leading with a time column (search by time range)');
SELECT ok(EXISTS (SELECT 1 FROM pg_index i
                   WHERE i.indrelid = 'order_flow.audit_log'::regclass AND i.indisunique AND i.indnatts = 2
                     AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
                           WHERE a.attrelid = i.indrelid AND a.attnum IN (i.indkey[0], i.indkey[1]))
                         = ARRAY['order_key', 'seq']),
          'order_key and seq are unique together (no two events at one place in a chain)');
SELECT * FROM pg_temp.refused($$SELECT * FROM pg_temp.tampered($t$INSERT INTO order_flow.audit_log (order_key, seq, action, actor, details)
                                                          VALUES ('au-1', 1, 'transition', 'x', '{}')$t$)$$,
                              '23505', 'a second event with an existing sequence number');

-- ---------------------------------------------- appending a batch of events
-- _append_events(): the escalation batch's one pass over the chains
INSERT INTO orders VALUES ('ab-1', 'inquiry', 'Acme', 1), ('ab-2', 'inquiry', 'Acme', 2);
SELECT results_eq($$SELECT pos, order_key, seq FROM _order_flow._append_events('escalate', '{ab-2,ab-1,ab-2,ab-2}',
                                    ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}', NULL]::jsonb[]) ORDER BY pos$$,
                  $$VALUES (1, 'ab-2', 2::bigint), (2, 'ab-1', 2), (3, 'ab-2', 3), (4, 'ab-2', 4)$$,
                  '_append_events() appends one event per key and says where each went');
SELECT results_eq($$SELECT order_key, seq, details FROM order_flow.audit_log
                     WHERE order_key IN ('ab-1', 'ab-2') AND action = 'escalate' ORDER BY order_key, seq$$,
                  $$VALUES ('ab-1', 2::bigint, '{"n": 2}'::jsonb), ('ab-2', 2, '{"n": 1}'), ('ab-2', 3, '{"n": 3}'),
                           ('ab-2', 4, '{}')$$,
                  '... each order''s events chained in the order given, a NULL detail as {}');
SELECT is((SELECT last_seq FROM order_flow.tracked_order WHERE order_key = 'ab-2'), 4::bigint,
          '... and the head moved to the last of them');
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit('ab-2')), 0, '... and the chain verifies');
SELECT is((SELECT count(*) FROM _order_flow._append_events('escalate', '{}', '{}')), 0::bigint,
          'an empty batch appends nothing');
SELECT * FROM pg_temp.refused($$SELECT * FROM _order_flow._append_events('escalate', '{ab-1,NULL}', '{"{}","{}"}')$$,
                              '22004', '_append_events() with a null order key', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT * FROM _order_flow._append_events('escalate', '{ab-1,ab-2}', '{"{}"}')$$,
                              '2202E', '_append_events() with fewer details than keys', tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT * FROM _order_flow._append_events('escalate', '{ab-1,no-such}', '{"{}","{}"}')$$,
                              'P0002', '_append_events() with an untracked order: nothing of the batch is written',
                              tbl => 'orders');
SELECT * FROM pg_temp.refused($$SELECT * FROM _order_flow._append_events('escalate', '{ab-1}', '{"{}"}', 'infinity')$$,
                              '22008', '_append_events() at a non-finite time', tbl => 'orders');

-- ----------------------------------------------------- dump registration
SELECT ok((SELECT 'order_flow.audit_log'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'order_flow'),
          'the audit log is dumped with the data (pg_extension_config_dump)');
SELECT ok((SELECT 'order_flow.tracked_order'::regclass::oid = ANY (extconfig) FROM pg_extension WHERE extname = 'order_flow'),
          'the chain heads are dumped with the data');

SELECT * FROM finish();
ROLLBACK;
