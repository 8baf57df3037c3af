/*
 * src/sql/pre_install/catalogue.sql
 *
 * Created once: the workflow catalogue's tables (calendars, workflows,
 * departments, states, transition rules, members, escalation and reminder
 * policies) and the shipped b2b_order workflow.
 */

/* ------------------------------------------------------------------ */
/* Workflow catalogue.                                                 */
/* ------------------------------------------------------------------ */
CREATE TABLE order_flow.calendar (
    calendar        text PRIMARY KEY,
    time_zone       text NOT NULL DEFAULT 'UTC',
    always_open     boolean NOT NULL DEFAULT false,
    description     text NOT NULL DEFAULT ''
);

CREATE TABLE order_flow.calendar_hours (
    calendar        text NOT NULL REFERENCES order_flow.calendar ON UPDATE CASCADE ON DELETE CASCADE,
    isodow          integer NOT NULL CHECK (isodow BETWEEN 1 AND 7),
    opens           time NOT NULL,
    closes          time NOT NULL,
    PRIMARY KEY (calendar, isodow, opens),
    CHECK (opens < closes)
);

CREATE TABLE order_flow.calendar_holiday (
    calendar        text NOT NULL REFERENCES order_flow.calendar ON UPDATE CASCADE ON DELETE CASCADE,
    day             date NOT NULL,
    description     text NOT NULL DEFAULT '',
    PRIMARY KEY (calendar, day)
);

CREATE TABLE order_flow.workflow (
    workflow        text PRIMARY KEY CHECK (workflow ~ '^[a-z][a-z0-9_]{0,62}$'),
    description     text NOT NULL DEFAULT ''
);

CREATE TABLE order_flow.department (
    department      text PRIMARY KEY CHECK (department ~ '^[a-z][a-z0-9_]{0,62}$'),
    name            text NOT NULL DEFAULT '',
    calendar        text NOT NULL DEFAULT '24x7' REFERENCES order_flow.calendar ON UPDATE CASCADE
);

CREATE TABLE order_flow.state (
    workflow        text NOT NULL REFERENCES order_flow.workflow ON UPDATE CASCADE ON DELETE CASCADE,
    state           text NOT NULL,      -- in order_flow.status_label: the state_label trigger adds it
    category        text NOT NULL DEFAULT 'active'
                    CHECK (category IN ('initial', 'active', 'exception', 'terminal')),
    owner_department text REFERENCES order_flow.department ON UPDATE CASCADE,
    max_dwell       interval DEFAULT '48 hours' CHECK (max_dwell > interval '0'),
    stamps          text CHECK (stamps IN ('contract_signed', 'warehouse_confirmed',
                                           'finance_approved', 'shipped')),
    resumes_to_origin boolean NOT NULL DEFAULT false,
    exception_type  text,
    description     text NOT NULL DEFAULT '',
    PRIMARY KEY (workflow, state)
);

COMMENT ON COLUMN order_flow.state.max_dwell IS
    'The "cannot wait" threshold: an order longer than this in the state is stale';

COMMENT ON COLUMN order_flow.state.resumes_to_origin IS
    'A holding state: the order may leave it only back to the state it came from (or by an explicit edge)';

CREATE TABLE order_flow.transition_rule (
    workflow        text NOT NULL,
    from_state      text NOT NULL,
    to_state        text NOT NULL,
    notify          text[],
    ack_within      interval NOT NULL DEFAULT '15 minutes' CHECK (ack_within > interval '0'),
    performed_by    text[],
    reason_required boolean NOT NULL DEFAULT false,
    exception_type  text,
    origin_department text REFERENCES order_flow.department ON UPDATE CASCADE,
    PRIMARY KEY (workflow, from_state, to_state),
    FOREIGN KEY (workflow, from_state) REFERENCES order_flow.state ON UPDATE CASCADE ON DELETE CASCADE,
    FOREIGN KEY (workflow, to_state) REFERENCES order_flow.state ON UPDATE CASCADE ON DELETE CASCADE,
    CHECK (from_state <> to_state)
);

