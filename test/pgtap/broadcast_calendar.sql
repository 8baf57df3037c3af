-- test/pgtap/broadcast_calendar.sql -- business calendars (SPEC 3.2, 3.4):
-- business_deadline() on the shipped 'office' calendar (Asia/Shanghai,
-- Mon-Fri 09:00-12:00 + 13:30-18:00, Sat 09:00-12:00) for hand-computed
-- cases (evenings, lunch breaks, weekends, holidays, long spans, time zones,
-- a daylight-saving night elsewhere); notification and escalation deadlines
-- of a department on the office calendar run in working time; calendars are
-- validated (unknown time zone 22023, overlapping hours / no hours /
-- opens >= closes 23514).
--
-- One transaction, rolled back at the end.
\ir include/preamble.psql
BEGIN;
\ir include/helpers.psql

SELECT plan(82);

-- the session's own time zone must not matter
SET LOCAL TimeZone = 'America/New_York';

-- bd(start, span): business_deadline on the office calendar, shown in Shanghai time
CREATE FUNCTION pg_temp.bd(start timestamptz, span interval) RETURNS text LANGUAGE sql AS $f$
    SELECT to_char(order_flow.business_deadline('office', start, span) AT TIME ZONE 'Asia/Shanghai',
                   'Dy YYYY-MM-DD HH24:MI:SS')
$f$;

-- cal_snapshot(): digests of the calendar tables and of everything else
CREATE FUNCTION pg_temp.cal_snapshot() RETURNS text LANGUAGE sql AS $f$
    SELECT pg_temp.snapshot() || ' cal=' || md5(
           coalesce((SELECT string_agg(c::text, '|' ORDER BY c.calendar) FROM order_flow.calendar c), '')
        || coalesce((SELECT string_agg(h::text, '|' ORDER BY h.calendar, h.isodow, h.opens) FROM order_flow.calendar_hours h), '')
        || coalesce((SELECT string_agg(x::text, '|' ORDER BY x.calendar, x.day) FROM order_flow.calendar_holiday x), '')
        || coalesce((SELECT string_agg(d::text, '|' ORDER BY d.department) FROM order_flow.department d), ''))
$f$;

CREATE FUNCTION pg_temp.cal_refused(cmd text, want_state text, descr text, want_msg text DEFAULT '%')
RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT * FROM pg_temp.refused_in('SELECT pg_temp.cal_snapshot()', cmd, want_state, descr, want_msg)
$f$;

-- config_check(cmd, want_state, descr, [want_msg]): accepted when made,
-- refused by the commit-time checks, nothing left behind.
CREATE FUNCTION pg_temp.config_check(cmd text, want_state text, descr text, want_msg text DEFAULT '%')
RETURNS SETOF text LANGUAGE sql AS $f$
    SELECT * FROM pg_temp.config_check_in('SELECT pg_temp.cal_snapshot()', cmd, want_state, descr, want_msg)
$f$;

-- ------------------------------------------------------ the shipped calendars
SELECT results_eq($$SELECT calendar, time_zone, always_open FROM order_flow.calendar ORDER BY calendar$$,
                  $$VALUES ('24x7', 'UTC', true), ('office', 'Asia/Shanghai', false)$$,
                  'two calendars ship: 24x7 (always open) and office (Asia/Shanghai)');
SELECT results_eq($$SELECT isodow, opens, closes FROM order_flow.calendar_hours WHERE calendar = 'office'
                     ORDER BY isodow, opens$$,
                  $$SELECT d, o, c FROM generate_series(1, 5) d,
                           (VALUES (time '09:00', time '12:00'), (time '13:30', time '18:00')) h(o, c)
                    UNION ALL SELECT 6, time '09:00', time '12:00' ORDER BY 1, 2$$,
                  'office: Mon-Fri 09:00-12:00 and 13:30-18:00, Sat 09:00-12:00');
SELECT is((SELECT count(*)::int FROM order_flow.department WHERE calendar <> '24x7'), 0,
          'every shipped department runs on 24x7 (escalation on the wall clock by default)');

-- ------------------------------------------------------ business_deadline
SELECT is(pg_temp.bd('2025-01-10 17:50+08', '15 minutes'), 'Sat 2025-01-11 09:05:00',
          'Friday 17:50 + 15 min -> Saturday 09:05');
