-- test/pgtap/manage.sql -- attaching tables (SPEC 3.3): manage() and
-- unmanage(), every bad input, hostile identifiers, the four kinds of status
-- column, adoption of existing rows, order keys unique across tables.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(179);

-- ------------------------------------------------------------ fixtures
CREATE TABLE plain_orders (id text PRIMARY KEY, status text NOT NULL, note text);
INSERT INTO plain_orders VALUES ('mg-1', 'inquiry', 'a'), ('mg-2', 'quoted', 'b');
CREATE VIEW plain_view AS SELECT * FROM plain_orders;
CREATE MATERIALIZED VIEW plain_matview AS SELECT * FROM plain_orders;
CREATE SEQUENCE plain_seq;
CREATE TABLE no_key (id text, status text);
CREATE TABLE composite_key (id text, line int, status text, PRIMARY KEY (id, line));
CREATE TABLE partial_key (id text, status text);
CREATE UNIQUE INDEX partial_key_idx ON partial_key (id) WHERE status <> 'cancelled';
CREATE TABLE expr_key (id text, status text);
CREATE UNIQUE INDEX expr_key_idx ON expr_key (lower(id));
CREATE TABLE int_status (id text PRIMARY KEY, status int);
CREATE TABLE null_status (id text PRIMARY KEY, status text);
INSERT INTO null_status VALUES ('mg-n1', 'inquiry'), ('mg-n2', NULL);
CREATE TABLE bad_status (id text PRIMARY KEY, status text);
INSERT INTO bad_status VALUES ('mg-b1', 'inquiry'), ('mg-b2', 'teleported'), ('mg-b3', 'limbo');
CREATE TABLE colliding (id text PRIMARY KEY, status text);
INSERT INTO colliding VALUES ('mg-1', 'inquiry'), ('mg-other', 'inquiry');
CREATE ROLE tw_mg_user NOLOGIN;
CREATE ROLE tw_mg_admin NOLOGIN IN ROLE order_flow_admin;
GRANT ALL ON plain_orders TO tw_mg_user, tw_mg_admin;
GRANT USAGE ON SCHEMA public TO tw_mg_user, tw_mg_admin;

-- ------------------------------------------------------------ bad input
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage(NULL)$$, '22004', 'manage(NULL table)');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', key_column => NULL)$$, '22004',
                              'manage with a NULL key column', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', status_column => NULL)$$, '22004',
                              'manage with a NULL status column', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', workflow => NULL)$$, '22004',
                              'manage with a NULL workflow', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', attributes => NULL)$$, '22004',
                              'manage with NULL attributes', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_view')$$, '42809', 'manage a view');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_matview')$$, '42809', 'manage a materialized view');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_seq')$$, '42809', 'manage a sequence');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('order_flow.audit_log', key_column => 'order_key',
                                                         status_column => 'to_state')$$,
                              '42809', 'manage the extension''s own audit log');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', workflow => 'no_such_workflow')$$, '42704',
                              'manage with an unknown workflow', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', key_column => 'nope')$$, '42703',
                              'manage with a missing key column', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', status_column => 'nope')$$, '42703',
                              'manage with a missing status column', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', customer_column => 'nope')$$, '42703',
                              'manage with a missing customer column', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', attributes => '{note,nope}')$$, '42703',
                              'manage with a missing attribute column', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', attributes => ARRAY[NULL]::name[])$$, '42703',
                              'manage with a NULL attribute name', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders', key_column => 'ctid')$$, '42703',
                              'manage with a system column as key', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('no_key')$$, '42P10', 'key column without PK/UNIQUE');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('composite_key')$$, '42P10',
                              'key column that is only part of a composite primary key');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('partial_key')$$, '42P10',
                              'key column with only a partial unique index');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('expr_key')$$, '42P10',
                              'key column with only an expression unique index');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('int_status')$$, '42804', 'integer status column');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('null_status')$$, '23502', 'rows with a NULL status',
                              tbl => 'null_status');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('bad_status')$$, '23514', 'rows in unknown states',
                              '%states unknown%', tbl => 'bad_status');
SELECT is((pg_temp.outcome($$SELECT order_flow.manage('bad_status')$$)).detail,
          'Unknown states: limbo, teleported.', 'the detail names the unknown states');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders')$$, '42501',
                              'manage by a role that is not an order_flow administrator',
                              as_role => 'tw_mg_user', tbl => 'plain_orders');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid IN ('plain_orders'::regclass, 'bad_status'::regclass,
                                                                 'null_status'::regclass) AND NOT tgisinternal),
          'no refused manage() left a trigger behind');

