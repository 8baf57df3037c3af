-- test/pgtap/comments.sql -- the catalogue explains itself: every table and
-- view of the extension, every column of each, and every public function (a
-- name not beginning with "_": those are internal helpers) has a comment, as
-- psql's \dt+, \dv+, \d+ and \df+ show it.
\ir include/preamble.psql
BEGIN;

SELECT plan(5);

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
                 WHERE p.pronamespace = 'order_flow'::regnamespace AND p.proname !~ '^_'
                   AND coalesce(obj_description(p.oid, 'pg_proc'), '') = '' ORDER BY 1),
          '{}'::text[], 'every public function has a comment');

SELECT * FROM finish();
ROLLBACK;
