-- test/bench/escalation/pgbench_transition.sql -- the transition workload
-- that runs beside the burst: one valid transition of a random order of the
-- pgbench subset (ids :lo .. :hi, see setup.sql) per transaction, cycling
--     warehouse_confirmed -> on_hold -> warehouse_confirmed (resume)
-- Neither edge notifies, so the workload opens no notifications of its own;
-- on_hold needs a reason (PGOPTIONS -c order_flow.reason=...).
\set id random(:lo, :hi)
UPDATE orders SET status = CASE status WHEN 'warehouse_confirmed' THEN 'on_hold'
                                       ELSE 'warehouse_confirmed' END
 WHERE id = :id;
