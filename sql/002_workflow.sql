--
-- 002_workflow: a guided tour (SPEC 3.2, 3.3, 3.5).
-- Manage a table, move orders, see what is refused and why, hold and
-- resume, read the audit log and verify it.
--
\set SHOW_CONTEXT never
-- the tour acts as one named person; rights are judged on this actor
SET order_flow.actor = 'tour_guide';

-- an ERP table that already holds two orders
CREATE TABLE sales_order (
    order_no  text PRIMARY KEY,
    status    order_flow.status NOT NULL DEFAULT 'inquiry',
    customer  text NOT NULL,
    region    text,
    amount    numeric
);
INSERT INTO sales_order VALUES ('SO-1', 'inquiry', 'Acme', 'north', 1200),
                               ('SO-2', 'quoted', 'Globex', 'south', 300);

-- attach the shipped b2b_order workflow
SELECT order_flow.manage('sales_order', key_column => 'order_no', customer_column => 'customer',
                         attributes => '{region,amount}');
-- existing rows are adopted in their current state; adoption is not an event
SELECT order_key, state, customer_key, attributes, last_seq
  FROM order_flow.tracked_order WHERE tbl = 'public.sales_order' ORDER BY order_key;
SELECT count(*) AS order_events FROM order_flow.audit_log WHERE order_key LIKE 'SO-%';

-- a new order starts in the initial state and writes a created event
INSERT INTO sales_order VALUES ('SO-3', 'inquiry', 'Initech', 'east', 50);
SELECT seq, action, from_state, to_state, details FROM order_flow.audit_log WHERE order_key = 'SO-3';

-- what may happen next?
SELECT * FROM order_flow.allowed_transitions('sales_order', 'SO-1');

-- move by a plain UPDATE, or by transition() with a note: the same path
UPDATE sales_order SET status = 'quoted' WHERE order_no = 'SO-1';
SELECT order_flow.transition('sales_order', 'SO-1', 'contract_signed', 'signed at the trade fair');
SELECT order_no, status FROM sales_order WHERE order_no = 'SO-1';

-- contract_signed is broadcast: warehouse, finance and logistics must acknowledge
SELECT n.department, n.level, n.status, n.from_state, n.to_state,
       n.deadline = a.recorded_at + interval '15 minutes' AS due_in_15_minutes
  FROM order_flow.notification n
  JOIN order_flow.audit_log a ON a.order_key = n.order_key AND a.seq = n.event_seq
 WHERE n.order_key = 'SO-1' ORDER BY n.department;
SELECT count(*) AS outbox_rows FROM order_flow.outbox WHERE order_key = 'SO-1';

-- an invalid edge is refused; the DETAIL lists the allowed next states
UPDATE sales_order SET status = 'shipped' WHERE order_no = 'SO-1';
\echo :LAST_ERROR_SQLSTATE
-- so is an unknown state name, a NULL status and a changed key
UPDATE sales_order SET status = 'shiped' WHERE order_no = 'SO-1';
\echo :LAST_ERROR_SQLSTATE
UPDATE sales_order SET status = NULL WHERE order_no = 'SO-1';
\echo :LAST_ERROR_SQLSTATE
UPDATE sales_order SET order_no = 'SO-9' WHERE order_no = 'SO-1';
\echo :LAST_ERROR_SQLSTATE
-- transition() reports a missing order and a move to the current state
SELECT order_flow.transition('sales_order', 'SO-404', 'quoted');
\echo :LAST_ERROR_SQLSTATE
SELECT order_flow.transition('sales_order', 'SO-1', 'contract_signed');
\echo :LAST_ERROR_SQLSTATE
-- nothing of that was written
SELECT count(*) AS events_of_so1 FROM order_flow.audit_log WHERE order_key = 'SO-1';

-- putting an order on hold needs a reason
SELECT order_flow.transition('sales_order', 'SO-1', 'on_hold');
\echo :LAST_ERROR_SQLSTATE
SELECT order_flow.transition('sales_order', 'SO-1', 'on_hold', 'customer asked to wait');
SELECT state, held_from FROM order_flow.tracked_order WHERE order_key = 'SO-1';
-- a held order resumes only to where it was held from
SELECT * FROM order_flow.allowed_transitions('sales_order', 'SO-1');
UPDATE sales_order SET status = 'warehouse_confirmed' WHERE order_no = 'SO-1';
\echo :LAST_ERROR_SQLSTATE
UPDATE sales_order SET status = 'contract_signed' WHERE order_no = 'SO-1';
SELECT state, held_from FROM order_flow.tracked_order WHERE order_key = 'SO-1';

-- setting the state an order is already in is not a transition
UPDATE sales_order SET status = 'contract_signed' WHERE order_no = 'SO-1';
SELECT count(*) AS events_of_so1 FROM order_flow.audit_log WHERE order_key = 'SO-1';

-- on to shipping; a reason for a plain UPDATE can come from a setting
UPDATE sales_order SET status = 'warehouse_confirmed' WHERE order_no = 'SO-1';
UPDATE sales_order SET status = 'finance_approved' WHERE order_no = 'SO-1';
UPDATE sales_order SET status = 'picking' WHERE order_no = 'SO-1';
UPDATE sales_order SET status = 'packed' WHERE order_no = 'SO-1';
UPDATE sales_order SET status = 'shipped' WHERE order_no = 'SO-1';
SET order_flow.reason = 'duplicate of SO-1';
UPDATE sales_order SET status = 'cancelled' WHERE order_no = 'SO-3';
RESET order_flow.reason;

-- the four core times are stamped when their states are first entered
SELECT order_key,
       contract_signed_at IS NOT NULL AS contract_signed,
       warehouse_confirmed_at IS NOT NULL AS warehouse_confirmed,
       finance_approved_at IS NOT NULL AS finance_approved,
       shipped_at IS NOT NULL AS shipped,
       contract_signed_at <= warehouse_confirmed_at AND warehouse_confirmed_at <= finance_approved_at
         AND finance_approved_at <= shipped_at AS in_order
  FROM order_flow.tracked_order WHERE tbl = 'public.sales_order' ORDER BY order_key;

-- the audit log: one event per change, hash-chained per order
SELECT order_key, seq, action, from_state, to_state, actor,
       details - 'attributes' - 'customer' AS details,
       prev_hash IS NOT NULL AS linked
  FROM order_flow.audit_log WHERE order_key LIKE 'SO-%' ORDER BY order_key, seq;
-- every configuration change is audited too (manage() registered the table)
SELECT action, details->>'table' AS config_table, details->>'op' AS op
  FROM order_flow.audit_log WHERE order_key = 'order_flow:config' AND details->>'table' = 'managed_table'
 ORDER BY seq;

-- the log is append-only, even for a superuser
UPDATE order_flow.audit_log SET details = '{}' WHERE order_key = 'SO-1';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM order_flow.audit_log WHERE order_key = 'SO-1';
\echo :LAST_ERROR_SQLSTATE
-- and every chain verifies: no rows means intact
SELECT * FROM order_flow.verify_audit();

-- detaching keeps the history
SELECT order_flow.unmanage('sales_order');
SELECT count(*) AS events_kept FROM order_flow.audit_log WHERE order_key LIKE 'SO-%';
DROP TABLE sales_order;
RESET order_flow.actor;
