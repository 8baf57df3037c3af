/*
 * src/sql/pre_install/metrics.sql
 *
 * Created once: the metrics rollup (order_fact, exception_fact, the fold's
 * watermarks and position), the kpi() cache tables, health weights and
 * thresholds, seasons, and the aggregates' result types.
 */

/* One row per order: what the metrics need, folded from its events. */
CREATE TABLE order_flow.order_fact (
    order_key           text PRIMARY KEY,
    customer_key        text,
    attrs_seq           bigint NOT NULL DEFAULT -1,
    region              text,
    customer_class      text,
    category            text,
    amount              float8,
    promised_ship_date  date,
    ordered_at          timestamptz,
    contract_signed_at  timestamptz,
    shipped_at          timestamptz,
    first_logistics_at  timestamptz,
    delivered_at        timestamptz,
    accepted_at         timestamptz,
    rework_return       boolean NOT NULL DEFAULT false,
    exceptions          integer NOT NULL DEFAULT 0,
    payments            integer NOT NULL DEFAULT 0,
    payments_late       integer NOT NULL DEFAULT 0,
    payment_due_amount  float8 NOT NULL DEFAULT 0,
    paid_on_time_amount float8 NOT NULL DEFAULT 0,
    service_requests    integer NOT NULL DEFAULT 0,
    complaints          integer NOT NULL DEFAULT 0
) WITH (fillfactor = 80);

COMMENT ON TABLE order_flow.order_fact IS
    'Per-order rollup of the audit log, folded by order_flow.metrics_fold() (see metrics_rebuild)';

/* Room on the page keeps the few updates per order HOT. */
CREATE INDEX order_fact_signed_idx ON order_flow.order_fact (contract_signed_at);

CREATE INDEX order_fact_customer_idx ON order_flow.order_fact (customer_key);

COMMENT ON COLUMN order_flow.order_fact.attrs_seq IS
    'Sequence number of the state change whose customer and attributes the row holds (-1: none yet)';

COMMENT ON COLUMN order_flow.order_fact.ordered_at IS
    'occurred_at of the order''s first event';

COMMENT ON COLUMN order_flow.order_fact.payment_due_amount IS
    'Sum of the amounts of payments that name a due_date';

COMMENT ON COLUMN order_flow.order_fact.paid_on_time_amount IS
    'Of those, the amount paid on or before its due_date (paid_date, else the event''s UTC date)';

COMMENT ON COLUMN order_flow.order_fact.payments_late IS
    'Payments paid after their due_date';

/* One row per exception event. */
CREATE TABLE order_flow.exception_fact (
    order_key       text NOT NULL,
    event_id        bigint NOT NULL,
    exception_type  text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    action          text NOT NULL
);

ALTER TABLE order_flow.exception_fact REPLICA IDENTITY FULL;

/* No index: only scanned whole (exception_pareto) or truncated (rebuild);
   an index would cost every exception event on the transition path.  Rows
   are only inserted and truncated, never updated or deleted, so replica
   identity FULL costs a publication nothing. */
COMMENT ON TABLE order_flow.exception_fact IS
    'Exception events (edges with an exception type, exception records), kept by the audit_log_metrics trigger; event_id = audit_log.id';

/*
 * health_profile(...): every customer health dimension of a group of
 * order_fact rows in one pass (one transition call per order), each
 * computed exactly as documented on customer_health; the stand-alone
 * aggregates above compute the same values one at a time.
 */
CREATE TYPE order_flow.health_values AS (
    orders                  bigint,
    order_frequency         float8,
    recency_days            float8,
    category_breadth        integer,
    payment_punctuality     float8,
    overdue_payments        bigint,
    service_requests        bigint,
    complaints              bigint,
    on_time_rate            float8,
    first_time_right_rate   float8,
    return_rework_rate      float8,
    order_value_trend       float8,
    order_volatility        float8,
    orders_3_months_ago     bigint,
    orders_2_months_ago     bigint,
    orders_last_month       bigint
);

/*
 * kpi_summary(...): kpi()'s row over any group of order_fact rows (GROUP BY
 * region, customer_class, month ... for KPIs per slice).
 */
CREATE TYPE order_flow.kpi_values AS (
    orders                          bigint,
    median_hours_to_first_logistics float8,
    mean_processing_hours           float8,
    median_processing_hours         float8,
    on_time_rate                    float8,
    first_time_right_rate           float8,
    exception_rate                  float8
);

/* ------------------------------------------------------------------ */
/* Health and drill-down configuration.                                */
/* ------------------------------------------------------------------ */
CREATE TABLE order_flow.health_weight (
    dimension       text PRIMARY KEY
                    CHECK (dimension IN ('order_frequency', 'recency_days', 'category_breadth',
                                         'payment_punctuality', 'overdue_payments', 'service_requests',
                                         'complaints', 'on_time_rate', 'first_time_right_rate',
                                         'return_rework_rate', 'order_value_trend', 'order_volatility')),
    weight          numeric NOT NULL CHECK (weight >= 0 AND weight <= 1),
    bad             float8 NOT NULL,
    good            float8 NOT NULL,
    description     text NOT NULL DEFAULT '',
    CHECK (good <> bad)
);

COMMENT ON TABLE order_flow.health_weight IS
    'Customer health score: per dimension a weight (all weights sum to 1) and the values scoring 0 (bad) and 1 (good), linear in between';

