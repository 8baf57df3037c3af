/*
 * src/sql/metrics.sql
 *
 * Metrics and customer health: the rollup's fold and rebuild, the C
 * aggregates, kpi() and its cache, the views and report functions.
 */

/* ------------------------------------------------------------------ */
/* Metrics and customer health (SPEC 3.7).                             */
/* ------------------------------------------------------------------ */

/*
 * Everything here is derived from the audit log.  Reports do not read the
 * whole log: the events a metric needs are folded into one row per order
 * (order_fact) and one row per exception event (exception_fact), past a
 * per-order watermark (metrics_watermark) -- by the scheduler within about
 * a second of commit, or in the writing transaction (order_flow.metrics_fold,
 * see metrics/fold.c and metrics_fold() below).  The folds are
 * order-independent, so the rollup equals what metrics_rebuild() computes
 * from the log from scratch, and a pg_restore that reloads audit_log makes
 * the scheduler catch up (the two tables are therefore not dumped).
 *
 * Conventions used by every metric:
 *   - an order's contract signing, shipment, delivery and acceptance are
 *     its earliest state changes into contract_signed, shipped, delivered,
 *     accepted (business time, occurred_at);
 *   - its first logistics update is the earliest of its shipment and any
 *     carrier trace event (audit action 'logistics');
 *   - an exception event is a state change whose details carry an
 *     exception_type (every edge with an exception type), or a
 *     record(k, 'exception', ...) fact;
 *   - dates are read in the business time zone
 *     (order_flow.business_time_zone, see business_time_zone() below):
 *     a promised date ends at its midnight there, months and seasons are
 *     its calendar months; the session's TimeZone changes no answer;
 *   - rework/return: the order entered rework or returned, or had an
 *     exception of type rework, return, returned or reshipment;
 *   - customer and attributes (region, customer_class or grade, category,
 *     amount, promised_ship_date) are those captured by the order's latest
 *     such state change; the order date is the occurred_at of its first
 *     event (created, or the first imported step of an adopted order).
 */
CREATE OR REPLACE FUNCTION _order_flow._metric_number(jsonb) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_metric_number' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION _order_flow._metric_number(jsonb) IS
    'A JSON number, or a string holding one, as float8; NULL for anything else (never an error)';

CREATE OR REPLACE FUNCTION _order_flow._metric_date(jsonb) RETURNS date
    AS 'MODULE_PATHNAME', 'order_flow_metric_date' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION _order_flow._metric_date(jsonb) IS
    'A JSON string holding a date, as date; NULL for anything else (never an error)';

/* order_flow.business_time_zone, for SQL (and for sessions that have not loaded the library) */
CREATE OR REPLACE FUNCTION order_flow.business_time_zone() RETURNS text
    AS 'MODULE_PATHNAME', 'order_flow_business_time_zone' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION order_flow.business_time_zone() IS
    'The business time zone (order_flow.business_time_zone): promised-date midnights, months and seasons of every metric, and the kpi() cache';

CREATE OR REPLACE FUNCTION _order_flow._business_date(timestamptz) RETURNS date
    AS 'MODULE_PATHNAME', 'order_flow_business_date' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION _order_flow._business_date(timestamptz) IS
    'The calendar date of an instant in the business time zone (AT TIME ZONE would read a zone name such as CET as the session''s abbreviation first)';

/* ------------------------------------------------------------------ */
/* C aggregates.                                                       */
/* ------------------------------------------------------------------ */

/*
 * Order rhythm: order_frequency, order_volatility, order_value_trend and
 * monthly_orders(ordered_at, value, as_of) share one transition state (per
 * calendar month in the business time zone: order count and value), so a
 * query using all four does the work once per row.
 */
CREATE OR REPLACE FUNCTION _order_flow._rhythm_trans(internal, timestamptz, float8, timestamptz) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_trans' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._rhythm_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._rhythm_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._rhythm_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._rhythm_frequency(internal) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_frequency' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._rhythm_volatility(internal) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_volatility' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._rhythm_trend(internal) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_trend' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._rhythm_months(internal) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_months' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE AGGREGATE order_flow.order_frequency(ordered_at timestamptz, value float8, as_of timestamptz) (
    SFUNC = _order_flow._rhythm_trans, STYPE = internal, SSPACE = 336,
    FINALFUNC = _order_flow._rhythm_frequency,
    COMBINEFUNC = _order_flow._rhythm_combine,
    SERIALFUNC = _order_flow._rhythm_serial, DESERIALFUNC = _order_flow._rhythm_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE order_flow.order_frequency(timestamptz, float8, timestamptz) IS
    'Orders per month over the 12 complete calendar months before as_of''s month';

