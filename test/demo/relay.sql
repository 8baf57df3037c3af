/*
 * test/demo/relay.sql -- the WeCom relay drains the outbox.
 *
 * A relay runs outside the database; this is its loop, as the role
 * wecom_relay: claim a batch (outbox_claim: whole orders no other relay
 * holds, each order's messages in chain order, leased for a minute), send
 * them, mark them delivered (outbox_done), commit, repeat until nothing is
 * waiting.  A relay that died between claim and done would leave its
 * batch leased until the lease ends, then it is handed out again: at least
 * once, and the idempotency key lets WeCom drop a second copy.
 */

SET ROLE wecom_relay;
DO $$
DECLARE
    ids bigint[];
BEGIN
    LOOP
        SELECT array_agg(c.id) INTO ids FROM order_flow.outbox_claim(100, '1 minute') c;
        EXIT WHEN ids IS NULL;
        -- ... each message (c.message, in the order given) goes to WeCom here ...
        PERFORM order_flow.outbox_done(ids);
        COMMIT;
    END LOOP;
END
$$;
SELECT format('    the WeCom relay delivered %s messages (whole orders, in chain order, up to 100 orders per claim); %s waiting',
              count(*) FILTER (WHERE delivered_at IS NOT NULL),
              count(*) FILTER (WHERE delivered_at IS NULL)) AS line
  FROM order_flow.outbox \gset
\echo :line
SET ROLE erp_app;
