-- test/bench/escalation/open_notifications.sql -- open :n pending level-1
-- notifications, one per order :first_order .. :first_order + :n - 1, for the
-- six shipped departments in turn, as the transition trigger would for a
-- quoted -> contract_signed edge (minimal payload).  Deadlines run evenly
-- from now() + :lead_ms to now() + :lead_ms + :spread_ms (spread 0: all at
-- the same instant; lead 0: due at once).
--
-- Inserted directly (as superuser) in one transaction, which then does what
-- the transition trigger does for the notifications it opens: it tells the
-- scheduler, at commit, about the earliest new deadline
-- (_order_flow._wake_scheduler -> the same of_note_deadline() the C trigger
-- calls).  The scheduler is woken only if that deadline is nearer than its
-- planned wake-up, exactly as for a real transition.
--
-- The payload carries bench_phase = :tag (escalated rows inherit it), so each
-- phase's rows are found again without relying on id ranges.
--
-- Prints "first_deadline last_deadline margin": epoch seconds, and how long
-- before the first deadline the transaction had committed (negative: the
-- rows were already due at commit).
--
-- psql variables: n, first_order, lead_ms, spread_ms, tag.

BEGIN;
WITH d(department, k) AS (
    VALUES ('warehouse', 0), ('finance', 1), ('logistics', 2),
           ('sales', 3), ('commerce', 4), ('after_sales', 5)
), ins AS (
    INSERT INTO order_flow.notification (order_key, department, level, status, deadline, payload,
                                         kind, from_state, to_state)
    SELECT (:first_order + i)::text, d.department, 1, 'pending',
           now() + make_interval(secs => (:lead_ms + CASE WHEN :n > 1
                                                          THEN :spread_ms::float8 * i / (:n - 1)
                                                          ELSE 0 END) / 1000.0),
           jsonb_build_object('order_key', (:first_order + i)::text, 'department', d.department,
                              'level', 1, 'bench_phase', :'tag'),
           'ack_request', 'quoted', 'contract_signed'
      FROM generate_series(0, :n - 1) i
      JOIN d ON d.k = i % 6
    RETURNING deadline
)
SELECT _order_flow._wake_scheduler(min(deadline)) AS woke,
       extract(epoch FROM min(deadline)) AS first_deadline,
       extract(epoch FROM max(deadline)) AS last_deadline
  FROM ins \gset
COMMIT;
SELECT round((:first_deadline - extract(epoch FROM clock_timestamp()))::numeric, 3) AS margin \gset
\echo :first_deadline :last_deadline :margin