SELECT is(pg_temp.bd('2025-01-11 11:55+08', '15 minutes'), 'Mon 2025-01-13 09:10:00',
          'Saturday 11:55 + 15 min -> Monday 09:10 (Sunday is closed)');
SELECT is(pg_temp.bd('2025-01-08 11:55+08', '15 minutes'), 'Wed 2025-01-08 13:40:00',
          'Wednesday 11:55 + 15 min -> 13:40 the same day (lunch break skipped)');
SELECT is(pg_temp.bd('2025-01-08 11:45+08', '15 minutes'), 'Wed 2025-01-08 12:00:00',
          'Wednesday 11:45 + 15 min -> 12:00 exactly (ends at closing time)');
SELECT is(pg_temp.bd('2025-01-08 12:30+08', '15 minutes'), 'Wed 2025-01-08 13:45:00',
          'Wednesday 12:30 (lunch) + 15 min -> 13:45');
SELECT is(pg_temp.bd('2025-01-13 07:00+08', '15 minutes'), 'Mon 2025-01-13 09:15:00',
          'Monday 07:00 (before opening) + 15 min -> 09:15');
SELECT is(pg_temp.bd('2025-01-12 15:00+08', '15 minutes'), 'Mon 2025-01-13 09:15:00',
          'Sunday 15:00 + 15 min -> Monday 09:15');
SELECT is(pg_temp.bd('2025-01-08 18:00+08', '15 minutes'), 'Thu 2025-01-09 09:15:00',
          'Wednesday 18:00 (closing) + 15 min -> Thursday 09:15');
SELECT is(pg_temp.bd('2025-01-14 10:00+08', '1 hour'), 'Tue 2025-01-14 11:00:00',
          'Tuesday 10:00 + 1 h -> 11:00 (inside working hours: the wall clock)');
SELECT is(pg_temp.bd('2025-01-10 17:00+08', '5 hours'), 'Mon 2025-01-13 10:00:00',
          'Friday 17:00 + 5 h -> Monday 10:00 (1 h Friday, 3 h Saturday, 1 h Monday)');
SELECT is(pg_temp.bd('2025-01-13 09:00+08', '40 hours 30 minutes'), 'Sat 2025-01-18 12:00:00',
          'Monday 09:00 + 40.5 h -> Saturday 12:00 (one whole working week)');
SELECT is(pg_temp.bd('2025-01-13 09:00+08', '40 hours 31 minutes'), 'Mon 2025-01-20 09:01:00',
          'Monday 09:00 + 40.5 h + 1 min -> the next Monday 09:01');
SELECT is(pg_temp.bd('2025-01-08 13:30:00.5+08', '1 second'), 'Wed 2025-01-08 13:30:01',
          'sub-second start times are kept (13:30:00.5 + 1 s)');
SELECT is(order_flow.business_deadline('office', '2025-01-10 09:50+00', '15 minutes'),
          '2025-01-11 01:05+00'::timestamptz,
          'a start given in UTC (Friday 09:50 UTC = 17:50 Shanghai) -> Saturday 01:05 UTC');
SELECT is(order_flow.business_deadline('24x7', '2025-01-10 17:50+08', '15 minutes'), '2025-01-10 18:05+08'::timestamptz,
          '24x7: start + span');
SELECT is(order_flow.business_deadline('24x7', '2025-01-11 23:50+08', '1 day'), '2025-01-12 23:50+08'::timestamptz,
          '24x7: over a Sunday, + 1 day');
SELECT is(order_flow.business_deadline('office', NULL, '15 minutes'), NULL, 'NULL start -> NULL');
SELECT is(order_flow.business_deadline('office', now(), NULL), NULL, 'NULL span -> NULL');
SELECT is(order_flow.business_deadline(NULL, now(), '15 minutes'), NULL, 'NULL calendar -> NULL');
SELECT * FROM pg_temp.cal_refused($$SELECT order_flow.business_deadline('moon', now(), '15 minutes')$$, '42704',
                                  'an unknown calendar', '%moon%');

-- holidays are skipped
INSERT INTO order_flow.calendar_holiday (calendar, day, description) VALUES ('office', '2025-01-13', 'company day');
SELECT is(pg_temp.bd('2025-01-11 11:55+08', '15 minutes'), 'Tue 2025-01-14 09:10:00',
          'Saturday 11:55 + 15 min with Monday a holiday -> Tuesday 09:10');
