-- test/pgtap/status_type.sql -- the order_flow.status type (SPEC 3.1):
-- text I/O by name, unknown names, process ordering, casts, placing new
-- names, immutable positions, btree and hash opclasses.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(100);

-- ---------------------------------------------------------------- the type
SELECT has_type('order_flow', 'status', 'type order_flow.status exists');
SELECT is((SELECT typlen::int FROM pg_type WHERE oid = 'order_flow.status'::regtype), 4,
          'status is fixed width: 4 bytes');
SELECT ok((SELECT typbyval FROM pg_type WHERE oid = 'order_flow.status'::regtype),
          'status is passed by value');
SELECT is(pg_column_size('contract_signed'::order_flow.status), 4,
          'a long state name is still stored in 4 bytes');

-- ------------------------------------------------------------ text I/O
SELECT is(('quoted'::order_flow.status)::text, 'quoted', 'text input and output round trip');
SELECT is((SELECT count(*)::int FROM order_flow.status_label l
            WHERE (l.label::order_flow.status)::text IS DISTINCT FROM l.label), 0,
          'every dictionary name round-trips through the type');
SELECT is((SELECT count(*)::int FROM order_flow.status_label l
            WHERE _order_flow.status_position(l.label::order_flow.status) <> l.sort_position), 0,
          'the stored value of every name is its dictionary sort position');
SELECT is(NULL::text::order_flow.status, NULL, 'NULL text casts to a NULL status');

SELECT throws_ok($$SELECT 'qoted'::order_flow.status$$, '22P02',
                 'invalid input value for order_flow.status: "qoted"',
                 'unknown name: 22P02 naming the input');
SELECT alike((pg_temp.outcome($$SELECT 'qoted'::order_flow.status$$)).hint,
            'The closest known states are "quoted"%',
            'unknown name: the hint starts with the closest known state');
SELECT alike((pg_temp.outcome($$SELECT 'shiped'::order_flow.status$$)).hint,
            '%"shipped"%', 'unknown name: the hint names a near miss ("shipped" for "shiped")');
SELECT throws_ok($$SELECT 'Quoted'::order_flow.status$$, '22P02', NULL,
                 'names are case sensitive: "Quoted" is unknown');
SELECT throws_ok($$SELECT ''::order_flow.status$$, '22P02', NULL, 'empty name: 22P02');
SELECT throws_ok($$SELECT ' quoted'::order_flow.status$$, '22P02', NULL,
                 'a name with a leading space is unknown');
SELECT throws_ok(format('SELECT %L::order_flow.status', repeat('x', 200)), '22P02', NULL,
                 'an over-long name: 22P02, not a crash');
SELECT throws_ok($$SELECT 'inquiry'::order_flow.status = 'nope'::text::order_flow.status$$, '22P02', NULL,
                 'text -> status cast of an unknown name: 22P02');

-- ------------------------------------------------------------ ordering
-- With order_flow off the search_path (public only, as many clients run) the
-- comparisons still follow the process: the operators and min/max live in
-- pg_catalog, and a status compared with text reads the text as a state.
CREATE TEMP TABLE sp_states AS
    SELECT u.x FROM unnest('{inquiry,quoted,contract_signed,shipped,paid,archived}'::order_flow.status[]) u(x);