-- ----------------------------------------------------- adoption (text column)
CREATE TEMP TABLE mark AS SELECT coalesce(max(id), 0) AS last_id FROM order_flow.audit_log;
SELECT lives_ok($$SELECT order_flow.manage('plain_orders', customer_column => 'note', attributes => '{note}')$$,
                'manage a table with a text status column');
SELECT results_eq($$SELECT order_key, tbl, workflow, state, last_seq, last_hash IS NULL, adopted_at IS NOT NULL,
                           created_at IS NULL, customer_key, attributes
                      FROM order_flow.tracked_order WHERE order_key LIKE 'mg-_' ORDER BY order_key$$,
                  $$VALUES ('mg-1', 'public.plain_orders', 'b2b_order', 'inquiry', 0::bigint, true, true, true, 'a', '{"note": "a"}'::jsonb),
                           ('mg-2', 'public.plain_orders', 'b2b_order', 'quoted', 0::bigint, true, true, true, 'b', '{"note": "b"}'::jsonb)$$,
                  'existing rows are adopted in their current state, with customer and attributes');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key IN ('mg-1', 'mg-2')), 0,
          'adoption writes no order events');
SELECT results_eq($$SELECT a.order_key, a.action, a.details->>'table', a.details->>'op'
                      FROM order_flow.audit_log a, mark WHERE a.id > mark.last_id$$,
                  $$VALUES ('order_flow:config', 'config_change', 'managed_table', 'INSERT')$$,
                  'manage() itself is audited as one configuration change');
SELECT results_eq($$SELECT tbl, key_column::text COLLATE "default", status_column::text COLLATE "default", workflow,
                           customer_column::text COLLATE "default",
                           array_to_string(attributes, ',') COLLATE "default"
                      FROM order_flow.managed_table WHERE relid = 'plain_orders'::regclass$$,
                  $$VALUES ('public.plain_orders', 'id', 'status', 'b2b_order', 'note', 'note')$$,
                  'the table is registered with its columns');
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('plain_orders')$$, '42710', 'manage an already managed table',
                              tbl => 'plain_orders');
SELECT lives_ok($$UPDATE plain_orders SET status = 'quoted' WHERE id = 'mg-1'$$,
                'an adopted order moves by UPDATE');
SELECT results_eq($$SELECT seq, action, from_state, to_state, prev_hash IS NULL FROM order_flow.audit_log
                     WHERE order_key = 'mg-1' ORDER BY seq$$,
                  $$VALUES (1::bigint, 'transition', 'inquiry', 'quoted', true)$$,
                  'the first event of an adopted order starts its chain');
SELECT * FROM pg_temp.refused($$UPDATE plain_orders SET status = 'paid' WHERE id = 'mg-1'$$, '23514',
                              'invalid edge on a text column', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$UPDATE plain_orders SET status = 'qouted' WHERE id = 'mg-2'$$, '22P02',
                              'unknown state name in a text column', tbl => 'plain_orders');
SELECT alike((pg_temp.outcome($$UPDATE plain_orders SET status = 'qouted' WHERE id = 'mg-2'$$)).hint,
             '%"quoted"%', 'the hint for an unknown name in a text column names the closest state');
SELECT * FROM pg_temp.refused($$UPDATE plain_orders SET status = NULL WHERE id = 'mg-2'$$, '23502',
                              'NULL status in a text column', tbl => 'plain_orders');
SELECT * FROM pg_temp.refused($$UPDATE plain_orders SET id = 'mg-9' WHERE id = 'mg-2'$$, '0A000',
                              'changing a managed order''s key', tbl => 'plain_orders');

-- ----------------------------------------- keys unique across managed tables
SELECT * FROM pg_temp.refused($$SELECT order_flow.manage('colliding')$$, '23505',
                              'manage a table whose keys collide with a managed table''s orders',
                              '%collide%', tbl => 'colliding');
SELECT alike((pg_temp.outcome($$SELECT order_flow.manage('colliding')$$)).detail, '%mg-1%',
             'the detail names the colliding key');
DELETE FROM colliding WHERE id = 'mg-1';
SELECT lives_ok($$SELECT order_flow.manage('colliding')$$, 'without the colliding key it can be managed');
SELECT * FROM pg_temp.refused($$INSERT INTO colliding VALUES ('mg-2', 'inquiry')$$, '23505',
                              'inserting a key already used by another managed table', tbl => 'colliding');
SELECT * FROM pg_temp.refused($$INSERT INTO colliding VALUES ('order_flow:config', 'inquiry')$$, '23505',
                              'inserting an order whose key is the configuration chain''s', tbl => 'colliding');

