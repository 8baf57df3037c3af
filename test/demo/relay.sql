/*
 * test/demo/relay.sql -- the WeCom relay drains the outbox.
 *
 * A relay runs outside the database; this is its loop, as the role
 * wecom_relay: take a batch of undelivered messages (SKIP LOCKED, so
 * several relays never send one message twice), send them, mark them
 * delivered, commit, repeat until nothing is waiting.
 */

SET ROLE wecom_relay;
DO $$
DECLARE
    n integer;
BEGIN
    LOOP
        WITH batch AS (
            SELECT id FROM order_flow.outbox
             WHERE delivered_at IS NULL
             ORDER BY id
             LIMIT 100
               FOR UPDATE SKIP LOCKED
        )
        UPDATE order_flow.outbox o
           SET delivered_at = clock_timestamp(), attempts = o.attempts + 1
          FROM batch
         WHERE o.id = batch.id;
        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n = 0;
        COMMIT;
    END LOOP;
END
$$;
SELECT format('    the WeCom relay delivered %s messages in batches of 100; %s waiting',
              count(*) FILTER (WHERE delivered_at IS NOT NULL),
              count(*) FILTER (WHERE delivered_at IS NULL)) AS line
  FROM order_flow.outbox \gset
\echo :line
SET ROLE erp_app;
