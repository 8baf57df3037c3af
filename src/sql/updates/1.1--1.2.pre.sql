/*
 * src/sql/updates/1.1--1.2.pre.sql
 *
 * 1.1 -> 1.2, before the idempotent sources: what CREATE OR REPLACE
 * cannot do (a changed constraint and table comments, the dropped metrics
 * trigger, the internal helpers moved to their own schema).  The new tables come from pre_install/checkpoints.sql and
 * pre_install/metrics_fold.sql, applied next.
 */

/*
 * min/max move to pg_catalog with the comparison operators (which
 * pre_install/status_ops.sql moves, for this update as for a fresh
 * install): found whatever a client's search_path.
 */
ALTER AGGREGATE order_flow.max(order_flow.status) SET SCHEMA pg_catalog;
ALTER AGGREGATE order_flow.min(order_flow.status) SET SCHEMA pg_catalog;

/* the reporting role (its privileges are restated with the others) */
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'order_flow_reader') THEN
        CREATE ROLE order_flow_reader NOLOGIN;
    END IF;
END
$roles$;

/* ------------------------------------------------------------------ */
/* Notifications of deleted orders are closed.                         */
/* ------------------------------------------------------------------ */
ALTER TABLE order_flow.notification DROP CONSTRAINT notification_status_check;

ALTER TABLE order_flow.notification ADD CONSTRAINT notification_status_check
    CHECK (status IN ('pending', 'acknowledged', 'need_info', 'escalated', 'closed'));

COMMENT ON COLUMN order_flow.notification.status IS
    'pending, acknowledged, need_info, escalated, or closed (the order was deleted)';

/* ------------------------------------------------------------------ */
/* Every table has a primary key or a replica identity, so a           */
/* FOR ALL TABLES publication changes nothing for the workflow.        */
/* ------------------------------------------------------------------ */
/* events have always been numbered per order; the unique index becomes the key */
ALTER TABLE order_flow.audit_log ALTER COLUMN seq SET NOT NULL;
ALTER TABLE order_flow.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY USING INDEX audit_log_order_seq_idx;
/* the rows a transition writes are keyed by the order (they can live on its shard) */
ALTER TABLE order_flow.notification ADD CONSTRAINT notification_pkey PRIMARY KEY (order_key, id);
DROP INDEX order_flow.notification_order_idx;
DROP INDEX order_flow.notification_id_idx;
CREATE INDEX notification_id_idx ON order_flow.notification (id);
ALTER TABLE order_flow.outbox ADD CONSTRAINT outbox_pkey PRIMARY KEY (order_key, id);
/* the relay contract: what a message announces, its place in the chain, its lease */
ALTER TABLE order_flow.outbox ADD COLUMN kind text, ADD COLUMN event_seq bigint,
    ADD COLUMN claimed_by text, ADD COLUMN lease_until timestamptz;
ALTER TABLE order_flow.refused_attempt ADD CONSTRAINT refused_attempt_pkey PRIMARY KEY (id);
ALTER TABLE order_flow.kpi_dirty ADD CONSTRAINT kpi_dirty_pkey PRIMARY KEY (id);
ALTER TABLE order_flow.exception_fact REPLICA IDENTITY FULL;

/*
 * A state's name enters the dictionary through the state_label trigger;
 * the foreign key on top of it made a parallel restore fail whenever the
 * states were loaded before the dictionary.
 */
ALTER TABLE order_flow.state DROP CONSTRAINT state_state_fkey;

/*
 * An edge's performed_by of no department ('{}', '{NULL}') is now refused:
 * allowed_transitions() read it as "no one", the trigger as "anyone".  The
 * trigger's reading is what such an edge did: it becomes NULL (anyone).
 * (An audited configuration change, like any other.)
 */
UPDATE order_flow.transition_rule r SET performed_by = NULL
 WHERE r.performed_by IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM unnest(r.performed_by) p WHERE p IS NOT NULL);

/* unmanage() gained convert_status (a new signature) */
DROP FUNCTION order_flow.unmanage(regclass);

/* worker_status() gained no_worker_slot (a new result type) */
DROP FUNCTION order_flow.worker_status();

/* 1.2 folds the metrics off the transition path (metrics_fold.sql creates its tables). */
DROP TRIGGER audit_log_metrics ON order_flow.audit_log;

DROP FUNCTION order_flow._metrics_capture();

COMMENT ON TABLE order_flow.order_fact IS
    'Per-order rollup of the audit log, folded by order_flow.metrics_fold() (see metrics_rebuild)';

/*
 * The internal helpers move to schema _order_flow (pre_install/internal.sql
 * says which), so that \df order_flow.* lists the public API.  They keep
 * their OIDs, so the operators, casts, aggregates, triggers and the type
 * that use them follow; the sources then replace them in place.  Last in
 * this file: the statements above still name them in order_flow.
 */
CREATE SCHEMA _order_flow;

DO $move$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.prokind
          FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_depend d
            ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
           AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'order_flow')
         WHERE p.pronamespace = 'order_flow'::regnamespace
           AND ((p.proname ~ '^_' AND p.proname NOT IN ('_transition_trigger', '_refuse_truncate'))
                OR p.proname ~ '^status_'
                OR p.proname ~ '^text_(lt|le|gt|ge)_status$')
         ORDER BY p.oid
    LOOP
        EXECUTE format('ALTER %s %s SET SCHEMA _order_flow',
                       CASE WHEN f.prokind = 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, f.sig);
    END LOOP;
END
$move$;