-- ------------------------------------------------------------- unmanage
SELECT * FROM pg_temp.refused($$SELECT order_flow.unmanage(NULL)$$, '22004', 'unmanage(NULL)');
SELECT * FROM pg_temp.refused($$SELECT order_flow.unmanage('no_key')$$, '42704', 'unmanage a table that is not managed');
SELECT * FROM pg_temp.refused($$SELECT order_flow.unmanage('plain_orders')$$, '42501',
                              'unmanage by a plain role', as_role => 'tw_mg_user', tbl => 'plain_orders');
CREATE TEMP TABLE hist AS
SELECT id, order_key, seq, hash FROM order_flow.audit_log WHERE order_key IN ('mg-1', 'mg-2');
SELECT lives_ok($$SELECT order_flow.unmanage('plain_orders')$$, 'unmanage a managed table');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'plain_orders'::regclass AND NOT tgisinternal)
          AND NOT EXISTS (SELECT 1 FROM order_flow.managed_table WHERE relid = 'plain_orders'::regclass),
          'unmanage removes the trigger and the registration');
SELECT set_eq($$SELECT id, order_key, seq, hash FROM order_flow.audit_log WHERE order_key IN ('mg-1', 'mg-2')$$,
              $$SELECT id, order_key, seq, hash FROM hist$$, 'unmanage keeps the orders'' history');
SELECT is((SELECT count(*)::int FROM order_flow.tracked_order WHERE order_key IN ('mg-1', 'mg-2')), 2,
          'unmanage keeps the orders'' tracking rows');
SELECT lives_ok($$UPDATE plain_orders SET status = 'contract_signed' WHERE id = 'mg-2'$$,
                'an unmanaged table is an ordinary table again');
SELECT is((SELECT count(*)::int FROM order_flow.audit_log WHERE order_key = 'mg-2'), 0,
          'changes to an unmanaged table write no events');
SELECT lives_ok($$SELECT order_flow.manage('plain_orders', customer_column => 'note', attributes => '{note}')$$,
                're-manage after unmanage');
SELECT is((SELECT state FROM order_flow.tracked_order WHERE order_key = 'mg-2'), 'contract_signed',
          're-manage adopts the current state');
SELECT lives_ok($$UPDATE plain_orders SET status = 'contract_signed' WHERE id = 'mg-1'$$,
                'the re-managed table moves orders again');
SELECT results_eq($$SELECT seq, from_state, to_state FROM order_flow.audit_log WHERE order_key = 'mg-1' ORDER BY seq$$,
                  $$VALUES (1::bigint, 'inquiry', 'quoted'), (2::bigint, 'quoted', 'contract_signed')$$,
                  'the chain continues where it stopped');
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every chain verifies after unmanage and re-manage');

-- ---------------------------------------------------- hostile identifiers
CREATE TABLE x (keep int);
INSERT INTO x VALUES (42);
CREATE SCHEMA "Sch ""q""; '";
CREATE TABLE "Sch ""q""; '"."Ord""ers; DROP TABLE x;--" (
    "K""ey; DROP TABLE x;--" text PRIMARY KEY,
    "St atus'); DROP TABLE x;--" order_flow.status NOT NULL,
    "cu""st omer" text,
    "re gion'" text,
    "amount ""$1""" numeric);
INSERT INTO "Sch ""q""; '"."Ord""ers; DROP TABLE x;--" VALUES ('mg-h1', 'inquiry', 'C "one"', 'north''s', 12.5);
SELECT lives_ok($$SELECT order_flow.manage('"Sch ""q""; ''"."Ord""ers; DROP TABLE x;--"',
                                           'K"ey; DROP TABLE x;--', 'St atus''); DROP TABLE x;--',
                                           customer_column => 'cu"st omer',
                                           attributes => ARRAY['re gion''', 'amount "$1"']::name[])$$,
                'manage a table whose schema, table and column names hold quotes, spaces and SQL');
SELECT is((SELECT keep FROM x), 42, 'no injected statement ran: table x is intact');
SELECT is((SELECT tbl FROM order_flow.managed_table
            WHERE relid = '"Sch ""q""; ''"."Ord""ers; DROP TABLE x;--"'::regclass),
          format('%I.%I', 'Sch "q"; ''', 'Ord"ers; DROP TABLE x;--'),
          'the registered table name is the correctly quoted identifier');
