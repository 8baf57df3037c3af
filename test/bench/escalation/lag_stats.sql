-- test/bench/escalation/lag_stats.sql -- what happened to phase :'tag''s
-- notifications, as one '|'-separated line:
--   opened | escalated (parents marked escalated) | escalations (level-2 rows) |
--   parents with more than one escalation | seen by the outbox reader |
--   created lag p50 | p99 | max (s: level-2 row's created_at - parent's deadline) |
--   visible lag p50 | p99 | max (s: outbox reader's seen_at - parent's deadline) |
--   first deadline | last deadline | first created | last created | last seen (epoch s) |
--   escalations made before their parent's deadline (must be 0) |
--   stalls | stalled seconds: gaps between consecutive escalations in which
--   the one ending the gap had been due for more than 0.5 s without the
--   worker escalating anything (the worker idled with work due)
-- psql variable: tag.
WITH p AS (
    SELECT id, deadline, status
      FROM order_flow.notification
     WHERE parent_id IS NULL AND level = 1 AND payload->>'bench_phase' = :'tag'
), c AS (
    SELECT n.id, n.parent_id, n.created_at
      FROM order_flow.notification n
     WHERE n.parent_id IS NOT NULL AND n.level = 2 AND n.payload->>'bench_phase' = :'tag'
), j AS (
    SELECT p.id, p.deadline, c.created_at, s.seen_at,
           lag(c.created_at) OVER (ORDER BY c.created_at) AS prev_at,
           extract(epoch FROM c.created_at - p.deadline) AS lag_c,
           extract(epoch FROM s.seen_at - p.deadline) AS lag_s
      FROM p JOIN c ON c.parent_id = p.id
      LEFT JOIN public.bench_seen s ON s.id = c.id
)
SELECT (SELECT count(*) FROM p),
       (SELECT count(*) FROM p WHERE status = 'escalated'),
       (SELECT count(*) FROM c),
       (SELECT count(*) FROM (SELECT parent_id FROM c GROUP BY parent_id HAVING count(*) > 1) d),
       count(seen_at),
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY lag_c)::numeric, 3),
       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY lag_c)::numeric, 3),
       round(max(lag_c)::numeric, 3),
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY lag_s)::numeric, 3),
       round(percentile_disc(0.99) WITHIN GROUP (ORDER BY lag_s)::numeric, 3),
       round(max(lag_s)::numeric, 3),
       round(extract(epoch FROM min(deadline))::numeric, 3),
       round(extract(epoch FROM max(deadline))::numeric, 3),
       round(extract(epoch FROM min(created_at))::numeric, 3),
       round(extract(epoch FROM max(created_at))::numeric, 3),
       round(extract(epoch FROM max(seen_at))::numeric, 3),
       count(*) FILTER (WHERE created_at < deadline),
       count(*) FILTER (WHERE created_at - greatest(deadline, prev_at) > interval '0.5 s'),
       round(coalesce(extract(epoch FROM sum(created_at - greatest(deadline, prev_at))
                              FILTER (WHERE created_at - greatest(deadline, prev_at) > interval '0.5 s')), 0)::numeric, 1)
  FROM j;
