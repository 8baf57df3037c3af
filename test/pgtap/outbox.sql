-- test/pgtap/outbox.sql -- the relay contract: every outbox message says
-- what it announces (kind) and where in its order's chain (event_seq);
-- outbox_claim(batch, lease) hands out whole orders in chain order, with an
-- idempotency key and one documented JSON layout; outbox_done(ids) marks
-- them delivered; a lease that ends (a relay that died before done) hands
-- them out again; while an order's messages are leased nobody else gets
-- any of that order's messages; bad arguments are refused and change
-- nothing.  (Two relays racing: test/isolation/specs/outbox_relays.spec.)
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql
\ir include/refusal_name.psql

SELECT plan(31);

CREATE TABLE ob_orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', customer text);
SELECT order_flow.manage('ob_orders', customer_column => 'customer');
INSERT INTO ob_orders (id, customer) VALUES ('ob-1', 'Acme'), ('ob-2', 'Beta');
UPDATE ob_orders SET status = 'quoted';
SELECT setval('order_flow.outbox_id_seq', 1000) \gset
UPDATE ob_orders SET status = 'contract_signed' WHERE id = 'ob-1';

-- ------------------------------------------------------- kind and position
SELECT is((SELECT count(*) FROM order_flow.outbox o
            WHERE o.order_key = 'ob-1' AND o.kind = 'ack_request'
              AND o.event_seq = (SELECT a.seq FROM order_flow.audit_log a
                                  WHERE a.order_key = 'ob-1' AND a.to_state = 'contract_signed')),
          (SELECT count(*) FROM order_flow.outbox WHERE order_key = 'ob-1'),
          'a move''s messages are ack_requests at the move''s place in the chain');

-- ids that run backwards across a later move: chain order is not id order
SELECT setval('order_flow.outbox_id_seq', 1, false) \gset
UPDATE ob_orders SET status = 'contract_signed' WHERE id = 'ob-2';
SELECT cmp_ok((SELECT max(id) FROM order_flow.outbox WHERE order_key = 'ob-2'), '<',
              (SELECT min(id) FROM order_flow.outbox WHERE order_key = 'ob-1'),
              'ob-2''s messages have lower ids than ob-1''s');
SELECT is(order_flow.escalate_due(now() + interval '1 day'), 6, 'the six acknowledgements escalate');
SELECT is((SELECT count(*) FROM order_flow.outbox o JOIN order_flow.audit_log a
                ON a.order_key = o.order_key AND a.seq = o.event_seq
             WHERE o.kind = 'escalation' AND a.action = 'escalate'
               AND (a.details->>'notification_id')::bigint = o.notification_id),
          6::bigint, 'each escalation message sits at its own escalate event');

-- ------------------------------------------------------------------ claim
CREATE TEMP TABLE first_claim AS
    SELECT row_number() OVER () AS rn, c.* FROM order_flow.outbox_claim(10, '1 hour') c;
SELECT is((SELECT count(*) FROM first_claim), (SELECT count(*) FROM order_flow.outbox WHERE delivered_at IS NULL),
          'a claim takes every undelivered message of the orders it takes');
SELECT is((SELECT count(*) FROM (SELECT order_key, max(rn) - min(rn) + 1 AS span, count(*) AS n
                                   FROM first_claim GROUP BY order_key) s WHERE s.span <> s.n),
          0::bigint, 'each order''s messages come together');
SELECT is((SELECT count(*) FROM (SELECT seq, lag(seq) OVER (PARTITION BY order_key ORDER BY rn) AS prev
                                   FROM first_claim) s WHERE s.seq < s.prev),
          0::bigint, '... in chain order');
SELECT is((SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM first_claim), 'ack_request,escalation',
          'the kinds');
SELECT is((SELECT array_agg(k ORDER BY k) FROM (SELECT DISTINCT jsonb_object_keys(message) AS k FROM first_claim) s),
          '{attempt,id,idempotency_key,kind,occurred_at,order_key,payload,seq}'::text[],
          'the message layout');
SELECT is((SELECT count(*) FROM first_claim
            WHERE message->>'idempotency_key' = idempotency_key AND (message->>'seq')::bigint = seq
              AND message->>'order_key' = order_key AND (message->>'id')::bigint = id
              AND jsonb_typeof(message->'payload') = 'object' AND attempts = 1),
          (SELECT count(*) FROM first_claim), 'the message carries the columns, first attempt');
