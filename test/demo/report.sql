/*
 * test/demo/report.sql -- the evening report: what a manager looks at.
 *
 * Everything here is read from the ERP's orders table and from order_flow's
 * own tables (audit log, notifications, outbox, order tracking) and, for
 * the management metrics (sections 11-15), from its views and report
 * functions over the imported history and the day.  Included by demo.sql
 * as the DBA.
 */

\echo
\echo '================================================================'
\echo 'End of day report'
\echo '================================================================'

-- the scheduler folds the day's events into the metrics rollup within about
-- a second of each commit; fold whatever the last commits left, so the
-- figures below include every event
SELECT order_flow.metrics_fold(true) AS folded \gset

\echo
\echo '1. Orders by state, in process order'
SELECT o.status AS state,
       s.category,
       s.owner_department AS owner,
       count(*) AS orders,
       count(*) FILTER (WHERE o.id > 60000) AS "of today's",
       to_char(sum(o.amount), 'FM9,999,999') AS "value (CNY)"
  FROM orders o
  JOIN order_flow.state s ON s.workflow = 'b2b_order' AND s.state = o.status
 GROUP BY o.status, s.category, s.owner_department
 ORDER BY o.status::order_flow.status;

SELECT format('   Of today''s %s orders %s shipped (%s%%), %s of them already delivered; '
              '%s wait in an exception state, %s were cancelled.',
              count(*),
              count(*) FILTER (WHERE t.shipped_at IS NOT NULL),
              round(100.0 * count(*) FILTER (WHERE t.shipped_at IS NOT NULL) / count(*)),
              count(*) FILTER (WHERE t.state = 'delivered'),
              count(*) FILTER (WHERE s.category = 'exception'),
              count(*) FILTER (WHERE t.state = 'cancelled')) AS line
  FROM orders o
  JOIN order_flow.tracked_order t ON t.order_key = o.id::text
  JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = t.state
 WHERE o.id > 60000 \gset
\echo
\echo :line

\echo
\echo '2. What happened: audit events by action'
SELECT action, count(*) AS events,
       count(DISTINCT order_key) AS orders,
       count(DISTINCT actor) AS actors
  FROM order_flow.audit_log
 GROUP BY action
 ORDER BY count(*) DESC;

\echo
\echo '3. Work done, by department of the person acting'
SELECT m.department,
       count(*) FILTER (WHERE a.action = 'created') AS "orders entered",
       count(*) FILTER (WHERE a.action = 'transition') AS transitions,
       string_agg(DISTINCT a.actor, ', ') AS who
  FROM order_flow.audit_log a
  JOIN (SELECT DISTINCT ON (actor) actor, department FROM order_flow.member
         ORDER BY actor, level) m USING (actor)
 WHERE a.action IN ('created', 'transition')
 GROUP BY m.department
 ORDER BY count(*) DESC;

\echo
\echo '4. Exceptions raised today, with the reason given'
SELECT details->>'exception_type' AS exception,
       details->>'note' AS reason,
       count(*) AS raised,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS "share %"
  FROM order_flow.audit_log
 WHERE action = 'transition' AND details ? 'exception_type'
 GROUP BY 1, 2
 ORDER BY count(*) DESC, 1;

\echo
\echo '5. Refused attempts (each refused whole: nothing written)'
SELECT n AS "#", actor, attempt, sqlstate, message
  FROM replay.refusal
 ORDER BY n;
SELECT format('   %s attempts refused; the %s refused by the transition path were also recorded out of band '
              'in order_flow.refused_attempt, though their transactions rolled back.',
              (SELECT count(*) FROM replay.refusal),
              (SELECT count(*) FROM order_flow.refused_attempt)) AS line \gset
\echo :line

\echo
\echo '6. Broadcast: notifications per department'
SELECT department,
       count(*) AS opened,
       count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged,
       count(*) FILTER (WHERE status = 'need_info') AS "asked for info",
       count(*) FILTER (WHERE status = 'escalated') AS escalated,
       count(*) FILTER (WHERE status = 'pending' AND level = 1) AS "pending L1",
       count(*) FILTER (WHERE status = 'pending' AND level = 2) AS "pending L2 (manager)",
       count(*) FILTER (WHERE status = 'pending' AND level >= 3) AS "pending L3 (director)"
  FROM order_flow.notification
 GROUP BY department
 ORDER BY department;

SELECT format('   Outbox: %s messages delivered by the WeCom relay, %s waiting for it.',
              count(*) FILTER (WHERE delivered_at IS NOT NULL),
              count(*) FILTER (WHERE delivered_at IS NULL)) AS line
  FROM order_flow.outbox \gset
