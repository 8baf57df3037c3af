/*
 * test/demo/mistakes.sql -- the slips of a busy day, and what stops them.
 *
 * Included by demo.sql after the midday pass.  Each attempt runs in its own
 * subtransaction; the refusal (SQLSTATE, message, detail) is logged in
 * replay.refusal and must be the expected one.  Afterwards the audit log,
 * the notifications and every order must be exactly as before: a refused
 * attempt leaves no trace.
 */

RESET ROLE;
SELECT (SELECT count(*) FROM order_flow.audit_log) AS audit_before,
       (SELECT count(*) FROM order_flow.notification) AS notif_before,
       (SELECT md5(string_agg(id || ':' || status, ',' ORDER BY id)) FROM orders) AS orders_before
\gset
SET ROLE erp_app;

DO $$
DECLARE
    signed  integer := (SELECT min(id) FROM orders WHERE status = 'contract_signed');
    quoted  integer := (SELECT min(id) FROM orders WHERE status = 'quoted');
    packed  integer := (SELECT min(id) FROM orders WHERE status = 'packed');
    approved integer := (SELECT min(id) FROM orders WHERE status = 'finance_approved');
    shipped integer := (SELECT min(id) FROM orders WHERE status = 'shipped');
    held    integer := (SELECT min(o.id) FROM orders o JOIN replay.day d USING (id)
                         WHERE o.status = 'on_hold' AND d.incident = 'credit_hold');
    a       record;
    ok      boolean;
    st      text;
    msg     text;
    det     text;
BEGIN
    IF signed IS NULL OR quoted IS NULL OR packed IS NULL OR approved IS NULL
       OR shipped IS NULL OR held IS NULL THEN
        RAISE EXCEPTION 'the replay left no order to make the mistakes on';
    END IF;

    FOR a IN
        SELECT * FROM (VALUES
            ('temp.pack02', '23514', 'ship an order whose contract was only just signed',
             format('UPDATE orders SET status = %L WHERE id = %s', 'shipped', signed)),
            ('zhao.finance', '42501', 'confirm warehouse stock from the finance desk',
             format('UPDATE orders SET status = %L WHERE id = %s', 'warehouse_confirmed', signed)),
            ('qian.logistics', '42501', 'sign a contract from the logistics desk',
             format('UPDATE orders SET status = %L WHERE id = %s', 'contract_signed', quoted)),
            ('zhang.sales', '23514', 'cancel a quoted order without giving a reason',
             format('UPDATE orders SET status = %L WHERE id = %s', 'cancelled', quoted)),
            ('li.warehouse', '22P02', 'type "shiped" into the status field',
             format('UPDATE orders SET status = %L WHERE id = %s', 'shiped', packed)),
            ('zhao.finance', '23514', 'release a credit hold straight to finance_approved',
             format('UPDATE orders SET status = %L WHERE id = %s', 'finance_approved', held)),
            ('qian.logistics', '23514', 'ship all packed orders plus one not yet picked',
             format('UPDATE orders SET status = %L WHERE status = %L OR id = %s',
                    'shipped', 'packed', approved)),
            ('wang.sales', '0A000', 'renumber an order in the ERP',
             format('UPDATE orders SET id = id + 100000 WHERE id = %s', quoted)),
            ('wang.sales', 'P0002', 'move an order number that does not exist',
             format('SELECT order_flow.transition(%L, %L, %L, %L)',
                    'orders', '69999', 'quoted', 'typed the wrong order number')),
            ('qian.logistics', '23514', 'ship an order that is already shipped',
             format('SELECT order_flow.transition(%L, %L, %L)', 'orders', shipped, 'shipped')),
            ('wang.sales', '42501', 'delete an order''s audit trail',
             format('DELETE FROM order_flow.audit_log WHERE order_key = %L', signed))
        ) v(actor, expect, attempt, stmt)
    LOOP
        PERFORM set_config('order_flow.actor', a.actor, true);
        ok := false;
        BEGIN
            EXECUTE a.stmt;
            ok := true;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                    det = PG_EXCEPTION_DETAIL;
            IF st <> a.expect THEN
                RAISE EXCEPTION 'attempt "%" was refused with % (%), not %', a.attempt, st, msg, a.expect;
            END IF;
            INSERT INTO replay.refusal (actor, attempt, sqlstate, message, detail)
            VALUES (a.actor, a.attempt, st, msg, nullif(det, ''));
        END;
        IF ok THEN
            RAISE EXCEPTION 'order_flow accepted a mistake: %', a.attempt;
        END IF;
    END LOOP;
END
$$;

-- Not even the database superuser rewrites history.
RESET ROLE;
DO $$
DECLARE
    a   record;
    ok  boolean;
    st  text;
    msg text;
BEGIN
    FOR a IN
        SELECT * FROM (VALUES
            ('postgres (DBA)', 'delete the audit events of cancelled orders',
             'DELETE FROM order_flow.audit_log WHERE to_state = ''cancelled'''),
            ('postgres (DBA)', 'edit who performed an event',
             'UPDATE order_flow.audit_log SET actor = ''nobody'' WHERE id = 1'),
            ('postgres (DBA)', 'truncate the audit log',
             'TRUNCATE order_flow.audit_log')
        ) v(actor, attempt, stmt)
    LOOP
        ok := false;
        BEGIN
            EXECUTE a.stmt;
            ok := true;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            IF st <> '42501' THEN
                RAISE EXCEPTION 'attempt "%" was refused with % (%), not 42501', a.attempt, st, msg;
            END IF;
            INSERT INTO replay.refusal (actor, attempt, sqlstate, message)
            VALUES (a.actor, a.attempt, st, msg);
        END;
        IF ok THEN
            RAISE EXCEPTION 'the audit log accepted: %', a.attempt;
        END IF;
    END LOOP;
END
$$;

SELECT (SELECT count(*) FROM order_flow.audit_log) AS audit_after,
       (SELECT count(*) FROM order_flow.notification) AS notif_after,
       (SELECT md5(string_agg(id || ':' || status, ',' ORDER BY id)) FROM orders) AS orders_after,
       (SELECT count(*) FROM replay.refusal) AS refused
\gset
SELECT :audit_before = :audit_after AND :notif_before = :notif_after
       AND :'orders_before' = :'orders_after' AS no_trace
\gset
SELECT format('    %s attempts refused; audit events %s -> %s, notifications %s -> %s, orders %s',
              :refused, :audit_before, :audit_after, :notif_before, :notif_after,
              CASE WHEN :'orders_before' = :'orders_after' THEN 'unchanged' ELSE 'CHANGED' END) AS line \gset
\echo :line
\if :no_trace
\echo '    no trace left by any of them'
\else
\echo '    REFUSED ATTEMPTS LEFT A TRACE'
SELECT 1 / 0 AS refused_attempts_left_a_trace;
\endif
SET ROLE erp_app;
