/*
 * src/sql/pre_install/metrics_fold.sql
 *
 * Created once (since 1.2): the metrics fold's per-order watermarks and
 * its position.  The 1.1 -> 1.2 update creates them from this same file.
 */

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

/* The fold starts an hour back (in an update from 1.1, whose trigger folded everything
   written so far, that hour is folded again as a no-op). */
INSERT INTO order_flow.fold_progress (folded_until) VALUES (now() - interval '1 hour');

REVOKE ALL ON order_flow.metrics_watermark, order_flow.fold_progress FROM PUBLIC;

GRANT SELECT ON order_flow.metrics_watermark, order_flow.fold_progress TO order_flow_admin;
