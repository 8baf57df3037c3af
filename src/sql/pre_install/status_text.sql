/*
 * src/sql/pre_install/status_text.sql
 *
 * Created once (new in 1.2, so the 1.1 -> 1.2 update applies it too): a
 * status compared with a text value orders by process.
 */

/*
 * Ordering against a text value (a client's typed parameter, a text
 * column) compares by process too: the text is read as a state name, and
 * a name that is no state is refused (22P02) rather than compared as text.
 * Equality with text needs no operator of its own: the implicit cast to
 * text gives the right rows (a name that is no state matches nothing).
 */
CREATE FUNCTION _order_flow.status_lt_text(order_flow.status, text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT $1 OPERATOR(pg_catalog.<) $2::order_flow.status $$;
CREATE FUNCTION _order_flow.status_le_text(order_flow.status, text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT $1 OPERATOR(pg_catalog.<=) $2::order_flow.status $$;
CREATE FUNCTION _order_flow.status_gt_text(order_flow.status, text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT $1 OPERATOR(pg_catalog.>) $2::order_flow.status $$;
CREATE FUNCTION _order_flow.status_ge_text(order_flow.status, text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT $1 OPERATOR(pg_catalog.>=) $2::order_flow.status $$;
CREATE FUNCTION _order_flow.text_lt_status(text, order_flow.status) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT $1::order_flow.status OPERATOR(pg_catalog.<) $2 $$;
CREATE FUNCTION _order_flow.text_le_status(text, order_flow.status) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT $1::order_flow.status OPERATOR(pg_catalog.<=) $2 $$;
CREATE FUNCTION _order_flow.text_gt_status(text, order_flow.status) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT $1::order_flow.status OPERATOR(pg_catalog.>) $2 $$;
CREATE FUNCTION _order_flow.text_ge_status(text, order_flow.status) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT $1::order_flow.status OPERATOR(pg_catalog.>=) $2 $$;

CREATE OPERATOR pg_catalog.< (
    LEFTARG = order_flow.status, RIGHTARG = text, PROCEDURE = _order_flow.status_lt_text,
    COMMUTATOR = OPERATOR(pg_catalog.>), NEGATOR = OPERATOR(pg_catalog.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);

CREATE OPERATOR pg_catalog.<= (
    LEFTARG = order_flow.status, RIGHTARG = text, PROCEDURE = _order_flow.status_le_text,
    COMMUTATOR = OPERATOR(pg_catalog.>=), NEGATOR = OPERATOR(pg_catalog.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);

CREATE OPERATOR pg_catalog.> (
    LEFTARG = order_flow.status, RIGHTARG = text, PROCEDURE = _order_flow.status_gt_text,
    COMMUTATOR = OPERATOR(pg_catalog.<), NEGATOR = OPERATOR(pg_catalog.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR pg_catalog.>= (
    LEFTARG = order_flow.status, RIGHTARG = text, PROCEDURE = _order_flow.status_ge_text,
    COMMUTATOR = OPERATOR(pg_catalog.<=), NEGATOR = OPERATOR(pg_catalog.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR pg_catalog.< (
    LEFTARG = text, RIGHTARG = order_flow.status, PROCEDURE = _order_flow.text_lt_status,
    COMMUTATOR = OPERATOR(pg_catalog.>), NEGATOR = OPERATOR(pg_catalog.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);

CREATE OPERATOR pg_catalog.<= (
    LEFTARG = text, RIGHTARG = order_flow.status, PROCEDURE = _order_flow.text_le_status,
    COMMUTATOR = OPERATOR(pg_catalog.>=), NEGATOR = OPERATOR(pg_catalog.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);

CREATE OPERATOR pg_catalog.> (
    LEFTARG = text, RIGHTARG = order_flow.status, PROCEDURE = _order_flow.text_gt_status,
    COMMUTATOR = OPERATOR(pg_catalog.<), NEGATOR = OPERATOR(pg_catalog.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);

CREATE OPERATOR pg_catalog.>= (
    LEFTARG = text, RIGHTARG = order_flow.status, PROCEDURE = _order_flow.text_ge_status,
    COMMUTATOR = OPERATOR(pg_catalog.<=), NEGATOR = OPERATOR(pg_catalog.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);
