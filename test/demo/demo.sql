/*
 * test/demo/demo.sql -- a busy day at a hardware wholesaler, replayed
 * through order_flow (`make demo`).
 *
 * 3,200 trade customers, 920 orders in the day, six departments.  The ERP
 * knows nothing about order_flow: it updates the status column of its own
 * orders table, in batches, on a pooled connection role (erp_app), naming
 * the person acting in order_flow.actor.  order_flow validates every move
 * and the actor's right to make it, stamps, audits and broadcasts; the
 * department leads answer the broadcast from their task lists, urgent
 * orders are shipped at two stations (station_terminal), the carriers'
 * feed reports first scans (carrier_feed), a relay drains the outbox
 * (wecom_relay).
 *
 *   setup.sql     ERP tables, articles and carriers, people, roles,
 *                 yesterday's orders adopted, what happened today
 *   history.sql   the last twelve months imported from the spreadsheets
 *   pass.sql      one part of the day, replayed step by step (run 3 times)
 *   relay.sql     the WeCom relay drains the outbox
 *   mistakes.sql  slips that are refused and leave no trace
 *   report.sql    the evening report a manager reads: the day, then the
 *                 management metrics over the imported history and the day
 *
 * Runs in a database where CREATE EXTENSION order_flow has been done, as a
 * superuser (the DBA); the replay itself runs as the roles above.
 */

\set ON_ERROR_STOP on
\set QUIET on
\pset footer off
SELECT clock_timestamp() AS demo_started \gset

-- order_flow.status compares by process position with the operators of
-- schema order_flow: keep it on the search path.
SET search_path = public, order_flow;

\echo
\echo 'A busy day at a hardware wholesaler, replayed through order_flow'
\echo '================================================================'
\echo
\echo '07:30  the DBA prepares: customers, people, roles; order_flow.manage(orders)'
-- the deterministic history generator (customers' classes and regions, the
-- imported twelve months)
\ir ../gen/generator.sql
RESET client_min_messages;
\ir setup.sql
SELECT format('       %s customers, %s people in %s departments; %s open orders from yesterday adopted (no events)',
              to_char((SELECT count(*) FROM customers), 'FM9,999'),
              (SELECT count(DISTINCT actor) FROM order_flow.member),
              (SELECT count(DISTINCT department) FROM order_flow.member),
              (SELECT count(*) FROM order_flow.tracked_order WHERE tbl = 'public.orders')) AS line \gset
\echo :line
\echo '07:40  the last 12 months, kept in spreadsheets until today, are imported (import_transition, record)'
\ir history.sql

SET ROLE erp_app;

\echo
\echo '08:30  morning: 500 new inquiries'
\set pass 1
\ir pass.sql

\echo
\echo '11:30  midday: 270 new inquiries'
\set pass 2
\ir pass.sql

\echo
\echo '13:30  lunch break'
\ir relay.sql
\ir mistakes.sql

\echo
\echo '14:00  afternoon: 150 new inquiries; the inbound PO arrives'
\set pass 3
\ir pass.sql

RESET ROLE;
RESET order_flow.actor;
SELECT (max(id) + 1)::text AS close_up_key FROM orders \gset
SELECT set_config('demo.close_up', :'close_up_key', false) \gset
\ir station_shift.sql
SELECT min(id)::text AS rush_key FROM orders WHERE status = 'quoted' \gset
SELECT set_config('demo.rush', :'rush_key', false) \gset
\ir live.sql
\echo
\echo '17:30  the day''s last messages were missed; 16 minutes later their deadlines have passed.'
\echo '       The background worker escalates each at its deadline; here the clock is moved'
\echo '       forward and one sweep is run by hand:'
SELECT format('       order_flow.escalate_due(now() + 16 min): %s notifications escalated to the next level',
              order_flow.escalate_due(now() + interval '16 minutes')) AS line \gset
\echo :line

-- The refusals of the transition path (the first eight mistakes) reach
-- order_flow.refused_attempt through the background worker: give it a
-- moment.
DO $$
BEGIN
    FOR i IN 1..50 LOOP
        EXIT WHEN (SELECT count(*) FROM order_flow.refused_attempt) >= 8;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

\ir report.sql