SELECT is(pg_temp.bd('2025-01-13 10:00+08', '15 minutes'), 'Tue 2025-01-14 09:15:00',
          'starting on a holiday (Monday 10:00) -> Tuesday 09:15');
SELECT is(pg_temp.bd('2025-01-10 17:00+08', '5 hours'), 'Tue 2025-01-14 10:00:00',
          'Friday 17:00 + 5 h with Monday a holiday -> Tuesday 10:00');
SELECT is(order_flow.business_deadline('24x7', '2025-01-12 12:00+08', '1 day'), '2025-01-13 12:00+08'::timestamptz,
          'the office holiday does not touch 24x7');

-- a calendar with no working time for two years is reported, not looped on
INSERT INTO order_flow.calendar (calendar, time_zone) VALUES ('mondays', 'UTC');
INSERT INTO order_flow.calendar_hours VALUES ('mondays', 1, '09:00', '10:00');
INSERT INTO order_flow.calendar_holiday (calendar, day)
SELECT 'mondays', d::date FROM generate_series(date '2025-01-01', date '2028-01-01', interval '1 day') d
 WHERE extract(isodow FROM d) = 1;
SELECT * FROM pg_temp.cal_refused($$SELECT order_flow.business_deadline('mondays', '2025-01-01 00:00+00', '1 minute')$$,
                                  '22023', 'a calendar whose every working day is a holiday');
SELECT is(order_flow.business_deadline('mondays', '2027-12-31 00:00+00', '1 hour'), '2028-01-03 10:00+00'::timestamptz,
          'the same calendar after its holidays end: the next free Monday');

