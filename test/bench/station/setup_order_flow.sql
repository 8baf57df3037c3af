-- test/bench/station/setup_order_flow.sql -- variant "order_flow": the
-- extension's station tables, public.orders managed by order_flow (the
-- region and addressee fields captured as attributes), and the operator
-- role granted exactly the station (grant_station_operator) and registered
-- as warehouse staff (the packed -> shipped edge is taken by warehouse or
-- logistics).
--
-- psql variables: operator, lat, warm, thr.

CREATE TABLE public.orders (
    id        text PRIMARY KEY,
    status    order_flow.status NOT NULL DEFAULT 'inquiry',
    customer  text,
    region    text,
    addressee text,
    phone     text,
    city      text,
    postcode  text);
SELECT order_flow.manage('public.orders', customer_column => 'customer',
                         attributes => '{region,addressee,phone,city,postcode}');

\set schema order_flow
\ir world.sql

SELECT order_flow.grant_station_operator(:'operator');
INSERT INTO order_flow.member (actor, department) VALUES (:'operator', 'warehouse');
