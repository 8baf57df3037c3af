/*
 * order_flow 1.0 -> 1.1
 *
 * Applied by ALTER EXTENSION order_flow UPDATE; CREATE EXTENSION installs
 * 1.0 and applies it too, so a fresh 1.1 and an updated 1.0 are the same.
 *
 *   - record(): a payment's amount must not be negative, and its due_date
 *     and paid_date, when given, must be dates (22007) -- before, a
 *     malformed date was accepted and silently ignored by the metrics.
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
