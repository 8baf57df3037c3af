/*
 * src/sql/pre_install/citus.sql
 *
 * Created once (since 1.2): the stage through which the coordinator of a
 * Citus cluster folds the events of distributed tables' orders into its
 * metrics rollup (_citus_metrics_fold(), src/sql/citus.sql).  The 1.1 ->
 * 1.2 update creates it from this same file.
 */

/*
 * Rows live here only inside the fold's own transaction: copied from the
 * companion logs on the workers, folded by _metrics_fold_orders() (which
 * reads the log and this stage alike), then deleted.  Empty otherwise, and
 * on a server without Citus always.
 */
CREATE TABLE order_flow.citus_fold_stage (
    order_key       text NOT NULL,
    id              bigint NOT NULL,
    seq             bigint NOT NULL,
    action          text NOT NULL,
    from_state      text,
    to_state        text,
    occurred_at     timestamptz,
    details         jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT citus_fold_stage_pkey PRIMARY KEY (order_key, seq)
);

COMMENT ON TABLE order_flow.citus_fold_stage IS
    'Events of distributed tables'' orders on their way into the metrics rollup (Citus coordinator; empty outside a fold)';