COMMENT ON COLUMN order_flow.transition_rule.notify IS
    'Departments that must acknowledge entry by this edge (NULL or empty: none)';

COMMENT ON COLUMN order_flow.transition_rule.performed_by IS
    'Departments whose members may take this edge (NULL: any actor)';

CREATE TABLE order_flow.member (
    actor           text NOT NULL,
    department      text NOT NULL REFERENCES order_flow.department ON UPDATE CASCADE ON DELETE CASCADE,
    level           integer NOT NULL DEFAULT 1 CHECK (level BETWEEN 1 AND 9),
    PRIMARY KEY (actor, department, level)
);

COMMENT ON COLUMN order_flow.member.level IS
    '1 = staff / supervisor, 2 = manager, 3 = director: the escalation level this member answers';

CREATE TABLE order_flow.escalation_policy (
    department      text NOT NULL REFERENCES order_flow.department ON UPDATE CASCADE ON DELETE CASCADE,
    level           integer NOT NULL CHECK (level >= 1),
    title           text NOT NULL,
    delay           interval NOT NULL CHECK (delay > interval '0'),
    PRIMARY KEY (department, level)
);

CREATE TABLE order_flow.reminder_policy (
    workflow        text NOT NULL REFERENCES order_flow.workflow ON UPDATE CASCADE ON DELETE CASCADE,
    level           integer NOT NULL CHECK (level >= 1),
    factor          numeric NOT NULL CHECK (factor > 0),
    PRIMARY KEY (workflow, level)
);

/*
 * Deleted configuration rows leave a tombstone, dumped with the rest: a
 * restore re-creates the shipped rows first, and the tombstone, reloaded,
 * deletes the row again.  Re-inserting the row lifts its tombstone.
 */
CREATE TABLE order_flow.config_tombstone (
    tbl             text NOT NULL,
    pk              jsonb NOT NULL,
    deleted_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tbl, pk)
);

/* ------------------------------------------------------------------ */
/* The shipped workflow: b2b_order.                                    */
/* ------------------------------------------------------------------ */
INSERT INTO order_flow.calendar (calendar, time_zone, always_open, description) VALUES
    ('24x7', 'UTC', true, 'Always open: SLA clocks run on the wall clock'),
    ('office', 'Asia/Shanghai', false, 'Mon-Fri 09:00-12:00 and 13:30-18:00, Sat 09:00-12:00');

INSERT INTO order_flow.calendar_hours (calendar, isodow, opens, closes)
SELECT 'office', d, h.o, h.c
  FROM generate_series(1, 5) d,
       (VALUES (time '09:00', time '12:00'), (time '13:30', time '18:00')) h(o, c)
UNION ALL
SELECT 'office', 6, time '09:00', time '12:00';

INSERT INTO order_flow.workflow (workflow, description) VALUES
    ('b2b_order', 'B2B wholesale order: inquiry to archive across six departments');

INSERT INTO order_flow.department (department, name) VALUES
    ('sales', 'Sales'),
    ('commerce', 'Commerce (contracts and pricing)'),
    ('warehouse', 'Warehouse'),
    ('finance', 'Finance'),
    ('logistics', 'Logistics'),
    ('after_sales', 'After-sales service');

INSERT INTO order_flow.status_label (label, sort_position)
SELECT label, (ord * 65536)::integer
  FROM unnest(ARRAY[
    'inquiry', 'quoted', 'contract_signed', 'need_info', 'warehouse_confirmed',
    'stock_shortage', 'finance_approved', 'scheduled', 'picking', 'packed',
    'shipped', 'in_transit', 'delivered', 'rework', 'returned', 'accepted',
    'invoiced', 'paid', 'archived', 'on_hold', 'cancelled']) WITH ORDINALITY AS t(label, ord);

