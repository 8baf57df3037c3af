/*
 * src/sql/pre_install/checkpoints.sql
 *
 * Created once (since 1.2): the witness checkpoints of the audit chains
 * (audit_checkpoint(), verify_audit(checkpoint)).  The 1.1 -> 1.2 update
 * creates them from this same file.
 */

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
