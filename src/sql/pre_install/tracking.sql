/*
 * src/sql/pre_install/tracking.sql
 *
 * Created once: managed tables, order tracking (the chain heads), the
 * audit log, notifications, outbox, refused attempts, configuration
 * tombstones and audit checkpoints.
 */

/* ------------------------------------------------------------------ */
/* Managed tables, order tracking, audit log, notifications.           */
/* ------------------------------------------------------------------ */
CREATE TABLE order_flow.managed_table (
    relid           regclass PRIMARY KEY,
    tbl             text NOT NULL UNIQUE,
    key_column      name NOT NULL,
    status_column   name NOT NULL,
    workflow        text NOT NULL REFERENCES order_flow.workflow ON UPDATE CASCADE,
    customer_column name,
    attributes      name[] NOT NULL DEFAULT '{}',
    managed_at      timestamptz NOT NULL DEFAULT now()
);

/*
 * One row per order known to the extension: the head of its audit chain,
 * its current state and the stamped times.  Keyed (and distributable) by
 * order_key.
 */
CREATE TABLE order_flow.tracked_order (
    order_key       text PRIMARY KEY,
    tbl             text,
    workflow        text,
    state           text,
    held_from       text,
    entered_at      timestamptz,
    last_seq        bigint NOT NULL DEFAULT 0,
    last_hash       bytea,
    last_occurred_at timestamptz,
    reminder_level  integer NOT NULL DEFAULT 0,
    stale_after     timestamptz,
    customer_key    text,
    attributes      jsonb NOT NULL DEFAULT '{}',
    adopted_at      timestamptz,
    created_at      timestamptz,
    contract_signed_at     timestamptz,
    warehouse_confirmed_at timestamptz,
    finance_approved_at    timestamptz,
    shipped_at             timestamptz
);

/* Every transition changes state and entered_at, so the updates are not HOT:
   each index here costs every transition.  Keep them few. */
/* Only the primary key is indexed, so the update every transition makes to
   the order's row is HOT (fillfactor leaves the room it needs); reminders
   are found by a scan the worker runs once per naptime. */
ALTER TABLE order_flow.tracked_order SET (fillfactor = 80);

CREATE TABLE order_flow.audit_log (
    id              bigserial NOT NULL,
    order_key       text NOT NULL,
    seq             bigint NOT NULL,
    action          text NOT NULL,
    from_state      text,
    to_state        text,
    actor           text NOT NULL DEFAULT session_user,
    db_user         text NOT NULL DEFAULT current_user,
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    details         jsonb NOT NULL DEFAULT '{}',
    prev_hash       bytea,
    hash            bytea,
    /* an event is the seq-th of its order's chain: its identity, and the replica identity */
    CONSTRAINT audit_log_pkey PRIMARY KEY (order_key, seq)
);

COMMENT ON COLUMN order_flow.tracked_order.stale_after IS
    'When the next stale-order reminder is due (entered_at + max_dwell x the next reminder factor); NULL in terminal states';

COMMENT ON TABLE order_flow.audit_log IS
    'Append-only event log, hash-chained per order; the single source of truth for metrics';

ALTER SEQUENCE order_flow.audit_log_id_seq CACHE 32;

/* search by order, by actor, by time range (BRIN: events arrive in time order) */

CREATE INDEX audit_log_actor_idx ON order_flow.audit_log (actor, occurred_at);

CREATE INDEX audit_log_time_idx ON order_flow.audit_log USING brin (occurred_at, recorded_at);

CREATE TABLE order_flow.notification (
    id              bigserial NOT NULL,
    order_key       text NOT NULL,
    department      text NOT NULL,
    level           integer NOT NULL DEFAULT 1,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'acknowledged', 'need_info', 'escalated', 'closed')),
    deadline        timestamptz NOT NULL DEFAULT now() + interval '15 minutes',
    payload         jsonb NOT NULL DEFAULT '{}',
    kind            text NOT NULL DEFAULT 'ack_request',
    from_state      text,
    to_state        text,
    event_seq       bigint,
    parent_id       bigint,
    escalates       boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    answered_at     timestamptz,
    answered_by     text,
    response        jsonb,
    /* keyed by the order, so a notification lives on its order's shard */
    CONSTRAINT notification_pkey PRIMARY KEY (order_key, id)
);

ALTER SEQUENCE order_flow.notification_id_seq CACHE 32;

COMMENT ON COLUMN order_flow.notification.status IS
    'pending, acknowledged, need_info, escalated, or closed (the order was deleted)';


/* acknowledge(notification_id) finds a notification by its id alone; the
   ids are unique (one sequence), but only the key with the order is a
   constraint, which is what a table distributed by order can enforce */
CREATE INDEX notification_id_idx ON order_flow.notification (id);

CREATE INDEX notification_due_idx ON order_flow.notification (deadline)
    WHERE status = 'pending' AND escalates;

CREATE TABLE order_flow.outbox (
    id              bigserial NOT NULL,
    order_key       text NOT NULL,
    notification_id bigint,
    channel         text NOT NULL DEFAULT 'order_flow',
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    /* what the message announces, and where in the order's chain (NULL before 1.2) */
    kind            text,
    event_seq       bigint,
    /* outbox_claim(): the relay holding it, until when */
    claimed_by      text,
    lease_until     timestamptz,
    /* keyed by the order, so a message lives on its order's shard */
    CONSTRAINT outbox_pkey PRIMARY KEY (order_key, id)
);

ALTER SEQUENCE order_flow.outbox_id_seq CACHE 32;

CREATE INDEX outbox_undelivered_idx ON order_flow.outbox (id) WHERE delivered_at IS NULL;

CREATE TABLE order_flow.refused_attempt (
    id              bigserial NOT NULL,
    attempted_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor           text,
    db_user         text,
    tbl             text,
    order_key       text,
    from_state      text,
    to_state        text,
    sqlstate        text,
    reason          text,
    CONSTRAINT refused_attempt_pkey PRIMARY KEY (id)
);

CREATE INDEX refused_attempt_time_idx ON order_flow.refused_attempt (attempted_at);

SELECT pg_catalog.pg_extension_config_dump('order_flow.managed_table', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.tracked_order', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.audit_log', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.audit_log_id_seq', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.notification', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.notification_id_seq', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.outbox', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.outbox_id_seq', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.refused_attempt', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.refused_attempt_id_seq', '');

