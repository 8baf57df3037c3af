/*
 * src/sql/pre_install/status.sql
 *
 * Created once: the order_flow_admin role, the status dictionary, the
 * status type with its I/O, comparison and hash functions, operators,
 * operator classes and casts.
 */

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'order_flow_admin') THEN
        CREATE ROLE order_flow_admin NOLOGIN;
    END IF;
    /* reporting: what a BI tool reads (privileges.sql) */
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'order_flow_reader') THEN
        CREATE ROLE order_flow_reader NOLOGIN;
    END IF;
END
$roles$;

/* ------------------------------------------------------------------ */
/* The status type: a label dictionary shared by all workflows.        */
/* ------------------------------------------------------------------ */
CREATE TABLE order_flow.status_label (
    label           text PRIMARY KEY
                    CHECK (label ~ '^[a-z][a-z0-9_]{0,62}$'),
    sort_position   integer NOT NULL UNIQUE
);

COMMENT ON TABLE order_flow.status_label IS
    'Dictionary of status names; a name''s sort position is fixed when it is created and never changes';

CREATE TYPE order_flow.status;

CREATE FUNCTION _order_flow.status_in(cstring) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_in' LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_out(order_flow.status) RETURNS cstring
    AS 'MODULE_PATHNAME', 'status_out' LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_recv(internal) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_recv' LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_send(order_flow.status) RETURNS bytea
    AS 'MODULE_PATHNAME', 'status_send' LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE TYPE order_flow.status (
    INPUT = _order_flow.status_in,
    OUTPUT = _order_flow.status_out,
    RECEIVE = _order_flow.status_recv,
    SEND = _order_flow.status_send,
    INTERNALLENGTH = 4,
    PASSEDBYVALUE,
    ALIGNMENT = int4,
    STORAGE = plain,
    CATEGORY = 'S'
);

COMMENT ON TYPE order_flow.status IS
    'A workflow state name; stored as its fixed 4-byte process position, so ORDER BY follows the process';

CREATE FUNCTION _order_flow.status_eq(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_eq' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_ne(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_ne' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_lt(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_lt' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_le(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_le' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_gt(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_gt' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_ge(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_ge' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_cmp(order_flow.status, order_flow.status) RETURNS integer
    AS 'MODULE_PATHNAME', 'status_cmp' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_hash(order_flow.status) RETURNS integer
    AS 'MODULE_PATHNAME', 'status_hash' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_hash_extended(order_flow.status, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'status_hash_extended' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_to_text(order_flow.status) RETURNS text
    AS 'MODULE_PATHNAME', 'status_to_text' LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE FUNCTION _order_flow.status_from_text(text) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_from_text' LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE OPERATOR order_flow.= (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = _order_flow.status_eq, COMMUTATOR = OPERATOR(order_flow.=),
    NEGATOR = OPERATOR(order_flow.<>), RESTRICT = eqsel, JOIN = eqjoinsel,
    HASHES, MERGES);

CREATE OPERATOR order_flow.<> (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = _order_flow.status_ne, COMMUTATOR = OPERATOR(order_flow.<>),
    NEGATOR = OPERATOR(order_flow.=), RESTRICT = neqsel, JOIN = neqjoinsel);

CREATE OPERATOR order_flow.< (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = _order_flow.status_lt, COMMUTATOR = OPERATOR(order_flow.>),
    NEGATOR = OPERATOR(order_flow.>=), RESTRICT = scalarltsel, JOIN = scalarltjoinsel);

CREATE OPERATOR order_flow.<= (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = _order_flow.status_le, COMMUTATOR = OPERATOR(order_flow.>=),
    NEGATOR = OPERATOR(order_flow.>), RESTRICT = scalarlesel, JOIN = scalarlejoinsel);

CREATE OPERATOR order_flow.> (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = _order_flow.status_gt, COMMUTATOR = OPERATOR(order_flow.<),
    NEGATOR = OPERATOR(order_flow.<=), RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR order_flow.>= (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = _order_flow.status_ge, COMMUTATOR = OPERATOR(order_flow.<=),
    NEGATOR = OPERATOR(order_flow.<), RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS order_flow.status_ops
    DEFAULT FOR TYPE order_flow.status USING btree AS
        OPERATOR 1 order_flow.<,
        OPERATOR 2 order_flow.<=,
        OPERATOR 3 order_flow.=,
        OPERATOR 4 order_flow.>=,
        OPERATOR 5 order_flow.>,
        FUNCTION 1 _order_flow.status_cmp(order_flow.status, order_flow.status);

CREATE OPERATOR CLASS order_flow.status_hash_ops
    DEFAULT FOR TYPE order_flow.status USING hash AS
        OPERATOR 1 order_flow.=,
        FUNCTION 1 _order_flow.status_hash(order_flow.status),
        FUNCTION 2 _order_flow.status_hash_extended(order_flow.status, bigint);

CREATE CAST (order_flow.status AS text)
    WITH FUNCTION _order_flow.status_to_text(order_flow.status) AS IMPLICIT;

CREATE CAST (text AS order_flow.status)
    WITH FUNCTION _order_flow.status_from_text(text) AS ASSIGNMENT;

CREATE CAST (varchar AS order_flow.status)
    WITH FUNCTION _order_flow.status_from_text(text) AS ASSIGNMENT;

/* pg_dump keeps configuration, tracking and history. */
SELECT pg_catalog.pg_extension_config_dump('order_flow.status_label', '');
