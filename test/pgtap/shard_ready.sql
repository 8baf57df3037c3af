-- test/pgtap/shard_ready.sql -- every row the transition path writes is
-- keyed by its order, so the tables can be distributed by order key and
-- each row live on its order's shard: every unique key of those tables
-- begins with order_key, and nothing the path, the chain, the broadcast or
-- the metrics do relies on ids being ordered across orders (ids from
-- another node's sequence range, or from a sequence that went backwards,
-- change nothing).
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(16);

-- --------------------------------------------------------------- the keys
CREATE TEMP TABLE path_table (relid regclass PRIMARY KEY);
INSERT INTO path_table VALUES ('order_flow.tracked_order'), ('order_flow.audit_log'),
    ('order_flow.notification'), ('order_flow.outbox'), ('order_flow.order_fact'),
    ('order_flow.exception_fact'), ('order_flow.metrics_watermark');

SELECT is(ARRAY(SELECT p.relid::text FROM path_table p
                 WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                                    WHERE a.attrelid = p.relid AND a.attname = 'order_key'
                                      AND NOT a.attisdropped AND a.attnotnull)
                 ORDER BY 1),
          '{}'::text[], 'every table the path writes has a NOT NULL order_key');
SELECT is(ARRAY(SELECT i.indexrelid::regclass::text FROM pg_index i JOIN path_table p ON p.relid = i.indrelid
                 WHERE i.indisunique
                   AND (SELECT a.attname FROM pg_attribute a
                         WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0]) IS DISTINCT FROM 'order_key'
                 ORDER BY 1),
          '{}'::text[], 'every unique key of those tables begins with order_key');
SELECT is((SELECT pg_get_constraintdef(co.oid) FROM pg_constraint co
            WHERE co.conrelid = 'order_flow.notification'::regclass AND co.contype = 'p'),
          'PRIMARY KEY (order_key, id)', 'a notification is keyed by its order');
SELECT is((SELECT pg_get_constraintdef(co.oid) FROM pg_constraint co
            WHERE co.conrelid = 'order_flow.outbox'::regclass AND co.contype = 'p'),
          'PRIMARY KEY (order_key, id)', 'an outbox message is keyed by its order');
SELECT is(ARRAY(SELECT co.conname::text FROM pg_constraint co JOIN path_table p ON p.relid = co.conrelid
                 WHERE co.contype = 'f' AND co.confrelid IN (SELECT relid FROM path_table)
                 ORDER BY 1),
          '{}'::text[], 'no foreign key between those tables that a sharded layout could not keep');

-- ------------------------------------------ ids out of order across orders
CREATE TABLE shard_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
SELECT order_flow.manage('shard_orders', customer_column => 'customer');
SET LOCAL order_flow.metrics_fold = sync;

-- the sequences jump ahead (another node's range), then go back below
-- every id already used, between the moves of the same orders
SELECT setval('order_flow.audit_log_id_seq', 5000000), setval('order_flow.notification_id_seq', 5000000),
       setval('order_flow.outbox_id_seq', 5000000);
INSERT INTO shard_orders (id, customer) VALUES ('sh-1', 'Acme'), ('sh-2', 'Beta');
UPDATE shard_orders SET status = 'quoted';
SELECT setval('order_flow.audit_log_id_seq', 10, false), setval('order_flow.notification_id_seq', 10, false),
       setval('order_flow.outbox_id_seq', 10, false);
SELECT lives_ok($$UPDATE shard_orders SET status = 'contract_signed'$$,
                'moves go on when the ids go back below those already used');
SELECT cmp_ok((SELECT max(id) FROM order_flow.audit_log WHERE order_key = 'sh-1' AND seq = 3), '<',
              (SELECT min(id) FROM order_flow.audit_log WHERE order_key = 'sh-1' AND seq = 1),
              '... so a later event of the order has a lower id than its first');
SELECT is(ARRAY(SELECT to_state FROM order_flow.audit_log WHERE order_key = 'sh-1' ORDER BY seq),
          '{inquiry,quoted,contract_signed}'::text[], 'the chain is in seq order');
SELECT is((SELECT count(*) FROM order_flow.verify_audit()), 0::bigint, 'the chains verify');

SELECT cmp_ok((SELECT count(*) FROM order_flow.notification WHERE order_key = 'sh-1' AND status = 'pending'),
              '>', 0::bigint, 'the signed contract opened notifications with the low ids');
SELECT lives_ok($$SELECT order_flow.acknowledge(n.id) FROM order_flow.notification n
                   WHERE n.order_key = 'sh-1' AND n.status = 'pending'$$,
                'acknowledge() finds them by id');
SELECT is((SELECT count(*) FROM order_flow.notification WHERE order_key = 'sh-1' AND status = 'pending'),
          0::bigint, '... and answers each');
SELECT lives_ok($$SELECT order_flow.escalate_due(now() + interval '30 days')$$,
                'escalation of the other order''s notifications');
SELECT is(ARRAY(SELECT DISTINCT n.order_key FROM order_flow.notification n
                 WHERE n.status = 'escalated' ORDER BY 1),
          '{sh-2}'::text[], '... escalates exactly those');

SELECT is((SELECT f.contract_signed_at IS NOT NULL AND f.ordered_at IS NOT NULL
             FROM order_flow.order_fact f WHERE f.order_key = 'sh-1'),
          true, 'the rollup has the order''s stamps');
CREATE TEMP TABLE folded AS
    SELECT md5(string_agg(f::text, '|' ORDER BY f.order_key)) AS digest FROM order_flow.order_fact f
     WHERE f.order_key LIKE 'sh-%';
SELECT order_flow.metrics_rebuild();
SELECT is((SELECT md5(string_agg(f::text, '|' ORDER BY f.order_key)) FROM order_flow.order_fact f
            WHERE f.order_key LIKE 'sh-%'),
          (SELECT digest FROM folded),
          'the rollup folded with ids out of order equals metrics_rebuild()');

SELECT * FROM finish();
ROLLBACK;
