/*
 * src/sql/pre_install/station.sql
 *
 * Created once: the station's tables (SKUs, stock, order lines, package
 * presets, freight rules, waybill pool, station configuration, shipments,
 * station events, logistics trace).
 */

/* ------------------------------------------------------------------ */
/* Shipping station: scan, choose a preset, ship.                      */
/* ------------------------------------------------------------------ */
CREATE TABLE order_flow.sku (
    sku             text PRIMARY KEY,
    barcode         text NOT NULL UNIQUE,
    name            text NOT NULL DEFAULT '',
    category        text NOT NULL DEFAULT '',
    weight_kg       numeric NOT NULL DEFAULT 0 CHECK (weight_kg >= 0),
    prohibited      boolean NOT NULL DEFAULT false,
    substitutes     text[] NOT NULL DEFAULT '{}',
    unit_price      numeric,
    unit_cost       numeric
);

COMMENT ON TABLE order_flow.sku IS 'Articles: barcode, category, weight, prohibited flag, substitute models';

CREATE TABLE order_flow.stock (
    sku             text PRIMARY KEY REFERENCES order_flow.sku ON UPDATE CASCADE,
    available       integer NOT NULL DEFAULT 0 CHECK (available >= 0)
);

COMMENT ON TABLE order_flow.stock IS
    'Default stock source; point order_flow.station_config(stock_source) at a WMS view or foreign table instead';

CREATE TABLE order_flow.order_line (
    order_key       text NOT NULL,
    sku             text NOT NULL REFERENCES order_flow.sku ON UPDATE CASCADE,
    qty             integer NOT NULL CHECK (qty > 0),
    scanned         integer NOT NULL DEFAULT 0 CHECK (scanned >= 0),
    unit_price      numeric,
    PRIMARY KEY (order_key, sku)
);

CREATE TABLE order_flow.package_preset (
    code            text PRIMARY KEY,
    name            text NOT NULL DEFAULT '',
    max_weight_kg   numeric NOT NULL DEFAULT 30 CHECK (max_weight_kg > 0),
    tare_kg         numeric NOT NULL DEFAULT 0 CHECK (tare_kg >= 0)
);

CREATE TABLE order_flow.freight_rule (
    id              bigserial PRIMARY KEY,
    carrier         text NOT NULL,
    region          text NOT NULL DEFAULT '*',
    min_kg          numeric NOT NULL DEFAULT 0 CHECK (min_kg >= 0),
    max_kg          numeric NOT NULL DEFAULT 1000,
    base_fee        numeric NOT NULL DEFAULT 0 CHECK (base_fee >= 0),
    per_kg          numeric NOT NULL DEFAULT 0 CHECK (per_kg >= 0),
    CHECK (min_kg < max_kg)
);

COMMENT ON COLUMN order_flow.freight_rule.region IS 'Region the rule applies to; * for any region';

CREATE TABLE order_flow.waybill_pool (
    carrier         text PRIMARY KEY,
    prefix          text NOT NULL DEFAULT '',
    next_no         bigint NOT NULL CHECK (next_no >= 0),
    last_no         bigint NOT NULL,
    digits          integer NOT NULL DEFAULT 10 CHECK (digits BETWEEN 1 AND 18),
    check_digit     text NOT NULL DEFAULT 'none' CHECK (check_digit IN ('none', 'mod7', 'mod11')),
    CHECK (next_no <= last_no + 1),
    CHECK (last_no < power(10::numeric, digits))
);

COMMENT ON TABLE order_flow.waybill_pool IS
    'Waybill number ranges the carriers pre-assign; next_no > last_no means exhausted';

CREATE TABLE order_flow.station_config (
    key             text PRIMARY KEY,
    value           text NOT NULL
);

CREATE TABLE order_flow.shipment (
    order_key       text PRIMARY KEY,
    waybill         text NOT NULL UNIQUE,
    carrier         text NOT NULL,
    package_preset  text NOT NULL,
    weight_kg       numeric NOT NULL,
    freight         numeric NOT NULL,
    label           jsonb NOT NULL,
    operator        text NOT NULL,
    station         text,
    shipped_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE order_flow.station_event (
    id              bigserial PRIMARY KEY,
    order_key       text,
    operator        text NOT NULL,
    station         text,
    step            text NOT NULL CHECK (step IN ('scan', 'preset', 'ship', 'error')),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    dwell           interval,
    detail          jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX station_event_operator_idx ON order_flow.station_event (operator, at);

CREATE INDEX station_event_order_idx ON order_flow.station_event (order_key);

CREATE TABLE order_flow.logistics_trace (
    id              bigserial PRIMARY KEY,
    tracking_no     text NOT NULL,
    order_key       text NOT NULL,
    status          text NOT NULL,
    at              timestamptz NOT NULL,
    location        text,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX logistics_trace_order_idx ON order_flow.logistics_trace (order_key, at);

INSERT INTO order_flow.station_config (key, value) VALUES ('stock_source', 'order_flow.stock');

SELECT pg_catalog.pg_extension_config_dump('order_flow.sku', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.stock', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.order_line', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.package_preset', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.freight_rule', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.freight_rule_id_seq', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.waybill_pool', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.station_config', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.shipment', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.station_event', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.station_event_id_seq', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.logistics_trace', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.logistics_trace_id_seq', '');