CREATE OR REPLACE AGGREGATE order_flow.order_volatility(ordered_at timestamptz, value float8, as_of timestamptz) (
    SFUNC = _order_flow._rhythm_trans, STYPE = internal, SSPACE = 336,
    FINALFUNC = _order_flow._rhythm_volatility,
    COMBINEFUNC = _order_flow._rhythm_combine,
    SERIALFUNC = _order_flow._rhythm_serial, DESERIALFUNC = _order_flow._rhythm_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE order_flow.order_volatility(timestamptz, float8, timestamptz) IS
    'Coefficient of variation (population std dev / mean) of the order counts of the 3 complete months before as_of''s month; NULL if they have no order';

CREATE OR REPLACE AGGREGATE order_flow.order_value_trend(ordered_at timestamptz, value float8, as_of timestamptz) (
    SFUNC = _order_flow._rhythm_trans, STYPE = internal, SSPACE = 336,
    FINALFUNC = _order_flow._rhythm_trend,
    COMBINEFUNC = _order_flow._rhythm_combine,
    SERIALFUNC = _order_flow._rhythm_serial, DESERIALFUNC = _order_flow._rhythm_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE order_flow.order_value_trend(timestamptz, float8, timestamptz) IS
    'Least-squares slope of monthly order value over the 6 complete months before as_of''s month, divided by the mean monthly value (0.05 = +5 % a month); NULL if no value';

CREATE OR REPLACE AGGREGATE order_flow.monthly_orders(ordered_at timestamptz, value float8, as_of timestamptz) (
    SFUNC = _order_flow._rhythm_trans, STYPE = internal, SSPACE = 336,
    FINALFUNC = _order_flow._rhythm_months,
    COMBINEFUNC = _order_flow._rhythm_combine,
    SERIALFUNC = _order_flow._rhythm_serial, DESERIALFUNC = _order_flow._rhythm_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE order_flow.monthly_orders(timestamptz, float8, timestamptz) IS
    'Order counts of the 3 complete calendar months before as_of''s month, oldest first';

CREATE OR REPLACE FUNCTION _order_flow._breadth_trans(internal, text) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_breadth_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._breadth_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_breadth_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._breadth_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_breadth_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._breadth_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_breadth_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._breadth_final(internal) RETURNS integer
    AS 'MODULE_PATHNAME', 'order_flow_breadth_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE AGGREGATE order_flow.breadth(text) (
    SFUNC = _order_flow._breadth_trans, STYPE = internal, SSPACE = 128,
    FINALFUNC = _order_flow._breadth_final,
    COMBINEFUNC = _order_flow._breadth_combine,
    SERIALFUNC = _order_flow._breadth_serial, DESERIALFUNC = _order_flow._breadth_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE order_flow.breadth(text) IS
    'Number of distinct non-null values (bytewise), like count(DISTINCT x) but hashed and parallel';

CREATE OR REPLACE FUNCTION _order_flow._median_trans(internal, float8) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_median_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._median_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_median_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._median_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_median_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._median_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_median_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._median_final(internal) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_median_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE AGGREGATE order_flow.median(float8) (
    SFUNC = _order_flow._median_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = _order_flow._median_final,
    COMBINEFUNC = _order_flow._median_combine,
    SERIALFUNC = _order_flow._median_serial, DESERIALFUNC = _order_flow._median_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE order_flow.median(float8) IS
    'Continuous median, equal to percentile_cont(0.5) WITHIN GROUP (ORDER BY x), by selection instead of sorting';

CREATE OR REPLACE FUNCTION _order_flow._health_trans(internal, timestamptz, float8, text, timestamptz, timestamptz, date,
                                         timestamptz, timestamptz, boolean, float8, float8, integer, integer,
                                         integer, timestamptz) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_health_trans' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._health_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_health_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._health_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_health_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._health_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_health_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._health_final(internal) RETURNS order_flow.health_values
    AS 'MODULE_PATHNAME', 'order_flow_health_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE AGGREGATE order_flow.health_profile(ordered_at timestamptz, amount float8, category text,
                                           contract_signed_at timestamptz, shipped_at timestamptz,
                                           promised_ship_date date, delivered_at timestamptz,
                                           accepted_at timestamptz, rework_return boolean,
                                           payment_due_amount float8, paid_on_time_amount float8,
                                           payments_late integer, service_requests integer,
                                           complaints integer, as_of timestamptz) (
    SFUNC = _order_flow._health_trans, STYPE = internal, SSPACE = 520,
    FINALFUNC = _order_flow._health_final,
    COMBINEFUNC = _order_flow._health_combine,
    SERIALFUNC = _order_flow._health_serial, DESERIALFUNC = _order_flow._health_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE order_flow.health_profile(timestamptz, float8, text, timestamptz, timestamptz, date,
                                               timestamptz, timestamptz, boolean, float8, float8, integer,
                                               integer, integer, timestamptz) IS
    'The twelve customer health dimensions (and the last 3 months'' order counts) of a group of order_fact rows, in one pass';

CREATE OR REPLACE FUNCTION _order_flow._kpi_trans(internal, timestamptz, timestamptz, timestamptz, date, timestamptz,
                                      timestamptz, boolean, integer) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_kpi_trans' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._kpi_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_kpi_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._kpi_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_kpi_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._kpi_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_kpi_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._kpi_final(internal) RETURNS order_flow.kpi_values
    AS 'MODULE_PATHNAME', 'order_flow_kpi_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE AGGREGATE order_flow.kpi_summary(contract_signed_at timestamptz, first_logistics_at timestamptz,
                                        shipped_at timestamptz, promised_ship_date date,
                                        delivered_at timestamptz, accepted_at timestamptz,
                                        rework_return boolean, exceptions integer) (
    SFUNC = _order_flow._kpi_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = _order_flow._kpi_final,
    COMBINEFUNC = _order_flow._kpi_combine,
    SERIALFUNC = _order_flow._kpi_serial, DESERIALFUNC = _order_flow._kpi_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE order_flow.kpi_summary(timestamptz, timestamptz, timestamptz, date, timestamptz,
                                            timestamptz, boolean, integer) IS
    'kpi()''s measures over a group of order_fact rows (medians by selection, in one pass)';

CREATE OR REPLACE FUNCTION _order_flow._health_score(vals float8[], weights float8[], bads float8[], goods float8[])
    RETURNS float8 AS 'MODULE_PATHNAME', 'order_flow_health_score' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION _order_flow._health_score(float8[], float8[], float8[], float8[]) IS
    '100 x the weighted mean of values mapped linearly from bad (0) to good (1), clamped; NULL values left out';

/* Weights sum to 1; thresholds rise red < yellow < green.  Checked at commit. */
CREATE OR REPLACE FUNCTION _order_flow._validate_health() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    total numeric;
    r numeric;
    y numeric;
    g numeric;
BEGIN
    SELECT coalesce(sum(weight), 0) INTO total FROM order_flow.health_weight;
    IF abs(total - 1) > 0.000001 THEN
        RAISE EXCEPTION 'customer health weights must sum to 1, not %', total
            USING ERRCODE = '23514',
                  HINT = 'Adjust order_flow.health_weight.weight in the same transaction.';
    END IF;
    SELECT max(min_score) FILTER (WHERE rating = 'red'), max(min_score) FILTER (WHERE rating = 'yellow'),
           max(min_score) FILTER (WHERE rating = 'green')
      INTO r, y, g
      FROM order_flow.health_threshold;
    IF r IS NULL OR y IS NULL OR g IS NULL THEN
        RAISE EXCEPTION 'customer health thresholds need a red, a yellow and a green row'
            USING ERRCODE = '23514';
    END IF;
    IF NOT (r < y AND y < g) THEN
        RAISE EXCEPTION 'customer health thresholds must rise from red to yellow to green'
            USING ERRCODE = '23514',
                  DETAIL = format('red %s, yellow %s, green %s.', r, y, g);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS health_weight_valid ON order_flow.health_weight;
CREATE CONSTRAINT TRIGGER health_weight_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.health_weight
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT _order_flow._loading())
    EXECUTE FUNCTION _order_flow._validate_health();

DROP TRIGGER IF EXISTS health_threshold_valid ON order_flow.health_threshold;
CREATE CONSTRAINT TRIGGER health_threshold_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.health_threshold
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT _order_flow._loading())
    EXECUTE FUNCTION _order_flow._validate_health();

/* Audited, merged on restore and cache-invalidating, like every config table. */
CREATE OR REPLACE TRIGGER health_weight_audit AFTER INSERT OR UPDATE OR DELETE ON order_flow.health_weight
    FOR EACH ROW EXECUTE FUNCTION _order_flow._audit_config();

CREATE OR REPLACE TRIGGER health_weight_merge BEFORE INSERT ON order_flow.health_weight
    FOR EACH ROW EXECUTE FUNCTION _order_flow._restore_merge();

CREATE OR REPLACE TRIGGER health_weight_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_flow.health_weight
    FOR EACH STATEMENT EXECUTE FUNCTION _order_flow._config_changed();

CREATE OR REPLACE TRIGGER health_threshold_audit AFTER INSERT OR UPDATE OR DELETE ON order_flow.health_threshold
    FOR EACH ROW EXECUTE FUNCTION _order_flow._audit_config();

CREATE OR REPLACE TRIGGER health_threshold_merge BEFORE INSERT ON order_flow.health_threshold
    FOR EACH ROW EXECUTE FUNCTION _order_flow._restore_merge();

CREATE OR REPLACE TRIGGER health_threshold_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_flow.health_threshold
    FOR EACH STATEMENT EXECUTE FUNCTION _order_flow._config_changed();

CREATE OR REPLACE TRIGGER season_audit AFTER INSERT OR UPDATE OR DELETE ON order_flow.season
    FOR EACH ROW EXECUTE FUNCTION _order_flow._audit_config();

CREATE OR REPLACE TRIGGER season_merge BEFORE INSERT ON order_flow.season
    FOR EACH ROW EXECUTE FUNCTION _order_flow._restore_merge();

CREATE OR REPLACE TRIGGER season_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_flow.season
    FOR EACH STATEMENT EXECUTE FUNCTION _order_flow._config_changed();

/* ------------------------------------------------------------------ */
/* Working time.                                                       */
/* ------------------------------------------------------------------ */

/*
 * business_hours(calendar, start, stop): hours of working time between two
 * instants in a business calendar (its working hours per weekday in its
 * time zone, holidays skipped); wall-clock hours for always-open calendars.
 * The inverse of business_deadline().
 */
CREATE OR REPLACE FUNCTION order_flow.business_hours(calendar text, start timestamptz, stop timestamptz)
RETURNS float8
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    cal record;
    secs float8;
BEGIN
    IF calendar IS NULL OR start IS NULL OR stop IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO cal FROM order_flow.calendar c WHERE c.calendar = calendar;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'calendar "%" does not exist', calendar USING ERRCODE = '42704';
    END IF;
    IF stop <= start THEN
        RETURN 0;
    END IF;
    IF cal.always_open THEN
        RETURN date_part('epoch', stop - start) / 3600;
    END IF;
    SELECT coalesce(sum(date_part('epoch', least(stop, (d.day + h.closes) AT TIME ZONE cal.time_zone)
                                         - greatest(start, (d.day + h.opens) AT TIME ZONE cal.time_zone))), 0)
      INTO secs
      FROM generate_series((start AT TIME ZONE cal.time_zone)::date::timestamp,
                           (stop AT TIME ZONE cal.time_zone)::date::timestamp, interval '1 day') AS d(day)
      JOIN order_flow.calendar_hours h
        ON h.calendar = cal.calendar AND h.isodow = extract(isodow FROM d.day)::integer
     WHERE (d.day + h.closes) AT TIME ZONE cal.time_zone > start
       AND (d.day + h.opens) AT TIME ZONE cal.time_zone < stop
       AND NOT EXISTS (SELECT 1 FROM order_flow.calendar_holiday x
                        WHERE x.calendar = cal.calendar AND x.day = d.day::date);
    RETURN secs / 3600;
END
$$;

COMMENT ON FUNCTION order_flow.business_hours(text, timestamptz, timestamptz) IS
    'Hours of working time between two instants in a business calendar (the inverse of business_deadline)';

CREATE OR REPLACE VIEW order_flow.exception_pareto AS
SELECT c.exception_type,
       c.count,
       c.count::float8 / sum(c.count) OVER () AS share,
       (sum(c.count) OVER (ORDER BY c.count DESC, c.exception_type ROWS UNBOUNDED PRECEDING)
           / sum(c.count) OVER ())::float8 AS cumulative_share,
       (row_number() OVER (ORDER BY c.count DESC, c.exception_type))::integer AS rank
  FROM (SELECT x.exception_type, count(*) AS count
          FROM order_flow.exception_fact x
         GROUP BY x.exception_type) c
 ORDER BY rank;

COMMENT ON VIEW order_flow.exception_pareto IS
    'Exception types by number of exception events (edges with an exception type and exception records), with share, cumulative share and rank (ties by name)';

/*
 * customer_health: one row per customer with any order, over all time;
 * windowed dimensions are relative to now() in whole calendar months of
 * the business time zone.
 *   order_frequency        orders per month, last 12 complete months
 *   recency_days           days since the latest order
 *   category_breadth       distinct categories ordered
 *   payment_punctuality    amount paid by its due date / amount with a due date
 *   overdue_payments       payments made after their due date
 *   service_requests, complaints   counts
 *   on_time_rate, first_time_right_rate   as in kpi(), over all the customer's orders
 *   return_rework_rate     delivered orders reworked or returned / delivered orders
 *   order_value_trend      relative monthly slope of order value, last 6 complete months
 *   order_volatility       coefficient of variation of monthly orders, last 3 complete months
 * score: 100 x the weighted mean (health_weight) of each dimension mapped
 * linearly from its bad value (0) to its good value (1) and clamped; the
 * three counts are scored per order; dimensions that are NULL are left out
 * and the remaining weights rescaled.  rating from health_threshold.
 * orders_3_months_ago .. orders_last_month: the last 3 complete months.
 */
CREATE OR REPLACE VIEW order_flow.customer_health AS
WITH p AS (
    SELECT f.customer_key,
           order_flow.health_profile(f.ordered_at, f.amount, f.category, f.contract_signed_at, f.shipped_at,
                                     f.promised_ship_date, f.delivered_at, f.accepted_at, f.rework_return,
                                     f.payment_due_amount, f.paid_on_time_amount, f.payments_late,
                                     f.service_requests, f.complaints, now()) AS v
      FROM order_flow.order_fact f
     WHERE f.customer_key IS NOT NULL
     GROUP BY f.customer_key
), a AS (
    SELECT p.customer_key, (p.v).* FROM p
), cfg AS MATERIALIZED (
    -- the configuration, read once, as arrays in the order of the dimensions below
    SELECT (SELECT max(min_score) FILTER (WHERE rating = 'yellow') FROM order_flow.health_threshold) AS yellow,
           (SELECT max(min_score) FILTER (WHERE rating = 'green') FROM order_flow.health_threshold) AS green,
           array_agg(w.weight::float8 ORDER BY d.ord) AS weights,
           array_agg(w.bad ORDER BY d.ord) AS bads,
           array_agg(w.good ORDER BY d.ord) AS goods
      FROM unnest(ARRAY['order_frequency', 'recency_days', 'category_breadth', 'payment_punctuality',
                        'overdue_payments', 'service_requests', 'complaints', 'on_time_rate',
                        'first_time_right_rate', 'return_rework_rate', 'order_value_trend',
                        'order_volatility']) WITH ORDINALITY d(dimension, ord)
      LEFT JOIN order_flow.health_weight w ON w.dimension = d.dimension
)
SELECT a.customer_key,
       a.order_frequency, a.recency_days, a.category_breadth, a.payment_punctuality,
       a.overdue_payments, a.service_requests, a.complaints, a.on_time_rate,
       a.first_time_right_rate, a.return_rework_rate, a.order_value_trend, a.order_volatility,
       s.score,
       CASE WHEN s.score IS NULL THEN NULL
            WHEN s.score >= cfg.green THEN 'green'
            WHEN s.score >= cfg.yellow THEN 'yellow'
            ELSE 'red' END AS rating,
       a.orders,
       a.orders_3_months_ago,
       a.orders_2_months_ago,
       a.orders_last_month
  FROM a
 CROSS JOIN cfg
 CROSS JOIN LATERAL (
        SELECT round(_order_flow._health_score(
                   ARRAY[a.order_frequency, a.recency_days, a.category_breadth::float8, a.payment_punctuality,
                         a.overdue_payments::float8 / a.orders, a.service_requests::float8 / a.orders,
                         a.complaints::float8 / a.orders, a.on_time_rate, a.first_time_right_rate,
                         a.return_rework_rate, a.order_value_trend, a.order_volatility],
                   cfg.weights, cfg.bads, cfg.goods)::numeric, 1) AS score) s;

COMMENT ON VIEW order_flow.customer_health IS
    'Per customer: twelve health dimensions, a 0-100 score from health_weight, a red/yellow/green rating from health_threshold, and the last 3 complete months'' order counts';

COMMENT ON FUNCTION order_flow.record IS
    'Record a business fact (payment, service_request, complaint, exception, note) in the order''s audit chain';

/*
 * top_delay_reasons(): same answers; its plan no longer depends on fresh
 * statistics of order_fact (see the comment in the body).
 */
CREATE OR REPLACE FUNCTION order_flow.top_delay_reasons(region text, customer_class text, months integer[],
                                             n integer DEFAULT 3)
RETURNS TABLE (rank integer, reason text, kind text, orders bigint, occurrences bigint,
               hours_lost float8, share float8)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF n IS NULL THEN
        RAISE EXCEPTION 'n must not be null' USING ERRCODE = '22004';
    END IF;
    IF n < 1 THEN
        RAISE EXCEPTION 'n must be at least 1, not %', n USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(months) m WHERE m IS NULL OR m NOT BETWEEN 1 AND 12) THEN
        RAISE EXCEPTION 'months must be calendar months 1 to 12' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    -- Materialised before the slice is cut: a filter on region or class
    -- would turn the view's outer join to order_fact into an inner one the
    -- planner may drive from order_fact in a nested loop, recomputing every
    -- delay for each order of the slice whenever order_fact's statistics
    -- are missing or stale (a minute after a bulk import: seconds instead
    -- of milliseconds).
    WITH ev AS MATERIALIZED (
        SELECT e.order_key, e.region, e.customer_class, e.reason, e.kind, e.hours_lost
          FROM order_flow.delay_events e
         WHERE ($3 IS NULL OR extract(month FROM e.month)::integer = ANY ($3))
    ), x AS (
        SELECT ev.order_key, ev.reason, ev.kind, ev.hours_lost
          FROM ev
         WHERE ($1 IS NULL OR ev.region = $1)
           AND ($2 IS NULL OR ev.customer_class = $2)
    ), total AS (
        SELECT count(DISTINCT x.order_key) AS orders FROM x
    ), r AS (
        SELECT x.reason, x.kind, count(DISTINCT x.order_key) AS orders, count(*) AS occurrences,
               sum(x.hours_lost) AS hours_lost
          FROM x GROUP BY x.reason, x.kind
    )
    SELECT (row_number() OVER (ORDER BY r.orders DESC, r.hours_lost DESC, r.reason))::integer,
           r.reason, r.kind, r.orders, r.occurrences, r.hours_lost,
           r.orders::float8 / total.orders
      FROM r, total
     ORDER BY 1
     LIMIT $4;
END
$$;

COMMENT ON FUNCTION order_flow.top_delay_reasons(text, text, integer[], integer) IS
    'The n reasons that delayed most orders of a region and customer class in the given calendar months (NULL = all)';

/* _kpi_partial(...): kpi_summary's state, serialised; _kpi_merge(bytea): their sum, as kpi_values. */
CREATE OR REPLACE AGGREGATE _order_flow._kpi_partial(contract_signed_at timestamptz, first_logistics_at timestamptz,
                                         shipped_at timestamptz, promised_ship_date date,
                                         delivered_at timestamptz, accepted_at timestamptz,
                                         rework_return boolean, exceptions integer) (
    SFUNC = _order_flow._kpi_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = _order_flow._kpi_serial,
    COMBINEFUNC = _order_flow._kpi_combine,
    SERIALFUNC = _order_flow._kpi_serial, DESERIALFUNC = _order_flow._kpi_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE _order_flow._kpi_partial(timestamptz, timestamptz, timestamptz, date, timestamptz,
                                             timestamptz, boolean, integer) IS
    'kpi_summary''s state over a group of order_fact rows, serialised (what the kpi() cache keeps)';

CREATE OR REPLACE FUNCTION _order_flow._kpi_merge_trans(internal, bytea) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_kpi_merge_trans' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE AGGREGATE _order_flow._kpi_merge(bytea) (
    SFUNC = _order_flow._kpi_merge_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = _order_flow._kpi_final,
    COMBINEFUNC = _order_flow._kpi_combine,
    SERIALFUNC = _order_flow._kpi_serial, DESERIALFUNC = _order_flow._kpi_deserial,
    PARALLEL = SAFE);

COMMENT ON AGGREGATE _order_flow._kpi_merge(bytea) IS
    'kpi_summary''s result from serialised states (_kpi_partial, order_flow.kpi_month)';

CREATE OR REPLACE FUNCTION _order_flow._kpi_marks_spent() RETURNS void
    AS 'MODULE_PATHNAME', 'order_flow_kpi_marks_spent' LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _order_flow._kpi_marks_spent() IS
    'The dirty marks this transaction wrote were deleted: write them again on the next change (backend-local)';

/*
 * kpi_cache_refresh(max_months): build or rebuild up to max_months cached
 * months (missing, dirty, or of another time zone), newest first; returns
 * how many.  0 on a standby, while prepared transactions exist, or when a
 * writer holds kpi_dirty.  Needs READ COMMITTED (each step sees what the
 * lock waited for).
 */
CREATE OR REPLACE FUNCTION order_flow.kpi_cache_refresh(max_months integer DEFAULT 12) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := order_flow.business_time_zone();
    horizon timestamptz;
    first_signed timestamptz;
    wm bigint;
    m record;
    built integer := 0;
BEGIN
    IF max_months IS NULL OR max_months < 1 THEN
        RAISE EXCEPTION 'max_months must be at least 1' USING ERRCODE = '22023';
    END IF;
    IF pg_is_in_recovery() THEN
        RETURN 0;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'kpi_cache_refresh() needs a READ COMMITTED transaction, not %',
                        current_setting('transaction_isolation')
            USING ERRCODE = '25000';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database()) THEN
        RETURN 0;
    END IF;
    BEGIN
        LOCK TABLE order_flow.kpi_dirty IN SHARE ROW EXCLUSIVE MODE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RETURN 0;
    END;
    SELECT least(now(), min(a.xact_start)) - interval '1 hour' INTO horizon
      FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.xact_start IS NOT NULL;
    -- (an order signed at -infinity stays in the raw part of every window)
    SELECT min(f.contract_signed_at) INTO first_signed FROM order_flow.order_fact f
     WHERE f.contract_signed_at > '-infinity';
    IF first_signed IS NULL OR horizon IS NULL THEN
        RETURN 0;
    END IF;
    SELECT coalesce(max(d.id), 0) INTO wm FROM order_flow.kpi_dirty d;
    FOR m IN
        SELECT g AT TIME ZONE 'UTC' AS month_start, (g + interval '1 month') AT TIME ZONE 'UTC' AS month_end
          FROM generate_series(date_trunc('month', first_signed AT TIME ZONE 'UTC'),
                               date_trunc('month', horizon AT TIME ZONE 'UTC') - interval '1 month',
                               interval '1 month') g
         WHERE NOT EXISTS (
                SELECT 1 FROM order_flow.kpi_month k
                 WHERE k.month_start = g AT TIME ZONE 'UTC' AND k.time_zone = tz
                   AND NOT EXISTS (SELECT 1 FROM order_flow.kpi_dirty d
                                    WHERE d.month = k.month_start AND d.id > k.watermark))
         ORDER BY g DESC
         LIMIT max_months
    LOOP
        INSERT INTO order_flow.kpi_month AS k (month_start, month_end, time_zone, watermark, orders, state, built_at)
        SELECT m.month_start, m.month_end, tz, wm, count(*),
               _order_flow._kpi_partial(f.contract_signed_at, f.first_logistics_at, f.shipped_at,
                                       f.promised_ship_date, f.delivered_at, f.accepted_at,
                                       f.rework_return, f.exceptions),
               now()
          FROM order_flow.order_fact f
         WHERE f.contract_signed_at >= m.month_start AND f.contract_signed_at < m.month_end
        ON CONFLICT (month_start) DO UPDATE
           SET month_end = excluded.month_end, time_zone = excluded.time_zone, watermark = excluded.watermark,
               orders = excluded.orders, state = excluded.state, built_at = excluded.built_at;
        built := built + 1;
    END LOOP;
    -- marks at or below a month's watermark (or of a month without a state) are spent
    DELETE FROM order_flow.kpi_dirty d
     WHERE d.id <= wm
       AND d.id <= coalesce((SELECT k.watermark FROM order_flow.kpi_month k WHERE k.month_start = d.month), wm);
    -- this transaction's own changes after this point must mark again
    PERFORM _order_flow._kpi_marks_spent();
    RETURN built;