CREATE FUNCTION pg_temp.plan_text(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE r record; t text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP t := t || r."QUERY PLAN" || E'\n'; END LOOP;
    RETURN t;
END $f$;
SET LOCAL search_path = public;
SELECT ok('paid'::order_flow.status > 'shipped', 'off the search_path: > compares by process, not as text');
SELECT is((SELECT count(*)::int FROM pg_temp.sp_states WHERE x < 'shipped'), 3,
          'off the search_path: WHERE status < ''shipped'' selects the states before shipped');
SELECT is((SELECT count(*)::int FROM pg_temp.sp_states WHERE x >= 'contract_signed'::text), 4,
          '... and so does a comparison with a typed text value');
SELECT is((SELECT count(*)::int FROM pg_temp.sp_states WHERE 'shipped'::text > x), 3,
          '... with the text on the left too');
SELECT throws_ok($$SELECT count(*) FROM pg_temp.sp_states WHERE x < 'zzz'::text$$, '22P02', NULL,
                 'ordering against a text that is no state is refused, not compared alphabetically');
SELECT is((SELECT count(*)::int FROM pg_temp.sp_states WHERE x = 'zzz'::text), 0,
          'equality with a text that is no state: no rows');
SELECT is((SELECT count(*)::int FROM pg_temp.sp_states WHERE x = 'shipped'::text), 1,
          'equality with a typed text value finds the row');
SELECT is((SELECT max(x)::text || ' ' || min(x)::text FROM pg_temp.sp_states), 'archived inquiry',
          'off the search_path: max() and min() follow the process');
SELECT is((SELECT string_agg(x::text, ',' ORDER BY x) FROM pg_temp.sp_states),
          'inquiry,quoted,contract_signed,shipped,paid,archived', 'ORDER BY follows the process');
CREATE TEMP TABLE sp_orders (id int PRIMARY KEY, status order_flow.status NOT NULL);
INSERT INTO pg_temp.sp_orders
SELECT g, (ARRAY['inquiry','quoted','contract_signed','shipped']::order_flow.status[])[1 + g % 4]
  FROM generate_series(1, 2000) g;
CREATE INDEX sp_orders_status_idx ON pg_temp.sp_orders (status);
ANALYZE pg_temp.sp_orders;
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.plan_text($$SELECT count(*) FROM pg_temp.sp_orders WHERE status = 'shipped'$$),
               'sp_orders_status_idx', 'off the search_path: an equality filter uses the index on the status column');
SELECT matches(pg_temp.plan_text($$SELECT count(*) FROM pg_temp.sp_orders WHERE status < 'contract_signed'$$),
               'sp_orders_status_idx', '... and so does a range filter');
RESET enable_seqscan;
SELECT is((SELECT oprnamespace::regnamespace::text FROM pg_operator
            WHERE oprname = '<' AND oprleft = 'order_flow.status'::regtype AND oprright = oprleft),
          'pg_catalog', 'the operators live in pg_catalog');

-- The rest of the file uses the type's operators the documented way.
SET LOCAL search_path = order_flow, public;

-- The main path of SPEC 3.2, in process order.
SELECT results_eq(
    $$SELECT u.x::text FROM unnest('{paid,archived,inquiry,shipped,delivered,quoted,picking,accepted,
                                   finance_approved,contract_signed,in_transit,invoiced,packed,
                                   warehouse_confirmed,scheduled}'::order_flow.status[]) u(x) ORDER BY u.x$$,
    ARRAY['inquiry', 'quoted', 'contract_signed', 'warehouse_confirmed', 'finance_approved',
          'scheduled', 'picking', 'packed', 'shipped', 'in_transit', 'delivered', 'accepted',
          'invoiced', 'paid', 'archived'],
    'ORDER BY status follows the process, not the alphabet');
SELECT results_eq(
    $$SELECT l.label FROM order_flow.status_label l ORDER BY l.label::order_flow.status$$,
    $$SELECT l.label FROM order_flow.status_label l ORDER BY l.sort_position$$,
    'ORDER BY status equals ORDER BY dictionary position for every name');
