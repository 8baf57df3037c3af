-- test/pgtap/publication.sql -- a FOR ALL TABLES publication (the usual
-- first step of a change feed) changes nothing for the workflow: every
-- table of the extension has a primary key or a replica identity, so every
-- path that updates or deletes its rows -- acknowledging, the relay marking
-- the outbox, escalation, reminders, the kpi() cache, deleting an order,
-- configuration edits -- keeps working.  Before 1.2 six tables had no key
-- and acknowledge(), the relay's UPDATE and escalate_due() failed with
-- "does not have a replica identity".
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(17);

-- ----------------------------------------------------------- the tables
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind = 'r'
                   AND NOT (c.relreplident = 'f'
                            OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i
                                                                  WHERE i.indrelid = c.oid AND i.indisreplident))
                            OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i
                                                                  WHERE i.indrelid = c.oid AND i.indisprimary)))
                 ORDER BY 1),
          '{}'::text[],
          'every table of the extension has a primary key or a replica identity');
SELECT is((SELECT c.relreplident::text FROM pg_class c WHERE c.oid = 'order_flow.exception_fact'::regclass),
          'f', 'exception_fact (insert-only, no index on purpose) is identified by its full row');
SELECT is((SELECT pg_get_constraintdef(co.oid) FROM pg_constraint co
            WHERE co.conrelid = 'order_flow.audit_log'::regclass AND co.contype = 'p'),
          'PRIMARY KEY (order_key, seq)', 'an event is identified by its order and its place in the chain');

-- --------------------------------------------------- with a publication
SET LOCAL client_min_messages = error;       -- wal_level may be replica: the warning is not the point
CREATE PUBLICATION tw_pub_cdc FOR ALL TABLES;
RESET client_min_messages;

CREATE TABLE pub_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
SELECT lives_ok($$SELECT order_flow.manage('pub_orders', customer_column => 'customer')$$,
                'manage() with the publication');
SELECT lives_ok($$INSERT INTO pub_orders (id, customer) VALUES ('pb-1', 'Acme'), ('pb-2', 'Acme'), ('pb-3', 'Beta');
                  UPDATE pub_orders SET status = 'quoted';
                  UPDATE pub_orders SET status = 'contract_signed'$$,
                'transitions that open notifications and outbox rows');
SELECT cmp_ok((SELECT count(*) FROM order_flow.notification WHERE order_key LIKE 'pb-%'), '>', 0::bigint,
              '... and they were opened');
SELECT lives_ok($$SELECT order_flow.acknowledge((SELECT min(id) FROM order_flow.notification
                                                   WHERE order_key = 'pb-1' AND status = 'pending'))$$,
                'acknowledge() updates a notification');
SELECT lives_ok($$UPDATE order_flow.outbox SET delivered_at = now(), attempts = attempts + 1
                   WHERE id IN (SELECT id FROM order_flow.outbox WHERE delivered_at IS NULL
                                 ORDER BY id LIMIT 2)$$,
                'the relay marks outbox rows delivered');
SELECT lives_ok($$SELECT order_flow.escalate_due(now() + interval '1 day')$$,
                'escalate_due() escalates overdue notifications');
SELECT cmp_ok((SELECT count(*) FROM order_flow.notification WHERE order_key LIKE 'pb-%' AND status = 'escalated'),
              '>', 0::bigint, '... and they were escalated');
SELECT lives_ok($$SELECT order_flow.record('pb-2', 'payment',
                                           '{"amount": 10, "due_date": "2030-01-31", "paid_date": "2030-01-20"}')$$,
                'record() appends a fact');
SELECT lives_ok($$SELECT order_flow.metrics_fold(true)$$, 'the metrics fold');
SELECT lives_ok($$SELECT order_flow.kpi_cache_refresh()$$, 'the kpi() cache refresh deletes its dirty marks');
SELECT lives_ok($$SELECT order_flow.metrics_rebuild()$$, 'metrics_rebuild() empties and refills the rollup');
SELECT lives_ok($$SET LOCAL order_flow.reason = 'duplicate'; DELETE FROM pub_orders WHERE id = 'pb-3'$$,
                'deleting an order closes its notifications');
SELECT lives_ok($$UPDATE order_flow.state SET max_dwell = interval '30 hours'
                   WHERE workflow = 'b2b_order' AND state = 'quoted'$$,
                'a configuration edit re-times waiting orders');
SELECT is((SELECT count(*) FROM order_flow.verify_audit()), 0::bigint, 'the chains verify');

SELECT * FROM finish();
ROLLBACK;