END
$$;

COMMENT ON FUNCTION order_flow.kpi_cache_refresh(integer) IS
    'Build or rebuild up to max_months months of the kpi() cache (newest first); returns how many (run by the scheduler once per naptime)';

/* A rebuilt rollup starts the cache afresh. */
CREATE OR REPLACE FUNCTION _order_flow._kpi_cache_clear() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE order_flow.kpi_month, order_flow.kpi_dirty;
    PERFORM _order_flow._kpi_marks_spent();
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER order_fact_truncate_kpi_cache AFTER TRUNCATE ON order_flow.order_fact
    FOR EACH STATEMENT EXECUTE FUNCTION _order_flow._kpi_cache_clear();

/*
 * kpi(from, to): as in 1.0; the whole cached months inside the window come
 * from order_flow.kpi_month, the rest from order_fact (planned for its
 * actual ranges).  All reads share the function's snapshot.
 */
CREATE OR REPLACE FUNCTION order_flow.kpi("from" timestamptz, "to" timestamptz)
RETURNS TABLE (orders bigint, median_hours_to_first_logistics float8, mean_processing_hours float8,
               median_processing_hours float8, on_time_rate float8, first_time_right_rate float8,
               exception_rate float8)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    lo timestamptz[] := '{}';
    hi timestamptz[] := '{}';
    cur timestamptz := $1;
    conds text := '';
    months timestamptz[] := '{}';
    cols constant text := 'f.contract_signed_at, f.first_logistics_at, f.shipped_at, f.promised_ship_date,'
                          ' f.delivered_at, f.accepted_at, f.rework_return, f.exceptions';
    i integer;
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'kpi() window bounds must not be null' USING ERRCODE = '22004';
    END IF;
    IF $1 > $2 THEN
        RAISE EXCEPTION 'kpi() window starts after it ends' USING ERRCODE = '22023',
            DETAIL = format('from %s is later than to %s.', $1, $2);
    END IF;
    -- the usable cached months (the statement below reads the states of
    -- exactly these, under the same snapshot); the gaps are read raw
    FOR c IN
        SELECT k.month_start, k.month_end
          FROM order_flow.kpi_month k
         WHERE k.month_start >= $1 AND k.month_end <= $2
           AND k.time_zone = order_flow.business_time_zone()
           AND NOT EXISTS (SELECT 1 FROM order_flow.kpi_dirty d
                            WHERE d.month = k.month_start AND d.id > k.watermark)
         ORDER BY k.month_start
    LOOP
        IF cur < c.month_start THEN
            lo := lo || cur;
            hi := hi || c.month_start;
        END IF;
        cur := c.month_end;
        months := months || c.month_start;
    END LOOP;
    IF cur < $2 THEN
        lo := lo || cur;
        hi := hi || $2;
    END IF;
    FOR i IN 1 .. coalesce(array_length(lo, 1), 0) LOOP
        conds := conds || CASE WHEN i > 1 THEN ' OR ' ELSE '' END
                 || format('(f.contract_signed_at >= $2[%s] AND f.contract_signed_at < $3[%s])', i, i);
    END LOOP;
    -- parameters are folded into the one-shot plan: each range gets its own index or seq scan choice
    IF months = '{}' THEN
        -- nothing cached in the window: aggregate the rows directly (no state to serialise)
        RETURN QUERY EXECUTE
            'SELECT (k.v).* FROM (SELECT order_flow.kpi_summary(' || cols || ') AS v'
            || ' FROM order_flow.order_fact f WHERE ' || CASE WHEN conds = '' THEN 'false' ELSE conds END || ') k'
            USING months, lo, hi;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT (k.v).* FROM (SELECT _order_flow._kpi_merge(x.s) AS v FROM ('
        || 'SELECT k.state AS s FROM order_flow.kpi_month k WHERE k.month_start = ANY ($1)'
        || CASE WHEN conds = '' THEN ''
                ELSE ' UNION ALL SELECT _order_flow._kpi_partial(' || cols || ') FROM order_flow.order_fact f'
                     || ' WHERE ' || conds END
        || ') x) k'
        USING months, lo, hi;
END
$$;

COMMENT ON FUNCTION order_flow.kpi(timestamptz, timestamptz) IS
    'Source-case KPIs over orders first signed in [from, to): medians of hours to first logistics and of processing, mean processing, on-time, first-time-right and exception rates';

/*
 * Non-finite times already stored (1.1 accepted an import at -infinity)
 * give no duration instead of an error that would break the metrics views
 * for everyone: _hours() is NULL unless both ends are finite.
 */
CREATE OR REPLACE FUNCTION _order_flow._hours(start timestamptz, stop timestamptz) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN isfinite(start) AND isfinite(stop) THEN date_part('epoch', stop - start) / 3600 END $$;

COMMENT ON FUNCTION _order_flow._hours(timestamptz, timestamptz) IS
    'Internal: hours from start to stop; NULL when either is NULL or not finite';

CREATE OR REPLACE VIEW order_flow.order_timeline AS
SELECT t.order_key,
       coalesce(f.customer_key, t.customer_key) AS customer_key,
       t.workflow,
       t.state,
       coalesce(t.created_at, f.ordered_at) AS created_at,
       t.contract_signed_at,
       t.warehouse_confirmed_at,
       t.finance_approved_at,
       t.shipped_at,
       f.first_logistics_at,
       f.delivered_at,
       f.accepted_at,
       _order_flow._hours(coalesce(t.created_at, f.ordered_at), t.contract_signed_at)
           AS hours_created_to_contract,
       _order_flow._hours(t.contract_signed_at, t.warehouse_confirmed_at)
           AS hours_contract_to_warehouse,
       _order_flow._hours(t.warehouse_confirmed_at, t.finance_approved_at)
           AS hours_warehouse_to_finance,
       _order_flow._hours(t.finance_approved_at, t.shipped_at)
           AS hours_finance_to_shipped,
       _order_flow._hours(t.contract_signed_at, f.first_logistics_at)
           AS hours_to_first_logistics,
       _order_flow._hours(t.contract_signed_at, t.shipped_at)
           AS processing_hours
  FROM (SELECT h.order_key, h.tbl, h.workflow, h.state, h.customer_key, h.created_at, h.contract_signed_at,
               h.warehouse_confirmed_at, h.finance_approved_at, h.shipped_at
          FROM order_flow.tracked_order h
        UNION ALL
        /* on a Citus coordinator, the distributed tables' orders (README, "Scale-out on Citus") */
        SELECT c.order_key, c.tbl, c.workflow, c.state, c.customer_key, c.created_at, c.contract_signed_at,
               c.warehouse_confirmed_at, c.finance_approved_at, c.shipped_at
          FROM _order_flow._citus_heads() c) t
  LEFT JOIN order_flow.order_fact f ON f.order_key = t.order_key
 WHERE t.tbl IS NOT NULL;

COMMENT ON VIEW order_flow.order_timeline IS
    'Per order: the stamped times (first time each was reached), first logistics update, delivery, acceptance, and the hours between them; processing_hours = contract signed to shipped';

CREATE OR REPLACE VIEW order_flow.state_durations AS
SELECT v.order_key,
       v.state,
       v.visit,
       v.seq,
       v.entered_at,
       v.left_at,
       _order_flow._hours(v.entered_at, u.until) AS wall_hours,
       CASE WHEN u.until IS NULL OR NOT isfinite(u.until) OR NOT isfinite(v.entered_at) THEN NULL
            WHEN cal.always_open IS NOT FALSE THEN _order_flow._hours(v.entered_at, u.until)
            ELSE order_flow.business_hours(cal.calendar, v.entered_at, u.until) END AS business_hours,
       s.owner_department,
       coalesce(cal.calendar, '24x7') AS calendar,
       s.category,
       s.max_dwell,
       v.exception_type,
       v.route
  FROM (SELECT e.order_key, e.seq, e.to_state AS state, e.occurred_at AS entered_at,
               lead(e.occurred_at) OVER w AS left_at,
               row_number() OVER (PARTITION BY e.order_key, e.to_state ORDER BY e.seq) AS visit,
               string_agg(e.to_state, '>') OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                   AS route,
               e.exception_type
          FROM (SELECT a.order_key, a.seq, a.action, a.from_state, a.to_state, a.occurred_at,
                       nullif(a.details->>'exception_type', '') AS exception_type
                  FROM order_flow.audit_log a
                UNION ALL
                /* on a Citus coordinator, the distributed tables' events */
                SELECT c.order_key, c.seq, c.action, c.from_state, c.to_state, c.occurred_at, c.exception_type
                  FROM _order_flow._citus_log() c) e
         WHERE (e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state)
            OR e.action = 'deleted'   -- ends the last visit of a deleted order (no state of its own)
        WINDOW w AS (PARTITION BY e.order_key ORDER BY e.seq)) v
  LEFT JOIN (SELECT h.order_key, h.workflow FROM order_flow.tracked_order h
             UNION ALL
             SELECT c.order_key, c.workflow FROM _order_flow._citus_heads() c) t ON t.order_key = v.order_key
  LEFT JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = v.state
  LEFT JOIN order_flow.department d ON d.department = s.owner_department
  LEFT JOIN order_flow.calendar cal ON cal.calendar = coalesce(d.calendar, '24x7')
 CROSS JOIN LATERAL (
        SELECT CASE WHEN s.category IS DISTINCT FROM 'terminal' THEN coalesce(v.left_at, now()) END AS until) u
 WHERE v.state IS NOT NULL;

COMMENT ON VIEW order_flow.state_durations IS
    'Per order and state visit: entered, left, wall-clock and business hours (owner department''s calendar; an open visit counts to now(), none in a terminal state; a deleted order''s last visit ends at its deletion) and the route taken';

/*
 * Delay events: what made an order late, one row per occurrence.
 *   exception -- an exception event; hours lost = the time spent in the
 *                exception state it led to (to now() while still there; 0
 *                for a terminal state), or details.hours_lost of an
 *                exception record (else 0);
 *   dwell     -- a visit to an initial or active state longer than the
 *                state's max_dwell ("cannot wait" threshold); reason
 *                'dwell:<state>', hours lost = wall hours beyond max_dwell.
 * Region and customer class are the order's (order_fact); month and
 * season are those of the moment the delay began, in the business time
 * zone.
 */
CREATE OR REPLACE VIEW order_flow.delay_events AS
SELECT x.order_key, f.customer_key, f.region, f.customer_class, x.occurred_at,
       date_trunc('month', b.day::timestamp)::date AS month,
       coalesce((SELECT s.season FROM order_flow.season s
                  WHERE s.region = f.region AND s.month = extract(month FROM b.day)::integer),
                (SELECT s.season FROM order_flow.season s
                  WHERE s.region = '*' AND s.month = extract(month FROM b.day)::integer)) AS season,
       x.kind, x.reason, x.hours_lost
  FROM (SELECT sd.order_key, sd.entered_at AS occurred_at,
               CASE WHEN sd.exception_type IS NOT NULL THEN 'exception' ELSE 'dwell' END AS kind,
               coalesce(sd.exception_type, 'dwell:' || sd.state) AS reason,
               CASE WHEN sd.exception_type IS NOT NULL THEN coalesce(sd.wall_hours, 0)
                    ELSE sd.wall_hours - date_part('epoch', sd.max_dwell) / 3600 END AS hours_lost
          FROM order_flow.state_durations sd
         WHERE sd.exception_type IS NOT NULL
            OR (sd.category IN ('initial', 'active')
                AND sd.wall_hours > date_part('epoch', sd.max_dwell) / 3600)
        UNION ALL
        SELECT e.order_key, e.occurred_at, 'exception', e.exception_type, coalesce(e.hours_lost, 0)
          FROM (SELECT a.order_key, a.action, a.occurred_at, nullif(a.details->>'exception_type', '') AS exception_type,
                       _order_flow._metric_number(a.details->'hours_lost') AS hours_lost
                  FROM order_flow.audit_log a
                UNION ALL
                SELECT c.order_key, c.action, c.occurred_at, c.exception_type, c.hours_lost
                  FROM _order_flow._citus_log() c) e
         WHERE e.action = 'exception' AND e.exception_type IS NOT NULL) x
 CROSS JOIN LATERAL (SELECT _order_flow._business_date(x.occurred_at) AS day) b
  LEFT JOIN order_flow.order_fact f ON f.order_key = x.order_key;

COMMENT ON VIEW order_flow.delay_events IS
    'One row per delay: exception events (hours in the exception state) and visits beyond a state''s max_dwell (reason dwell:<state>, hours beyond it)';

CREATE OR REPLACE VIEW order_flow.delay_reasons AS
SELECT region, customer_class, month, extract(month FROM month)::integer AS month_of_year, season,
       kind, reason,
       count(DISTINCT order_key) AS orders,
       count(*) AS occurrences,
       sum(hours_lost) AS hours_lost
  FROM order_flow.delay_events
 GROUP BY region, customer_class, month, season, kind, reason;

COMMENT ON VIEW order_flow.delay_reasons IS
    'Drill-down cube of delay reasons by region, customer class, month and season: orders affected, occurrences, hours lost';

/* rows written by SQL (pg_restore's COPY, a DBA's INSERT) make the scheduler catch up */
CREATE OR REPLACE FUNCTION _order_flow._fold_catch_up_wanted() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_fold_catch_up_wanted' LANGUAGE C;

CREATE OR REPLACE TRIGGER audit_log_fold_catch_up AFTER INSERT ON order_flow.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION _order_flow._fold_catch_up_wanted();

CREATE OR REPLACE TRIGGER tracked_order_fold_catch_up AFTER INSERT ON order_flow.tracked_order
    FOR EACH STATEMENT EXECUTE FUNCTION _order_flow._fold_catch_up_wanted();

/*
 * _metrics_fold_orders(keys): fold the events of these orders above their
 * watermarks into the rollup, set-based, with the rules the per-event fold
 * applies (attributes and customer from the latest state change; earliest
 * times; "ever" flags; sums), then move the watermarks to the end of each
 * chain.  The watermarks are locked first, in key order, so a fold of the
 * same order by a transaction of its own ('sync') or by another pass waits
 * and then finds nothing left to do: no event is folded twice.  Months of
 * the kpi() cache that a newly folded event changes are marked, as the
 * writing transaction marked them in 1.1.  Returns the number of orders
 * with events folded.
 */
CREATE OR REPLACE FUNCTION _order_flow._metrics_fold_orders(keys text[]) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    locked text[];
BEGIN
    INSERT INTO order_flow.metrics_watermark (order_key, folded_seq)
    SELECT k, 0 FROM unnest(keys) k
     WHERE NOT starts_with(k, 'order_flow:')
    ON CONFLICT (order_key) DO NOTHING;
    /*
     * An order whose watermark another transaction holds is being folded by
     * it (a 'sync' writer folds every event of the order above the
     * watermark): left to it, so a pass never waits for a writer.
     */
    SELECT array_agg(x.order_key) INTO locked
      FROM (SELECT w.order_key FROM order_flow.metrics_watermark w
             WHERE w.order_key = ANY (keys) ORDER BY w.order_key FOR UPDATE SKIP LOCKED) x;

    WITH wm AS MATERIALIZED (
        SELECT w.order_key, w.folded_seq FROM order_flow.metrics_watermark w
         WHERE w.order_key = ANY (locked)
    ), news AS MATERIALIZED (
        /* every event above the watermark, read once: the metric ones are folded */
        SELECT e.order_key, e.id, e.seq, e.action, e.from_state, e.to_state, e.occurred_at, e.details,
               (e.seq = 1
                OR e.action IN (@OF_METRIC_ACTIONS@)
                OR (e.from_state IS DISTINCT FROM e.to_state
                    AND (e.to_state IN (@OF_METRIC_STATES@)
                         OR e.details ? 'exception_type'))) AS metric
          FROM (SELECT a.order_key, a.id, a.seq, a.action, a.from_state, a.to_state, a.occurred_at, a.details
                  FROM order_flow.audit_log a
                UNION ALL
                /* a Citus coordinator's fold of distributed orders stages their events here (empty otherwise) */
                SELECT c.order_key, c.id, c.seq, c.action, c.from_state, c.to_state, c.occurred_at, c.details
                  FROM order_flow.citus_fold_stage c) e
          JOIN wm ON wm.order_key = e.order_key AND e.seq > wm.folded_seq
    ), top AS (
        SELECT n.order_key, max(n.seq) AS max_seq FROM news n GROUP BY n.order_key
    ), ev AS MATERIALIZED (
        SELECT e.order_key, e.id, e.seq, e.action, e.to_state, e.occurred_at, x.sc,
               CASE WHEN x.sc THEN e.details->>'customer' END AS customer,
               CASE WHEN x.sc THEN e.details->'attributes' END AS attrs,
               x.ex,
               (x.sc AND e.to_state IN (@OF_REWORK_STATES@))
                   OR coalesce(x.ex IN (@OF_REWORK_TYPES@), false) AS rework,
               CASE WHEN e.action = @OF_ACTION_PAYMENT@
                    THEN coalesce(_order_flow._metric_number(e.details->'amount'), 0) END AS pay_amount,
               CASE WHEN e.action = @OF_ACTION_PAYMENT@ THEN _order_flow._metric_date(e.details->'due_date') END AS due,
               CASE WHEN e.action = @OF_ACTION_PAYMENT@
                    THEN coalesce(_order_flow._metric_date(e.details->'paid_date'),
                                  (e.occurred_at AT TIME ZONE 'UTC')::date) END AS paid
          FROM news e
         CROSS JOIN LATERAL (
                SELECT e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state AS sc) s
         CROSS JOIN LATERAL (
                SELECT s.sc,
                       CASE WHEN s.sc OR e.action = @OF_ACTION_EXCEPTION@
                            THEN nullif(e.details->>'exception_type', '') END AS ex) x
         WHERE e.metric AND e.occurred_at IS NOT NULL
    ), d AS MATERIALIZED (
        SELECT m.order_key,
               (array_agg(m.customer ORDER BY m.seq DESC)
                    FILTER (WHERE m.sc AND m.customer IS NOT NULL))[1] AS customer,
               max(m.seq) FILTER (WHERE m.sc) AS attrs_seq,
               (array_agg(m.attrs ORDER BY m.seq DESC) FILTER (WHERE m.sc))[1] AS attrs,
               min(m.occurred_at) AS ordered_at,
               min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = @OF_STATE_SIGNED@) AS signed,
               min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = @OF_STATE_SHIPPED@) AS shipped,
               min(m.occurred_at) FILTER (WHERE (m.sc AND m.to_state = @OF_STATE_SHIPPED@)
                                             OR m.action = @OF_ACTION_LOGISTICS@) AS logistics,
               min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = @OF_STATE_DELIVERED@) AS delivered,
               min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = @OF_STATE_ACCEPTED@) AS accepted,
               bool_or(m.rework) AS rework,
               count(m.ex) AS exceptions,
               count(*) FILTER (WHERE m.action = @OF_ACTION_PAYMENT@) AS payments,
               count(*) FILTER (WHERE m.action = @OF_ACTION_PAYMENT@ AND m.due IS NOT NULL
                                  AND m.paid > m.due) AS late,
               coalesce(sum(m.pay_amount) FILTER (WHERE m.action = @OF_ACTION_PAYMENT@
                                                     AND m.due IS NOT NULL), 0) AS due_amount,
               coalesce(sum(m.pay_amount) FILTER (WHERE m.action = @OF_ACTION_PAYMENT@
                                                     AND m.paid <= m.due), 0) AS on_time_amount,
               count(*) FILTER (WHERE m.action = @OF_ACTION_SERVICE_REQUEST@) AS service_requests,
               count(*) FILTER (WHERE m.action = @OF_ACTION_COMPLAINT@) AS complaints,
               /* kpi() reads it: not only payments, requests, complaints and notes */
               bool_or(m.action NOT IN (@OF_NON_KPI_ACTIONS@)) AS kpi_touched
          FROM ev m
         GROUP BY m.order_key
    ), upd AS (
        UPDATE order_flow.order_fact f SET
            customer_key = coalesce(d.customer, f.customer_key,
                                    (SELECT t.customer_key FROM order_flow.tracked_order t
                                      WHERE t.order_key = d.order_key)),
            attrs_seq = coalesce(d.attrs_seq, f.attrs_seq),
            region = CASE WHEN d.attrs_seq IS NULL THEN f.region ELSE d.attrs->>'region' END,
            customer_class = CASE WHEN d.attrs_seq IS NULL THEN f.customer_class
                                  ELSE coalesce(d.attrs->>'customer_class', d.attrs->>'grade') END,
            category = CASE WHEN d.attrs_seq IS NULL THEN f.category ELSE d.attrs->>'category' END,
            amount = CASE WHEN d.attrs_seq IS NULL THEN f.amount
                          ELSE _order_flow._metric_number(d.attrs->'amount') END,
            promised_ship_date = CASE WHEN d.attrs_seq IS NULL THEN f.promised_ship_date
                                      ELSE _order_flow._metric_date(d.attrs->'promised_ship_date') END,
            ordered_at = least(f.ordered_at, d.ordered_at),
            contract_signed_at = least(f.contract_signed_at, d.signed),
            shipped_at = least(f.shipped_at, d.shipped),
            first_logistics_at = least(f.first_logistics_at, d.logistics),
            delivered_at = least(f.delivered_at, d.delivered),
            accepted_at = least(f.accepted_at, d.accepted),
            rework_return = f.rework_return OR d.rework,
            exceptions = f.exceptions + d.exceptions,
            payments = f.payments + d.payments,
            payments_late = f.payments_late + d.late,
            payment_due_amount = f.payment_due_amount + d.due_amount,
            paid_on_time_amount = f.paid_on_time_amount + d.on_time_amount,
            service_requests = f.service_requests + d.service_requests,
            complaints = f.complaints + d.complaints
          FROM d WHERE f.order_key = d.order_key
        RETURNING f.order_key, f.contract_signed_at
    ), ins AS (
        INSERT INTO order_flow.order_fact
            (order_key, customer_key, attrs_seq, region, customer_class, category, amount,
             promised_ship_date, ordered_at, contract_signed_at, shipped_at, first_logistics_at,
             delivered_at, accepted_at, rework_return, exceptions, payments, payments_late,
             payment_due_amount, paid_on_time_amount, service_requests, complaints)
        SELECT d.order_key, coalesce(d.customer, t.customer_key), coalesce(d.attrs_seq, -1),
               d.attrs->>'region',
               coalesce(d.attrs->>'customer_class', d.attrs->>'grade'),
               d.attrs->>'category',
               _order_flow._metric_number(d.attrs->'amount'),
               _order_flow._metric_date(d.attrs->'promised_ship_date'),
               d.ordered_at, d.signed, d.shipped, d.logistics, d.delivered, d.accepted,
               d.rework, d.exceptions, d.payments, d.late, d.due_amount, d.on_time_amount,
               d.service_requests, d.complaints
          FROM d LEFT JOIN order_flow.tracked_order t ON t.order_key = d.order_key
         WHERE NOT EXISTS (SELECT FROM order_flow.order_fact f WHERE f.order_key = d.order_key)
        RETURNING order_key, contract_signed_at
    ), exc AS (
        INSERT INTO order_flow.exception_fact (order_key, event_id, exception_type, occurred_at, action)
        SELECT ev.order_key, ev.id, ev.ex, ev.occurred_at, ev.action FROM ev WHERE ev.ex IS NOT NULL
    ), marks AS (
        /* one mark per month and transaction; no lock on kpi_dirty without one */
        SELECT _order_flow._kpi_mark(r.contract_signed_at) AS marked
          FROM (SELECT * FROM upd UNION ALL SELECT * FROM ins) r
          JOIN d ON d.order_key = r.order_key
         WHERE d.kpi_touched
    ), moved AS (
        UPDATE order_flow.metrics_watermark w SET folded_seq = top.max_seq
          FROM top WHERE w.order_key = top.order_key
        RETURNING w.order_key
    )
    SELECT count(*) INTO n FROM d WHERE (SELECT count(*) FROM marks) >= 0;
    RETURN n;
