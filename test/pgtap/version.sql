-- test/pgtap/version.sql -- order_flow.version(): the version of the SQL
-- objects in this database and of the loaded library; a library older than
-- the SQL objects is refused with a clear error (0A000) at the first move,
-- while older SQL objects (a database not yet updated) keep working.
-- Everything runs in one transaction that is rolled back.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(5);

SELECT is((SELECT sql_version FROM order_flow.version()),
          (SELECT extversion FROM pg_extension WHERE extname = 'order_flow'),
          'version(): the SQL objects'' version is the installed extension''s');
SELECT is((SELECT library_version FROM order_flow.version()),
          (SELECT default_version FROM pg_available_extensions WHERE name = 'order_flow'),
          'version(): the library is the build of the default version');

CREATE TABLE ver_orders (id int PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('ver_orders');
INSERT INTO ver_orders (id) VALUES (1), (2);
SELECT lives_ok($$UPDATE ver_orders SET status = 'quoted' WHERE id = 1$$,
                'with matching versions orders move');

-- SQL objects newer than the library (as after installing a newer build's
-- scripts without restarting the server with its library)
UPDATE pg_extension SET extversion = '99.0' WHERE extname = 'order_flow';
UPDATE order_flow.workflow SET workflow = workflow WHERE false;     -- every backend re-reads its cache
SELECT throws_ok($$UPDATE ver_orders SET status = 'quoted' WHERE id = 2$$, '0A000',
                 format('the order_flow library (%s) is older than the extension''s SQL objects (99.0)',
                        (SELECT library_version FROM order_flow.version())),
                 'a library older than the SQL objects is refused, naming both versions');
SELECT is((SELECT status FROM ver_orders WHERE id = 2), 'inquiry', '... and the order did not move');

SELECT * FROM finish();
ROLLBACK;
