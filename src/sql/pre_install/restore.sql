/*
 * src/sql/pre_install/restore.sql
 *
 * Created once (since 1.2): the rows a parallel restore loaded before the
 * rows they refer to.  The 1.1 -> 1.2 update creates it from this same file.
 */

/*
 * pg_restore -j loads the extension's tables in no fixed order (the order
 * pg_dump writes them in, parents first, only holds for a serial
 * restore).  A row whose parent row has not been loaded yet waits here,
 * and is inserted when the parent's load ends (catalogue.sql:
 * _restore_defer, _restore_replay).  Empty outside a restore.
 */
CREATE TABLE order_flow.restore_pending (
    id              bigserial PRIMARY KEY,
    relid           regclass NOT NULL,
    waits_for       regclass NOT NULL,
    row_data        jsonb NOT NULL,
    stashed_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

COMMENT ON TABLE order_flow.restore_pending IS
    'Rows a parallel restore loaded before their parent rows; inserted when the parent table is loaded (empty outside a restore)';

REVOKE ALL ON order_flow.restore_pending, order_flow.restore_pending_id_seq FROM PUBLIC;

GRANT SELECT ON order_flow.restore_pending TO order_flow_admin;
