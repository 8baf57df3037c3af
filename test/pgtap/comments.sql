-- test/pgtap/comments.sql -- the catalogue explains itself: every table and
-- view of the extension and every public function (a name not beginning
-- with "_": those are internal helpers) has a comment, as psql's \dt+,
-- \dv+ and \df+ show it.  (Columns are not all commented yet.)
\ir include/preamble.psql
BEGIN;

SELECT plan(3);

SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind IN ('r', 'p')
                   AND coalesce(obj_description(c.oid, 'pg_class'), '') = '' ORDER BY 1),
          '{}'::text[], 'every table has a comment');
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind IN ('v', 'm')
                   AND coalesce(obj_description(c.oid, 'pg_class'), '') = '' ORDER BY 1),
          '{}'::text[], 'every view has a comment');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'order_flow'::regnamespace AND p.proname !~ '^_'
                   AND coalesce(obj_description(p.oid, 'pg_proc'), '') = '' ORDER BY 1),
          '{}'::text[], 'every public function has a comment');

SELECT * FROM finish();
ROLLBACK;
