-- test/bench/metrics/kpi_baseline.sql -- kpi(:'from', :'to') in plain SQL
-- from the audit log: per order its first signing, shipment, delivery,
-- acceptance, carrier traces and exceptions (GROUP BY order_key), then the
-- orders first signed in the window, percentile_cont for the medians.
WITH ev AS (
    SELECT e.order_key, e.action, e.to_state, e.occurred_at, e.details,
           e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state AS sc
      FROM order_flow.audit_log e
     WHERE e.order_key NOT LIKE 'order\_flow:%'
), o AS (
    SELECT ev.order_key,
           min(ev.occurred_at) FILTER (WHERE ev.sc AND ev.to_state = 'contract_signed') AS signed,
           min(ev.occurred_at) FILTER (WHERE ev.sc AND ev.to_state = 'shipped') AS shipped,
           min(ev.occurred_at) FILTER (WHERE (ev.sc AND ev.to_state = 'shipped') OR ev.action = 'logistics') AS logistics,
           min(ev.occurred_at) FILTER (WHERE ev.sc AND ev.to_state = 'delivered') AS delivered,
           min(ev.occurred_at) FILTER (WHERE ev.sc AND ev.to_state = 'accepted') AS accepted,
           coalesce(bool_or((ev.sc AND ev.to_state IN ('rework', 'returned'))
                            OR ((ev.sc OR ev.action = 'exception')
                                AND ev.details->>'exception_type' IN ('rework', 'return', 'returned', 'reshipment'))),
                    false) AS rework,
           count(*) FILTER (WHERE (ev.sc OR ev.action = 'exception')
                              AND coalesce(ev.details->>'exception_type', '') <> '') AS exceptions
      FROM ev
     GROUP BY ev.order_key
)
SELECT count(*) AS orders,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', o.logistics - o.signed) / 3600)
           AS median_hours_to_first_logistics,
       avg(date_part('epoch', o.shipped - o.signed) / 3600) AS mean_processing_hours,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', o.shipped - o.signed) / 3600)
           AS median_processing_hours,
       (count(*) FILTER (WHERE CASE WHEN t.attributes ? 'promised_ship_date'
                                    THEN o.shipped < (t.attributes->>'promised_ship_date')::date + 1
                                    ELSE o.shipped <= o.signed + interval '48 hours' END))::float8
           / nullif(count(o.shipped), 0) AS on_time_rate,
       (count(*) FILTER (WHERE o.delivered IS NOT NULL AND o.accepted IS NOT NULL AND NOT o.rework))::float8
           / nullif(count(o.delivered), 0) AS first_time_right_rate,
       (count(*) FILTER (WHERE o.exceptions > 0))::float8 / nullif(count(*), 0) AS exception_rate
  FROM o JOIN order_flow.tracked_order t ON t.order_key = o.order_key
 WHERE o.signed >= :'from' AND o.signed < :'to'
