-- test/pgtap/comments.sql -- the catalogue explains itself: every table and
-- view of the extension, every column of each, every function of schema
-- order_flow and both schemas have a comment, as psql's \dt+, \dv+, \d+,
-- \df+ and \dn+ show it; and \df order_flow.* is the public API: the
-- internal helpers live in schema _order_flow, except the two trigger
-- functions that users' tables name.
\ir include/preamble.psql
BEGIN;

SELECT plan(9);

SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind IN ('r', 'p')
                   AND coalesce(obj_description(c.oid, 'pg_class'), '') = '' ORDER BY 1),
          '{}'::text[], 'every table has a comment');
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind IN ('v', 'm')
                   AND coalesce(obj_description(c.oid, 'pg_class'), '') = '' ORDER BY 1),
          '{}'::text[], 'every view has a comment');
SELECT is(ARRAY(SELECT c.relname::text || '.' || a.attname::text
                  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                 WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind IN ('r', 'p')
                   AND a.attnum > 0 AND NOT a.attisdropped
                   AND coalesce(col_description(c.oid, a.attnum), '') = '' ORDER BY 1),
          '{}'::text[], 'every column of every table has a comment');
SELECT is(ARRAY(SELECT c.relname::text || '.' || a.attname::text
                  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                 WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind IN ('v', 'm')
                   AND a.attnum > 0 AND NOT a.attisdropped
                   AND coalesce(col_description(c.oid, a.attnum), '') = '' ORDER BY 1),
          '{}'::text[], 'every column of every view has a comment');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'order_flow'::regnamespace
                   AND coalesce(obj_description(p.oid, 'pg_proc'), '') = '' ORDER BY 1),
          '{}'::text[], 'every function of schema order_flow has a comment');
SELECT is(ARRAY(SELECT n.nspname::text FROM pg_namespace n
                 WHERE n.nspname IN ('order_flow', '_order_flow')
                   AND coalesce(obj_description(n.oid, 'pg_namespace'), '') <> '' ORDER BY 1),
          '{_order_flow,order_flow}'::text[], 'both schemas have a comment');
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace = 'order_flow'::regnamespace AND p.proname ~ '^_' ORDER BY 1),
          '{_refuse_truncate,_transition_trigger}'::text[],
          'schema order_flow holds no internal helper but the two trigger functions users'' tables name');
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace = 'order_flow'::regnamespace
                   AND (p.proname ~ '^status_' OR p.proname ~ '^text_.._status$') ORDER BY 1),
          '{}'::text[], '... nor the status type''s support functions');
SELECT cmp_ok((SELECT count(*)::int FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
                WHERE p.pronamespace = '_order_flow'::regnamespace
                  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'order_flow')), '>', 100,
              'schema _order_flow holds the internal helpers, as members of the extension');

SELECT * FROM finish();
ROLLBACK;