-- daylight saving time: Berlin springs forward on 2025-03-30 at 02:00
INSERT INTO order_flow.calendar (calendar, time_zone) VALUES ('berlin', 'Europe/Berlin');
INSERT INTO order_flow.calendar_hours SELECT 'berlin', d, '01:00', '17:00' FROM generate_series(1, 7) d;
-- berlin(start, span): the deadline in UTC, as text
CREATE FUNCTION pg_temp.berlin(start timestamptz, span interval) RETURNS text LANGUAGE sql AS $f$
    SELECT to_char(order_flow.business_deadline('berlin', start, span) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
$f$;
SELECT is(pg_temp.berlin('2025-03-29 16:50+01', '15 minutes'), '2025-03-30 00:05 UTC',
          'Berlin Saturday 16:50 CET + 15 min -> Sunday 01:05 CET (00:05 UTC)');
SELECT is(pg_temp.berlin('2025-03-30 01:30+01', '1 hour'), '2025-03-30 01:30 UTC',
          'Berlin Sunday 01:30 CET + 1 h of working time -> 03:30 CEST (01:30 UTC: one real hour)');
SELECT is(pg_temp.berlin('2025-03-30 01:30+01', '2 hours'), '2025-03-30 02:30 UTC',
          'Berlin Sunday 01:30 CET + 2 h of working time -> 04:30 CEST (02:30 UTC: two real hours; the skipped hour 02:00-03:00 does not exist, so it is no work)');
SELECT is(pg_temp.berlin('2025-03-30 16:30+02', '1 hour'), '2025-03-30 23:30 UTC',
          'Berlin Sunday 16:30 CEST + 1 h -> Monday 01:30 CEST (Sunday 23:30 UTC)');

-- ------------------------------------------------------ department deadlines
CREATE TABLE bk_orders (id text PRIMARY KEY, status text NOT NULL);
SELECT order_flow.manage('bk_orders');
INSERT INTO bk_orders VALUES ('bk-1', 'inquiry'), ('bk-2', 'inquiry');
UPDATE bk_orders SET status = 'quoted';
-- no stale-order reminders in the sweeps below, which run years ahead
UPDATE order_flow.state SET max_dwell = '100 years' WHERE workflow = 'b2b_order' AND category <> 'terminal';
UPDATE order_flow.department SET calendar = 'office' WHERE department = 'warehouse';
SELECT is(order_flow.department_deadline('warehouse', '2025-01-10 17:50+08', '15 minutes'),
          '2025-01-11 09:05+08'::timestamptz, 'department_deadline follows the department''s calendar');
SELECT is(order_flow.department_deadline('finance', '2025-01-10 17:50+08', '15 minutes'),
          '2025-01-10 18:05+08'::timestamptz, 'other departments stay on 24x7');
SELECT is(order_flow.department_deadline('nobody', '2025-01-10 17:50+08', '15 minutes'),
          '2025-01-10 18:05+08'::timestamptz, 'an unknown department counts on the wall clock');

UPDATE bk_orders SET status = 'contract_signed' WHERE id = 'bk-1';
SELECT results_eq(
    $$SELECT n.department, n.deadline = CASE n.department
                 WHEN 'warehouse' THEN order_flow.business_deadline('office', a.occurred_at, '15 minutes')
                 ELSE a.occurred_at + interval '15 minutes' END,
             (n.payload->>'deadline')::timestamptz = n.deadline
        FROM order_flow.notification n JOIN order_flow.audit_log a ON a.order_key = n.order_key AND a.seq = n.event_seq
       WHERE n.order_key = 'bk-1' ORDER BY n.department$$,
    $$VALUES ('finance', true, true), ('logistics', true, true), ('warehouse', true, true)$$,
    'the warehouse deadline counts 15 working minutes in the office calendar; finance and logistics 15 wall minutes');
SELECT ok((SELECT deadline FROM order_flow.notification WHERE order_key = 'bk-1' AND department = 'warehouse')
          >= (SELECT deadline FROM order_flow.notification WHERE order_key = 'bk-1' AND department = 'finance'),
          'working time never ends before wall time');
SELECT ok((SELECT extract(isodow FROM deadline AT TIME ZONE 'Asia/Shanghai') <> 7
                  AND (deadline AT TIME ZONE 'Asia/Shanghai')::time BETWEEN '09:00' AND '18:00'
                  AND (deadline AT TIME ZONE 'Asia/Shanghai')::time NOT BETWEEN '12:00:00.000001' AND '13:29:59.999999'
             FROM order_flow.notification WHERE order_key = 'bk-1' AND department = 'warehouse'),
          'the warehouse deadline falls into office hours');

-- escalation deadlines count in the calendar too: a sweep on a Friday at 17:45 Shanghai
-- (far ahead, so that every level-1 deadline, counted from now(), is behind it)
SELECT is(order_flow.escalate_due('2099-01-09 17:45+08'), 3, 'the sweep escalates the three notifications');
SELECT results_eq(
    $$SELECT department, to_char(deadline AT TIME ZONE 'Asia/Shanghai', 'Dy HH24:MI')
        FROM order_flow.notification WHERE order_key = 'bk-1' AND level = 2 ORDER BY department$$,
    $$VALUES ('finance', 'Fri 18:15'), ('logistics', 'Fri 18:15'), ('warehouse', 'Sat 09:15')$$,
    'level 2 (30 min): warehouse due Saturday 09:15 (15 min Friday + 15 min Saturday), the others Friday 18:15');
SELECT is(order_flow.escalate_due('2099-01-09 18:16+08'), 2, 'at Friday 18:16 only finance and logistics are overdue');
SELECT is(order_flow.escalate_due('2099-01-10 09:15+08'), 1, 'at Saturday 09:15 warehouse is');
SELECT is((SELECT to_char(deadline AT TIME ZONE 'Asia/Shanghai', 'Dy HH24:MI') FROM order_flow.notification
            WHERE order_key = 'bk-1' AND department = 'warehouse' AND level = 3),
          'Sat 10:15', 'warehouse level 3 (1 h) from Saturday 09:15 -> Saturday 10:15');
SELECT is((SELECT to_char(deadline AT TIME ZONE 'Asia/Shanghai', 'Dy HH24:MI') FROM order_flow.notification
            WHERE order_key = 'bk-1' AND department = 'finance' AND level = 3),
          'Fri 19:16', 'finance level 3 (1 h) from Friday 18:16 -> Friday 19:16');

-- need_info answers go back in the originating department's calendar
UPDATE order_flow.department SET calendar = 'office' WHERE department = 'sales';
UPDATE bk_orders SET status = 'contract_signed' WHERE id = 'bk-2';
CREATE TEMP TABLE ni AS
SELECT order_flow.acknowledge((SELECT id FROM order_flow.notification WHERE order_key = 'bk-2' AND department = 'finance'),
                              'need_info', '{"text": "credit limit?"}') AS id, clock_timestamp() AS at;
SELECT ok((SELECT n.deadline BETWEEN order_flow.business_deadline('office', ni.at - interval '1 second', '15 minutes')
                                 AND order_flow.business_deadline('office', ni.at, '15 minutes')
             FROM order_flow.notification n, ni WHERE n.id = ni.id),
          'the sales need_info notification is due 15 working minutes after the answer (office calendar)');

-- back to 24x7: deadlines count on the wall clock again
UPDATE order_flow.department SET calendar = '24x7' WHERE department IN ('warehouse', 'sales');
SELECT is(order_flow.department_deadline('warehouse', '2025-01-10 17:50+08', '15 minutes'),
          '2025-01-10 18:05+08'::timestamptz, 'a department moved back to 24x7 counts on the wall clock');

-- ------------------------------------------------------ calendar validation
-- run the commit-time checks queued so far once (they pass), so that each
-- check below fires only its own
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS ALL DEFERRED;
SELECT * FROM pg_temp.config_check(
    $$INSERT INTO order_flow.calendar (calendar, time_zone) VALUES ('mars', 'Mars/Olympus_Mons');
      INSERT INTO order_flow.calendar_hours VALUES ('mars', 1, '09:00', '17:00')$$,
    '22023', 'a calendar with an unknown time zone', '%Mars/Olympus_Mons%');
SELECT * FROM pg_temp.config_check($$UPDATE order_flow.calendar SET time_zone = 'Asia/Shangai' WHERE calendar = 'office'$$,
                                   '22023', 'a misspelt time zone');
SELECT * FROM pg_temp.config_check($$INSERT INTO order_flow.calendar_hours VALUES ('office', 1, '11:00', '12:30')$$,
                                   '23514', 'hours overlapping the morning', '%overlapping%');
SELECT * FROM pg_temp.config_check($$INSERT INTO order_flow.calendar_hours VALUES ('office', 2, '08:00', '19:00')$$,
                                   '23514', 'hours containing both windows');
SELECT * FROM pg_temp.config_check($$INSERT INTO order_flow.calendar (calendar, time_zone) VALUES ('empty', 'UTC')$$,
                                   '23514', 'a calendar without hours that is not always open', '%no working hours%');
SELECT * FROM pg_temp.config_check($$DELETE FROM order_flow.calendar_hours WHERE calendar = 'office'$$,
                                   '23514', 'deleting every hour of the office calendar');
SELECT * FROM pg_temp.config_check($$UPDATE order_flow.calendar SET always_open = false WHERE calendar = '24x7'$$,
                                   '23514', '24x7 no longer always open (and it has no hours)');
SELECT * FROM pg_temp.cal_refused($$INSERT INTO order_flow.calendar_hours VALUES ('office', 7, '10:00', '09:00')$$,
                                  '23514', 'opens after closes');
SELECT * FROM pg_temp.cal_refused($$INSERT INTO order_flow.calendar_hours VALUES ('office', 7, '10:00', '10:00')$$,
                                  '23514', 'opens = closes');
SELECT * FROM pg_temp.cal_refused($$INSERT INTO order_flow.calendar_hours VALUES ('office', 8, '09:00', '10:00')$$,
                                  '23514', 'isodow 8');
SELECT * FROM pg_temp.cal_refused($$UPDATE order_flow.department SET calendar = 'moon' WHERE department = 'finance'$$,
                                  '23503', 'a department on an unknown calendar');
SELECT is((pg_temp.outcome($$INSERT INTO order_flow.calendar_hours VALUES ('office', 6, '12:00', '13:00');
                             INSERT INTO order_flow.calendar_hours VALUES ('office', 1, '12:00', '13:30');
                             SET CONSTRAINTS ALL IMMEDIATE$$)).state,
          '00000', 'hours that touch without overlapping are accepted at commit');
SELECT is((pg_temp.outcome($$INSERT INTO order_flow.calendar (calendar, time_zone, always_open) VALUES ('nonstop', 'UTC', true);
                             SET CONSTRAINTS ALL IMMEDIATE$$)).state,
          '00000', 'an always-open calendar needs no hours');
SELECT is((pg_temp.outcome($$INSERT INTO order_flow.calendar (calendar, time_zone) VALUES ('ny', 'America/New_York');
                             INSERT INTO order_flow.calendar_hours VALUES ('ny', 3, '08:00', '16:00');
                             SET CONSTRAINTS ALL IMMEDIATE$$)).state,
          '00000', 'a calendar in another known time zone is accepted at commit');

SELECT is((SELECT count(*)::int FROM order_flow.verify_audit()), 0, 'every chain verifies at the end');

SELECT * FROM finish();
ROLLBACK;
