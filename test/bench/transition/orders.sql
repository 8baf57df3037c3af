-- test/bench/transition/orders.sql -- the order table every variant starts
-- from: 100,000 orders, identical in every variant's database.
--
-- Orders 1..25,000 form the "notify" subset: they cycle
--     contract_signed -> need_info -> contract_signed -> ...
-- and both edges notify (need_info: sales; back: warehouse, finance,
-- logistics).  Orders 25,001..100,000 form the "plain" subset: they cycle
--     warehouse_confirmed -> on_hold -> warehouse_confirmed (resume) -> ...
-- and neither edge notifies.  Both cycles use edges of the shipped b2b_order
-- workflow, so every transition is valid forever.  The pgbench scripts pick
-- the notify subset for 25% of their transactions.
--
-- psql variable: clerk, the non-superuser role that runs the workload.

CREATE TABLE public.orders (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    amount      numeric(12,2) NOT NULL,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO public.orders (id, customer_id, amount, status, created_at)
SELECT g, 1 + g % 5000, round((g % 997) * 10.25, 2),
       CASE WHEN g <= 25000 THEN 'contract_signed' ELSE 'warehouse_confirmed' END,
       now() - interval '1 day'
  FROM generate_series(1, 100000) g;

GRANT SELECT, UPDATE ON public.orders TO :"clerk";
