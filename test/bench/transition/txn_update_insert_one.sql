-- test/bench/transition/txn_update_insert_one.sql -- variant B1: the same
-- UPDATE and audit INSERT as variant B, sent as one statement.
\set r random(1, 100)
\if :r <= 25
\set id random(1, 25000)
\else
\set id random(25001, 100000)
\endif
WITH u AS (
    UPDATE orders SET status = CASE status
            WHEN 'contract_signed' THEN 'need_info'
            WHEN 'need_info' THEN 'contract_signed'
            WHEN 'warehouse_confirmed' THEN 'on_hold'
            WHEN 'on_hold' THEN 'warehouse_confirmed' END
     WHERE id = :id
    RETURNING id, CASE status
            WHEN 'contract_signed' THEN 'need_info'
            WHEN 'need_info' THEN 'contract_signed'
            WHEN 'warehouse_confirmed' THEN 'on_hold'
            WHEN 'on_hold' THEN 'warehouse_confirmed' END AS from_state,
        status AS to_state)
INSERT INTO order_audit (order_id, from_state, to_state)
SELECT id, from_state, to_state FROM u;
