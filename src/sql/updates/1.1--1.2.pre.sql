/*
 * src/sql/updates/1.1--1.2.pre.sql
 *
 * 1.1 -> 1.2, before the idempotent sources: what CREATE OR REPLACE
 * cannot do (new tables, changed constraints and table comments, the
 * dropped metrics trigger, the fold's starting watermarks).
 */

/* ------------------------------------------------------------------ */
/* Notifications of deleted orders are closed.                         */
/* ------------------------------------------------------------------ */
ALTER TABLE order_flow.notification DROP CONSTRAINT notification_status_check;

ALTER TABLE order_flow.notification ADD CONSTRAINT notification_status_check
    CHECK (status IN ('pending', 'acknowledged', 'need_info', 'escalated', 'closed'));

COMMENT ON COLUMN order_flow.notification.status IS
    'pending, acknowledged, need_info, escalated, or closed (the order was deleted)';

/* ------------------------------------------------------------------ */
/* Witness checkpoints.                                                */
/* ------------------------------------------------------------------ */
CREATE TABLE order_flow.audit_checkpoint_head (
    checkpoint_id   bigint NOT NULL,
    order_key       text NOT NULL,
    seq             bigint NOT NULL,
    hash            bytea NOT NULL,
    PRIMARY KEY (checkpoint_id, order_key)
);

COMMENT ON TABLE order_flow.audit_checkpoint_head IS
    'Every chain''s last event at each audit_checkpoint(): where verify_audit(checkpoint) looks for shortened or rewritten chains';

CREATE SEQUENCE order_flow.audit_checkpoint_id_seq;

REVOKE ALL ON order_flow.audit_checkpoint_head, order_flow.audit_checkpoint_id_seq FROM PUBLIC;

GRANT SELECT ON order_flow.audit_checkpoint_head TO order_flow_admin;

SELECT pg_catalog.pg_extension_config_dump('order_flow.audit_checkpoint_head', '');

SELECT pg_catalog.pg_extension_config_dump('order_flow.audit_checkpoint_id_seq', '');

/* ------------------------------------------------------------------ */
/* The metrics rollup off the transition path.                         */
/* ------------------------------------------------------------------ */

/*
 * Events are folded into order_fact and exception_fact by the scheduler,
 * within about a second of their commit (order_flow.metrics_fold =
 * 'auto', when a scheduler serves the database, or 'async'), or by the
 * transaction that writes them ('sync'; 'auto' without a scheduler).  The
 * per-order watermark makes every fold exact whoever asks and how often.
 */
CREATE TABLE order_flow.metrics_watermark (
    order_key       text PRIMARY KEY,
    folded_seq      bigint NOT NULL
) WITH (fillfactor = 70);

/* room on the page keeps its updates HOT */
COMMENT ON TABLE order_flow.metrics_watermark IS
    'Per order: the highest sequence number of its audit chain folded into the metrics rollup';

CREATE TABLE order_flow.fold_progress (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    folded_until    timestamptz NOT NULL,
    folded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    orders_folded   bigint NOT NULL DEFAULT 0
);

COMMENT ON TABLE order_flow.fold_progress IS
    'The metrics fold''s position: every event recorded before folded_until is in the rollup';

/* Everything written so far was folded by 1.1's trigger; the hour's overlap is folded again as a no-op. */
INSERT INTO order_flow.fold_progress (folded_until) VALUES (now() - interval '1 hour');

INSERT INTO order_flow.metrics_watermark (order_key, folded_seq)
SELECT e.order_key, max(e.seq) FROM order_flow.audit_log e
 WHERE NOT starts_with(e.order_key, 'order_flow:') AND e.seq IS NOT NULL
 GROUP BY e.order_key;

DROP TRIGGER audit_log_metrics ON order_flow.audit_log;

DROP FUNCTION order_flow._metrics_capture();

COMMENT ON TABLE order_flow.order_fact IS
    'Per-order rollup of the audit log, folded by order_flow.metrics_fold() (see metrics_rebuild)';

REVOKE ALL ON order_flow.metrics_watermark, order_flow.fold_progress FROM PUBLIC;

GRANT SELECT ON order_flow.metrics_watermark, order_flow.fold_progress TO order_flow_admin;
