-- test/bench/escalation/setup.sql -- the order table of the escalation
-- benchmark: :n_orders orders of the shipped b2b_order workflow, adopted by
-- order_flow.manage() (no events), so every order is tracked.
--
-- Orders 1 .. :n_orders - :n_pgbench sit in contract_signed: the notified
-- orders of the latency, burst and memory phases are taken from them (one
-- open notification per order at a time, so escalations never queue behind
-- each other's chain-head lock).  The last :n_pgbench orders sit in
-- warehouse_confirmed: pgbench cycles them warehouse_confirmed -> on_hold ->
-- warehouse_confirmed (no notifications), see pgbench_transition.sql.
--
-- psql variables: n_orders, n_pgbench.

SET client_min_messages = warning;

CREATE TABLE public.orders (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    amount      numeric(12,2) NOT NULL,
    status      text NOT NULL
);

INSERT INTO public.orders (id, customer_id, amount, status)
SELECT g, 1 + g % 10000, round((g % 997) * 10.25, 2),
       CASE WHEN g <= :n_orders - :n_pgbench THEN 'contract_signed' ELSE 'warehouse_confirmed' END
  FROM generate_series(1, :n_orders) g;

SELECT order_flow.manage('public.orders');

-- the benchmark's own record of what it opened and what it saw (unlogged:
-- nothing here needs to survive a crash)
CREATE UNLOGGED TABLE public.bench_seen (
    id          bigint PRIMARY KEY,     -- the escalated (child) notification
    parent_id   bigint NOT NULL,
    seen_at     timestamptz NOT NULL    -- when a polling client first saw it committed
);

VACUUM (ANALYZE) public.orders;
VACUUM (ANALYZE) order_flow.tracked_order;