INSERT INTO order_flow.health_weight (dimension, weight, bad, good, description) VALUES
    ('order_frequency',       0.10,   0,    4,   'orders per month, last 12 complete months'),
    ('recency_days',          0.10,  90,    7,   'days since the last order'),
    ('category_breadth',      0.05,   1,    5,   'distinct product categories ordered'),
    ('payment_punctuality',   0.15,   0.5,  1,   'share of the amount due paid on time'),
    ('overdue_payments',      0.10,   0.5,  0,   'late payments, scored per order'),
    ('service_requests',      0.05,   1,    0,   'service requests, scored per order'),
    ('complaints',            0.10,   0.5,  0,   'complaints, scored per order'),
    ('on_time_rate',          0.10,   0.7,  1,   'share of shipped orders shipped on time'),
    ('first_time_right_rate', 0.10,   0.8,  1,   'share of delivered orders accepted without rework or return'),
    ('return_rework_rate',    0.05,   0.2,  0,   'share of delivered orders reworked or returned'),
    ('order_value_trend',     0.05,  -0.2,  0.1, 'relative monthly change of order value, last 6 complete months'),
    ('order_volatility',      0.05,   1,    0,   'coefficient of variation of monthly orders, last 3 complete months');

CREATE TABLE order_flow.health_threshold (
    rating          text PRIMARY KEY CHECK (rating IN ('red', 'yellow', 'green')),
    min_score       numeric NOT NULL CHECK (min_score >= 0 AND min_score <= 100)
);

COMMENT ON TABLE order_flow.health_threshold IS
    'Rating cut-offs: a score at or above green''s min_score is green, else at or above yellow''s is yellow, else red';

INSERT INTO order_flow.health_threshold (rating, min_score) VALUES
    ('red', 0), ('yellow', 50), ('green', 75);

CREATE TABLE order_flow.season (
    region          text NOT NULL DEFAULT '*',
    month           integer NOT NULL CHECK (month BETWEEN 1 AND 12),
    season          text NOT NULL,
    PRIMARY KEY (region, month)
);

COMMENT ON TABLE order_flow.season IS
    'Season of each calendar month, per region (''*'' = every region without its own row for that month)';

INSERT INTO order_flow.season (region, month, season)
SELECT '*', m, CASE WHEN m IN (12, 1, 2) THEN 'winter' WHEN m IN (3, 4, 5) THEN 'spring'
                    WHEN m IN (6, 7, 8) THEN 'summer' ELSE 'autumn' END
  FROM generate_series(1, 12) m
UNION ALL
VALUES ('east', 6, 'rainy'), ('east', 7, 'rainy');

GRANT SELECT ON order_flow.order_fact, order_flow.exception_fact TO order_flow_admin;

GRANT SELECT, INSERT, UPDATE, DELETE ON order_flow.health_weight, order_flow.health_threshold,
    order_flow.season
TO order_flow_admin;

SELECT pg_catalog.pg_extension_config_dump('order_flow.health_weight', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.health_threshold', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.season', '');

/* ------------------------------------------------------------------ */
/* The kpi() cache.                                                    */
/* ------------------------------------------------------------------ */

/*
 * kpi() over a long window reads every order_fact row in it.  Complete
 * months change rarely, so their aggregate state is kept: one row per UTC
 * calendar month of contract signing, built by kpi_cache_refresh() (the
 * scheduler runs it once per naptime), used by kpi() for the whole months
 * of its window, and combined with the raw rows of the rest -- the same
 * aggregate, so the answer is the same to the last bit, cached or not.
 *
 * Exactness: the metrics trigger marks a month dirty (kpi_dirty) when an
 * event changes an order signed in a month before its transaction's own;
 * a cached month with a mark numbered after its state's watermark is not
 * used.  A mark and the change it marks commit together, so every reader
 * sees either both or neither.  The refresh builds only months that ended
 * (with an hour's margin) before every running transaction began -- a
 * transaction that began earlier would not mark them -- and first locks
 * kpi_dirty in SHARE ROW EXCLUSIVE mode (against writers of marks and
 * other refreshes; NOWAIT: it skips a turn rather than queue writers
 * behind it), so a mark being written either commits before its snapshot
 * or is numbered after its watermark.  The identity sequence is
 * not cached (CACHE 1): numbers are handed out in time order.
 *
 * The on-time rate depends on the time zone (promised dates end at local
 * midnight): a state is built in the business time zone
 * (order_flow.business_time_zone, named in time_zone) and serves every
 * session while that is still the business time zone.
 */
CREATE TABLE order_flow.kpi_month (
    month_start     timestamptz PRIMARY KEY,
    month_end       timestamptz NOT NULL,
    time_zone       text NOT NULL,
    watermark       bigint NOT NULL,
    orders          bigint NOT NULL,
    state           bytea,
    built_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (month_end > month_start)
);

COMMENT ON TABLE order_flow.kpi_month IS
    'kpi() cache: the serialised kpi_summary state of the orders first signed in each complete UTC month (built by kpi_cache_refresh)';

/* about 16 bytes an order: no use trying to compress it */
ALTER TABLE order_flow.kpi_month ALTER COLUMN state SET STORAGE EXTERNAL;

CREATE TABLE order_flow.kpi_dirty (
    id              bigint GENERATED ALWAYS AS IDENTITY (CACHE 1),
    month           timestamptz NOT NULL,
    CONSTRAINT kpi_dirty_pkey PRIMARY KEY (id)
);

CREATE INDEX kpi_dirty_month_idx ON order_flow.kpi_dirty (month, id);

COMMENT ON TABLE order_flow.kpi_dirty IS
    'kpi() cache: months changed since their state was built (written by the metrics trigger, cleared by kpi_cache_refresh)';

REVOKE ALL ON order_flow.kpi_month, order_flow.kpi_dirty FROM PUBLIC;

GRANT SELECT ON order_flow.kpi_month TO order_flow_admin;
