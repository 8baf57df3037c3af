-- test/bench/metrics/pareto_baseline.sql -- exception_pareto in plain SQL
-- from the audit log: exception events are state changes carrying an
-- exception_type and exception records.
SELECT c.exception_type, c.count,
       c.count::float8 / sum(c.count) OVER () AS share,
       (sum(c.count) OVER (ORDER BY c.count DESC, c.exception_type ROWS UNBOUNDED PRECEDING)
           / sum(c.count) OVER ())::float8 AS cumulative_share,
       (row_number() OVER (ORDER BY c.count DESC, c.exception_type))::integer AS rank
  FROM (SELECT e.details->>'exception_type' AS exception_type, count(*) AS count
          FROM order_flow.audit_log e
         WHERE ((e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state) OR e.action = 'exception')
           AND coalesce(e.details->>'exception_type', '') <> ''
         GROUP BY 1) c
 ORDER BY rank