SELECT results_eq($$SELECT state, customer_key, attributes FROM order_flow.tracked_order WHERE order_key = 'mg-h1'$$,
                  $$VALUES ('inquiry', 'C "one"', '{"re gion''": "north''s", "amount \"$1\"": 12.5}'::jsonb)$$,
                  'adoption reads the quoted key, status, customer and attribute columns');
SELECT lives_ok($$INSERT INTO "Sch ""q""; '"."Ord""ers; DROP TABLE x;--" VALUES ('mg-h2', 'inquiry', 'C2', 'south', 7)$$,
                'insert into the hostile table');
SELECT lives_ok($$UPDATE "Sch ""q""; '"."Ord""ers; DROP TABLE x;--" SET "St atus'); DROP TABLE x;--" = 'quoted'
                   WHERE "K""ey; DROP TABLE x;--" = 'mg-h2'$$, 'plain UPDATE on the hostile table');
SELECT lives_ok($$SELECT order_flow.transition('"Sch ""q""; ''"."Ord""ers; DROP TABLE x;--"', 'mg-h2', 'contract_signed',
                                               'signed "quoted" note')$$,
                'transition() on the hostile table');
SELECT results_eq($$SELECT seq, action, from_state, to_state, details->>'customer', details->'attributes',
                           details->>'note'
                      FROM order_flow.audit_log WHERE order_key = 'mg-h2' ORDER BY seq$$,
                  $$VALUES (1::bigint, 'created', NULL, 'inquiry', 'C2', '{"re gion''": "south", "amount \"$1\"": 7}'::jsonb, NULL),
                           (2::bigint, 'transition', 'inquiry', 'quoted', 'C2', '{"re gion''": "south", "amount \"$1\"": 7}'::jsonb, NULL),
                           (3::bigint, 'transition', 'quoted', 'contract_signed', 'C2', '{"re gion''": "south", "amount \"$1\"": 7}'::jsonb,
                            'signed "quoted" note')$$,
                  'events of the hostile table carry the quoted customer and attribute columns');
SELECT is((SELECT count(*)::int FROM order_flow.notification WHERE order_key = 'mg-h2'), 3,
          'the notifying edge on the hostile table opened its notifications');
SELECT results_eq($$SELECT to_state FROM order_flow.allowed_transitions('"Sch ""q""; ''"."Ord""ers; DROP TABLE x;--"', 'mg-h2')
                     WHERE to_state = 'warehouse_confirmed'$$,
                  ARRAY['warehouse_confirmed'], 'allowed_transitions() on the hostile table');
SELECT * FROM pg_temp.refused($$UPDATE "Sch ""q""; '"."Ord""ers; DROP TABLE x;--" SET "St atus'); DROP TABLE x;--" = 'paid'
                                 WHERE "K""ey; DROP TABLE x;--" = 'mg-h2'$$, '23514', 'invalid edge on the hostile table',
                              tbl => '"Sch ""q""; ''"."Ord""ers; DROP TABLE x;--"');
SELECT lives_ok($$SELECT order_flow.unmanage('"Sch ""q""; ''"."Ord""ers; DROP TABLE x;--"')$$,
                'unmanage the hostile table');
SELECT is((SELECT keep FROM x), 42, 'table x is still intact after unmanage');
SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every chain verifies');

-- --------------------------------- the four kinds of status column
CREATE TYPE mg_state AS ENUM ('inquiry', 'quoted', 'contract_signed', 'cancelled', 'limbo');
CREATE TABLE col_text (id text PRIMARY KEY, status text NOT NULL);
CREATE TABLE col_varchar (id varchar(20) PRIMARY KEY, status varchar(40) NOT NULL);
CREATE TABLE col_enum (id text PRIMARY KEY, status mg_state NOT NULL);
CREATE TABLE col_status (id text PRIMARY KEY, status order_flow.status NOT NULL);
CREATE TABLE col_int_key (id int PRIMARY KEY, status text NOT NULL);

CREATE FUNCTION pg_temp.exercise(tbl regclass, k1 text, k2 text) RETURNS SETOF text
LANGUAGE plpgsql AS $f$
DECLARE
    t text := tbl::text;
