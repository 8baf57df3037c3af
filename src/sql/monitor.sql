/*
 * src/sql/monitor.sql
 *
 * The health of the installation in one row per database, for monitoring
 * (readable by pg_monitor, no superuser needed): is this database's
 * scheduler alive and sweeping, are acknowledgements overdue, is the
 * outbox draining, were refused attempts dropped, how far the metrics
 * fold and the kpi() cache are behind.  src/monitoring/order_flow.prometheus.yaml
 * exports it through the Prometheus PostgreSQL exporter.
 */

CREATE OR REPLACE VIEW order_flow.monitor AS
SELECT current_database()::text AS datname,
       w.pid AS scheduler_pid,
       coalesce(w.pid IS NOT NULL AND NOT w.absent, false) AS scheduler_alive,
       w.last_sweep,
       extract(epoch FROM clock_timestamp() - w.last_sweep)::float8 AS seconds_since_sweep,
       coalesce(w.no_worker_slot, false) AS no_worker_slot,
       a.overdue_acks,
       extract(epoch FROM clock_timestamp() - a.oldest_deadline)::float8 AS oldest_overdue_seconds,
       o.outbox_backlog,
       extract(epoch FROM clock_timestamp() - o.oldest_created)::float8 AS outbox_oldest_seconds,
       coalesce(w.refused_total, r.refused_total, 0) AS refused_total,
       coalesce(w.refused_dropped, r.refused_dropped, 0) AS refused_dropped,
       extract(epoch FROM order_flow.metrics_lag())::float8 AS metrics_fold_lag_seconds,
       k.kpi_cache_months,
       k.kpi_cache_dirty_months
  FROM (SELECT count(*) AS overdue_acks, min(n.deadline) AS oldest_deadline
          FROM order_flow.notification n
         WHERE n.status = 'pending' AND n.deadline < clock_timestamp()) a
 CROSS JOIN (SELECT count(*) AS outbox_backlog, min(x.created_at) AS oldest_created
               FROM order_flow.outbox x WHERE x.delivered_at IS NULL) o
 CROSS JOIN (SELECT (SELECT count(*) FROM order_flow.kpi_month m
                     WHERE m.time_zone = order_flow.business_time_zone()) AS kpi_cache_months,
                    (SELECT count(DISTINCT d.month) FROM order_flow.kpi_dirty d) AS kpi_cache_dirty_months) k
 CROSS JOIN (SELECT max(s.refused_total) AS refused_total, max(s.refused_dropped) AS refused_dropped
               FROM order_flow.worker_status() s) r
  LEFT JOIN order_flow.worker_status() w
         ON w.dboid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database());

COMMENT ON VIEW order_flow.monitor IS
    'Health of this database''s order_flow, one row: scheduler alive and its last sweep, overdue acknowledgements, outbox backlog and its oldest message, refused attempts (dropped: the queue was full), metrics fold lag, kpi() cache months in the business time zone (dirty: read raw until rebuilt); readable by pg_monitor';
