-- test/bench/metrics/health_baseline.sql -- customer_health as a BI analyst
-- would write it in plain SQL straight from the audit log (and the
-- tracked_order row for the customer and the captured attributes): one
-- GROUP BY per order, one per customer, the same definitions as the view
-- (see the COMMENT on order_flow.customer_health), built-in aggregates only.
-- Same columns as the view, so the results can be compared.
WITH ev AS (
    SELECT e.order_key, e.action, e.to_state, e.occurred_at, e.details,
           e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state AS sc
      FROM order_flow.audit_log e
     WHERE e.order_key NOT LIKE 'order\_flow:%'
), o AS (
    SELECT ev.order_key,
           min(ev.occurred_at) AS ordered_at,
           min(ev.occurred_at) FILTER (WHERE ev.sc AND ev.to_state = 'contract_signed') AS signed,
           min(ev.occurred_at) FILTER (WHERE ev.sc AND ev.to_state = 'shipped') AS shipped,
           min(ev.occurred_at) FILTER (WHERE ev.sc AND ev.to_state = 'delivered') AS delivered,
           min(ev.occurred_at) FILTER (WHERE ev.sc AND ev.to_state = 'accepted') AS accepted,
           coalesce(bool_or((ev.sc AND ev.to_state IN ('rework', 'returned'))
                            OR ((ev.sc OR ev.action = 'exception')
                                AND ev.details->>'exception_type' IN ('rework', 'return', 'returned', 'reshipment'))),
                    false) AS rework,
           sum((ev.details->>'amount')::float8)
               FILTER (WHERE ev.action = 'payment' AND ev.details ? 'due_date') AS due_amount,
           coalesce(sum((ev.details->>'amount')::float8)
                        FILTER (WHERE ev.action = 'payment'
                                  AND coalesce((ev.details->>'paid_date')::date,
                                               (ev.occurred_at AT TIME ZONE 'UTC')::date)
                                      <= (ev.details->>'due_date')::date), 0) AS on_time_amount,
           count(*) FILTER (WHERE ev.action = 'payment'
                              AND coalesce((ev.details->>'paid_date')::date, (ev.occurred_at AT TIME ZONE 'UTC')::date)
                                  > (ev.details->>'due_date')::date) AS late,
           count(*) FILTER (WHERE ev.action = 'service_request') AS service_requests,
           count(*) FILTER (WHERE ev.action = 'complaint') AS complaints
      FROM ev
     GROUP BY ev.order_key
), c AS (
    SELECT t.customer_key,
           count(*) AS orders,
           count(*) FILTER (WHERE o.ordered_at >= date_trunc('month', now()) - interval '12 months'
                              AND o.ordered_at < date_trunc('month', now()))::float8 / 12 AS order_frequency,
           date_part('epoch', now() - max(o.ordered_at)) / 86400 AS recency_days,
           count(DISTINCT t.attributes->>'category')::int AS category_breadth,
           sum(o.on_time_amount) / nullif(sum(o.due_amount), 0) AS payment_punctuality,
           sum(o.late) AS overdue_payments,
           sum(o.service_requests) AS service_requests,
           sum(o.complaints) AS complaints,
           (count(*) FILTER (WHERE CASE WHEN t.attributes ? 'promised_ship_date'
                                        THEN o.shipped < (t.attributes->>'promised_ship_date')::date + 1
                                        ELSE o.shipped <= o.signed + interval '48 hours' END))::float8
               / nullif(count(o.shipped), 0) AS on_time_rate,
           (count(*) FILTER (WHERE o.delivered IS NOT NULL AND o.accepted IS NOT NULL AND NOT o.rework))::float8
               / nullif(count(o.delivered), 0) AS first_time_right_rate,
           (count(*) FILTER (WHERE o.delivered IS NOT NULL AND o.rework))::float8
               / nullif(count(o.delivered), 0) AS return_rework_rate,
           count(*) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '1 month') AS m1,
           count(*) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '2 months') AS m2,
           count(*) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '3 months') AS m3,
           ARRAY[coalesce(sum((t.attributes->>'amount')::float8) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '6 months'), 0),
                 coalesce(sum((t.attributes->>'amount')::float8) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '5 months'), 0),
                 coalesce(sum((t.attributes->>'amount')::float8) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '4 months'), 0),
                 coalesce(sum((t.attributes->>'amount')::float8) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '3 months'), 0),
                 coalesce(sum((t.attributes->>'amount')::float8) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '2 months'), 0),
                 coalesce(sum((t.attributes->>'amount')::float8) FILTER (WHERE date_trunc('month', o.ordered_at) = date_trunc('month', now()) - interval '1 month'), 0)]
               AS v
      FROM o JOIN order_flow.tracked_order t ON t.order_key = o.order_key
     WHERE t.customer_key IS NOT NULL
     GROUP BY t.customer_key
), d AS (
    SELECT c.*,
           CASE WHEN c.m1 + c.m2 + c.m3 > 0
                THEN (SELECT stddev_pop(x) / avg(x) FROM unnest(ARRAY[c.m3, c.m2, c.m1]) x)::float8 END
               AS order_volatility,
           (SELECT CASE WHEN avg(y) <> 0 THEN regr_slope(y, x) / avg(y) END
              FROM unnest(c.v) WITH ORDINALITY u(y, x)) AS order_value_trend
      FROM c
)
SELECT d.customer_key, d.order_frequency, d.recency_days, d.category_breadth, d.payment_punctuality,
       d.overdue_payments, d.service_requests, d.complaints, d.on_time_rate, d.first_time_right_rate,
       d.return_rework_rate, d.order_value_trend, d.order_volatility, s.score,
       CASE WHEN s.score IS NULL THEN NULL
            WHEN s.score >= (SELECT min_score FROM order_flow.health_threshold WHERE rating = 'green') THEN 'green'
            WHEN s.score >= (SELECT min_score FROM order_flow.health_threshold WHERE rating = 'yellow') THEN 'yellow'
            ELSE 'red' END AS rating,
       d.orders, d.m3 AS orders_3_months_ago, d.m2 AS orders_2_months_ago, d.m1 AS orders_last_month
  FROM d
 CROSS JOIN LATERAL (
        SELECT round((100 * sum(w.weight::float8 * greatest(0, least(1, (x.val - w.bad) / (w.good - w.bad))))
                      / nullif(sum(w.weight::float8), 0))::numeric, 1) AS score
          FROM (VALUES ('order_frequency', d.order_frequency), ('recency_days', d.recency_days),
                       ('category_breadth', d.category_breadth::float8), ('payment_punctuality', d.payment_punctuality),
                       ('overdue_payments', d.overdue_payments::float8 / d.orders),
                       ('service_requests', d.service_requests::float8 / d.orders),
                       ('complaints', d.complaints::float8 / d.orders), ('on_time_rate', d.on_time_rate),
                       ('first_time_right_rate', d.first_time_right_rate),
                       ('return_rework_rate', d.return_rework_rate), ('order_value_trend', d.order_value_trend),
                       ('order_volatility', d.order_volatility)) x(dimension, val)
          JOIN order_flow.health_weight w ON w.dimension = x.dimension AND w.weight > 0
         WHERE x.val IS NOT NULL) s