BEGIN
    RETURN NEXT lives_ok(format('SELECT order_flow.manage(%L)', t), t || ': manage()');
    RETURN NEXT lives_ok(format('INSERT INTO %s (id, status) VALUES (%L, ''inquiry''), (%L, ''inquiry'')', t, k1, k2),
                         t || ': insert two orders');
    RETURN NEXT lives_ok(format('UPDATE %s SET status = ''quoted'' WHERE id = %L', t, k1), t || ': UPDATE moves an order');
    RETURN NEXT lives_ok(format('SELECT order_flow.transition(%L, %L, ''quoted'')', t, k2), t || ': transition() moves an order');
    RETURN NEXT lives_ok(format('SELECT order_flow.transition(%L, %L, ''contract_signed'')', t, k1),
                         t || ': transition() to contract_signed');
    RETURN NEXT is((SELECT array_agg(o.state ORDER BY o.order_key) FROM order_flow.tracked_order o
                     WHERE o.order_key IN (k1, k2)),
                   CASE WHEN k1 < k2 THEN ARRAY['contract_signed', 'quoted'] ELSE ARRAY['quoted', 'contract_signed'] END,
                   t || ': tracked states follow the table');
    RETURN NEXT is((SELECT array_agg(a.action || ':' || coalesce(a.from_state, '-') || '>' || a.to_state ORDER BY a.seq)
                      FROM order_flow.audit_log a WHERE a.order_key = k1),
                   ARRAY['created:->inquiry', 'transition:inquiry>quoted', 'transition:quoted>contract_signed'],
                   t || ': the order''s events');
    RETURN QUERY SELECT * FROM pg_temp.refused(format('UPDATE %s SET status = ''cancelled'' WHERE id = %L', t, k2),
                                               '23514', t || ': cancelling without a reason', tbl => tbl);
    RETURN QUERY SELECT * FROM pg_temp.refused(format('UPDATE %s SET status = ''inquiry'' WHERE id = %L', t, k2),
                                               '23514', t || ': a backwards edge', tbl => tbl);
END
$f$;

SELECT * FROM pg_temp.exercise('col_text', 'mg-t1', 'mg-t2');
SELECT * FROM pg_temp.exercise('col_varchar', 'mg-v1', 'mg-v2');
SELECT * FROM pg_temp.exercise('col_enum', 'mg-e1', 'mg-e2');
SELECT * FROM pg_temp.exercise('col_status', 'mg-s1', 'mg-s2');
SELECT * FROM pg_temp.exercise('col_int_key', '901', '902');

SELECT * FROM pg_temp.refused($$UPDATE col_enum SET status = 'limbo' WHERE id = 'mg-e1'$$, '22P02',
                              'an enum label that is not a state of the workflow', tbl => 'col_enum');
SELECT * FROM pg_temp.refused($$UPDATE col_varchar SET status = 'limbo' WHERE id = 'mg-v1'$$, '22P02',
                              'a varchar value that is not a state of the workflow', tbl => 'col_varchar');
SELECT lives_ok($$SELECT order_flow.create_status('tw_mg_elsewhere')$$, 'a status name outside the workflow');
SELECT * FROM pg_temp.refused($$UPDATE col_status SET status = 'tw_mg_elsewhere' WHERE id = 'mg-s1'$$, '22P02',
                              'a status value that the workflow does not have', tbl => 'col_status');
SELECT * FROM pg_temp.refused($$INSERT INTO col_text VALUES ('mg-t3', 'teleported')$$, '22P02',
                              'inserting an unknown state into a text column', tbl => 'col_text');

-- transition() by a key spelled differently than the key column prints it
SELECT ok((SELECT o.state IN ('completed', 'P0002')
             FROM (SELECT CASE WHEN r.state = '00000' THEN 'completed' ELSE r.state END AS state
                     FROM pg_temp.outcome($$SELECT order_flow.transition('col_int_key', '0902', 'contract_signed')$$) r) o),
          'transition(''0902'') on an integer key either moves order 902 or reports it not found (not "already in state")');

-- an attributes column dropped after manage() gives a clear error
CREATE TABLE col_drop (id text PRIMARY KEY, status text NOT NULL, region text);
SELECT lives_ok($$SELECT order_flow.manage('col_drop', attributes => '{region}')$$, 'manage with an attribute');
INSERT INTO col_drop VALUES ('mg-d1', 'inquiry', 'north');
ALTER TABLE col_drop DROP COLUMN region;
SELECT * FROM pg_temp.refused($$UPDATE col_drop SET status = 'quoted' WHERE id = 'mg-d1'$$, '42703',
                              'a transition after an attribute column was dropped', tbl => 'col_drop');

-- admin (not superuser) may manage a table it may write
SELECT lives_ok($$SELECT order_flow.unmanage('plain_orders')$$, 'unmanage before the admin test');
SELECT lives_ok($$SELECT pg_temp.run_as('tw_mg_admin', NULL, 'SELECT order_flow.manage(''plain_orders'')')$$,
                'an order_flow_admin member may manage a table');

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