SELECT ok('inquiry'::order_flow.status < 'quoted'::order_flow.status, '< by process');
SELECT ok('paid'::order_flow.status > 'shipped'::order_flow.status, '> by process');
SELECT ok('packed'::order_flow.status <= 'packed'::order_flow.status, '<= reflexive');
SELECT ok('packed'::order_flow.status >= 'picking'::order_flow.status, '>= by process');
SELECT ok('packed'::order_flow.status = 'packed'::order_flow.status, '= on equal names');
SELECT ok('packed'::order_flow.status <> 'picking'::order_flow.status, '<> on different names');
SELECT ok(NOT ('picking'::order_flow.status = 'packed'::order_flow.status), '= false on different names');
SELECT is(_order_flow.status_cmp('quoted', 'inquiry'), 1, 'status_cmp: later > earlier');
SELECT is(_order_flow.status_cmp('quoted', 'quoted'), 0, 'status_cmp: equal');
SELECT is(_order_flow.status_cmp('inquiry', 'quoted'), -1, 'status_cmp: earlier < later');
SELECT is(max(u.x)::text, 'archived', 'max() by process position')
  FROM unnest('{inquiry,archived,paid}'::order_flow.status[]) u(x);
SELECT is(min(u.x)::text, 'quoted', 'min() by process position')
  FROM unnest('{paid,quoted,archived}'::order_flow.status[]) u(x);
SELECT is(_order_flow.status_hash('paid'), _order_flow.status_hash('paid'::text::order_flow.status),
          'equal values hash alike');

-- ---------------------------------------------------------------- casts
SELECT is((SELECT castcontext::text FROM pg_cast
            WHERE castsource = 'order_flow.status'::regtype AND casttarget = 'text'::regtype), 'i',
          'status -> text is an implicit cast');
SELECT is((SELECT castcontext::text FROM pg_cast
            WHERE castsource = 'text'::regtype AND casttarget = 'order_flow.status'::regtype), 'a',
          'text -> status is an assignment cast');
SELECT is((SELECT castcontext::text FROM pg_cast
            WHERE castsource = 'varchar'::regtype AND casttarget = 'order_flow.status'::regtype), 'a',
          'varchar -> status is an assignment cast');
SELECT is(upper('contract_signed'::order_flow.status), 'CONTRACT_SIGNED',
          'implicit cast: a status is accepted where text is expected');
SELECT ok('paid'::order_flow.status = 'paid'::text, 'status = text compares as text (implicit cast)');

CREATE TEMP TABLE st (id int PRIMARY KEY, s order_flow.status NOT NULL);
SELECT lives_ok($$INSERT INTO st VALUES (1, 'paid'::text), (2, 'inquiry'::varchar), (3, 'shipped'::varchar(20))$$,
                'assignment cast: text and varchar values are stored into a status column');
SELECT results_eq($$SELECT st.s::text FROM st ORDER BY st.s$$, ARRAY['inquiry', 'shipped', 'paid'],
                  'stored via assignment casts, read back in process order');
SELECT throws_ok($$INSERT INTO st VALUES (9, 'payed'::text)$$, '22P02', NULL,
                 'assignment of an unknown name: 22P02');
SELECT is((SELECT count(*)::int FROM st), 3, 'the refused row was not stored');
SELECT throws_ok($$SELECT _order_flow.status_position('paid'::text)$$, '42883', NULL,
                 'no implicit text -> status cast (a text argument does not match a status parameter)');

-- -------------------------------------------------------- create_status
SELECT is(order_flow.create_status('tw_check', after => 'warehouse_confirmed', before => 'stock_shortage')::text,
          'tw_check', 'create_status between two neighbouring names returns the new status');
SELECT ok('warehouse_confirmed'::order_flow.status < 'tw_check'::order_flow.status
          AND 'tw_check'::order_flow.status < 'stock_shortage'::order_flow.status,
          'the new name sorts between its neighbours');
SELECT lives_ok($$SELECT order_flow.create_status('tw_after_only', after => 'picking')$$,
                'create_status(after => picking)');
SELECT ok('tw_after_only'::order_flow.status > 'picking'::order_flow.status
          AND 'tw_after_only'::order_flow.status < 'packed'::order_flow.status,
          'create_status(after => picking) places it between picking and the next name');
SELECT lives_ok($$SELECT order_flow.create_status('tw_before_only', before => 'quoted')$$,
                'create_status(before => quoted)');