SELECT is((SELECT count(*) FROM order_flow.outbox_claim(10, '1 hour')), 0::bigint,
          'a second claim gets nothing: every order is leased');

-- a new message of a leased order waits for that order's lease
SELECT order_flow.acknowledge((SELECT min(id) FROM order_flow.notification
                                WHERE order_key = 'ob-1' AND status = 'pending'),
                              'need_info', '{"text": "which pallet?"}') \gset
SELECT is((SELECT count(*) FROM order_flow.outbox o JOIN order_flow.audit_log a
                ON a.order_key = o.order_key AND a.seq = o.event_seq AND a.action = 'need_info'
             WHERE o.order_key = 'ob-1' AND o.kind = 'need_info' AND o.lease_until IS NULL),
          1::bigint, 'a need_info answer adds an unleased message to ob-1, at its need_info event');
SELECT is((SELECT count(*) FROM order_flow.outbox_claim(10, '1 hour')), 0::bigint,
          'a claim does not hand it out while ob-1''s other messages are leased');

-- --------------------------------------------------------------- done
SELECT is(order_flow.outbox_done((SELECT array_agg(id) FROM first_claim WHERE order_key = 'ob-2')),
          (SELECT count(*)::integer FROM first_claim WHERE order_key = 'ob-2'), 'outbox_done() marks ob-2''s messages');
SELECT is(order_flow.outbox_done((SELECT array_agg(id) FROM first_claim WHERE order_key = 'ob-2')), 0,
          '... once');
SELECT is((SELECT count(*) FROM order_flow.outbox WHERE order_key = 'ob-2' AND delivered_at IS NULL), 0::bigint,
          'ob-2 is delivered');

-- ------------------------------------------- a relay that died: the lease ends
CREATE TEMP TABLE second_claim AS SELECT c.* FROM order_flow.outbox_claim(10, '200 milliseconds') c;
SELECT is((SELECT count(*) FROM second_claim), 0::bigint, 'ob-1 is still leased by the first claim');
UPDATE order_flow.outbox SET lease_until = clock_timestamp() - interval '1 second' WHERE order_key = 'ob-1';
CREATE TEMP TABLE third_claim AS SELECT c.* FROM order_flow.outbox_claim(10, '200 milliseconds') c;
SELECT is((SELECT count(*) FROM third_claim), (SELECT count(*) FROM order_flow.outbox
                                                WHERE order_key = 'ob-1' AND delivered_at IS NULL),
          'once its lease ended, ob-1''s messages are handed out again');
SELECT is((SELECT count(*) FROM third_claim t JOIN first_claim f USING (id)
            WHERE t.idempotency_key = f.idempotency_key AND t.attempts = 2),
          (SELECT count(*) FROM first_claim WHERE order_key = 'ob-1'),
          '... with the same idempotency keys, second attempt');
SELECT pg_sleep(0.3) \gset
SELECT is((SELECT count(*) FROM order_flow.outbox_claim(10, '1 hour')), (SELECT count(*) FROM third_claim),
          'a lease of 200 ms ends by itself');

-- ----------------------------------------------------------------- refused
SELECT is(pg_temp.refusal_name($$SELECT * FROM order_flow.outbox_claim(0, '1 minute')$$), 'order_flow_outbox_batch',
          'batch 0 is refused, named');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.outbox_claim(10001, '1 minute')$$, '22023', 'batch 10001');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.outbox_claim(10, '0 seconds')$$, '22023', 'a lease of 0');
SELECT is(pg_temp.refusal_name($$SELECT * FROM order_flow.outbox_claim(10, '2 days')$$), 'order_flow_outbox_lease',
          'a lease of 2 days is refused, named');
SELECT * FROM pg_temp.refused($$SELECT * FROM order_flow.outbox_claim(NULL, '1 minute')$$, '22004', 'a NULL batch');
SELECT * FROM pg_temp.refused($$SELECT order_flow.outbox_done(NULL)$$, '22004', 'outbox_done(NULL)');
SELECT ok(NOT has_function_privilege('public', 'order_flow.outbox_claim(integer, interval)', 'EXECUTE')
          AND has_function_privilege('order_flow_admin', 'order_flow.outbox_claim(integer, interval)', 'EXECUTE')
          AND has_function_privilege('order_flow_admin', 'order_flow.outbox_done(bigint[])', 'EXECUTE'),
          'relays are order_flow_admin members (or granted the two functions), not PUBLIC');

SELECT * FROM finish();
ROLLBACK;
