-- test/bench/transition/txn_update_insert.sql -- variant B: the same UPDATE
-- plus an audit row INSERTed by the client, in one transaction.  The client
-- learns the new state from RETURNING; the old state is the same CASE applied
-- to the new one (each cycle has two states, so the map is its own inverse).
\set r random(1, 100)
\if :r <= 25
\set id random(1, 25000)
\else
\set id random(25001, 100000)
\endif
BEGIN;
UPDATE orders SET status = CASE status
        WHEN 'contract_signed' THEN 'need_info'
        WHEN 'need_info' THEN 'contract_signed'
        WHEN 'warehouse_confirmed' THEN 'on_hold'
        WHEN 'on_hold' THEN 'warehouse_confirmed' END
 WHERE id = :id
RETURNING CASE status
        WHEN 'contract_signed' THEN 'need_info'
        WHEN 'need_info' THEN 'contract_signed'
        WHEN 'warehouse_confirmed' THEN 'on_hold'
        WHEN 'on_hold' THEN 'warehouse_confirmed' END AS from_state,
    status AS to_state \gset
INSERT INTO order_audit (order_id, from_state, to_state) VALUES (:id, ':from_state', ':to_state');
COMMIT;