INSERT INTO order_flow.state (workflow, state, category, owner_department, stamps,
                              resumes_to_origin, exception_type, description) VALUES
    ('b2b_order', 'inquiry',             'initial',   'sales',       NULL, false, NULL, 'Customer inquiry received'),
    ('b2b_order', 'quoted',              'active',    'commerce',    NULL, false, NULL, 'Quotation sent'),
    ('b2b_order', 'contract_signed',     'active',    'sales',       'contract_signed', false, NULL, 'Contract signed: broadcast to warehouse, finance, logistics'),
    ('b2b_order', 'need_info',           'exception', 'sales',       NULL, false, 'missing_information', 'A department needs more information from sales'),
    ('b2b_order', 'warehouse_confirmed', 'active',    'warehouse',   'warehouse_confirmed', false, NULL, 'Warehouse confirmed stock'),
    ('b2b_order', 'stock_shortage',      'exception', 'warehouse',   NULL, false, 'stock_shortage', 'Stock short: substitute or wait'),
    ('b2b_order', 'finance_approved',    'active',    'finance',     'finance_approved', false, NULL, 'Credit and payment terms approved'),
    ('b2b_order', 'scheduled',           'active',    'logistics',   NULL, false, NULL, 'Shipment scheduled'),
    ('b2b_order', 'picking',             'active',    'warehouse',   NULL, false, NULL, 'Being picked'),
    ('b2b_order', 'packed',              'active',    'warehouse',   NULL, false, NULL, 'Packed, ready to ship'),
    ('b2b_order', 'shipped',             'active',    'logistics',   'shipped', false, NULL, 'Handed to the carrier'),
    ('b2b_order', 'in_transit',          'active',    'logistics',   NULL, false, NULL, 'Carrier reports movement'),
    ('b2b_order', 'delivered',           'active',    'logistics',   NULL, false, NULL, 'Delivered to the customer'),
    ('b2b_order', 'rework',              'exception', 'after_sales', NULL, false, 'rework', 'Delivery rejected: rework or reshipment'),
    ('b2b_order', 'returned',            'exception', 'after_sales', NULL, false, 'return', 'Goods returned'),
    ('b2b_order', 'accepted',            'active',    'after_sales', NULL, false, NULL, 'Customer accepted the delivery'),
    ('b2b_order', 'invoiced',            'active',    'finance',     NULL, false, NULL, 'Invoice issued'),
    ('b2b_order', 'paid',                'active',    'finance',     NULL, false, NULL, 'Payment received'),
    ('b2b_order', 'archived',            'terminal',  'finance',     NULL, false, NULL, 'Closed and archived'),
    ('b2b_order', 'on_hold',             'exception', 'commerce',    NULL, true,  'on_hold', 'Held; resumes only to the state it was held from'),
    ('b2b_order', 'cancelled',           'terminal',  'sales',       NULL, false, 'cancelled', 'Cancelled');

INSERT INTO order_flow.transition_rule (workflow, from_state, to_state, notify, ack_within,
                                        performed_by, reason_required, exception_type,
                                        origin_department)
