-- test/bench/transition/managed.sql -- variant D: the order table attached
-- to order_flow's shipped b2b_order workflow.  The clerk is a member of every
-- department, so the trigger's rights check runs (and passes) on every edge.
--
-- psql variable: clerk.

SELECT order_flow.manage('public.orders');

INSERT INTO order_flow.member (actor, department)
SELECT :'clerk', department FROM order_flow.department;