END
$$;

COMMENT ON FUNCTION _order_flow._metrics_fold_orders(text[]) IS
    'Internal: fold the events of these orders above their watermarks into the rollup, set-based';

CREATE OR REPLACE FUNCTION _order_flow._kpi_mark(signed_at timestamptz) RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_kpi_mark' LANGUAGE C STRICT;

COMMENT ON FUNCTION _order_flow._kpi_mark(timestamptz) IS
    'Internal: mark the kpi() cache month of an order signed at signed_at changed (once per transaction; none for the current month)';

/*
 * _metrics_fold_window(lo, hi): refold every order with events recorded in
 * [lo, hi) -- or, with NULL bounds, every order whose chain is ahead of its
 * watermark -- 5,000 orders per batch, each batch in a subtransaction: a
 * batch that fails is reported and left for the next catch-up, the others
 * go on (strict: the error stands).  Returns the number of orders with
 * events folded.
 */
CREATE OR REPLACE FUNCTION _order_flow._metrics_fold_window(lo timestamptz, hi timestamptz, strict boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    n bigint := 0;
BEGIN
    FOR keys IN
        SELECT array_agg(k.order_key ORDER BY k.order_key)
          FROM (SELECT c.order_key, (row_number() OVER (ORDER BY c.order_key) - 1) / 5000 AS batch
                  FROM (SELECT DISTINCT e.order_key FROM order_flow.audit_log e
                         WHERE lo IS NOT NULL AND hi IS NOT NULL
                           AND e.recorded_at >= lo AND e.recorded_at < hi
                           AND NOT starts_with(e.order_key, 'order_flow:')
                        UNION
                        SELECT t.order_key FROM order_flow.tracked_order t
                          LEFT JOIN order_flow.metrics_watermark w ON w.order_key = t.order_key
                         WHERE (lo IS NULL OR hi IS NULL) AND t.tbl IS NOT NULL
                           AND t.last_seq > coalesce(w.folded_seq, 0)) c) k
         GROUP BY k.batch ORDER BY k.batch
    LOOP
        IF strict THEN
            n := n + _order_flow._metrics_fold_orders(keys);
            CONTINUE;
        END IF;
        BEGIN
            n := n + _order_flow._metrics_fold_orders(keys);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'order_flow: could not fold % orders (% to %) into the metrics: %',
                cardinality(keys), keys[1], keys[cardinality(keys)], SQLERRM;
        END;
    END LOOP;
    RETURN n;
END
$$;

COMMENT ON FUNCTION _order_flow._metrics_fold_window(timestamptz, timestamptz, boolean) IS
    'Internal: refold the orders with events recorded in [lo, hi); NULL bounds: every order behind its watermark';

/*
 * metrics_fold([catch_up]): fold what no running transaction can still add
 * to: every event recorded before the start of the oldest transaction
 * running in this database (or now).  While a prepared transaction waits,
 * the window does not move (its events are folded once it commits).  With
 * catch_up, also every order whose chain is ahead of its watermark,
 * wherever its events lie (after a restore, which reloads the log without
 * folding it).  One fold at a time: another waits for it, or with wait =>
 * false (the scheduler) returns 0 at once.  Returns the number of orders
 * with events folded.
 */
CREATE OR REPLACE FUNCTION order_flow.metrics_fold(catch_up boolean DEFAULT false, wait boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t1 timestamptz := clock_timestamp();    -- before the activity is read
    lo timestamptz;
    hi timestamptz;
    n bigint;
BEGIN
    IF catch_up IS NULL OR wait IS NULL THEN
        RAISE EXCEPTION 'catch_up and wait must not be null' USING ERRCODE = '22004';
    END IF;
    IF wait THEN
        SELECT p.folded_until INTO lo FROM order_flow.fold_progress p FOR UPDATE;
    ELSE
        SELECT p.folded_until INTO lo FROM order_flow.fold_progress p FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN 0;           -- another fold is under way
        END IF;
    END IF;
    IF EXISTS (SELECT FROM pg_prepared_xacts x WHERE x.database = current_database()) THEN
        hi := lo;
    ELSE
        SELECT least(t1, min(a.xact_start)) INTO hi
          FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
           AND a.backend_type NOT IN ('autovacuum worker', 'walsender');
        hi := coalesce(hi, t1);
    END IF;
    /* 100 ms of overlap: a transaction that had begun but not yet shown it */
    n := _order_flow._metrics_fold_window(lo - interval '100 milliseconds', hi);
    IF catch_up THEN
        n := n + _order_flow._metrics_fold_window(NULL, NULL);
    END IF;
    /* on a Citus coordinator: the distributed tables' orders too */
    IF to_regnamespace('order_flow_citus') IS NOT NULL THEN
        n := n + _order_flow._citus_metrics_fold(catch_up);
    END IF;
    UPDATE order_flow.fold_progress p
       SET folded_until = greatest(p.folded_until, hi), folded_at = clock_timestamp(),
           orders_folded = p.orders_folded + n;
    RETURN n;
END
$$;

COMMENT ON FUNCTION order_flow.metrics_fold(boolean, boolean) IS
    'Fold committed events into the metrics rollup now (the scheduler does it within about a second); catch_up also folds every order behind its watermark; returns the number of orders folded';

CREATE OR REPLACE FUNCTION order_flow.metrics_lag() RETURNS interval
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN EXISTS (SELECT FROM order_flow.audit_log e
                              WHERE e.recorded_at >= p.folded_until
                                AND NOT starts_with(e.order_key, 'order_flow:'))
                THEN greatest(clock_timestamp() - p.folded_until, interval '0')
                ELSE interval '0' END
      FROM order_flow.fold_progress p
$$;

COMMENT ON FUNCTION order_flow.metrics_lag() IS
    'How far the metrics rollup may lag behind the log: 0 when every event is folded, else the time since the fold''s position';

CREATE OR REPLACE FUNCTION order_flow.metrics_rebuild() RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    /*
     * The scheduler's folds first (they take the fold's position first,
     * then the watermarks and the rollup: waiting for them here, before
     * anything else, cannot deadlock), then the writers.
     */
    PERFORM 1 FROM order_flow.fold_progress FOR UPDATE;
    LOCK TABLE order_flow.audit_log IN SHARE MODE;
    /* folds in writing transactions wait: a fold of a watermark locked here would be undone */
    LOCK TABLE order_flow.metrics_watermark IN EXCLUSIVE MODE;
    /* (the TRUNCATE of order_fact also empties the kpi() cache) */
    TRUNCATE order_flow.order_fact, order_flow.exception_fact, order_flow.metrics_watermark;
    /* every order of the log, folded from nothing by the fold's own rules */
    n := _order_flow._metrics_fold_window('-infinity', 'infinity', strict => true);
    IF to_regnamespace('order_flow_citus') IS NOT NULL THEN
        n := n + _order_flow._citus_metrics_fold(true);
    END IF;
    /* the cache is empty: the fold's marks for it mean nothing */
    TRUNCATE order_flow.kpi_dirty;
    PERFORM _order_flow._kpi_marks_spent();
    RETURN n;
END
$$;

COMMENT ON FUNCTION order_flow.metrics_rebuild() IS
    'Recompute the metrics rollup (order_fact, exception_fact) from the audit log; returns the number of orders';