SELECT ok('tw_before_only'::order_flow.status < 'quoted'::order_flow.status
          AND 'tw_before_only'::order_flow.status > 'inquiry'::order_flow.status,
          'create_status(before => quoted) places it between the previous name and quoted');
SELECT lives_ok($$SELECT order_flow.create_status('tw_at_end')$$, 'create_status with no neighbour');
SELECT ok('tw_at_end'::order_flow.status > ALL (SELECT l.label::order_flow.status FROM order_flow.status_label l
                                                          WHERE l.label <> 'tw_at_end'),
          'create_status with no neighbour appends after the last name');
SELECT lives_ok($$SELECT order_flow.create_status('tw_first', before => (SELECT label FROM order_flow.status_label
                                                                         ORDER BY sort_position LIMIT 1))$$,
                'create_status before the first name');
SELECT ok('tw_first'::order_flow.status < ALL (SELECT l.label::order_flow.status FROM order_flow.status_label l WHERE l.label <> 'tw_first'),
          'create_status before the first name sorts first');
SELECT lives_ok($$SELECT order_flow.create_status('tw_wide', after => 'warehouse_confirmed', before => 'finance_approved')$$,
                'create_status between two names that are not neighbours (another name lies between them)');
SELECT ok(EXISTS (SELECT 1 FROM order_flow.status_label WHERE label = 'tw_wide')
          AND (SELECT sort_position FROM order_flow.status_label WHERE label = 'tw_wide')
              > (SELECT sort_position FROM order_flow.status_label WHERE label = 'warehouse_confirmed')
          AND (SELECT sort_position FROM order_flow.status_label WHERE label = 'tw_wide')
              < (SELECT sort_position FROM order_flow.status_label WHERE label = 'finance_approved'),
          'a name placed between non-neighbours sorts strictly between them');

SELECT * FROM pg_temp.refused($$SELECT order_flow.create_status('quoted')$$, '42710',
                              'create_status of an existing name');
SELECT * FROM pg_temp.refused($$SELECT order_flow.create_status('tw_x', after => 'no_such_state')$$, '22P02',
                              'create_status after an unknown name');
SELECT * FROM pg_temp.refused($$SELECT order_flow.create_status('tw_x', before => 'no_such_state')$$, '22P02',
                              'create_status before an unknown name');
SELECT * FROM pg_temp.refused($$SELECT order_flow.create_status('tw_x', after => 'paid', before => 'quoted')$$, '22023',
                              'create_status with after sorting behind before');
SELECT * FROM pg_temp.refused($$SELECT order_flow.create_status(NULL)$$, '22004',
                              'create_status(NULL)');
SELECT * FROM pg_temp.refused($$SELECT order_flow.create_status('Bad Name')$$, '23514',
                              'create_status of a name that is not [a-z][a-z0-9_]*');

-- -------------------------------------------- positions never change
SELECT * FROM pg_temp.refused($$UPDATE order_flow.status_label SET sort_position = sort_position + 1 WHERE label = 'quoted'$$,
                              '55000', 'moving a name''s sort position');
SELECT * FROM pg_temp.refused($$UPDATE order_flow.status_label SET label = 'quoted2' WHERE label = 'quoted'$$,
                              '55000', 'renaming a status');
SELECT * FROM pg_temp.refused($$DELETE FROM order_flow.status_label WHERE label = 'tw_at_end'$$,
                              '55000', 'deleting a status name');

-- ------------------------------------------------ btree and hash indexes
CREATE TEMP TABLE many (id int PRIMARY KEY, s order_flow.status NOT NULL);
INSERT INTO many
SELECT g, (ARRAY['inquiry', 'quoted', 'contract_signed', 'packed', 'shipped', 'paid', 'archived'])[1 + g % 7]
  FROM generate_series(1, 7000) g;
CREATE INDEX many_s_btree ON many (s);
CREATE TEMP TABLE many_h (id int PRIMARY KEY, s order_flow.status NOT NULL);
INSERT INTO many_h SELECT * FROM many;
CREATE INDEX many_h_hash ON many_h USING hash (s);
ANALYZE many;
ANALYZE many_h;

CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    line text;
    out text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        out := out || line || E'\n';
    END LOOP;
    RETURN out;
END
$f$;

SET LOCAL enable_seqscan = off;
SELECT alike(pg_temp.plan_of($$SELECT count(*) FROM many WHERE s = 'shipped'$$), '%many_s_btree%',
            'equality on a status column uses its btree index');
SELECT alike(pg_temp.plan_of($$SELECT count(*) FROM many WHERE s BETWEEN 'contract_signed' AND 'shipped'$$),
            '%many_s_btree%', 'a range of process states uses the btree index');
SELECT is((SELECT count(*)::int FROM many WHERE s BETWEEN 'contract_signed' AND 'shipped'),
          (SELECT count(*)::int FROM many WHERE s::text IN ('contract_signed', 'packed', 'shipped')),
          'btree range scan returns exactly the states between the bounds (by process position)');
SELECT alike(pg_temp.plan_of($$SELECT count(*) FROM many_h WHERE s = 'packed'$$), '%many_h_hash%',
            'equality on a status column uses its hash index');
SELECT is((SELECT count(*)::int FROM many_h WHERE s = 'packed'),
          (SELECT count(*)::int FROM many_h WHERE s::text = 'packed'),
          'hash index scan returns exactly the matching rows');
SELECT results_eq($$SELECT id FROM many WHERE s > 'shipped' ORDER BY s, id LIMIT 5$$,
                  $$SELECT id FROM many WHERE s::text IN ('paid', 'archived')
                     ORDER BY (SELECT sort_position FROM order_flow.status_label WHERE label = s::text), id LIMIT 5$$,
                  'index-ordered scan agrees with dictionary order');
RESET enable_seqscan;
SET LOCAL enable_mergejoin = off;
SET LOCAL enable_nestloop = off;
SELECT alike(pg_temp.plan_of($$SELECT count(*) FROM many a JOIN many_h b ON a.s = b.s AND a.id = b.id$$),
            '%Hash%Join%', 'status equality can drive a hash join');
SELECT is((SELECT count(*)::int FROM many a JOIN many_h b ON a.s = b.s AND a.id = b.id), 7000,
          'the hash join on status finds every row');
RESET enable_mergejoin;
RESET enable_nestloop;

-- a name created later does not disturb existing values or their index
SELECT lives_ok($$SELECT order_flow.create_status('tw_later', after => 'packed', before => 'shipped')$$,
                'a new name between two names in use');
INSERT INTO many VALUES (7001, 'tw_later');
SET LOCAL enable_seqscan = off;
SELECT results_eq($$SELECT s::text FROM many WHERE s > 'packed' AND s < 'shipped'$$, ARRAY['tw_later'],
                  'the btree index finds the new name between its neighbours, old rows untouched');
RESET enable_seqscan;

-- ----------------------------------------- name@position (pg_dump's form)
SELECT is('quoted@131072'::order_flow.status, 'quoted'::order_flow.status,
          'name@position reads as the name');
SELECT is('quoted@5'::order_flow.status::text, 'quoted',
          '... whatever position the dump says: the name is what a value means');
SELECT throws_ok($$SELECT 'no_such_state@4242'::order_flow.status$$, '22P02', NULL,
                 'an unknown name with a position outside a restore: 22P02');
SELECT is((SELECT count(*) FROM order_flow.status_label WHERE label = 'no_such_state'), 0::bigint,
          '... and it is not entered into the dictionary');
SELECT throws_ok($$SELECT 'quoted@'::order_flow.status$$, '22P02', NULL, 'a missing position: 22P02');
SELECT throws_ok($$SELECT 'quoted@1x'::order_flow.status$$, '22P02', NULL, 'a position that is no integer: 22P02');
SELECT is((SELECT 'packed'::order_flow.status::text), 'packed',
          'outside pg_dump a status is written as its bare name');

SELECT * FROM finish();
ROLLBACK;