\echo :line

\echo
\echo '7. Shipping stations'
SELECT carrier, count(*) AS shipments, round(avg(weight_kg), 1) AS "avg kg",
       sum(freight) AS "freight (CNY)", min(waybill) AS "first waybill", max(waybill) AS "last waybill"
  FROM order_flow.shipment
 GROUP BY carrier
 ORDER BY carrier;
SELECT operator, step, steps,
       round(mean_dwell_seconds * 1000) AS "mean ms",
       round(p90_dwell_seconds::numeric * 1000) AS "p90 ms",
       errors
  FROM order_flow.station_heatmap
 ORDER BY operator, step;
SELECT format('   %s orders blocked at the station by stock, e.g. "%s"; substitute in stock: %s.',
              count(*), min(reason),
              (SELECT string_agg(format('%s (%s available)', s.sku, st.available), ', ')
                 FROM order_flow.sku s JOIN order_flow.stock st USING (sku)
                WHERE s.sku IN (SELECT unnest(substitutes) FROM order_flow.sku WHERE sku = 'HSS-SET'))) AS line
  FROM replay.station_blocked \gset
\echo :line

\echo
\echo '8. Audit log integrity'
SELECT format('   verify_audit(): %s: %s problems in %s events, %s hash chains (one per order).',
              CASE WHEN v.problems = 0 THEN 'intact' ELSE 'BROKEN' END, v.problems,
              a.events, a.chains) AS line
  FROM (SELECT count(*) AS events, count(DISTINCT order_key) AS chains
          FROM order_flow.audit_log) a,
       (SELECT count(*) AS problems FROM order_flow.verify_audit()) v \gset
\echo :line

-- an order that went through a request for information and still shipped
SELECT min(d.id) AS trail
  FROM replay.day d JOIN orders o USING (id)
 WHERE d.incident = 'need_info' AND d.resolved_in IS NOT NULL
   AND o.status IN ('shipped', 'in_transit', 'delivered') \gset
