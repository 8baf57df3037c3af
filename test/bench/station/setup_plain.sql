-- test/bench/station/setup_plain.sql -- variant "plain SQL": the same
-- tables without the extension (same columns, keys and checks as
-- order_flow's station tables), a plain order table, an audit table
-- without hash chain, and a membership table for the rights check.  The
-- client (plain_ship.sql) does every check itself, statement by statement.
--
-- psql variables: operator, lat, warm, thr.

CREATE TABLE sku (
    sku text PRIMARY KEY, barcode text NOT NULL UNIQUE, name text NOT NULL DEFAULT '',
    category text NOT NULL DEFAULT '', weight_kg numeric NOT NULL DEFAULT 0 CHECK (weight_kg >= 0),
    prohibited boolean NOT NULL DEFAULT false, substitutes text[] NOT NULL DEFAULT '{}',
    unit_price numeric, unit_cost numeric);
CREATE TABLE stock (
    sku text PRIMARY KEY REFERENCES sku ON UPDATE CASCADE,
    available integer NOT NULL DEFAULT 0 CHECK (available >= 0));
CREATE TABLE order_line (
    order_key text NOT NULL, sku text NOT NULL REFERENCES sku ON UPDATE CASCADE,
    qty integer NOT NULL CHECK (qty > 0), scanned integer NOT NULL DEFAULT 0 CHECK (scanned >= 0),
    unit_price numeric, PRIMARY KEY (order_key, sku));
CREATE TABLE package_preset (
    code text PRIMARY KEY, name text NOT NULL DEFAULT '',
    max_weight_kg numeric NOT NULL DEFAULT 30 CHECK (max_weight_kg > 0),
    tare_kg numeric NOT NULL DEFAULT 0 CHECK (tare_kg >= 0));
CREATE TABLE freight_rule (
    id bigserial PRIMARY KEY, carrier text NOT NULL, region text NOT NULL DEFAULT '*',
    min_kg numeric NOT NULL DEFAULT 0 CHECK (min_kg >= 0), max_kg numeric NOT NULL DEFAULT 1000,
    base_fee numeric NOT NULL DEFAULT 0 CHECK (base_fee >= 0), per_kg numeric NOT NULL DEFAULT 0 CHECK (per_kg >= 0),
    CHECK (min_kg < max_kg));
CREATE TABLE waybill_pool (
    carrier text PRIMARY KEY, prefix text NOT NULL DEFAULT '', next_no bigint NOT NULL CHECK (next_no >= 0),
    last_no bigint NOT NULL, digits integer NOT NULL DEFAULT 10 CHECK (digits BETWEEN 1 AND 18),
    check_digit text NOT NULL DEFAULT 'none' CHECK (check_digit IN ('none', 'mod7', 'mod11')),
    CHECK (next_no <= last_no + 1));
CREATE TABLE shipment (
    order_key text PRIMARY KEY, waybill text NOT NULL UNIQUE, carrier text NOT NULL,
    package_preset text NOT NULL, weight_kg numeric NOT NULL, freight numeric NOT NULL, label jsonb NOT NULL,
    operator text NOT NULL, station text, shipped_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE station_event (
    id bigserial PRIMARY KEY, order_key text, operator text NOT NULL, station text,
    step text NOT NULL CHECK (step IN ('scan', 'preset', 'ship', 'error')),
    at timestamptz NOT NULL DEFAULT clock_timestamp(), dwell interval, detail jsonb NOT NULL DEFAULT '{}');
CREATE INDEX station_event_operator_idx ON station_event (operator, at);
CREATE INDEX station_event_order_idx ON station_event (order_key);
CREATE TABLE member (actor text NOT NULL, department text NOT NULL, PRIMARY KEY (actor, department));

CREATE TABLE public.orders (
    id        text PRIMARY KEY,
    status    text NOT NULL,
    customer  text,
    region    text,
    addressee text,
    phone     text,
    city      text,
    postcode  text);
CREATE TABLE order_audit (
    id          bigserial PRIMARY KEY,
    order_key   text NOT NULL,
    action      text NOT NULL,
    from_state  text,
    to_state    text,
    actor       text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    details     jsonb NOT NULL DEFAULT '{}');
CREATE INDEX order_audit_order_idx ON order_audit (order_key, id);

\set schema public
\ir world.sql

INSERT INTO member VALUES (:'operator', 'warehouse');
GRANT SELECT ON sku, package_preset, freight_rule, member TO :"operator";
GRANT SELECT, UPDATE ON stock, waybill_pool, public.orders TO :"operator";
GRANT SELECT ON order_line TO :"operator";
GRANT INSERT ON shipment, station_event, order_audit TO :"operator";
GRANT USAGE ON SEQUENCE station_event_id_seq, order_audit_id_seq TO :"operator";
