-- test/bench/transition/txn_update.sql -- one transition per transaction:
-- variants A (no trigger), C (PL/pgSQL trigger) and D (order_flow).
-- 25% of transactions pick an order of the notify subset (ids 1..25,000),
-- the rest one of the plain subset (25,001..100,000); see orders.sql.
-- The CASE maps each state of the two cycles to its successor; the same
-- CASE is used by every variant.
\set r random(1, 100)
\if :r <= 25
\set id random(1, 25000)
\else
\set id random(25001, 100000)
\endif
UPDATE orders SET status = CASE status
        WHEN 'contract_signed' THEN 'need_info'
        WHEN 'need_info' THEN 'contract_signed'
        WHEN 'warehouse_confirmed' THEN 'on_hold'
        WHEN 'on_hold' THEN 'warehouse_confirmed' END
 WHERE id = :id;