\echo
\echo '9. Audit trail of order' :trail
SELECT seq,
       to_char(occurred_at, 'HH24:MI:SS.MS') AS at,
       actor,
       CASE WHEN action IN ('created', 'transition')
                 THEN coalesce(from_state || ' -> ', '') || to_state
            WHEN action = 'ship'
                 THEN format('ship: %s %s, %s kg', details->>'carrier', details->>'waybill', details->>'weight_kg')
            WHEN action = 'logistics'
                 THEN format('carrier trace: %s, %s', details->>'status', details->>'location')
            ELSE format('%s (%s, level %s)', action, details->>'department', details->>'level')
       END AS event,
       coalesce(details->>'note', details #>> '{form,text}', '') AS note
  FROM order_flow.audit_log
 WHERE order_key = :'trail'
 ORDER BY seq;
SELECT department, level, status, to_state AS "on entry to"
  FROM order_flow.notification
 WHERE order_key = :'trail'
 ORDER BY id;

-- what the order screen offers for a signed contract, per person
SELECT min(id) AS signed FROM orders WHERE status = 'contract_signed' \gset
\echo
\echo '10. Next steps offered for order' :signed '(contract_signed), by who is asking'
SET ROLE erp_app;
SET order_flow.actor = 'li.warehouse';
\echo '   li.warehouse:'
SELECT to_state, notify, reason_required, exception_type
  FROM order_flow.allowed_transitions('orders', :'signed');
SET order_flow.actor = 'zhao.finance';
\echo '   zhao.finance:'
SELECT to_state, notify, reason_required, exception_type
  FROM order_flow.allowed_transitions('orders', :'signed');
RESET order_flow.actor;
RESET ROLE;

\echo
\echo '================================================================'
\echo 'Management metrics: the imported 12 months and today'
\echo '================================================================'

\echo
-- By evening autovacuum has analysed the day's tables; the replay runs
-- faster than its naptime, so do it here (the report queries' plans rely on
-- the statistics of the audit log and the rollups).
ANALYZE order_flow.audit_log, order_flow.order_fact, order_flow.exception_fact, order_flow.tracked_order;

\echo '11. KPIs -- order_flow.kpi(from, to): orders whose contract was signed in the window, by quarter'
SELECT w.window_name AS "window",
       k.orders,
       round(k.median_hours_to_first_logistics::numeric, 1) AS "median h to 1st logistics",
       round(k.mean_processing_hours::numeric, 1) AS "mean h processing",
       round(k.median_processing_hours::numeric, 1) AS "median h processing",
       round(100 * k.on_time_rate::numeric, 1) AS "on time %",
       round(100 * k.first_time_right_rate::numeric, 1) AS "first time right %",
       round(100 * k.exception_rate::numeric, 1) AS "exception %"
  FROM (SELECT -1 AS n, 'last 12 months' AS window_name, now() - interval '12 months' AS w_from, now() AS w_to
        UNION ALL
        SELECT q, to_char(date_trunc('quarter', now()) - q * interval '3 months', 'YYYY "Q"Q')
                  || CASE WHEN q = 0 THEN ' to date' ELSE '' END,
               date_trunc('quarter', now()) - q * interval '3 months',
               CASE WHEN q = 0 THEN now() ELSE date_trunc('quarter', now()) - (q - 1) * interval '3 months' END
          FROM generate_series(3, 0, -1) q) w
 CROSS JOIN LATERAL order_flow.kpi(w.w_from, w.w_to) k
 ORDER BY w.n = -1 DESC, w.w_from;
\echo '   processing = contract signed to shipped; first time right = delivered orders accepted with no'
\echo '   rework, return or reshipment; exception = orders with at least one exception event.'

\echo
\echo '12. Exception Pareto -- order_flow.exception_pareto (all exception events)'
SELECT rank, exception_type, count,
       round(100 * share::numeric, 1) AS "share %",
       round(100 * cumulative_share::numeric, 1) AS "cumulative %",
       CASE WHEN cumulative_share - share < 0.8 THEN '<- the vital few' ELSE '' END AS " "
  FROM order_flow.exception_pareto
 ORDER BY rank;

\echo
\echo '13. Why orders were late -- order_flow.top_delay_reasons(''east'', ''A'', ''{6,7}'', 5):'
\echo '    class-A customers in the east in the rainy season, against the same customers in the other months'
SELECT r.rank, r.reason, r.kind, r.orders AS "orders hit",
       round(100 * r.share::numeric, 1) AS "% of delayed orders",
       round(r.hours_lost::numeric) AS "hours lost",
       coalesce(round(100 * o.share::numeric, 1)::text, '-') AS "% rest of year"
  FROM order_flow.top_delay_reasons('east', 'A', '{6,7}', 5) r
  LEFT JOIN order_flow.top_delay_reasons('east', 'A', '{1,2,3,4,5,8,9,10,11,12}', 100) o USING (reason)
 ORDER BY r.rank;

\echo
\echo '14. Customer health -- order_flow.customer_health: distribution of the 0-100 score'
SELECT h.rating, count(*) AS customers,
       round(avg(h.score), 1) AS "mean score",
       min(h.score) AS "min", max(h.score) AS "max",
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS "% of customers",
       count(*) FILTER (WHERE c.grade = 'A') AS "of them class A"
  FROM order_flow.customer_health h
  JOIN customers c ON c.code = h.customer_key
 GROUP BY h.rating
 ORDER BY min(h.score) DESC;

\echo
\echo '15. Red customers worth a visit: regular class A and B customers (3 orders or more), weakest first'
SELECT h.customer_key AS customer, c.name, c.grade AS class, c.region,
       h.score, h.orders,
       round(h.recency_days) AS "days since order",
       round(100 * h.payment_punctuality::numeric) AS "paid on time %",
       h.complaints,
       round(100 * h.first_time_right_rate::numeric) AS "first time right %",
       format('%s / %s / %s', h.orders_3_months_ago, h.orders_2_months_ago, h.orders_last_month)
           AS "orders m-3 / m-2 / m-1"
  FROM order_flow.customer_health h
  JOIN customers c ON c.code = h.customer_key
 WHERE h.rating = 'red' AND c.grade IN ('A', 'B') AND h.orders >= 3
 ORDER BY h.score, h.customer_key
 LIMIT 10;
SELECT format('   %s red customers in all (%s of class A); weights and cut-offs: order_flow.health_weight, '
              'order_flow.health_threshold.',
              count(*), count(*) FILTER (WHERE c.grade = 'A')) AS line
  FROM order_flow.customer_health h
  JOIN customers c ON c.code = h.customer_key
 WHERE h.rating = 'red' \gset
\echo :line

SELECT format('Replayed the day (%s audit events) in %s s.',
              (SELECT count(*) FROM order_flow.audit_log),
              round(extract(epoch FROM clock_timestamp() - :'demo_started'::timestamptz)::numeric, 2)) AS line \gset
\echo
\echo :line
