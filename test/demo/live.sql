/*
 * live.sql -- an escalation happening live: the background worker, not a
 * manual sweep, escalates a notification the moment its deadline passes.
 */
\echo
\echo '16:45  a rush order: logistics gives the warehouse 3 seconds (instead of 15 minutes) to confirm'
UPDATE order_flow.transition_rule SET ack_within = interval '3 seconds'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
SELECT min(id) AS rush FROM orders WHERE status = 'quoted' \gset
SET order_flow.actor = 'gao.sales';
UPDATE orders SET status = 'contract_signed' WHERE id = :rush;
RESET order_flow.actor;
UPDATE order_flow.transition_rule SET ack_within = interval '15 minutes'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
\echo '       the countdown board (order_flow.pending_acks) right after signing:'
SELECT notification_id, order_key, department, level, seconds_left, overdue
  FROM order_flow.pending_acks WHERE order_key = :'rush'::text ORDER BY department;
\echo '       finance acknowledges at once; warehouse and logistics do not answer ...'
SET order_flow.actor = 'zhao.finance';
SELECT order_flow.acknowledge(notification_id) AS acknowledged
  FROM order_flow.pending_acks WHERE order_key = :'rush'::text AND department = 'finance';
RESET order_flow.actor;
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN (SELECT count(*) FROM order_flow.notification
                    WHERE order_key = current_setting('demo.rush') AND level = 2) >= 2;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
\echo '       ... and the worker escalates them to their managers as the deadline passes:'
SELECT c.department, p.level AS from_level, c.level AS to_level,
       round(extract(epoch FROM c.created_at - p.deadline)::numeric, 3) AS seconds_after_deadline,
       e.actor AS escalated_by
  FROM order_flow.notification c
  JOIN order_flow.notification p ON p.id = c.parent_id
  JOIN order_flow.audit_log e ON e.order_key = c.order_key AND e.action = 'escalate'
                             AND (e.details->>'notification_id')::bigint = c.id
 WHERE c.order_key = :'rush'::text
 ORDER BY c.department;