SELECT 'b2b_order', f, t, n, coalesce(a, interval '15 minutes'), p, coalesce(r, false), e, o
  FROM (VALUES
    -- the main path
    ('inquiry', 'quoted', NULL::text[], NULL::interval, '{sales,commerce}'::text[], NULL::boolean, NULL::text, NULL::text),
    ('quoted', 'contract_signed', '{warehouse,finance,logistics}', interval '15 minutes', '{sales,commerce}', NULL, NULL, 'sales'),
    ('contract_signed', 'warehouse_confirmed', NULL, NULL, '{warehouse}', NULL, NULL, NULL),
    ('warehouse_confirmed', 'finance_approved', NULL, NULL, '{finance}', NULL, NULL, NULL),
    ('finance_approved', 'scheduled', '{warehouse}', interval '30 minutes', '{logistics}', NULL, NULL, 'logistics'),
    ('finance_approved', 'picking', NULL, NULL, '{warehouse}', NULL, NULL, NULL),
    ('scheduled', 'picking', NULL, NULL, '{warehouse}', NULL, NULL, NULL),
    ('picking', 'packed', NULL, NULL, '{warehouse}', NULL, NULL, NULL),
    ('picking', 'shipped', '{sales}', interval '1 hour', '{warehouse,logistics}', NULL, NULL, 'logistics'),
    ('packed', 'shipped', '{sales}', interval '1 hour', '{warehouse,logistics}', NULL, NULL, 'logistics'),
    ('shipped', 'in_transit', NULL, NULL, '{logistics}', NULL, NULL, NULL),
    ('in_transit', 'delivered', NULL, NULL, '{logistics}', NULL, NULL, NULL),
    ('delivered', 'accepted', NULL, NULL, '{after_sales,sales}', NULL, NULL, NULL),
    ('accepted', 'invoiced', NULL, NULL, '{finance}', NULL, NULL, NULL),
    ('invoiced', 'paid', NULL, NULL, '{finance}', NULL, NULL, NULL),
    ('paid', 'archived', NULL, NULL, '{finance}', NULL, NULL, NULL),
    -- exceptions
    ('contract_signed', 'need_info', '{sales}', interval '30 minutes', '{warehouse,finance,logistics}', true, 'missing_information', 'sales'),
    ('need_info', 'contract_signed', '{warehouse,finance,logistics}', interval '15 minutes', '{sales}', NULL, NULL, 'sales'),
    ('contract_signed', 'stock_shortage', '{sales,commerce}', interval '30 minutes', '{warehouse}', true, 'stock_shortage', 'warehouse'),
    ('stock_shortage', 'warehouse_confirmed', NULL, NULL, '{warehouse}', NULL, NULL, NULL),
    ('delivered', 'rework', '{warehouse,after_sales}', interval '1 hour', '{after_sales,sales}', true, 'rework', 'after_sales'),
    ('rework', 'shipped', '{sales}', interval '1 hour', '{warehouse,logistics}', NULL, NULL, 'logistics'),
    ('delivered', 'returned', '{warehouse,finance}', interval '1 hour', '{after_sales,sales}', true, 'return', 'after_sales'),
    ('returned', 'archived', NULL, NULL, '{finance,after_sales}', NULL, NULL, NULL),
    -- holds: from every active pre-shipment state; leaving returns to the origin
    ('quoted', 'on_hold', NULL, NULL, '{sales,commerce,finance}', true, 'on_hold', NULL),
    ('contract_signed', 'on_hold', NULL, NULL, '{sales,commerce,finance}', true, 'on_hold', NULL),
    ('warehouse_confirmed', 'on_hold', NULL, NULL, '{sales,commerce,finance}', true, 'on_hold', NULL),
    ('finance_approved', 'on_hold', NULL, NULL, '{sales,commerce,finance}', true, 'on_hold', NULL),
    ('scheduled', 'on_hold', NULL, NULL, '{sales,commerce,finance}', true, 'on_hold', NULL),
    -- cancellations
    ('inquiry', 'cancelled', NULL, NULL, '{sales}', true, 'cancelled', NULL),
    ('quoted', 'cancelled', NULL, NULL, '{sales,commerce}', true, 'cancelled', NULL),
    ('contract_signed', 'cancelled', '{warehouse,finance,logistics}', interval '15 minutes', '{sales,commerce}', true, 'cancelled', 'sales'),
    ('on_hold', 'cancelled', '{warehouse,finance,logistics}', interval '15 minutes', '{sales,commerce}', true, 'cancelled', 'sales')
  ) AS v(f, t, n, a, p, r, e, o);

INSERT INTO order_flow.escalation_policy (department, level, title, delay)
SELECT d.department, l.level, l.title, l.delay
  FROM order_flow.department d,
       (VALUES (1, 'supervisor', interval '15 minutes'),
               (2, 'manager', interval '30 minutes'),
               (3, 'director', interval '1 hour')) AS l(level, title, delay);

INSERT INTO order_flow.reminder_policy (workflow, level, factor) VALUES
    ('b2b_order', 1, 1.0), ('b2b_order', 2, 1.5), ('b2b_order', 3, 2.0);

SELECT pg_catalog.pg_extension_config_dump('order_flow.calendar', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.calendar_hours', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.calendar_holiday', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.workflow', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.department', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.state', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.transition_rule', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.member', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.escalation_policy', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.reminder_policy', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.config_tombstone', '');
