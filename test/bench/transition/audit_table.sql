-- test/bench/transition/audit_table.sql -- variants B and B1: a hand-written
-- audit table, as an application would keep one: who moved which order from
-- where to where, and when; searchable by order.
--
-- psql variable: clerk.

CREATE TABLE public.order_audit (
    id          bigserial PRIMARY KEY,
    order_id    bigint NOT NULL,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    changed_by  text NOT NULL DEFAULT session_user,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_audit_order_idx ON public.order_audit (order_id, changed_at);

GRANT INSERT ON public.order_audit TO :"clerk";
GRANT USAGE ON SEQUENCE public.order_audit_id_seq TO :"clerk";
