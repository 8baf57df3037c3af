-- test/pgtap/uninstall.sql -- the README's uninstall recipe, run: a table
-- whose status column has type order_flow.status and a default, detached
-- with unmanage(..., convert_status => true), becomes independent of the
-- extension (text column, text default, the same names), and DROP
-- EXTENSION then succeeds with the orders intact.  DROP EXTENSION while a
-- table is managed is refused, saying what to do (unless CASCADE).
-- Everything runs in one transaction that is rolled back.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(20);

CREATE TABLE un_orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry',
                        customer text);
CREATE TABLE un_plain (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
-- a default that is the owner's code: unmanage() must never run it
CREATE TABLE un_calls (n int);
CREATE FUNCTION un_first_state() RETURNS order_flow.status LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO un_calls VALUES (1);
    RETURN 'inquiry';
END
$f$;
CREATE TABLE un_coded (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT un_first_state());
SELECT order_flow.manage('un_orders', customer_column => 'customer');
SELECT order_flow.manage('un_plain');
SELECT order_flow.manage('un_coded');
INSERT INTO un_orders (id, customer) VALUES (1, 'Acme'), (2, 'Beta'), (3, 'Gamma');
UPDATE un_orders SET status = 'quoted' WHERE id <= 2;
UPDATE un_orders SET status = 'contract_signed' WHERE id = 1;
INSERT INTO un_plain (id) VALUES ('p-1');

-- ------------------------------------------- refused while tables are managed
SELECT throws_ok($$DROP EXTENSION order_flow$$, '2BP01',
                 'cannot drop extension order_flow: 3 tables are still managed',
                 'DROP EXTENSION while tables are managed -> 2BP01, counting them');
SELECT alike((SELECT o.hint FROM pg_temp.outcome($$DROP EXTENSION order_flow$$) o),
            '%order_flow.unmanage(relid, convert_status => true)%',
            '... and the hint gives the way out');
SELECT is((SELECT count(*) FROM pg_extension WHERE extname = 'order_flow'), 1::bigint,
          '... and the extension is still there');

-- ------------------------------------------------- unmanage, converting
SELECT throws_ok($$SELECT order_flow.unmanage('un_orders', NULL)$$, '22004', NULL,
                 'unmanage() with a NULL convert_status -> 22004');
SELECT is((SELECT count(*) FROM order_flow.managed_table), 3::bigint,
          '... and every table is still managed');
SELECT lives_ok($$SELECT order_flow.unmanage(relid, convert_status => true) FROM order_flow.managed_table$$,
                'unmanage(relid, convert_status => true) for every managed table');
SELECT is(format_type(a.atttypid, a.atttypmod), 'text', 'the status column is text now')
  FROM pg_attribute a WHERE a.attrelid = 'un_orders'::regclass AND a.attname = 'status';
SELECT is(pg_get_expr(d.adbin, d.adrelid), '''inquiry''::text', '... its default too')
  FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE d.adrelid = 'un_orders'::regclass AND a.attname = 'status';
SELECT is((SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM un_orders),
          '1:contract_signed,2:quoted,3:inquiry', '... holding the same names');
SELECT is((SELECT count(*) FROM pg_depend d
            WHERE d.classid = 'pg_class'::regclass AND d.objid = 'un_orders'::regclass
              AND d.refclassid = 'pg_type'::regclass AND d.refobjid = 'order_flow.status'::regtype),
          0::bigint, 'the table no longer depends on the status type');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('un_orders'::regclass, 'un_plain'::regclass)
              AND tgname LIKE 'order_flow%'), 0::bigint, 'the triggers are gone');
SELECT is((SELECT status FROM un_plain WHERE id = 'p-1'), 'inquiry', 'a text status column is left as it is');
SELECT is((SELECT count(*) FROM un_calls), 0::bigint, 'a default that is code was never run by unmanage()');
SELECT is((SELECT count(*) FROM pg_attrdef d WHERE d.adrelid = 'un_coded'::regclass), 0::bigint,
          '... it was dropped (with a warning)');
SELECT is(format_type(a.atttypid, a.atttypmod), 'text', '... and that column is text too')
  FROM pg_attribute a WHERE a.attrelid = 'un_coded'::regclass AND a.attname = 'status';

-- ------------------------------------------------------- then DROP EXTENSION
DROP FUNCTION un_first_state();        -- your own objects that use the type are yours to convert
SELECT lives_ok($$DROP EXTENSION order_flow$$, 'DROP EXTENSION succeeds once no table is managed');
SELECT is((SELECT count(*) FROM pg_extension WHERE extname = 'order_flow'), 0::bigint, '... the extension is gone');
SELECT is((SELECT count(*) FROM un_orders), 3::bigint, '... and the orders are intact');
INSERT INTO un_orders (id) VALUES (4);
SELECT is((SELECT status FROM un_orders WHERE id = 4), 'inquiry', '... their default works without the extension');
UPDATE un_orders SET status = 'anything' WHERE id = 4;
SELECT is((SELECT status FROM un_orders WHERE id = 4), 'anything', '... and nothing checks their moves any more');

SELECT * FROM finish();
ROLLBACK;
