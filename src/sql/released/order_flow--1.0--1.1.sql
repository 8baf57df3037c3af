/*
 * order_flow 1.0 -> 1.1
 *
 * Applied by ALTER EXTENSION order_flow UPDATE; CREATE EXTENSION installs
 * 1.0 and applies it too, so a fresh 1.1 and an updated 1.0 are the same.
 *
 *   - record(): a payment's amount must not be negative, and its due_date
 *     and paid_date, when given, must be dates (22007) -- before, a
 *     malformed date was accepted and silently ignored by the metrics;
 *   - top_delay_reasons(): a plan that does not depend on statistics;
 *   - the metrics trigger filters in C instead of a WHEN clause;
 *   - the kpi() cache: kpi_month, kpi_dirty, kpi_cache_refresh(), and
 *     kpi() reading whole cached months from it.
 */

\echo Use "ALTER EXTENSION order_flow UPDATE TO '1.1'" to load this file. \quit

CREATE OR REPLACE FUNCTION order_flow.record(order_key text, kind text, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    st text;
    f text;
BEGIN
    IF order_key IS NULL OR kind IS NULL OR details IS NULL THEN
        RAISE EXCEPTION 'order key, kind and details must not be null' USING ERRCODE = '22004';
    END IF;
    IF kind NOT IN ('payment', 'service_request', 'complaint', 'exception', 'note') THEN
        RAISE EXCEPTION 'unknown record kind "%"', kind USING ERRCODE = '22023',
            HINT = 'Use payment, service_request, complaint, exception or note.';
    END IF;
    IF jsonb_typeof(details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF octet_length(details::text) > 65536 THEN
        RAISE EXCEPTION 'details are too large (% bytes, at most 65536)', octet_length(details::text)
            USING ERRCODE = '54000';
    END IF;
    IF kind = 'exception' AND coalesce(details->>'exception_type', '') = '' THEN
        RAISE EXCEPTION 'an exception record needs details.exception_type' USING ERRCODE = '22023';
    END IF;
    IF kind = 'payment' THEN
        IF jsonb_typeof(details->'amount') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'a payment record needs a numeric details.amount' USING ERRCODE = '22023';
        END IF;
        IF (details->>'amount')::numeric < 0 THEN
            RAISE EXCEPTION 'a payment amount must not be negative, not %', details->>'amount'
                USING ERRCODE = '22023', HINT = 'Record a refund as a note or an exception.';
        END IF;
        FOREACH f IN ARRAY ARRAY['due_date', 'paid_date'] LOOP
            IF jsonb_typeof(details->f) IS DISTINCT FROM 'null' AND details ? f
               AND order_flow._metric_date(details->f) IS NULL THEN
                RAISE EXCEPTION 'payment details.% must be a date, not %', f, details->f
                    USING ERRCODE = '22007', HINT = 'Write dates as strings, e.g. "2026-12-31".';
            END IF;
        END LOOP;
    END IF;
    SELECT t.state INTO st FROM order_flow.tracked_order t
     WHERE t.order_key = record.order_key AND t.tbl IS NOT NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % is not tracked', order_key USING ERRCODE = 'P0002';
    END IF;
    RETURN order_flow._append_event(order_key, kind, st, st, details, NULL);
END
$$;
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
         WHERE ($3 IS NULL OR extract(month FROM e.occurred_at)::integer = ANY ($3))
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

/*
 * The metrics trigger without its WHEN clause: PostgreSQL parsed and
 * compiled that expression again for every statement inserting into the
 * log, i.e. once per transition; _metrics_capture() now asks the same
 * question itself (metric_event in metrics.c).
 */
DROP TRIGGER audit_log_metrics ON order_flow.audit_log;
CREATE TRIGGER audit_log_metrics AFTER INSERT ON order_flow.audit_log
    FOR EACH ROW EXECUTE FUNCTION order_flow._metrics_capture();

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
 * The on-time rate depends on the session time zone (promised dates end at
 * local midnight): a state serves sessions in the time zone it was built
 * in, the scheduler's, i.e. the database's default.
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
    month           timestamptz NOT NULL
);
CREATE INDEX kpi_dirty_month_idx ON order_flow.kpi_dirty (month, id);
COMMENT ON TABLE order_flow.kpi_dirty IS
    'kpi() cache: months changed since their state was built (written by the metrics trigger, cleared by kpi_cache_refresh)';

/* _kpi_partial(...): kpi_summary's state, serialised; _kpi_merge(bytea): their sum, as kpi_values. */
CREATE AGGREGATE order_flow._kpi_partial(contract_signed_at timestamptz, first_logistics_at timestamptz,
                                         shipped_at timestamptz, promised_ship_date date,
                                         delivered_at timestamptz, accepted_at timestamptz,
                                         rework_return boolean, exceptions integer) (
    SFUNC = order_flow._kpi_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = order_flow._kpi_serial,
    COMBINEFUNC = order_flow._kpi_combine,
    SERIALFUNC = order_flow._kpi_serial, DESERIALFUNC = order_flow._kpi_deserial,
    PARALLEL = SAFE);
CREATE FUNCTION order_flow._kpi_merge_trans(internal, bytea) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_kpi_merge_trans' LANGUAGE C STABLE PARALLEL SAFE;
CREATE AGGREGATE order_flow._kpi_merge(bytea) (
    SFUNC = order_flow._kpi_merge_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = order_flow._kpi_final,
    COMBINEFUNC = order_flow._kpi_combine,
    SERIALFUNC = order_flow._kpi_serial, DESERIALFUNC = order_flow._kpi_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow._kpi_partial(timestamptz, timestamptz, timestamptz, date, timestamptz,
                                             timestamptz, boolean, integer) IS
    'kpi_summary''s state over a group of order_fact rows, serialised (what the kpi() cache keeps)';
COMMENT ON AGGREGATE order_flow._kpi_merge(bytea) IS
    'kpi_summary''s result from serialised states (_kpi_partial, order_flow.kpi_month)';

CREATE FUNCTION order_flow._kpi_marks_spent() RETURNS void
    AS 'MODULE_PATHNAME', 'order_flow_kpi_marks_spent' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION order_flow._kpi_marks_spent() IS
    'The dirty marks this transaction wrote were deleted: write them again on the next change (backend-local)';

/*
 * kpi_cache_refresh(max_months): build or rebuild up to max_months cached
 * months (missing, dirty, or of another time zone), newest first; returns
 * how many.  0 on a standby, while prepared transactions exist, or when a
 * writer holds kpi_dirty.  Needs READ COMMITTED (each step sees what the
 * lock waited for).
 */
CREATE FUNCTION order_flow.kpi_cache_refresh(max_months integer DEFAULT 12) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := current_setting('TimeZone');
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
               order_flow._kpi_partial(f.contract_signed_at, f.first_logistics_at, f.shipped_at,
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
    PERFORM order_flow._kpi_marks_spent();
    RETURN built;
END
$$;
COMMENT ON FUNCTION order_flow.kpi_cache_refresh(integer) IS
    'Build or rebuild up to max_months months of the kpi() cache (newest first); returns how many (run by the scheduler once per naptime)';

/* A rebuilt rollup starts the cache afresh. */
CREATE FUNCTION order_flow._kpi_cache_clear() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE order_flow.kpi_month, order_flow.kpi_dirty;
    PERFORM order_flow._kpi_marks_spent();
    RETURN NULL;
END
$$;
CREATE TRIGGER order_fact_truncate_kpi_cache AFTER TRUNCATE ON order_flow.order_fact
    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._kpi_cache_clear();

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
           AND k.time_zone = current_setting('TimeZone')
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
        'SELECT (k.v).* FROM (SELECT order_flow._kpi_merge(x.s) AS v FROM ('
        || 'SELECT k.state AS s FROM order_flow.kpi_month k WHERE k.month_start = ANY ($1)'
        || CASE WHEN conds = '' THEN ''
                ELSE ' UNION ALL SELECT order_flow._kpi_partial(' || cols || ') FROM order_flow.order_fact f'
                     || ' WHERE ' || conds END
        || ') x) k'
        USING months, lo, hi;
END
$$;

REVOKE ALL ON order_flow.kpi_month, order_flow.kpi_dirty FROM PUBLIC;
GRANT SELECT ON order_flow.kpi_month TO order_flow_admin;
REVOKE ALL ON FUNCTION order_flow.kpi_cache_refresh(integer), order_flow._kpi_cache_clear(),
    order_flow._kpi_marks_spent() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION order_flow.kpi_cache_refresh(integer) TO order_flow_admin;
GRANT EXECUTE ON FUNCTION order_flow._kpi_merge_trans(internal, bytea),
    order_flow._kpi_partial(timestamptz, timestamptz, timestamptz, date, timestamptz, timestamptz,
                            boolean, integer),
    order_flow._kpi_merge(bytea)
TO PUBLIC;

