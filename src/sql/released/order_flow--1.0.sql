/*
 * order_flow 1.0 -- install script.
 *
 * Owns the SQL surface of the extension: the status type, the workflow
 * catalogue with the shipped b2b_order workflow, order tracking, the
 * append-only audit log, notifications and outbox, and the functions that
 * attach tables and move orders.  The hot paths (status I/O, the transition
 * trigger, hashing, verification) are C; the rare administrative paths
 * (manage, config validation) are SQL or PL/pgSQL.
 */
\echo Use "CREATE EXTENSION order_flow" to load this file. \quit

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'order_flow_admin') THEN
        CREATE ROLE order_flow_admin NOLOGIN;
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

CREATE FUNCTION order_flow.status_in(cstring) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_in' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION order_flow.status_out(order_flow.status) RETURNS cstring
    AS 'MODULE_PATHNAME', 'status_out' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION order_flow.status_recv(internal) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_recv' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION order_flow.status_send(order_flow.status) RETURNS bytea
    AS 'MODULE_PATHNAME', 'status_send' LANGUAGE C STRICT STABLE PARALLEL SAFE;

CREATE TYPE order_flow.status (
    INPUT = order_flow.status_in,
    OUTPUT = order_flow.status_out,
    RECEIVE = order_flow.status_recv,
    SEND = order_flow.status_send,
    INTERNALLENGTH = 4,
    PASSEDBYVALUE,
    ALIGNMENT = int4,
    STORAGE = plain,
    CATEGORY = 'S'
);
COMMENT ON TYPE order_flow.status IS
    'A workflow state name; stored as its fixed 4-byte process position, so ORDER BY follows the process';

CREATE FUNCTION order_flow.status_eq(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_eq' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_ne(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_ne' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_lt(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_lt' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_le(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_le' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_gt(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_gt' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_ge(order_flow.status, order_flow.status) RETURNS boolean
    AS 'MODULE_PATHNAME', 'status_ge' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_cmp(order_flow.status, order_flow.status) RETURNS integer
    AS 'MODULE_PATHNAME', 'status_cmp' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_hash(order_flow.status) RETURNS integer
    AS 'MODULE_PATHNAME', 'status_hash' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_hash_extended(order_flow.status, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'status_hash_extended' LANGUAGE C STRICT IMMUTABLE LEAKPROOF PARALLEL SAFE;
CREATE FUNCTION order_flow.status_to_text(order_flow.status) RETURNS text
    AS 'MODULE_PATHNAME', 'status_to_text' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION order_flow.status_from_text(text) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_from_text' LANGUAGE C STRICT STABLE PARALLEL SAFE;
CREATE FUNCTION order_flow.status_position(order_flow.status) RETURNS integer
    AS 'MODULE_PATHNAME', 'status_position' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE OPERATOR order_flow.= (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = order_flow.status_eq, COMMUTATOR = OPERATOR(order_flow.=),
    NEGATOR = OPERATOR(order_flow.<>), RESTRICT = eqsel, JOIN = eqjoinsel,
    HASHES, MERGES);
CREATE OPERATOR order_flow.<> (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = order_flow.status_ne, COMMUTATOR = OPERATOR(order_flow.<>),
    NEGATOR = OPERATOR(order_flow.=), RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR order_flow.< (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = order_flow.status_lt, COMMUTATOR = OPERATOR(order_flow.>),
    NEGATOR = OPERATOR(order_flow.>=), RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR order_flow.<= (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = order_flow.status_le, COMMUTATOR = OPERATOR(order_flow.>=),
    NEGATOR = OPERATOR(order_flow.>), RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR order_flow.> (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = order_flow.status_gt, COMMUTATOR = OPERATOR(order_flow.<),
    NEGATOR = OPERATOR(order_flow.<=), RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR order_flow.>= (
    LEFTARG = order_flow.status, RIGHTARG = order_flow.status,
    PROCEDURE = order_flow.status_ge, COMMUTATOR = OPERATOR(order_flow.<=),
    NEGATOR = OPERATOR(order_flow.<), RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE FUNCTION order_flow.status_larger(order_flow.status, order_flow.status) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_larger' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow.status_smaller(order_flow.status, order_flow.status) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_smaller' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE order_flow.max(order_flow.status) (
    SFUNC = order_flow.status_larger, STYPE = order_flow.status,
    COMBINEFUNC = order_flow.status_larger, SORTOP = OPERATOR(order_flow.>), PARALLEL = SAFE);
CREATE AGGREGATE order_flow.min(order_flow.status) (
    SFUNC = order_flow.status_smaller, STYPE = order_flow.status,
    COMBINEFUNC = order_flow.status_smaller, SORTOP = OPERATOR(order_flow.<), PARALLEL = SAFE);

CREATE OPERATOR CLASS order_flow.status_ops
    DEFAULT FOR TYPE order_flow.status USING btree AS
        OPERATOR 1 order_flow.<,
        OPERATOR 2 order_flow.<=,
        OPERATOR 3 order_flow.=,
        OPERATOR 4 order_flow.>=,
        OPERATOR 5 order_flow.>,
        FUNCTION 1 order_flow.status_cmp(order_flow.status, order_flow.status);

CREATE OPERATOR CLASS order_flow.status_hash_ops
    DEFAULT FOR TYPE order_flow.status USING hash AS
        OPERATOR 1 order_flow.=,
        FUNCTION 1 order_flow.status_hash(order_flow.status),
        FUNCTION 2 order_flow.status_hash_extended(order_flow.status, bigint);

CREATE CAST (order_flow.status AS text)
    WITH FUNCTION order_flow.status_to_text(order_flow.status) AS IMPLICIT;
CREATE CAST (text AS order_flow.status)
    WITH FUNCTION order_flow.status_from_text(text) AS ASSIGNMENT;
CREATE CAST (varchar AS order_flow.status)
    WITH FUNCTION order_flow.status_from_text(text) AS ASSIGNMENT;

/*
 * create_status(label, after, before): add a name to the dictionary.  With
 * neither neighbour it goes after the last name; with one or both it is
 * placed between them (positions never move, so a gap is halved).
 */
CREATE FUNCTION order_flow.create_status(label text, after text DEFAULT NULL,
                                         before text DEFAULT NULL)
RETURNS order_flow.status
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo bigint;
    hi bigint;
    pos bigint;
BEGIN
    IF label IS NULL THEN
        RAISE EXCEPTION 'status name must not be null' USING ERRCODE = '22004';
    END IF;
    IF EXISTS (SELECT 1 FROM order_flow.status_label l WHERE l.label = create_status.label) THEN
        RAISE EXCEPTION 'status "%" already exists', label USING ERRCODE = '42710';
    END IF;
    LOCK TABLE order_flow.status_label IN SHARE ROW EXCLUSIVE MODE;
    IF after IS NULL AND before IS NULL THEN
        SELECT coalesce(max(sort_position), 0) INTO lo FROM order_flow.status_label;
        pos := lo + 65536;
    ELSE
        IF after IS NOT NULL THEN
            SELECT sort_position INTO lo FROM order_flow.status_label l WHERE l.label = after;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'status "%" does not exist', after USING ERRCODE = '22P02';
            END IF;
        END IF;
        IF before IS NOT NULL THEN
            SELECT sort_position INTO hi FROM order_flow.status_label l WHERE l.label = before;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'status "%" does not exist', before USING ERRCODE = '22P02';
            END IF;
        END IF;
        IF after IS NOT NULL THEN
            /* right after "after": up to the next existing name */
            IF hi IS NOT NULL AND hi <= lo THEN
                RAISE EXCEPTION 'status "%" does not sort before "%"', after, before USING ERRCODE = '22023';
            END IF;
            SELECT min(sort_position) INTO hi FROM order_flow.status_label WHERE sort_position > lo;
            hi := COALESCE(hi, lo + 131072);
        ELSE
            /* right before "before": down to the previous existing name */
            SELECT max(sort_position) INTO lo FROM order_flow.status_label WHERE sort_position < hi;
            lo := COALESCE(lo, -2147483648);
        END IF;
        IF hi <= lo THEN
            RAISE EXCEPTION 'status "%" does not sort before "%"', after, before USING ERRCODE = '22023';
        END IF;
        IF hi - lo < 2 THEN
            RAISE EXCEPTION 'no room left between "%" and "%"', after, before
                USING ERRCODE = '54000',
                      HINT = 'Positions never move; create the status at another place.';
        END IF;
        pos := lo + (hi - lo) / 2;
    END IF;
    IF pos > 2147483647 THEN
        RAISE EXCEPTION 'status dictionary is full' USING ERRCODE = '54000';
    END IF;
    INSERT INTO order_flow.status_label(label, sort_position) VALUES (label, pos::integer);
    RETURN label::order_flow.status;
END
$$;

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
    state           text NOT NULL REFERENCES order_flow.status_label(label),
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
    seq             bigint,
    action          text NOT NULL,
    from_state      text,
    to_state        text,
    actor           text NOT NULL DEFAULT session_user,
    db_user         text NOT NULL DEFAULT current_user,
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    details         jsonb NOT NULL DEFAULT '{}',
    prev_hash       bytea,
    hash            bytea
);
COMMENT ON COLUMN order_flow.tracked_order.stale_after IS
    'When the next stale-order reminder is due (entered_at + max_dwell x the next reminder factor); NULL in terminal states';
COMMENT ON TABLE order_flow.audit_log IS
    'Append-only event log, hash-chained per order; the single source of truth for metrics';
ALTER SEQUENCE order_flow.audit_log_id_seq CACHE 32;
/* search by order, by actor, by time range (BRIN: events arrive in time order) */
CREATE UNIQUE INDEX audit_log_order_seq_idx ON order_flow.audit_log (order_key, seq);
CREATE INDEX audit_log_actor_idx ON order_flow.audit_log (actor, occurred_at);
CREATE INDEX audit_log_time_idx ON order_flow.audit_log USING brin (occurred_at, recorded_at);

CREATE TABLE order_flow.notification (
    id              bigserial NOT NULL,
    order_key       text NOT NULL,
    department      text NOT NULL,
    level           integer NOT NULL DEFAULT 1,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'acknowledged', 'need_info', 'escalated')),
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
    response        jsonb
);
ALTER SEQUENCE order_flow.notification_id_seq CACHE 32;
CREATE UNIQUE INDEX notification_id_idx ON order_flow.notification (id);
CREATE INDEX notification_order_idx ON order_flow.notification (order_key);
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
    attempts        integer NOT NULL DEFAULT 0
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
    reason          text
);
CREATE INDEX refused_attempt_time_idx ON order_flow.refused_attempt (attempted_at);

/* ------------------------------------------------------------------ */
/* C entry points.                                                     */
/* ------------------------------------------------------------------ */

CREATE FUNCTION order_flow._preloaded() RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_preloaded' LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION order_flow._wake_scheduler(deadline timestamptz) RETURNS void
    AS 'MODULE_PATHNAME', 'order_flow_wake_scheduler' LANGUAGE C;
CREATE FUNCTION order_flow._request_service() RETURNS void
    AS 'MODULE_PATHNAME', 'order_flow_request_service' LANGUAGE C;
CREATE FUNCTION order_flow.worker_status(
        OUT dboid oid, OUT pid integer, OUT next_wake timestamptz, OUT sweeps bigint,
        OUT absent boolean, OUT refused_total bigint, OUT refused_dropped bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'order_flow_worker_status' LANGUAGE C;
COMMENT ON FUNCTION order_flow.worker_status() IS
    'The escalation schedulers and the refused-attempt queue as shared memory sees them';

/* Served by the worker within a second of this transaction's commit. */
SELECT order_flow._request_service();

DO $preload$
BEGIN
    IF NOT order_flow._preloaded() THEN
        RAISE WARNING 'order_flow is not loaded through shared_preload_libraries'
            USING DETAIL = 'Everything works except timed escalation by the background worker and the log of refused attempts.',
                  HINT = 'Add order_flow to shared_preload_libraries and restart, or drive order_flow.escalate_due() from pg_cron.';
    END IF;
END
$preload$;

CREATE FUNCTION order_flow.current_actor() RETURNS text
    AS 'MODULE_PATHNAME', 'order_flow_current_actor' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION order_flow.current_actor() IS
    'The claimed actor: setting order_flow.actor when set, else session_user';

CREATE FUNCTION order_flow.is_admin() RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_is_admin' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION order_flow.is_admin() IS
    'True for superusers and members of order_flow_admin (judged by the database user)';

CREATE FUNCTION order_flow._caller_may_read(tbl regclass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_caller_may_read' LANGUAGE C STABLE STRICT;

CREATE FUNCTION order_flow._transition_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_transition_trigger' LANGUAGE C;

CREATE FUNCTION order_flow._set_context(order_key text, action text, note text,
                                        details jsonb, occurred_at timestamptz)
    RETURNS void AS 'MODULE_PATHNAME', 'order_flow_set_context' LANGUAGE C;
CREATE FUNCTION order_flow._take_context_result() RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_take_context_result' LANGUAGE C;

CREATE FUNCTION order_flow._append_event(order_key text, action text,
                                         from_state text, to_state text,
                                         details jsonb, occurred_at timestamptz)
    RETURNS bigint AS 'MODULE_PATHNAME', 'order_flow_append_event' LANGUAGE C;

CREATE FUNCTION order_flow._config_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_config_changed' LANGUAGE C;

CREATE FUNCTION order_flow._loading() RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_loading' LANGUAGE C STABLE;

CREATE FUNCTION order_flow._audit_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_audit_guard' LANGUAGE C;

CREATE FUNCTION order_flow.event_hash(prev_hash bytea, order_key text, seq bigint,
                                      action text, from_state text, to_state text,
                                      actor text, db_user text,
                                      occurred_at timestamptz, recorded_at timestamptz,
                                      details jsonb)
    RETURNS bytea AS 'MODULE_PATHNAME', 'order_flow_event_hash'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION order_flow.event_hash IS
    'SHA-256 of one audit event chained to the previous event''s hash (the chain verify_audit checks)';

CREATE FUNCTION order_flow.verify_audit(order_key text DEFAULT NULL)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
    AS 'MODULE_PATHNAME', 'order_flow_verify_audit'
    LANGUAGE C STABLE
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION order_flow.verify_audit(text) IS
    'One row per broken link or bad hash in the audit chains (none = intact)';

/* ------------------------------------------------------------------ */
/* The audit log is append-only.                                       */
/* ------------------------------------------------------------------ */

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON order_flow.audit_log
    FOR EACH ROW EXECUTE FUNCTION order_flow._audit_guard();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON order_flow.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._audit_guard();

/* ------------------------------------------------------------------ */
/* Configuration: validation and audit.                                */
/* ------------------------------------------------------------------ */

/*
 * validate_workflow(w): the structural rules every workflow obeys.  Raises
 * 23514 with a detail naming the offending states; run at commit by the
 * deferred constraint triggers below, and callable by hand.
 */
CREATE FUNCTION order_flow.validate_workflow(w text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
    bad text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM order_flow.workflow WHERE workflow = w) THEN
        RETURN;
    END IF;
    SELECT count(*) INTO n FROM order_flow.state WHERE workflow = w AND category = 'initial';
    IF n <> 1 THEN
        RAISE EXCEPTION 'workflow "%" must have exactly one initial state, not %', w, n
            USING ERRCODE = '23514';
    END IF;
    SELECT string_agg(r.from_state || ' -> ' || r.to_state, ', ' ORDER BY r.from_state, r.to_state)
      INTO bad
      FROM order_flow.transition_rule r
      JOIN order_flow.state s ON s.workflow = r.workflow AND s.state = r.from_state
     WHERE r.workflow = w AND s.category = 'terminal';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'terminal states of workflow "%" must have no outgoing edges', w
            USING ERRCODE = '23514', DETAIL = 'Offending edges: ' || bad || '.';
    END IF;
    SELECT string_agg(s.state, ', ' ORDER BY s.state) INTO bad
      FROM order_flow.state s
     WHERE s.workflow = w AND s.category <> 'initial'
       AND NOT EXISTS (SELECT 1 FROM order_flow.transition_rule r
                        WHERE r.workflow = w AND r.to_state = s.state);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'workflow "%" has orphan states that no edge leads to', w
            USING ERRCODE = '23514', DETAIL = 'Orphan states: ' || bad || '.';
    END IF;
    SELECT string_agg(s.state, ', ' ORDER BY s.state) INTO bad
      FROM order_flow.state s
     WHERE s.workflow = w AND s.category NOT IN ('terminal')
       AND NOT s.resumes_to_origin
       AND NOT EXISTS (SELECT 1 FROM order_flow.transition_rule r
                        WHERE r.workflow = w AND r.from_state = s.state);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'workflow "%" has non-terminal dead-end states', w
            USING ERRCODE = '23514', DETAIL = 'States without outgoing edges: ' || bad || '.',
                  HINT = 'Give them an outgoing edge or make them terminal.';
    END IF;
    SELECT string_agg(DISTINCT d, ', ') INTO bad
      FROM order_flow.transition_rule r, unnest(coalesce(r.notify, '{}') || coalesce(r.performed_by, '{}')) d
     WHERE r.workflow = w
       AND NOT EXISTS (SELECT 1 FROM order_flow.department x WHERE x.department = d);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'workflow "%" names unknown departments', w
            USING ERRCODE = '23503', DETAIL = 'Unknown departments: ' || bad || '.';
    END IF;
END
$$;

CREATE FUNCTION order_flow._validate_config() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM order_flow.validate_workflow(OLD.workflow);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM order_flow.validate_workflow(NEW.workflow);
    END IF;
    RETURN NULL;
END
$$;

/*
 * Every configuration edit becomes an audit event (action config_change)
 * in the chain of the pseudo order 'order_flow:config'.
 */
CREATE FUNCTION order_flow._audit_config() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF order_flow._loading() THEN
        RETURN NULL;
    END IF;
    PERFORM order_flow._append_event(
        'order_flow:config', 'config_change', NULL, NULL,
        jsonb_build_object('table', TG_TABLE_NAME, 'op', TG_OP,
                           'old', CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                           'new', CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END),
        NULL);
    RETURN NULL;
END
$$;

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

CREATE FUNCTION order_flow._pk_of(relid oid, rowj jsonb) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(a.attname, rowj -> a.attname::text)
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = relid AND i.indisprimary
$$;

CREATE FUNCTION order_flow._tombstone() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO order_flow.config_tombstone (tbl, pk)
        VALUES (TG_TABLE_NAME, order_flow._pk_of(TG_RELID, to_jsonb(OLD)))
        ON CONFLICT (tbl, pk) DO UPDATE SET deleted_at = now();
    ELSE
        DELETE FROM order_flow.config_tombstone
         WHERE tbl = TG_TABLE_NAME AND pk = order_flow._pk_of(TG_RELID, to_jsonb(NEW));
    END IF;
    RETURN NULL;
END
$$;

/* A reloaded tombstone deletes the row CREATE EXTENSION shipped again. */
CREATE FUNCTION order_flow._tombstone_reload() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cond text;
BEGIN
    IF order_flow._loading() THEN
        SELECT string_agg(format('t.%I::text IS NOT DISTINCT FROM ($1->>%L)', k, k), ' AND ')
          INTO cond FROM jsonb_object_keys(NEW.pk) k;
        IF cond IS NOT NULL AND NEW.tbl ~ '^[a-z_]+$' THEN
            EXECUTE format('DELETE FROM order_flow.%I t WHERE %s', NEW.tbl, cond) USING NEW.pk;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION order_flow._label_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.sort_position <> OLD.sort_position OR NEW.label <> OLD.label THEN
        RAISE EXCEPTION 'status names and their sort positions never change'
            USING ERRCODE = '55000',
                  DETAIL = 'Stored status values and btree indexes depend on them.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER status_label_immutable
    BEFORE UPDATE OR DELETE ON order_flow.status_label
    FOR EACH ROW EXECUTE FUNCTION order_flow._label_guard();

/*
 * _restore_merge(): while a COPY reloads a configuration table (pg_restore),
 * a row whose primary key CREATE EXTENSION already inserted is merged into
 * it instead of failing: identical rows are skipped, a shipped row the user
 * had changed takes the dumped values.  Outside COPY, rows insert as usual.
 */
CREATE FUNCTION order_flow._restore_merge() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newj jsonb := to_jsonb(NEW);
    cond text;
    cols text;
    existing jsonb;
BEGIN
    IF NOT order_flow._loading() THEN
        RETURN NEW;
    END IF;
    SELECT string_agg(format('t.%I IS NOT DISTINCT FROM ($1->>%L)::%s', a.attname, a.attname,
                             format_type(a.atttypid, a.atttypmod)), ' AND ')
      INTO cond
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = TG_RELID AND i.indisprimary;
    EXECUTE format('SELECT to_jsonb(t) FROM %I.%I t WHERE %s', TG_TABLE_SCHEMA, TG_TABLE_NAME, cond)
       INTO existing USING newj;
    IF existing IS NULL THEN
        RETURN NEW;
    END IF;
    IF existing <> newj THEN
        SELECT string_agg(format('%I', attname), ', ' ORDER BY attnum) INTO cols
          FROM pg_attribute WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped;
        EXECUTE format('UPDATE %I.%I t SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::%I.%I, $1)) WHERE %s',
                       TG_TABLE_SCHEMA, TG_TABLE_NAME, cols, cols, TG_TABLE_SCHEMA, TG_TABLE_NAME, cond)
          USING newj;
    END IF;
    RETURN NULL;
END
$$;

/* States named in a workflow enter the dictionary automatically. */
CREATE FUNCTION order_flow._state_label() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM order_flow.status_label WHERE label = NEW.state) THEN
        PERFORM order_flow.create_status(NEW.state);
    END IF;
    RETURN NEW;
END
$$;

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

/* Triggers are created after the shipped rows so installing is not an edit. */
CREATE TRIGGER state_label BEFORE INSERT OR UPDATE OF state ON order_flow.state
    FOR EACH ROW EXECUTE FUNCTION order_flow._state_label();

/* WHEN is judged as the row changes, not at commit: a reload is never validated. */
CREATE CONSTRAINT TRIGGER state_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.state
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT order_flow._loading())
    EXECUTE FUNCTION order_flow._validate_config();
CREATE CONSTRAINT TRIGGER transition_rule_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.transition_rule
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT order_flow._loading())
    EXECUTE FUNCTION order_flow._validate_config();

DO $cfg$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['status_label', 'calendar', 'calendar_hours', 'calendar_holiday',
                             'workflow', 'department', 'state', 'transition_rule', 'member',
                             'escalation_policy', 'reminder_policy', 'managed_table']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON order_flow.%I
                        FOR EACH ROW EXECUTE FUNCTION order_flow._audit_config()',
                       t || '_audit', t);
        IF t <> 'managed_table' THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON order_flow.%I
                            FOR EACH ROW EXECUTE FUNCTION order_flow._restore_merge()',
                           t || '_merge', t);
        END IF;
        IF t NOT IN ('managed_table', 'status_label') THEN
            EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR DELETE ON order_flow.%I
                            FOR EACH ROW WHEN (NOT order_flow._loading())
                            EXECUTE FUNCTION order_flow._tombstone()', t || '_tombstone', t);
        END IF;
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_flow.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION order_flow._config_changed()',
                       t || '_invalidate', t);
    END LOOP;
END
$cfg$;

CREATE TRIGGER config_tombstone_reload BEFORE INSERT ON order_flow.config_tombstone
    FOR EACH ROW EXECUTE FUNCTION order_flow._tombstone_reload();

/* ------------------------------------------------------------------ */
/* Attaching tables and moving orders.                                 */
/* ------------------------------------------------------------------ */

CREATE FUNCTION order_flow.manage(tbl regclass,
                                  key_column name DEFAULT 'id',
                                  status_column name DEFAULT 'status',
                                  workflow text DEFAULT 'b2b_order',
                                  customer_column name DEFAULT NULL,
                                  attributes name[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rel         record;
    tblname     text;
    key_att     smallint;
    st_att      smallint;
    st_type     oid;
    c           name;
    bad         text;
    n           bigint;
    args        text;
BEGIN
    IF tbl IS NULL OR key_column IS NULL OR status_column IS NULL OR workflow IS NULL
       OR attributes IS NULL THEN
        RAISE EXCEPTION 'manage() arguments must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c2.oid, c2.relkind, n2.nspname, c2.relname INTO rel
      FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
     WHERE c2.oid = tbl;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
    END IF;
    IF rel.nspname = 'order_flow' THEN
        RAISE EXCEPTION 'cannot manage the extension''s own table %', tbl USING ERRCODE = '42809';
    END IF;
    tblname := format('%I.%I', rel.nspname, rel.relname);
    IF EXISTS (SELECT 1 FROM order_flow.managed_table m WHERE m.relid = tbl) THEN
        RAISE EXCEPTION 'table % is already managed', tbl USING ERRCODE = '42710',
            HINT = 'Call order_flow.unmanage() first to attach it again.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.workflow w WHERE w.workflow = manage.workflow) THEN
        RAISE EXCEPTION 'workflow "%" does not exist', workflow USING ERRCODE = '42704';
    END IF;

    FOREACH c IN ARRAY ARRAY[key_column, status_column]
                       || CASE WHEN customer_column IS NULL THEN '{}'::name[] ELSE ARRAY[customer_column] END
                       || attributes
    LOOP
        IF c IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                     WHERE attrelid = tbl AND attname = c
                                       AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of table % does not exist', c, tbl USING ERRCODE = '42703';
        END IF;
    END LOOP;
    SELECT attnum INTO key_att FROM pg_attribute WHERE attrelid = tbl AND attname = key_column;
    SELECT attnum, atttypid INTO st_att, st_type FROM pg_attribute
     WHERE attrelid = tbl AND attname = status_column;

    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indrelid = tbl AND i.indisunique AND i.indnatts = 1
                      AND i.indkey[0] = key_att AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
        RAISE EXCEPTION 'key column "%" of table % has no primary key or unique constraint of its own',
            key_column, tbl USING ERRCODE = '42P10',
            HINT = 'Order keys must identify an order: add a PRIMARY KEY or UNIQUE constraint on it.';
    END IF;
    IF NOT (st_type IN ('order_flow.status'::regtype, 'text'::regtype, 'varchar'::regtype)
            OR EXISTS (SELECT 1 FROM pg_type WHERE oid = st_type AND typtype = 'e')) THEN
        RAISE EXCEPTION 'status column "%" has type %, not order_flow.status, text, varchar or an enum',
            status_column, st_type::regtype USING ERRCODE = '42804';
    END IF;

    -- existing rows must be in known states of the workflow
    EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NULL', tbl, status_column) INTO n;
    IF n > 0 THEN
        RAISE EXCEPTION 'table % has % rows with a NULL status', tbl, n USING ERRCODE = '23502';
    END IF;
    EXECUTE format('SELECT string_agg(DISTINCT s, '', '' ORDER BY s) FROM (SELECT %I::text AS s FROM %s) x
                     WHERE NOT EXISTS (SELECT 1 FROM order_flow.state st
                                        WHERE st.workflow = $1 AND st.state = x.s)',
                   status_column, tbl) INTO bad USING workflow;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has rows in states unknown to workflow "%"', tbl, workflow
            USING ERRCODE = '23514', DETAIL = 'Unknown states: ' || bad || '.';
    END IF;

    -- order keys identify an order across the database
    EXECUTE format('SELECT string_agg(k, '', '') FROM (SELECT t.%I::text AS k FROM %s t
                     WHERE t.%I::text LIKE ''order_flow:%%'' LIMIT 5) x', key_column, tbl, key_column)
       INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has reserved order keys', tbl USING ERRCODE = '23505',
            DETAIL = 'Keys beginning with "order_flow:" name the extension''s own audit chains: ' || bad || '.';
    END IF;
    EXECUTE format('SELECT string_agg(k, '', '') FROM (SELECT t.%I::text AS k FROM %s t
                      JOIN order_flow.tracked_order o ON o.order_key = t.%I::text
                     WHERE o.tbl IS DISTINCT FROM $1 LIMIT 5) x',
                   key_column, tbl, key_column) INTO bad USING tblname;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'order keys of table % collide with orders already tracked', tbl
            USING ERRCODE = '23505', DETAIL = 'Colliding keys include: ' || bad || '.';
    END IF;

    INSERT INTO order_flow.managed_table (relid, tbl, key_column, status_column, workflow,
                                          customer_column, attributes)
    VALUES (tbl, tblname, key_column, status_column, workflow, customer_column, attributes);

    -- adopt existing rows in their current state: not an event
    EXECUTE format($f$
        INSERT INTO order_flow.tracked_order AS o (order_key, tbl, workflow, state, entered_at,
                                                   adopted_at, customer_key, attributes, stale_after)
        SELECT x.k, $1, $2, x.s, now(), now(), x.c, x.a,
               (SELECT now() + st.max_dwell * p.factor
                  FROM order_flow.state st
                  JOIN order_flow.reminder_policy p ON p.workflow = st.workflow AND p.level = 1
                 WHERE st.workflow = $2 AND st.state = x.s AND st.category <> 'terminal')
          FROM (SELECT t.%I::text AS k, t.%I::text AS s, %s AS c, %s AS a FROM %s t) x
        ON CONFLICT (order_key) DO UPDATE
           SET state = excluded.state, workflow = excluded.workflow, adopted_at = excluded.adopted_at,
               entered_at = excluded.entered_at, reminder_level = 0, stale_after = excluded.stale_after,
               customer_key = excluded.customer_key, attributes = excluded.attributes$f$,
        key_column, status_column,
        CASE WHEN customer_column IS NULL THEN 'NULL' ELSE format('t.%I::text', customer_column) END,
        CASE WHEN cardinality(attributes) = 0 THEN '''{}''::jsonb'
             ELSE 'jsonb_strip_nulls(jsonb_build_object(' ||
                  (SELECT string_agg(format('%L, t.%I', a, a), ', ') FROM unnest(attributes) a) || '))' END,
        tbl)
    USING tblname, workflow;

    SELECT string_agg(quote_literal(a), ', ') INTO args
      FROM unnest(ARRAY[tblname, workflow, key_column::text, status_column::text,
                        coalesce(customer_column::text, '')] || attributes::text[]) a;
    EXECUTE format('CREATE TRIGGER order_flow_transition BEFORE INSERT OR UPDATE OF %I, %I ON %s
                    FOR EACH ROW EXECUTE FUNCTION order_flow._transition_trigger(%s)',
                   key_column, status_column, tbl, args);
END
$$;
COMMENT ON FUNCTION order_flow.manage IS
    'Attach the workflow to a table: installs the C transition trigger and adopts existing rows';

CREATE FUNCTION order_flow.unmanage(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.managed_table m WHERE m.relid = tbl) THEN
        RAISE EXCEPTION 'table % is not managed', tbl USING ERRCODE = '42704';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_transition ON %s', tbl);
    DELETE FROM order_flow.managed_table m WHERE m.relid = tbl;
END
$$;
/* A managed table dropped without unmanage() is detached (its history stays). */
CREATE FUNCTION order_flow._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM order_flow.managed_table m
     WHERE m.relid::oid IN (SELECT objid FROM pg_event_trigger_dropped_objects()
                             WHERE classid = 'pg_class'::regclass AND objsubid = 0);
END
$$;
CREATE EVENT TRIGGER order_flow_sql_drop ON sql_drop
    EXECUTE FUNCTION order_flow._on_sql_drop();

COMMENT ON FUNCTION order_flow.unmanage(regclass) IS
    'Detach the workflow from a table; its orders'' history stays in the audit log';

/*
 * transition(): move one order by key.  The UPDATE fires the same C trigger
 * as a plain UPDATE; note and details reach it through a backend-local
 * context that the trigger takes for this order only.
 */
/* Which columns of a managed table are its key and status (for callers without catalogue grants). */
CREATE FUNCTION order_flow._managed(tbl regclass, OUT key_column name, OUT status_column name)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.key_column, m.status_column FROM order_flow.managed_table m WHERE m.relid = _managed.tbl
$$;

CREATE FUNCTION order_flow._move(tbl regclass, order_key text, to_state text, note text,
                                 details jsonb, action text, occurred_at timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m record;
    n bigint;
    keytype text;
    sttype text;
BEGIN
    IF tbl IS NULL OR order_key IS NULL OR to_state IS NULL THEN
        RAISE EXCEPTION 'table, order key and target state must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM order_flow._managed(tbl);
    IF m.key_column IS NULL THEN
        RAISE EXCEPTION 'table % is not managed by order_flow', tbl USING ERRCODE = '42704';
    END IF;
    SELECT format_type(atttypid, atttypmod) INTO keytype FROM pg_attribute
     WHERE attrelid = tbl AND attname = m.key_column;
    SELECT format_type(atttypid, atttypmod) INTO sttype FROM pg_attribute
     WHERE attrelid = tbl AND attname = m.status_column;
    /* the key as the trigger will see it (an int key '0902' is order 902) */
    EXECUTE format('SELECT $1::%s::text', keytype) INTO order_key USING order_key;
    note := COALESCE(NULLIF(btrim(note), ''), NULLIF(btrim(details->>'reason'), ''));
    PERFORM order_flow._set_context(order_key, action, note, coalesce(details, '{}'), occurred_at);
    EXECUTE format('UPDATE %s SET %I = $1::%s WHERE %I = $2::%s',
                   tbl, m.status_column, sttype, m.key_column, keytype)
       USING to_state, order_key;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF NOT order_flow._take_context_result() THEN
        IF n = 0 THEN
            RAISE EXCEPTION 'order % not found in %', order_key, tbl USING ERRCODE = 'P0002';
        END IF;
        RAISE EXCEPTION 'order % is already in state %', order_key, to_state
            USING ERRCODE = '23514';
    END IF;
END
$$;

CREATE FUNCTION order_flow.transition(tbl regclass, order_key text, to_state text,
                                      note text DEFAULT NULL, details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT order_flow._move(tbl, order_key, to_state, note, details, 'transition', NULL) $$;
COMMENT ON FUNCTION order_flow.transition IS
    'Move one order to a new state: validated, stamped, audited and broadcast like a plain UPDATE';

CREATE FUNCTION order_flow.import_transition(tbl regclass, order_key text, to_state text,
                                             occurred_at timestamptz, details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF occurred_at IS NULL THEN
        RAISE EXCEPTION 'occurred_at must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM order_flow._move(tbl, order_key, to_state, NULL, details, 'import', occurred_at);
END
$$;
COMMENT ON FUNCTION order_flow.import_transition IS
    'Back-date a validated transition from an old system: audited as import, no notifications';

CREATE FUNCTION order_flow.allowed_transitions(tbl regclass, order_key text)
RETURNS TABLE (to_state text, notify text[], reason_required boolean, exception_type text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH o AS (
        SELECT t.workflow, t.state, t.held_from
          FROM order_flow.tracked_order t
          JOIN order_flow.managed_table m ON m.tbl = t.tbl
         WHERE t.order_key = allowed_transitions.order_key AND m.relid = allowed_transitions.tbl
           AND order_flow._caller_may_read(allowed_transitions.tbl)
    ), me AS (
        SELECT array_agg(department) AS depts FROM order_flow.member
         WHERE actor = order_flow.current_actor()
    ), edges AS (
        SELECT r.to_state, r.notify, r.reason_required, r.exception_type, r.performed_by
          FROM o JOIN order_flow.transition_rule r
            ON r.workflow = o.workflow AND r.from_state = o.state
        UNION
        SELECT o.held_from, NULL, false, NULL, h.performed_by
          FROM o JOIN order_flow.state s ON s.workflow = o.workflow AND s.state = o.state
          JOIN order_flow.transition_rule h
            ON h.workflow = o.workflow AND h.from_state = o.held_from AND h.to_state = o.state
         WHERE s.resumes_to_origin AND o.held_from IS NOT NULL
    )
    SELECT e.to_state, e.notify, e.reason_required, e.exception_type
      FROM edges e, me
     WHERE e.performed_by IS NULL OR order_flow.is_admin() OR e.performed_by && me.depts
     ORDER BY order_flow.status_from_text(e.to_state)
$$;
COMMENT ON FUNCTION order_flow.allowed_transitions IS
    'The next states the current actor may take for this order (for user interfaces)';

/*
 * record(): business facts that are not status changes (payments, service
 * requests, complaints, exceptions) enter the order's audit chain.
 */
CREATE FUNCTION order_flow.record(order_key text, kind text, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    st text;
BEGIN
    IF order_key IS NULL OR kind IS NULL OR details IS NULL THEN
        RAISE EXCEPTION 'order key, kind and details must not be null' USING ERRCODE = '22004';
    END IF;
    IF kind NOT IN ('payment', 'service_request', 'complaint', 'exception', 'note') THEN
        RAISE EXCEPTION 'unknown record kind "%"', kind USING ERRCODE = '22023',
            HINT = 'Use payment, service_request, complaint, exception or note.';
    END IF;
    IF jsonb_typeof(details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF octet_length(details::text) > 65536 THEN
        RAISE EXCEPTION 'details are too large (% bytes, at most 65536)', octet_length(details::text)
            USING ERRCODE = '54000';
    END IF;
    IF kind = 'exception' AND coalesce(details->>'exception_type', '') = '' THEN
        RAISE EXCEPTION 'an exception record needs details.exception_type' USING ERRCODE = '22023';
    END IF;
    IF kind = 'payment' AND (jsonb_typeof(details->'amount') IS DISTINCT FROM 'number') THEN
        RAISE EXCEPTION 'a payment record needs a numeric details.amount' USING ERRCODE = '22023';
    END IF;
    SELECT t.state INTO st FROM order_flow.tracked_order t
     WHERE t.order_key = record.order_key AND t.tbl IS NOT NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % is not tracked', order_key USING ERRCODE = 'P0002';
    END IF;
    RETURN order_flow._append_event(order_key, kind, st, st, details, NULL);
END
$$;
COMMENT ON FUNCTION order_flow.record IS
    'Record a business fact (payment, service_request, complaint, exception, note) in the order''s audit chain';

/* ------------------------------------------------------------------ */
/* Business calendars, acknowledgements, escalation and reminders.     */
/* ------------------------------------------------------------------ */

/*
 * business_deadline(calendar, start, span): the instant at which span of
 * working time has elapsed from start in the calendar (working hours per
 * weekday in its time zone, holidays skipped).  Always-open calendars add
 * span to start.
 */
CREATE FUNCTION order_flow.business_deadline(calendar text, start timestamptz, span interval)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    cal record;
    left_s double precision;
    local_ts timestamp;
    day date;
    h record;
    win_start timestamptz;
    win_len double precision;
    guard integer := 0;
BEGIN
    IF calendar IS NULL OR start IS NULL OR span IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO cal FROM order_flow.calendar c WHERE c.calendar = calendar;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'calendar "%" does not exist', calendar USING ERRCODE = '42704';
    END IF;
    IF cal.always_open THEN
        RETURN start + span;
    END IF;
    left_s := extract(epoch FROM span);
    local_ts := start AT TIME ZONE cal.time_zone;
    day := local_ts::date;
    LOOP
        guard := guard + 1;
        IF guard > 800 THEN
            RAISE EXCEPTION 'calendar "%" has no working time within two years of %', calendar, start
                USING ERRCODE = '22023';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM order_flow.calendar_holiday x
                        WHERE x.calendar = cal.calendar AND x.day = day) THEN
            FOR h IN SELECT opens, closes FROM order_flow.calendar_hours x
                      WHERE x.calendar = cal.calendar AND x.isodow = extract(isodow FROM day)::integer
                      ORDER BY opens
            LOOP
                /* windows are measured in real time, so a DST change is counted right */
                win_start := greatest((day + h.opens) AT TIME ZONE cal.time_zone, start);
                win_len := extract(epoch FROM ((day + h.closes) AT TIME ZONE cal.time_zone) - win_start);
                CONTINUE WHEN win_len <= 0;
                IF left_s <= win_len THEN
                    RETURN win_start + make_interval(secs => left_s);
                END IF;
                left_s := left_s - win_len;
            END LOOP;
        END IF;
        day := day + 1;
    END LOOP;
END
$$;
COMMENT ON FUNCTION order_flow.business_deadline(text, timestamptz, interval) IS
    'When span of working time has elapsed from start in a business calendar';

CREATE FUNCTION order_flow.department_deadline(department text, start timestamptz, span interval)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT order_flow.business_deadline(COALESCE((SELECT d.calendar FROM order_flow.department d
                                                  WHERE d.department = department_deadline.department),
                                                 '24x7'), start, span)
$$;

/* Calendars are validated at commit: a known time zone, working hours that
   do not overlap, and some working time unless always open. */
CREATE FUNCTION order_flow._validate_calendar() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text := CASE WHEN TG_OP = 'DELETE' THEN OLD.calendar ELSE NEW.calendar END;
    cal record;
    bad text;
BEGIN
    SELECT * INTO cal FROM order_flow.calendar x WHERE x.calendar = c;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = cal.time_zone)
       AND NOT EXISTS (SELECT 1 FROM pg_timezone_abbrevs WHERE abbrev = cal.time_zone) THEN
        RAISE EXCEPTION 'calendar "%" has unknown time zone "%"', c, cal.time_zone USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(format('day %s %s-%s overlaps %s-%s', a.isodow, a.opens, a.closes, b.opens, b.closes), '; ')
      INTO bad
      FROM order_flow.calendar_hours a JOIN order_flow.calendar_hours b
        ON a.calendar = b.calendar AND a.isodow = b.isodow AND a.opens < b.opens AND b.opens < a.closes
     WHERE a.calendar = c;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'calendar "%" has overlapping working hours', c
            USING ERRCODE = '23514', DETAIL = bad || '.';
    END IF;
    IF NOT cal.always_open AND NOT EXISTS (SELECT 1 FROM order_flow.calendar_hours x WHERE x.calendar = c) THEN
        RAISE EXCEPTION 'calendar "%" has no working hours', c USING ERRCODE = '23514',
            HINT = 'Add rows to order_flow.calendar_hours, or mark the calendar always_open.';
    END IF;
    RETURN NULL;
END
$$;

/* Escalation chains: levels 1..n without gaps, at least three. */
CREATE FUNCTION order_flow._validate_escalation() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := CASE WHEN TG_OP = 'DELETE' THEN OLD.department ELSE NEW.department END;
    n integer;
    mx integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM order_flow.department x WHERE x.department = d) THEN
        RETURN NULL;
    END IF;
    SELECT count(*), max(level) INTO n, mx FROM order_flow.escalation_policy p WHERE p.department = d;
    IF n < 3 OR mx <> n THEN
        RAISE EXCEPTION 'escalation chain of department "%" must have levels 1 to n without gaps, n >= 3', d
            USING ERRCODE = '23514',
                  DETAIL = format('It has %s levels, the highest being %s.', n, COALESCE(mx, 0));
    END IF;
    RETURN NULL;
END
$$;

/* A new department gets the default three-level chain. */
CREATE FUNCTION order_flow._department_defaults() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF order_flow._loading() THEN
        RETURN NULL;
    END IF;
    INSERT INTO order_flow.escalation_policy (department, level, title, delay)
    VALUES (NEW.department, 1, 'supervisor', interval '15 minutes'),
           (NEW.department, 2, 'manager', interval '30 minutes'),
           (NEW.department, 3, 'director', interval '1 hour')
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

/* A changed "cannot wait" threshold applies to orders already waiting. */
CREATE FUNCTION order_flow._restale() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE order_flow.tracked_order t
       SET stale_after = CASE WHEN NEW.category = 'terminal' THEN NULL
                              ELSE t.entered_at + NEW.max_dwell *
                                   (SELECT p.factor FROM order_flow.reminder_policy p
                                     WHERE p.workflow = t.workflow AND p.level = t.reminder_level + 1) END
     WHERE t.workflow = NEW.workflow AND t.state = NEW.state;
    RETURN NULL;
END
$$;

/* A changed reminder policy applies to orders already waiting. */
CREATE FUNCTION order_flow._restale_policy() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE order_flow.tracked_order t
       SET stale_after = t.entered_at + s.max_dwell *
                         (SELECT p.factor FROM order_flow.reminder_policy p
                           WHERE p.workflow = t.workflow AND p.level = t.reminder_level + 1)
      FROM order_flow.state s
     WHERE s.workflow = t.workflow AND s.state = t.state AND s.category <> 'terminal'
       AND t.tbl IS NOT NULL;
    RETURN NULL;
END
$$;

/*
 * acknowledge(): a department answers a notification, once.
 *   'ack'       -- a timestamped confirmation;
 *   'need_info' -- a structured form {"text": ..., "attachments": [...]}
 *                  that opens a notification for the originating department.
 * Returns the answered notification's id, or for need_info the id of the
 * notification opened for the originating department.
 */
CREATE FUNCTION order_flow.acknowledge(notification_id bigint, response text DEFAULT 'ack',
                                       details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    n record;
    who text := order_flow.current_actor();
    origin text;
    window_ interval;
    nid bigint;
    dl timestamptz;
    now_ timestamptz := clock_timestamp();
    pl jsonb;
BEGIN
    IF notification_id IS NULL OR response IS NULL THEN
        RAISE EXCEPTION 'notification id and response must not be null' USING ERRCODE = '22004';
    END IF;
    IF response NOT IN ('ack', 'need_info') THEN
        RAISE EXCEPTION 'unknown response "%"', response USING ERRCODE = '22023',
            HINT = 'Answer ack or need_info.';
    END IF;
    details := COALESCE(details, '{}');
    IF jsonb_typeof(details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF octet_length(details::text) > 16384 THEN
        RAISE EXCEPTION 'details are too large (% bytes, at most 16384)', octet_length(details::text)
            USING ERRCODE = '54000';
    END IF;
    IF response = 'need_info' THEN
        IF jsonb_typeof(details->'text') IS DISTINCT FROM 'string' OR btrim(details->>'text') = '' THEN
            RAISE EXCEPTION 'need_info requires a form with a non-empty "text"' USING ERRCODE = '22023',
                HINT = 'Pass details like {"text": "Which delivery address?", "attachments": ["doc-123"]}.';
        END IF;
        IF length(details->>'text') > 4000 THEN
            RAISE EXCEPTION 'need_info text is too long (% characters, at most 4000)', length(details->>'text')
                USING ERRCODE = '54000';
        END IF;
        IF details ? 'attachments' AND (jsonb_typeof(details->'attachments') <> 'array'
             OR EXISTS (SELECT 1 FROM jsonb_array_elements(details->'attachments') e
                         WHERE jsonb_typeof(e) <> 'string')
             OR jsonb_array_length(details->'attachments') > 50) THEN
            RAISE EXCEPTION 'need_info attachments must be an array of at most 50 reference strings'
                USING ERRCODE = '22023';
        END IF;
    END IF;

    SELECT * INTO n FROM order_flow.notification x WHERE x.id = notification_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'notification % does not exist', notification_id USING ERRCODE = 'P0002';
    END IF;
    IF NOT order_flow.is_admin()
       AND NOT EXISTS (SELECT 1 FROM order_flow.member m WHERE m.actor = who AND m.department = n.department) THEN
        RAISE EXCEPTION 'actor "%" may not answer notification % of department %', who, n.id, n.department
            USING ERRCODE = '42501',
                  HINT = 'Only members of the notified department answer it.';
    END IF;
    IF n.status <> 'pending' THEN
        RAISE EXCEPTION 'notification % was already answered (%)', n.id, n.status
            USING ERRCODE = '55000';
    END IF;

    UPDATE order_flow.notification x
       SET status = CASE WHEN response = 'ack' THEN 'acknowledged' ELSE 'need_info' END,
           answered_at = now_, answered_by = who, response = details
     WHERE x.id = n.id;

    IF response = 'ack' THEN
        PERFORM order_flow._append_event(n.order_key, 'acknowledge', NULL, NULL,
            jsonb_build_object('notification_id', n.id, 'department', n.department,
                               'level', n.level, 'response', details), NULL);
        RETURN n.id;
    END IF;

    SELECT r.origin_department, r.ack_within INTO origin, window_
      FROM order_flow.transition_rule r
      JOIN order_flow.tracked_order t ON t.workflow = r.workflow
     WHERE t.order_key = n.order_key AND r.from_state = n.from_state AND r.to_state = n.to_state;
    origin := COALESCE(origin, 'sales');
    window_ := COALESCE(window_, interval '15 minutes');
    dl := order_flow.department_deadline(origin, now_, window_);
    pl := n.payload || jsonb_build_object('department', origin, 'level', 1, 'deadline', dl,
                                          'kind', 'need_info', 'form', details,
                                          'requested_by', who, 'requesting_department', n.department,
                                          'in_reply_to', n.id);
    INSERT INTO order_flow.notification (order_key, department, level, deadline, payload, kind,
                                         from_state, to_state, event_seq, parent_id)
    VALUES (n.order_key, origin, 1, dl, pl, 'need_info', n.from_state, n.to_state, n.event_seq, n.id)
    RETURNING id INTO nid;
    INSERT INTO order_flow.outbox (order_key, notification_id, payload)
    VALUES (n.order_key, nid, pl || jsonb_build_object('notification_id', nid));
    PERFORM order_flow._append_event(n.order_key, 'need_info', NULL, NULL,
        jsonb_build_object('notification_id', n.id, 'department', n.department, 'level', n.level,
                           'form', details, 'opened', nid, 'for_department', origin), NULL);
    PERFORM pg_notify('order_flow', jsonb_build_object('event', 'need_info', 'order_key', n.order_key,
                                                       'notification_id', nid, 'department', origin)::text);
    PERFORM order_flow._wake_scheduler(dl);
    RETURN nid;
END
$$;
COMMENT ON FUNCTION order_flow.acknowledge(bigint, text, jsonb) IS
    'Answer a notification once: ack, or need_info with a form that goes back to the originating department';

/*
 * _escalate_notifications(as_of, batch): each unanswered notification past
 * its deadline is marked escalated and the next level opened, one level per
 * sweep; the last level stays pending and overdue.  One subtransaction per
 * notification: a failure is logged and the sweep goes on.
 */
CREATE FUNCTION order_flow._escalate_notifications(as_of timestamptz, batch integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    pol record;
    nid bigint;
    dl timestamptz;
    pl jsonb;
    done integer := 0;
BEGIN
    /* notifications at the last level of their chain: never escalate, stay overdue */
    UPDATE order_flow.notification x SET escalates = false
     WHERE x.status = 'pending' AND x.escalates AND x.deadline <= as_of
       AND NOT EXISTS (SELECT 1 FROM order_flow.escalation_policy p
                        WHERE p.department = x.department AND p.level = x.level + 1);

    /* the whole batch set-based; if any row fails, the batch goes row by row below */
    BEGIN
        WITH due AS (
            SELECT x.id, x.order_key, x.department, x.level, x.deadline, x.payload, x.kind,
                   x.from_state, x.to_state, x.event_seq, p.delay, p.title,
                   CASE WHEN c.always_open IS NOT FALSE THEN as_of + p.delay
                        ELSE order_flow.business_deadline(c.calendar, as_of, p.delay) END AS new_deadline,
                   EXISTS (SELECT 1 FROM order_flow.escalation_policy q
                            WHERE q.department = x.department AND q.level = x.level + 2) AS further
              FROM order_flow.notification x
              JOIN order_flow.escalation_policy p ON p.department = x.department AND p.level = x.level + 1
              LEFT JOIN order_flow.department d ON d.department = x.department
              LEFT JOIN order_flow.calendar c ON c.calendar = d.calendar
             WHERE x.status = 'pending' AND x.escalates AND x.deadline <= as_of
             ORDER BY x.deadline
             LIMIT batch
             FOR UPDATE OF x SKIP LOCKED
        ), closed AS (
            UPDATE order_flow.notification n SET status = 'escalated', answered_at = clock_timestamp()
              FROM due WHERE n.id = due.id
            RETURNING due.*
        ), opened AS (
            INSERT INTO order_flow.notification (order_key, department, level, deadline, payload, kind,
                                                 from_state, to_state, event_seq, parent_id, escalates)
            SELECT order_key, department, level + 1, new_deadline,
                   payload || jsonb_build_object('level', level + 1, 'deadline', new_deadline,
                                                 'escalated_from', id, 'title', title,
                                                 'overdue_since', deadline),
                   kind, from_state, to_state, event_seq, id, further
              FROM closed
            RETURNING id, order_key, department, level, deadline, payload, parent_id
        ), sent AS (
            INSERT INTO order_flow.outbox (order_key, notification_id, payload)
            SELECT order_key, id, payload || jsonb_build_object('notification_id', id) FROM opened
        )
        SELECT count(*) INTO done
          FROM (SELECT order_flow._append_event(o.order_key, 'escalate', NULL, NULL,
                    jsonb_build_object('notification_id', o.id, 'escalated_from', o.parent_id,
                                       'department', o.department, 'level', o.level,
                                       'title', o.payload->>'title', 'deadline', o.deadline,
                                       'overdue_since', o.payload->'overdue_since'), NULL),
                       pg_notify('order_flow', jsonb_build_object('event', 'escalate', 'order_key', o.order_key,
                                                                  'notification_id', o.id,
                                                                  'department', o.department,
                                                                  'level', o.level)::text)
                  FROM opened o
                 ORDER BY o.order_key, o.id) e;
        RETURN done;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'order_flow: batch escalation failed (%), escalating one by one', SQLERRM;
        done := 0;
    END;

    FOR r IN SELECT x.* FROM order_flow.notification x
              WHERE x.status = 'pending' AND x.escalates AND x.deadline <= as_of
              ORDER BY x.deadline
              LIMIT batch
              FOR UPDATE OF x SKIP LOCKED
    LOOP
        BEGIN
            SELECT * INTO pol FROM order_flow.escalation_policy p
             WHERE p.department = r.department AND p.level = r.level + 1;
            IF NOT FOUND THEN
                UPDATE order_flow.notification SET escalates = false WHERE id = r.id;
                CONTINUE;
            END IF;
            dl := order_flow.department_deadline(r.department, as_of, pol.delay);
            pl := r.payload || jsonb_build_object('level', r.level + 1, 'deadline', dl,
                                                  'escalated_from', r.id, 'title', pol.title);
            UPDATE order_flow.notification SET status = 'escalated', answered_at = clock_timestamp()
             WHERE id = r.id;
            INSERT INTO order_flow.notification (order_key, department, level, deadline, payload, kind,
                                                 from_state, to_state, event_seq, parent_id, escalates)
            VALUES (r.order_key, r.department, r.level + 1, dl, pl, r.kind, r.from_state, r.to_state,
                    r.event_seq, r.id,
                    EXISTS (SELECT 1 FROM order_flow.escalation_policy p
                             WHERE p.department = r.department AND p.level = r.level + 2))
            RETURNING id INTO nid;
            INSERT INTO order_flow.outbox (order_key, notification_id, payload)
            VALUES (r.order_key, nid, pl || jsonb_build_object('notification_id', nid));
            PERFORM order_flow._append_event(r.order_key, 'escalate', NULL, NULL,
                jsonb_build_object('notification_id', nid, 'escalated_from', r.id,
                                   'department', r.department, 'level', r.level + 1,
                                   'title', pol.title, 'deadline', dl, 'overdue_since', r.deadline),
                NULL);
            PERFORM pg_notify('order_flow', jsonb_build_object('event', 'escalate', 'order_key', r.order_key,
                                                               'notification_id', nid, 'department', r.department,
                                                               'level', r.level + 1)::text);
            done := done + 1;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'order_flow: could not escalate notification %: %', r.id, SQLERRM;
        END;
    END LOOP;
    RETURN done;
END
$$;

/*
 * _raise_reminders(as_of, batch): orders that have not progressed for the
 * state's "cannot wait" threshold times each reminder level's factor get
 * that level's reminder (audited as remind, sent to the state's owner
 * department through the outbox).
 */
CREATE FUNCTION order_flow._raise_reminders(as_of timestamptz, batch integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    p record;
    lvl integer;
    done integer := 0;
    msg jsonb;
BEGIN
    FOR r IN SELECT t.order_key, t.workflow, t.state, t.entered_at, t.reminder_level,
                    s.max_dwell, s.owner_department
               FROM order_flow.tracked_order t
               JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = t.state
              WHERE t.stale_after IS NOT NULL AND t.stale_after <= as_of
              ORDER BY t.stale_after
              LIMIT batch
              FOR UPDATE OF t SKIP LOCKED
    LOOP
        BEGIN
            lvl := r.reminder_level;
            FOR p IN SELECT level, factor FROM order_flow.reminder_policy x
                      WHERE x.workflow = r.workflow AND x.level > r.reminder_level
                        AND r.entered_at + r.max_dwell * x.factor <= as_of
                      ORDER BY level
            LOOP
                msg := jsonb_build_object('event', 'remind', 'order_key', r.order_key, 'state', r.state,
                                          'level', p.level, 'department', r.owner_department,
                                          'threshold', r.max_dwell * p.factor,
                                          'waiting_since', r.entered_at);
                PERFORM order_flow._append_event(r.order_key, 'remind', r.state, r.state, msg, NULL);
                INSERT INTO order_flow.outbox (order_key, payload) VALUES (r.order_key, msg);
                PERFORM pg_notify('order_flow', msg::text);
                lvl := p.level;
                done := done + 1;
            END LOOP;
            UPDATE order_flow.tracked_order t
               SET reminder_level = lvl,
                   stale_after = t.entered_at + r.max_dwell *
                       (SELECT x.factor FROM order_flow.reminder_policy x
                         WHERE x.workflow = r.workflow AND x.level = lvl + 1)
             WHERE t.order_key = r.order_key;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'order_flow: could not remind order %: %', r.order_key, SQLERRM;
        END;
    END LOOP;
    RETURN done;
END
$$;

/*
 * escalate_due(as_of): one sweep -- escalations, then reminders.  Returns
 * how many were made.  Idempotent for a given as_of; safe to run
 * concurrently with itself (SKIP LOCKED) and with transitions.
 */
CREATE FUNCTION order_flow.escalate_due(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    batch integer := COALESCE(NULLIF(current_setting('order_flow.batch_size', true), '')::integer, 1000);
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    RETURN order_flow._escalate_notifications(as_of, batch)
         + order_flow._raise_reminders(as_of, batch);
END
$$;
COMMENT ON FUNCTION order_flow.escalate_due(timestamptz) IS
    'One escalation sweep: overdue notifications go up one level, stale orders get reminders';

/* The earliest moment the scheduler has an escalation to make. */
CREATE FUNCTION order_flow._next_due() RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT deadline FROM order_flow.notification
     WHERE status = 'pending' AND escalates ORDER BY deadline LIMIT 1
$$;

CREATE VIEW order_flow.pending_acks AS
SELECT n.id AS notification_id,
       n.order_key,
       n.department,
       n.level,
       n.deadline,
       GREATEST(0, floor(extract(epoch FROM n.deadline - now())))::bigint AS seconds_left,
       n.deadline < now() AS overdue,
       n.kind,
       p.title AS level_title,
       n.from_state,
       n.to_state,
       n.payload,
       n.created_at
  FROM order_flow.notification n
  LEFT JOIN order_flow.escalation_policy p ON p.department = n.department AND p.level = n.level
 WHERE n.status = 'pending';
COMMENT ON VIEW order_flow.pending_acks IS
    'The countdown board: every open notification with seconds left, overdue flag and current level';

CREATE VIEW order_flow.stale_orders AS
SELECT t.order_key,
       t.tbl,
       t.workflow,
       t.state,
       s.owner_department,
       t.entered_at,
       now() - t.entered_at AS waiting,
       s.max_dwell,
       t.reminder_level,
       t.customer_key,
       t.attributes
  FROM order_flow.tracked_order t
  JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = t.state
 WHERE t.tbl IS NOT NULL AND s.category <> 'terminal'
   AND t.entered_at + s.max_dwell <= now();
COMMENT ON VIEW order_flow.stale_orders IS
    'Orders waiting longer than their state''s "cannot wait" threshold, with the reminder level reached';

/* Configuration rules of the broadcast hub. */
CREATE CONSTRAINT TRIGGER calendar_valid AFTER INSERT OR UPDATE ON order_flow.calendar
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT order_flow._loading())
    EXECUTE FUNCTION order_flow._validate_calendar();
CREATE CONSTRAINT TRIGGER calendar_hours_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.calendar_hours
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT order_flow._loading())
    EXECUTE FUNCTION order_flow._validate_calendar();
CREATE CONSTRAINT TRIGGER escalation_policy_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.escalation_policy
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT order_flow._loading())
    EXECUTE FUNCTION order_flow._validate_escalation();
CREATE TRIGGER department_defaults AFTER INSERT ON order_flow.department
    FOR EACH ROW EXECUTE FUNCTION order_flow._department_defaults();
CREATE TRIGGER reminder_policy_restale AFTER INSERT OR UPDATE OR DELETE ON order_flow.reminder_policy
    FOR EACH STATEMENT WHEN (NOT order_flow._loading()) EXECUTE FUNCTION order_flow._restale_policy();
CREATE TRIGGER state_restale AFTER UPDATE OF max_dwell, category ON order_flow.state
    FOR EACH ROW WHEN (NOT order_flow._loading()) EXECUTE FUNCTION order_flow._restale();

/* ------------------------------------------------------------------ */
/* Shipping station: scan, choose a preset, ship.                      */
/* ------------------------------------------------------------------ */

CREATE TABLE order_flow.sku (
    sku             text PRIMARY KEY,
    barcode         text NOT NULL UNIQUE,
    name            text NOT NULL DEFAULT '',
    category        text NOT NULL DEFAULT '',
    weight_kg       numeric NOT NULL DEFAULT 0 CHECK (weight_kg >= 0),
    prohibited      boolean NOT NULL DEFAULT false,
    substitutes     text[] NOT NULL DEFAULT '{}',
    unit_price      numeric,
    unit_cost       numeric
);
COMMENT ON TABLE order_flow.sku IS 'Articles: barcode, category, weight, prohibited flag, substitute models';

CREATE TABLE order_flow.stock (
    sku             text PRIMARY KEY REFERENCES order_flow.sku ON UPDATE CASCADE,
    available       integer NOT NULL DEFAULT 0 CHECK (available >= 0)
);
COMMENT ON TABLE order_flow.stock IS
    'Default stock source; point order_flow.station_config(stock_source) at a WMS view or foreign table instead';

CREATE TABLE order_flow.order_line (
    order_key       text NOT NULL,
    sku             text NOT NULL REFERENCES order_flow.sku ON UPDATE CASCADE,
    qty             integer NOT NULL CHECK (qty > 0),
    scanned         integer NOT NULL DEFAULT 0 CHECK (scanned >= 0),
    unit_price      numeric,
    PRIMARY KEY (order_key, sku)
);

CREATE TABLE order_flow.package_preset (
    code            text PRIMARY KEY,
    name            text NOT NULL DEFAULT '',
    max_weight_kg   numeric NOT NULL DEFAULT 30 CHECK (max_weight_kg > 0),
    tare_kg         numeric NOT NULL DEFAULT 0 CHECK (tare_kg >= 0)
);

CREATE TABLE order_flow.freight_rule (
    id              bigserial PRIMARY KEY,
    carrier         text NOT NULL,
    region          text NOT NULL DEFAULT '*',
    min_kg          numeric NOT NULL DEFAULT 0 CHECK (min_kg >= 0),
    max_kg          numeric NOT NULL DEFAULT 1000,
    base_fee        numeric NOT NULL DEFAULT 0 CHECK (base_fee >= 0),
    per_kg          numeric NOT NULL DEFAULT 0 CHECK (per_kg >= 0),
    CHECK (min_kg < max_kg)
);
COMMENT ON COLUMN order_flow.freight_rule.region IS 'Region the rule applies to; * for any region';

CREATE TABLE order_flow.waybill_pool (
    carrier         text PRIMARY KEY,
    prefix          text NOT NULL DEFAULT '',
    next_no         bigint NOT NULL CHECK (next_no >= 0),
    last_no         bigint NOT NULL,
    digits          integer NOT NULL DEFAULT 10 CHECK (digits BETWEEN 1 AND 18),
    check_digit     text NOT NULL DEFAULT 'none' CHECK (check_digit IN ('none', 'mod7', 'mod11')),
    CHECK (next_no <= last_no + 1),
    CHECK (last_no < power(10::numeric, digits))
);
COMMENT ON TABLE order_flow.waybill_pool IS
    'Waybill number ranges the carriers pre-assign; next_no > last_no means exhausted';

CREATE TABLE order_flow.station_config (
    key             text PRIMARY KEY,
    value           text NOT NULL
);

CREATE TABLE order_flow.shipment (
    order_key       text PRIMARY KEY,
    waybill         text NOT NULL UNIQUE,
    carrier         text NOT NULL,
    package_preset  text NOT NULL,
    weight_kg       numeric NOT NULL,
    freight         numeric NOT NULL,
    label           jsonb NOT NULL,
    operator        text NOT NULL,
    station         text,
    shipped_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE order_flow.station_event (
    id              bigserial PRIMARY KEY,
    order_key       text,
    operator        text NOT NULL,
    station         text,
    step            text NOT NULL CHECK (step IN ('scan', 'preset', 'ship', 'error')),
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    dwell           interval,
    detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX station_event_operator_idx ON order_flow.station_event (operator, at);
CREATE INDEX station_event_order_idx ON order_flow.station_event (order_key);

CREATE TABLE order_flow.logistics_trace (
    id              bigserial PRIMARY KEY,
    tracking_no     text NOT NULL,
    order_key       text NOT NULL,
    status          text NOT NULL,
    at              timestamptz NOT NULL,
    location        text,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX logistics_trace_order_idx ON order_flow.logistics_trace (order_key, at);

INSERT INTO order_flow.station_config (key, value) VALUES ('stock_source', 'order_flow.stock');

/* Station helpers. */
CREATE FUNCTION order_flow._station_event(order_key text, step text, detail jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who text := order_flow.current_actor();
    prev timestamptz;
    now_ timestamptz := clock_timestamp();
BEGIN
    SELECT max(e.at) INTO prev FROM order_flow.station_event e WHERE e.operator = who;
    INSERT INTO order_flow.station_event (order_key, operator, station, step, at, dwell, detail)
    VALUES (order_key, who, NULLIF(current_setting('order_flow.station', true), ''), step, now_,
            now_ - prev, detail);
END
$$;

CREATE FUNCTION order_flow._owner_move(tbl regclass, order_key text, to_state text, note text, details jsonb)
    RETURNS void AS 'MODULE_PATHNAME', 'order_flow_owner_move' LANGUAGE C;
CREATE FUNCTION order_flow._stock(source regclass, op text, sku text, qty integer)
    RETURNS integer AS 'MODULE_PATHNAME', 'order_flow_stock' LANGUAGE C;

CREATE FUNCTION order_flow._stock_source() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT value FROM order_flow.station_config WHERE key = 'stock_source'),
                    'order_flow.stock')::regclass::text
$$;

CREATE FUNCTION order_flow._available(sku text) RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN COALESCE(order_flow._stock(order_flow._stock_source()::regclass, 'read', sku, 0), 0);
END
$$;

/* Check digit of a waybill serial number: none, mod 7, or mod 11 (UPU S10 weights). */
CREATE FUNCTION order_flow.waybill_check_digit(method text, serial bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := lpad(serial::text, 8, '0');
    w integer[] := ARRAY[8, 6, 4, 2, 3, 5, 9, 7];
    total integer := 0;
    d integer;
BEGIN
    IF method = 'none' THEN
        RETURN '';
    ELSIF method = 'mod7' THEN
        RETURN (serial % 7)::text;
    ELSIF method = 'mod11' THEN
        s := right(s, 8);
        FOR i IN 1..8 LOOP
            total := total + substr(s, i, 1)::integer * w[i];
        END LOOP;
        d := 11 - total % 11;
        RETURN CASE d WHEN 10 THEN '0' WHEN 11 THEN '5' ELSE d::text END;
    END IF;
    RAISE EXCEPTION 'unknown check digit method "%"', method USING ERRCODE = '22023';
END
$$;

CREATE FUNCTION order_flow._scan_remaining(order_key text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object('sku', l.sku, 'name', s.name, 'qty', l.qty,
                                                 'scanned', l.scanned, 'left', l.qty - l.scanned)
                              ORDER BY l.sku) FILTER (WHERE l.scanned < l.qty), '[]')
      FROM order_flow.order_line l JOIN order_flow.sku s ON s.sku = l.sku
     WHERE l.order_key = _scan_remaining.order_key
$$;

/*
 * station_scan(order_key, barcode, qty): match a scan to an order line.
 * Returns what is left to scan and any warning (unknown_barcode,
 * not_on_order, over_scan, prohibited, stock_short with in-stock
 * substitutes).  A warned scan is not counted; every scan is a station
 * event (warnings as errors) for the heat map.
 */
CREATE FUNCTION order_flow.station_scan(order_key text, barcode text, qty integer DEFAULT 1)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    st text;
    art record;
    line record;
    warning text;
    message text;
    subs jsonb := '[]';
    avail integer;
    result jsonb;
BEGIN
    IF order_key IS NULL OR barcode IS NULL OR qty IS NULL THEN
        RAISE EXCEPTION 'order key, barcode and quantity must not be null' USING ERRCODE = '22004';
    END IF;
    IF qty <= 0 OR qty > 10000 THEN
        RAISE EXCEPTION 'scan quantity % is out of range (1 to 10000)', qty USING ERRCODE = '22023';
    END IF;
    SELECT t.state INTO st FROM order_flow.tracked_order t WHERE t.order_key = order_key AND t.tbl IS NOT NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', order_key USING ERRCODE = 'P0002';
    END IF;
    IF st NOT IN ('picking', 'packed') THEN
        RAISE EXCEPTION 'order % is %, not being picked or packed', order_key, st USING ERRCODE = '55000';
    END IF;

    SELECT * INTO art FROM order_flow.sku s WHERE s.barcode = station_scan.barcode;
    IF NOT FOUND THEN
        warning := 'unknown_barcode';
        message := format('Barcode %s is unknown. Put the item aside and call your supervisor.', barcode);
    ELSE
        SELECT * INTO line FROM order_flow.order_line l
         WHERE l.order_key = station_scan.order_key AND l.sku = art.sku FOR UPDATE;
        IF NOT FOUND THEN
            warning := 'not_on_order';
            message := format('%s (%s) is not on order %s. Put it back.', art.name, art.sku, order_key);
        ELSIF art.prohibited THEN
            warning := 'prohibited';
            message := format('%s (%s) is prohibited goods and cannot be shipped.', art.name, art.sku);
        ELSIF line.scanned + qty > line.qty THEN
            warning := 'over_scan';
            message := format('Only %s of %s needed, %s already scanned.', line.qty, art.sku, line.scanned);
        ELSE
            UPDATE order_flow.order_line l SET scanned = l.scanned + qty
             WHERE l.order_key = station_scan.order_key AND l.sku = art.sku;
            avail := order_flow._available(art.sku);
            IF avail < line.qty THEN
                warning := 'stock_short';
                message := format('Stock shows %s of %s, the order needs %s.', avail, art.sku, line.qty);
                SELECT COALESCE(jsonb_agg(jsonb_build_object('sku', s.sku, 'name', s.name,
                                                             'available', order_flow._available(s.sku))
                                          ORDER BY s.sku), '[]')
                  INTO subs
                  FROM order_flow.sku s
                 WHERE s.sku = ANY (art.substitutes) AND NOT s.prohibited
                   AND order_flow._available(s.sku) >= line.qty;
            END IF;
        END IF;
    END IF;

    result := jsonb_build_object(
        'ok', warning IS NULL OR warning = 'stock_short',
        'order_key', order_key,
        'sku', art.sku,
        'warning', warning,
        'message', COALESCE(message, 'OK'),
        'remaining', order_flow._scan_remaining(order_key));
    result := result || jsonb_build_object('complete', jsonb_array_length(result->'remaining') = 0);
    IF warning = 'stock_short' THEN
        result := result || jsonb_build_object('substitutes', subs);
    END IF;
    PERFORM order_flow._station_event(order_key,
        CASE WHEN warning IS NULL OR warning = 'stock_short' THEN 'scan' ELSE 'error' END,
        jsonb_build_object('barcode', barcode, 'qty', qty, 'warning', warning));
    RETURN result;
END
$$;
COMMENT ON FUNCTION order_flow.station_scan(text, text, integer) IS
    'Station: match a scanned barcode to the order; returns what is left and any warning';

/*
 * station_ship(order_key, package_preset): all checks, then ship.  Refuses
 * unless every line is scanned, nothing is prohibited, the preset holds the
 * weight and stock suffices; locks and decrements stock, computes freight
 * by rule, takes a waybill number, moves the order to shipped through the
 * normal transition path, and returns the label.  All or nothing.
 */
CREATE FUNCTION order_flow.station_ship(order_key text, package_preset text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    o record;
    p record;
    rule record;
    pool record;
    src text := order_flow._stock_source();
    bad text;
    weight numeric;
    fee numeric;
    serial bigint;
    waybill text;
    region text;
    items jsonb;
    label jsonb;
    r record;
    avail integer;
BEGIN
    IF order_key IS NULL OR package_preset IS NULL THEN
        RAISE EXCEPTION 'order key and package preset must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO p FROM order_flow.package_preset x WHERE x.code = package_preset;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown package preset "%"', package_preset USING ERRCODE = '22023',
            HINT = 'Choose one of the presets in order_flow.package_preset.';
    END IF;
    SELECT * INTO o FROM order_flow.tracked_order t
     WHERE t.order_key = order_key AND t.tbl IS NOT NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', order_key USING ERRCODE = 'P0002';
    END IF;
    IF o.state NOT IN ('picking', 'packed') THEN
        RAISE EXCEPTION 'order % is %, not ready to ship', order_key, o.state USING ERRCODE = '55000',
            HINT = 'Only picked or packed orders are shipped at the station.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.order_line l WHERE l.order_key = order_key) THEN
        RAISE EXCEPTION 'order % has no lines', order_key USING ERRCODE = '55000';
    END IF;
    SELECT string_agg(format('%s (%s of %s scanned)', l.sku, l.scanned, l.qty), ', ' ORDER BY l.sku)
      INTO bad FROM order_flow.order_line l WHERE l.order_key = order_key AND l.scanned < l.qty;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'order % is not fully scanned', order_key USING ERRCODE = '55000',
            DETAIL = 'Still to scan: ' || bad || '.';
    END IF;
    SELECT string_agg(l.sku, ', ' ORDER BY l.sku) INTO bad
      FROM order_flow.order_line l JOIN order_flow.sku s ON s.sku = l.sku
     WHERE l.order_key = order_key AND s.prohibited;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'order % contains prohibited goods', order_key USING ERRCODE = '23514',
            DETAIL = 'Prohibited: ' || bad || '.';
    END IF;
    SELECT sum(l.qty * s.weight_kg) + p.tare_kg INTO weight
      FROM order_flow.order_line l JOIN order_flow.sku s ON s.sku = l.sku
     WHERE l.order_key = order_key;
    IF weight > p.max_weight_kg THEN
        RAISE EXCEPTION 'order % weighs % kg, more than preset % allows (% kg)', order_key, weight,
            p.code, p.max_weight_kg USING ERRCODE = '23514',
            HINT = 'Choose a larger package preset.';
    END IF;

    /* stock: lock in a fixed order so two stations never deadlock, then check and decrement */
    FOR r IN SELECT l.sku, l.qty FROM order_flow.order_line l WHERE l.order_key = order_key ORDER BY l.sku LOOP
        avail := order_flow._stock(src::regclass, 'lock', r.sku, 0);
        IF COALESCE(avail, 0) < r.qty THEN
            RAISE EXCEPTION 'stock short for % on order %: % available, % needed', r.sku, order_key,
                COALESCE(avail, 0), r.qty USING ERRCODE = '23514';
        END IF;
    END LOOP;
    FOR r IN SELECT l.sku, l.qty FROM order_flow.order_line l WHERE l.order_key = order_key ORDER BY l.sku LOOP
        PERFORM order_flow._stock(src::regclass, 'take', r.sku, r.qty);
    END LOOP;

    region := o.attributes->>'region';
    SELECT f.*, f.base_fee + f.per_kg * weight AS fee INTO rule
      FROM order_flow.freight_rule f
     WHERE (f.region = region OR f.region = '*') AND weight >= f.min_kg AND weight < f.max_kg
     ORDER BY f.base_fee + f.per_kg * weight, (f.region = '*'), f.carrier
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no freight rule for region % and % kg', COALESCE(region, '(none)'), weight
            USING ERRCODE = 'P0002', HINT = 'Add a row to order_flow.freight_rule.';
    END IF;
    fee := round(rule.fee, 2);

    UPDATE order_flow.waybill_pool w SET next_no = w.next_no + 1
     WHERE w.carrier = rule.carrier AND w.next_no <= w.last_no
    RETURNING w.*, w.next_no - 1 AS taken INTO pool;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'waybill pool of carrier % is exhausted', rule.carrier USING ERRCODE = '55000',
            HINT = 'Load a new number range into order_flow.waybill_pool.';
    END IF;
    serial := pool.taken;
    waybill := pool.prefix || lpad(serial::text, pool.digits, '0')
               || order_flow.waybill_check_digit(pool.check_digit, serial);

    SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'name', s.name, 'qty', l.qty) ORDER BY l.sku)
      INTO items
      FROM order_flow.order_line l JOIN order_flow.sku s ON s.sku = l.sku
     WHERE l.order_key = order_key;
    label := jsonb_build_object(
        'waybill', waybill, 'carrier', rule.carrier, 'order_key', order_key,
        'customer', o.customer_key,
        'addressee', (SELECT COALESCE(jsonb_object_agg(k, v), '{}') FROM jsonb_each(o.attributes) a(k, v)
                       WHERE k IN ('region', 'addressee', 'contact', 'phone', 'address', 'city', 'postcode')),
        'package', p.code, 'weight_kg', weight, 'freight', fee, 'items', items,
        'shipped_at', clock_timestamp());

    INSERT INTO order_flow.shipment (order_key, waybill, carrier, package_preset, weight_kg, freight,
                                     label, operator, station)
    VALUES (order_key, waybill, rule.carrier, p.code, weight, fee, label, order_flow.current_actor(),
            NULLIF(current_setting('order_flow.station', true), ''));
    PERFORM order_flow._station_event(order_key, 'preset', jsonb_build_object('package', p.code));
    /* the managed table's own triggers run with its owner's rights, not ours */
    PERFORM order_flow._owner_move(o.tbl::regclass, order_key, 'shipped', 'shipped at station',
                                  jsonb_build_object('waybill', waybill, 'carrier', rule.carrier,
                                                     'freight', fee, 'weight_kg', weight));
    PERFORM order_flow._append_event(order_key, 'ship', 'shipped', 'shipped',
                                     jsonb_build_object('waybill', waybill, 'carrier', rule.carrier,
                                                        'package', p.code, 'weight_kg', weight), NULL);
    PERFORM order_flow._station_event(order_key, 'ship', jsonb_build_object('waybill', waybill));
    RETURN label;
END
$$;
COMMENT ON FUNCTION order_flow.station_ship(text, text) IS
    'Station: check, lock and decrement stock, rate freight, take a waybill, ship; returns the label';

/*
 * logistics_update(tracking_no, status, at, location): a carrier trace
 * event.  The first one is the order's first logistics update; in_transit
 * and delivered move the order along.
 */
CREATE FUNCTION order_flow.logistics_update(tracking_no text, status text, at timestamptz,
                                            location text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    sh record;
    st text;
    tbl regclass;
    id_ bigint;
BEGIN
    IF tracking_no IS NULL OR status IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'tracking number, status and time must not be null' USING ERRCODE = '22004';
    END IF;
    IF at > clock_timestamp() + interval '5 minutes' THEN
        RAISE EXCEPTION 'trace time % lies in the future', at USING ERRCODE = '22023';
    END IF;
    SELECT * INTO sh FROM order_flow.shipment s WHERE s.waybill = tracking_no;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tracking number %', tracking_no USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO order_flow.logistics_trace (tracking_no, order_key, status, at, location)
    VALUES (tracking_no, sh.order_key, status, at, location) RETURNING id INTO id_;
    PERFORM order_flow._append_event(sh.order_key, 'logistics', NULL, NULL,
        jsonb_build_object('tracking_no', tracking_no, 'status', status, 'location', location), at);
    SELECT t.state, t.tbl::regclass INTO st, tbl FROM order_flow.tracked_order t
     WHERE t.order_key = sh.order_key;
    IF status IN ('in_transit', 'delivered') AND st = 'shipped' THEN
        PERFORM order_flow._owner_move(tbl, sh.order_key, 'in_transit', 'carrier trace', '{}');
        st := 'in_transit';
    END IF;
    IF status = 'delivered' AND st = 'in_transit' THEN
        PERFORM order_flow._owner_move(tbl, sh.order_key, 'delivered', 'carrier trace', '{}');
    END IF;
    RETURN id_;
END
$$;
COMMENT ON FUNCTION order_flow.logistics_update(text, text, timestamptz, text) IS
    'Record a carrier trace event; in_transit and delivered move the order along';

/* Operation right without decision right: EXECUTE on the two station functions only. */
CREATE FUNCTION order_flow.grant_station_operator(operator regrole) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF operator IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION order_flow.station_scan(text, text, integer), '
                   'order_flow.station_ship(text, text) TO %s', operator);
END
$$;

CREATE VIEW order_flow.station_heatmap AS
SELECT operator,
       step,
       count(*) AS steps,
       avg(extract(epoch FROM dwell)) AS mean_dwell_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM dwell)) AS p90_dwell_seconds,
       count(*) FILTER (WHERE step = 'error') AS errors
  FROM order_flow.station_event
 GROUP BY operator, step;
COMMENT ON VIEW order_flow.station_heatmap IS
    'Per operator and station step: count, mean and p90 dwell time since the previous step, errors';

DO $stcfg$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['package_preset', 'freight_rule', 'waybill_pool', 'station_config']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON order_flow.%I
                        FOR EACH ROW EXECUTE FUNCTION order_flow._restore_merge()', t || '_merge', t);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR DELETE ON order_flow.%I
                        FOR EACH ROW EXECUTE FUNCTION order_flow._audit_config()', t || '_audit', t);
        IF t <> 'waybill_pool' THEN
            EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON order_flow.%I
                            FOR EACH ROW EXECUTE FUNCTION order_flow._audit_config()', t || '_audit_update', t);
        END IF;
    END LOOP;
END
$stcfg$;

/* Taking a waybill number moves next_no: that is use, not configuration. */
CREATE TRIGGER waybill_pool_audit_update AFTER UPDATE ON order_flow.waybill_pool
    FOR EACH ROW
    WHEN ((OLD.carrier, OLD.prefix, OLD.last_no, OLD.digits, OLD.check_digit)
          IS DISTINCT FROM (NEW.carrier, NEW.prefix, NEW.last_no, NEW.digits, NEW.check_digit))
    EXECUTE FUNCTION order_flow._audit_config();

/* ------------------------------------------------------------------ */
/* Privileges: PUBLIC gets what it needs and nothing else.             */
/* ------------------------------------------------------------------ */

REVOKE ALL ON ALL TABLES IN SCHEMA order_flow FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA order_flow FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA order_flow FROM PUBLIC;
GRANT USAGE ON SCHEMA order_flow TO PUBLIC;

GRANT EXECUTE ON FUNCTION
    order_flow.status_in(cstring), order_flow.status_out(order_flow.status),
    order_flow.status_recv(internal), order_flow.status_send(order_flow.status),
    order_flow.status_eq(order_flow.status, order_flow.status),
    order_flow.status_ne(order_flow.status, order_flow.status),
    order_flow.status_lt(order_flow.status, order_flow.status),
    order_flow.status_le(order_flow.status, order_flow.status),
    order_flow.status_gt(order_flow.status, order_flow.status),
    order_flow.status_ge(order_flow.status, order_flow.status),
    order_flow.status_cmp(order_flow.status, order_flow.status),
    order_flow.status_hash(order_flow.status),
    order_flow.status_hash_extended(order_flow.status, bigint),
    order_flow.status_to_text(order_flow.status), order_flow.status_from_text(text),
    order_flow.status_position(order_flow.status),
    order_flow.status_larger(order_flow.status, order_flow.status),
    order_flow.status_smaller(order_flow.status, order_flow.status),
    order_flow.max(order_flow.status), order_flow.min(order_flow.status),
    order_flow.current_actor(), order_flow.is_admin(), order_flow._loading(),
    order_flow.transition(regclass, text, text, text, jsonb),
    order_flow._move(regclass, text, text, text, jsonb, text, timestamptz),
    order_flow._set_context(text, text, text, jsonb, timestamptz),
    order_flow._take_context_result(),
    order_flow._managed(regclass),
    order_flow._caller_may_read(regclass),
    order_flow.allowed_transitions(regclass, text),
    order_flow.acknowledge(bigint, text, jsonb)
TO PUBLIC;

GRANT SELECT ON order_flow.status_label, order_flow.workflow, order_flow.state,
    order_flow.transition_rule, order_flow.department, order_flow.calendar,
    order_flow.calendar_hours, order_flow.calendar_holiday
TO PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE ON order_flow.calendar, order_flow.calendar_hours,
    order_flow.calendar_holiday, order_flow.workflow, order_flow.department, order_flow.state,
    order_flow.transition_rule, order_flow.member, order_flow.escalation_policy,
    order_flow.reminder_policy, order_flow.managed_table
TO order_flow_admin;
GRANT SELECT, INSERT ON order_flow.status_label TO order_flow_admin;
GRANT SELECT ON order_flow.config_tombstone TO order_flow_admin;
GRANT SELECT, INSERT, UPDATE ON order_flow.tracked_order TO order_flow_admin;
GRANT SELECT ON order_flow.audit_log, order_flow.notification, order_flow.outbox,
    order_flow.refused_attempt, order_flow.pending_acks, order_flow.stale_orders TO order_flow_admin;
GRANT UPDATE (delivered_at, attempts) ON order_flow.outbox TO order_flow_admin;
GRANT EXECUTE ON FUNCTION
    order_flow._transition_trigger(),
    order_flow.manage(regclass, name, name, text, name, name[]),
    order_flow.unmanage(regclass),
    order_flow.import_transition(regclass, text, text, timestamptz, jsonb),
    order_flow.record(text, text, jsonb),
    order_flow.verify_audit(text),
    order_flow.validate_workflow(text),
    order_flow.acknowledge(bigint, text, jsonb),
    order_flow.escalate_due(timestamptz),
    order_flow.worker_status(),
    order_flow.business_deadline(text, timestamptz, interval),
    order_flow.department_deadline(text, timestamptz, interval),
    order_flow.create_status(text, text, text),
    order_flow.event_hash(bytea, text, bigint, text, text, text, text, text, timestamptz, timestamptz, jsonb)
TO order_flow_admin;

GRANT SELECT, INSERT, UPDATE, DELETE ON order_flow.sku, order_flow.stock, order_flow.order_line,
    order_flow.package_preset, order_flow.freight_rule, order_flow.waybill_pool, order_flow.station_config
TO order_flow_admin;
GRANT SELECT ON order_flow.shipment, order_flow.station_event, order_flow.logistics_trace,
    order_flow.station_heatmap TO order_flow_admin;
GRANT USAGE ON SEQUENCE order_flow.freight_rule_id_seq TO order_flow_admin;
GRANT EXECUTE ON FUNCTION
    order_flow.station_scan(text, text, integer),
    order_flow.station_ship(text, text),
    order_flow.logistics_update(text, text, timestamptz, text),
    order_flow.grant_station_operator(regrole),
    order_flow.waybill_check_digit(text, bigint)
TO order_flow_admin;

/* The owner appends; nobody rewrites history. */
REVOKE UPDATE, DELETE, TRUNCATE ON order_flow.audit_log FROM CURRENT_USER;

/* pg_dump keeps configuration, tracking and history. */
SELECT pg_catalog.pg_extension_config_dump('order_flow.status_label', '');
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
SELECT pg_catalog.pg_extension_config_dump('order_flow.config_tombstone', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.sku', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.stock', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.order_line', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.package_preset', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.freight_rule', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.freight_rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.waybill_pool', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.station_config', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.shipment', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.station_event', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.station_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.logistics_trace', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.logistics_trace_id_seq', '');

/* ------------------------------------------------------------------ */
/* Metrics and customer health (SPEC 3.7).                             */
/* ------------------------------------------------------------------ */

/*
 * Everything here is derived from the audit log.  Reports do not read the
 * whole log: an AFTER INSERT row trigger on audit_log (C, filtered by its
 * WHEN clause to the events a metric needs) folds those events into one row
 * per order (order_fact) and one row per exception event (exception_fact).
 * The folds are order-independent, so the rollup equals what
 * metrics_rebuild() computes from the log from scratch, and a pg_restore
 * that reloads audit_log rebuilds it through the same trigger (the two
 * tables are therefore not dumped).
 *
 * Conventions used by every metric:
 *   - an order's contract signing, shipment, delivery and acceptance are
 *     its earliest state changes into contract_signed, shipped, delivered,
 *     accepted (business time, occurred_at);
 *   - its first logistics update is the earliest of its shipment and any
 *     carrier trace event (audit action 'logistics');
 *   - an exception event is a state change whose details carry an
 *     exception_type (every edge with an exception type), or a
 *     record(k, 'exception', ...) fact;
 *   - rework/return: the order entered rework or returned, or had an
 *     exception of type rework, return, returned or reshipment;
 *   - customer and attributes (region, customer_class or grade, category,
 *     amount, promised_ship_date) are those captured by the order's latest
 *     such state change; the order date is the occurred_at of its first
 *     event (created, or the first imported step of an adopted order).
 */

CREATE FUNCTION order_flow._metric_number(jsonb) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_metric_number' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION order_flow._metric_number(jsonb) IS
    'A JSON number, or a string holding one, as float8; NULL for anything else (never an error)';
CREATE FUNCTION order_flow._metric_date(jsonb) RETURNS date
    AS 'MODULE_PATHNAME', 'order_flow_metric_date' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION order_flow._metric_date(jsonb) IS
    'A JSON string holding a date, as date; NULL for anything else (never an error)';

/* One row per order: what the metrics need, folded from its events. */
CREATE TABLE order_flow.order_fact (
    order_key           text PRIMARY KEY,
    customer_key        text,
    attrs_seq           bigint NOT NULL DEFAULT -1,
    region              text,
    customer_class      text,
    category            text,
    amount              float8,
    promised_ship_date  date,
    ordered_at          timestamptz,
    contract_signed_at  timestamptz,
    shipped_at          timestamptz,
    first_logistics_at  timestamptz,
    delivered_at        timestamptz,
    accepted_at         timestamptz,
    rework_return       boolean NOT NULL DEFAULT false,
    exceptions          integer NOT NULL DEFAULT 0,
    payments            integer NOT NULL DEFAULT 0,
    payments_late       integer NOT NULL DEFAULT 0,
    payment_due_amount  float8 NOT NULL DEFAULT 0,
    paid_on_time_amount float8 NOT NULL DEFAULT 0,
    service_requests    integer NOT NULL DEFAULT 0,
    complaints          integer NOT NULL DEFAULT 0
) WITH (fillfactor = 80);
/* Room on the page keeps the few updates per order HOT. */
CREATE INDEX order_fact_signed_idx ON order_flow.order_fact (contract_signed_at);
CREATE INDEX order_fact_customer_idx ON order_flow.order_fact (customer_key);
COMMENT ON TABLE order_flow.order_fact IS
    'Per-order rollup of the audit log kept by the audit_log_metrics trigger (see metrics_rebuild)';
COMMENT ON COLUMN order_flow.order_fact.attrs_seq IS
    'Sequence number of the state change whose customer and attributes the row holds (-1: none yet)';
COMMENT ON COLUMN order_flow.order_fact.ordered_at IS
    'occurred_at of the order''s first event';
COMMENT ON COLUMN order_flow.order_fact.payment_due_amount IS
    'Sum of the amounts of payments that name a due_date';
COMMENT ON COLUMN order_flow.order_fact.paid_on_time_amount IS
    'Of those, the amount paid on or before its due_date (paid_date, else the event''s UTC date)';
COMMENT ON COLUMN order_flow.order_fact.payments_late IS
    'Payments paid after their due_date';

/* One row per exception event. */
CREATE TABLE order_flow.exception_fact (
    order_key       text NOT NULL,
    event_id        bigint NOT NULL,
    exception_type  text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    action          text NOT NULL
);
/* No index: only scanned whole (exception_pareto) or truncated (rebuild);
   an index would cost every exception event on the transition path. */
COMMENT ON TABLE order_flow.exception_fact IS
    'Exception events (edges with an exception type, exception records), kept by the audit_log_metrics trigger; event_id = audit_log.id';

CREATE FUNCTION order_flow._metrics_capture() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_metrics_capture' LANGUAGE C;

CREATE TRIGGER audit_log_metrics AFTER INSERT ON order_flow.audit_log
    FOR EACH ROW WHEN (NEW.seq = 1
        OR NEW.action IN ('created', 'payment', 'service_request', 'complaint', 'exception', 'logistics')
        OR (NEW.from_state IS DISTINCT FROM NEW.to_state
            AND (NEW.to_state IN ('contract_signed', 'shipped', 'delivered', 'accepted', 'rework', 'returned')
                 OR NEW.details ? 'exception_type')))
    EXECUTE FUNCTION order_flow._metrics_capture();

/*
 * metrics_rebuild(): recompute order_fact and exception_fact from the audit
 * log with the trigger's rules.  Blocks new events while it runs.  Returns
 * the number of orders.
 */
CREATE FUNCTION order_flow.metrics_rebuild() RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    LOCK TABLE order_flow.audit_log IN SHARE MODE;
    TRUNCATE order_flow.order_fact, order_flow.exception_fact;
    CREATE TEMP TABLE pg_temp.metrics_event ON COMMIT DROP AS
    SELECT e.order_key, e.id, coalesce(e.seq, 0) AS seq, e.action, e.to_state, e.occurred_at, x.sc,
           CASE WHEN x.sc THEN e.details->>'customer' END AS customer,
           CASE WHEN x.sc THEN e.details->'attributes' END AS attrs,
           x.ex,
           (x.sc AND e.to_state IN ('rework', 'returned'))
               OR coalesce(x.ex IN ('rework', 'return', 'returned', 'reshipment'), false) AS rework,
           CASE WHEN e.action = 'payment'
                THEN coalesce(order_flow._metric_number(e.details->'amount'), 0) END AS pay_amount,
           CASE WHEN e.action = 'payment' THEN order_flow._metric_date(e.details->'due_date') END AS due,
           CASE WHEN e.action = 'payment'
                THEN coalesce(order_flow._metric_date(e.details->'paid_date'),
                              (e.occurred_at AT TIME ZONE 'UTC')::date) END AS paid
      FROM order_flow.audit_log e
     CROSS JOIN LATERAL (
            SELECT e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state AS sc) s
     CROSS JOIN LATERAL (
            SELECT s.sc,
                   CASE WHEN s.sc OR e.action = 'exception'
                        THEN nullif(e.details->>'exception_type', '') END AS ex) x
     WHERE NOT starts_with(e.order_key, 'order_flow:')
       AND (e.seq = 1
            OR e.action IN ('created', 'payment', 'service_request', 'complaint', 'exception', 'logistics')
            OR (e.from_state IS DISTINCT FROM e.to_state
                AND (e.to_state IN ('contract_signed', 'shipped', 'delivered', 'accepted', 'rework', 'returned')
                     OR e.details ? 'exception_type')));

    INSERT INTO order_flow.exception_fact (order_key, event_id, exception_type, occurred_at, action)
    SELECT order_key, id, ex, occurred_at, action FROM pg_temp.metrics_event WHERE ex IS NOT NULL;

    INSERT INTO order_flow.order_fact AS f
        (order_key, customer_key, attrs_seq, region, customer_class, category, amount,
         promised_ship_date, ordered_at, contract_signed_at, shipped_at, first_logistics_at,
         delivered_at, accepted_at, rework_return, exceptions, payments, payments_late,
         payment_due_amount, paid_on_time_amount, service_requests, complaints)
    SELECT g.order_key, coalesce(g.customer, t.customer_key), coalesce(g.attrs_seq, -1),
           g.attrs->>'region',
           coalesce(g.attrs->>'customer_class', g.attrs->>'grade'),
           g.attrs->>'category',
           order_flow._metric_number(g.attrs->'amount'),
           order_flow._metric_date(g.attrs->'promised_ship_date'),
           g.ordered_at, g.signed, g.shipped, g.logistics, g.delivered, g.accepted,
           g.rework, g.exceptions, g.payments, g.late, g.due_amount, g.on_time_amount,
           g.service_requests, g.complaints
      FROM (SELECT m.order_key,
                   (array_agg(m.customer ORDER BY m.seq DESC)
                        FILTER (WHERE m.sc AND m.customer IS NOT NULL))[1] AS customer,
                   max(m.seq) FILTER (WHERE m.sc) AS attrs_seq,
                   (array_agg(m.attrs ORDER BY m.seq DESC) FILTER (WHERE m.sc))[1] AS attrs,
                   min(m.occurred_at) AS ordered_at,
                   min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = 'contract_signed') AS signed,
                   min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = 'shipped') AS shipped,
                   min(m.occurred_at) FILTER (WHERE (m.sc AND m.to_state = 'shipped')
                                                 OR m.action = 'logistics') AS logistics,
                   min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = 'delivered') AS delivered,
                   min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = 'accepted') AS accepted,
                   bool_or(m.rework) AS rework,
                   count(m.ex) AS exceptions,
                   count(*) FILTER (WHERE m.action = 'payment') AS payments,
                   count(*) FILTER (WHERE m.action = 'payment' AND m.due IS NOT NULL
                                      AND m.paid > m.due) AS late,
                   coalesce(sum(m.pay_amount) FILTER (WHERE m.action = 'payment'
                                                         AND m.due IS NOT NULL), 0) AS due_amount,
                   coalesce(sum(m.pay_amount) FILTER (WHERE m.action = 'payment'
                                                         AND m.paid <= m.due), 0) AS on_time_amount,
                   count(*) FILTER (WHERE m.action = 'service_request') AS service_requests,
                   count(*) FILTER (WHERE m.action = 'complaint') AS complaints
              FROM pg_temp.metrics_event m
             GROUP BY m.order_key) g
      LEFT JOIN order_flow.tracked_order t ON t.order_key = g.order_key;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE pg_temp.metrics_event;
    RETURN n;
END
$$;
COMMENT ON FUNCTION order_flow.metrics_rebuild() IS
    'Recompute the metrics rollup (order_fact, exception_fact) from the audit log; returns the number of orders';

/* ------------------------------------------------------------------ */
/* C aggregates.                                                       */
/* ------------------------------------------------------------------ */

/*
 * Order rhythm: order_frequency, order_volatility, order_value_trend and
 * monthly_orders(ordered_at, value, as_of) share one transition state (per
 * calendar month in the session time zone: order count and value), so a
 * query using all four does the work once per row.
 */
CREATE FUNCTION order_flow._rhythm_trans(internal, timestamptz, float8, timestamptz) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_trans' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._rhythm_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._rhythm_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._rhythm_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._rhythm_frequency(internal) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_frequency' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._rhythm_volatility(internal) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_volatility' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._rhythm_trend(internal) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_trend' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._rhythm_months(internal) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'order_flow_rhythm_months' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE order_flow.order_frequency(ordered_at timestamptz, value float8, as_of timestamptz) (
    SFUNC = order_flow._rhythm_trans, STYPE = internal, SSPACE = 336,
    FINALFUNC = order_flow._rhythm_frequency,
    COMBINEFUNC = order_flow._rhythm_combine,
    SERIALFUNC = order_flow._rhythm_serial, DESERIALFUNC = order_flow._rhythm_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow.order_frequency(timestamptz, float8, timestamptz) IS
    'Orders per month over the 12 complete calendar months before as_of''s month';
CREATE AGGREGATE order_flow.order_volatility(ordered_at timestamptz, value float8, as_of timestamptz) (
    SFUNC = order_flow._rhythm_trans, STYPE = internal, SSPACE = 336,
    FINALFUNC = order_flow._rhythm_volatility,
    COMBINEFUNC = order_flow._rhythm_combine,
    SERIALFUNC = order_flow._rhythm_serial, DESERIALFUNC = order_flow._rhythm_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow.order_volatility(timestamptz, float8, timestamptz) IS
    'Coefficient of variation (population std dev / mean) of the order counts of the 3 complete months before as_of''s month; NULL if they have no order';
CREATE AGGREGATE order_flow.order_value_trend(ordered_at timestamptz, value float8, as_of timestamptz) (
    SFUNC = order_flow._rhythm_trans, STYPE = internal, SSPACE = 336,
    FINALFUNC = order_flow._rhythm_trend,
    COMBINEFUNC = order_flow._rhythm_combine,
    SERIALFUNC = order_flow._rhythm_serial, DESERIALFUNC = order_flow._rhythm_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow.order_value_trend(timestamptz, float8, timestamptz) IS
    'Least-squares slope of monthly order value over the 6 complete months before as_of''s month, divided by the mean monthly value (0.05 = +5 % a month); NULL if no value';
CREATE AGGREGATE order_flow.monthly_orders(ordered_at timestamptz, value float8, as_of timestamptz) (
    SFUNC = order_flow._rhythm_trans, STYPE = internal, SSPACE = 336,
    FINALFUNC = order_flow._rhythm_months,
    COMBINEFUNC = order_flow._rhythm_combine,
    SERIALFUNC = order_flow._rhythm_serial, DESERIALFUNC = order_flow._rhythm_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow.monthly_orders(timestamptz, float8, timestamptz) IS
    'Order counts of the 3 complete calendar months before as_of''s month, oldest first';

CREATE FUNCTION order_flow._breadth_trans(internal, text) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_breadth_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._breadth_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_breadth_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._breadth_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_breadth_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._breadth_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_breadth_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._breadth_final(internal) RETURNS integer
    AS 'MODULE_PATHNAME', 'order_flow_breadth_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE order_flow.breadth(text) (
    SFUNC = order_flow._breadth_trans, STYPE = internal, SSPACE = 128,
    FINALFUNC = order_flow._breadth_final,
    COMBINEFUNC = order_flow._breadth_combine,
    SERIALFUNC = order_flow._breadth_serial, DESERIALFUNC = order_flow._breadth_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow.breadth(text) IS
    'Number of distinct non-null values (bytewise), like count(DISTINCT x) but hashed and parallel';

CREATE FUNCTION order_flow._median_trans(internal, float8) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_median_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._median_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_median_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._median_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_median_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._median_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_median_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._median_final(internal) RETURNS float8
    AS 'MODULE_PATHNAME', 'order_flow_median_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE order_flow.median(float8) (
    SFUNC = order_flow._median_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = order_flow._median_final,
    COMBINEFUNC = order_flow._median_combine,
    SERIALFUNC = order_flow._median_serial, DESERIALFUNC = order_flow._median_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow.median(float8) IS
    'Continuous median, equal to percentile_cont(0.5) WITHIN GROUP (ORDER BY x), by selection instead of sorting';

/*
 * health_profile(...): every customer health dimension of a group of
 * order_fact rows in one pass (one transition call per order), each
 * computed exactly as documented on customer_health; the stand-alone
 * aggregates above compute the same values one at a time.
 */
CREATE TYPE order_flow.health_values AS (
    orders                  bigint,
    order_frequency         float8,
    recency_days            float8,
    category_breadth        integer,
    payment_punctuality     float8,
    overdue_payments        bigint,
    service_requests        bigint,
    complaints              bigint,
    on_time_rate            float8,
    first_time_right_rate   float8,
    return_rework_rate      float8,
    order_value_trend       float8,
    order_volatility        float8,
    orders_3_months_ago     bigint,
    orders_2_months_ago     bigint,
    orders_last_month       bigint
);
CREATE FUNCTION order_flow._health_trans(internal, timestamptz, float8, text, timestamptz, timestamptz, date,
                                         timestamptz, timestamptz, boolean, float8, float8, integer, integer,
                                         integer, timestamptz) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_health_trans' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._health_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_health_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._health_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_health_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._health_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_health_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._health_final(internal) RETURNS order_flow.health_values
    AS 'MODULE_PATHNAME', 'order_flow_health_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE order_flow.health_profile(ordered_at timestamptz, amount float8, category text,
                                           contract_signed_at timestamptz, shipped_at timestamptz,
                                           promised_ship_date date, delivered_at timestamptz,
                                           accepted_at timestamptz, rework_return boolean,
                                           payment_due_amount float8, paid_on_time_amount float8,
                                           payments_late integer, service_requests integer,
                                           complaints integer, as_of timestamptz) (
    SFUNC = order_flow._health_trans, STYPE = internal, SSPACE = 520,
    FINALFUNC = order_flow._health_final,
    COMBINEFUNC = order_flow._health_combine,
    SERIALFUNC = order_flow._health_serial, DESERIALFUNC = order_flow._health_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow.health_profile(timestamptz, float8, text, timestamptz, timestamptz, date,
                                               timestamptz, timestamptz, boolean, float8, float8, integer,
                                               integer, integer, timestamptz) IS
    'The twelve customer health dimensions (and the last 3 months'' order counts) of a group of order_fact rows, in one pass';

/*
 * kpi_summary(...): kpi()'s row over any group of order_fact rows (GROUP BY
 * region, customer_class, month ... for KPIs per slice).
 */
CREATE TYPE order_flow.kpi_values AS (
    orders                          bigint,
    median_hours_to_first_logistics float8,
    mean_processing_hours           float8,
    median_processing_hours         float8,
    on_time_rate                    float8,
    first_time_right_rate           float8,
    exception_rate                  float8
);
CREATE FUNCTION order_flow._kpi_trans(internal, timestamptz, timestamptz, timestamptz, date, timestamptz,
                                      timestamptz, boolean, integer) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_kpi_trans' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._kpi_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_kpi_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION order_flow._kpi_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'order_flow_kpi_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._kpi_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'order_flow_kpi_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION order_flow._kpi_final(internal) RETURNS order_flow.kpi_values
    AS 'MODULE_PATHNAME', 'order_flow_kpi_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE order_flow.kpi_summary(contract_signed_at timestamptz, first_logistics_at timestamptz,
                                        shipped_at timestamptz, promised_ship_date date,
                                        delivered_at timestamptz, accepted_at timestamptz,
                                        rework_return boolean, exceptions integer) (
    SFUNC = order_flow._kpi_trans, STYPE = internal, SSPACE = 1024,
    FINALFUNC = order_flow._kpi_final,
    COMBINEFUNC = order_flow._kpi_combine,
    SERIALFUNC = order_flow._kpi_serial, DESERIALFUNC = order_flow._kpi_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE order_flow.kpi_summary(timestamptz, timestamptz, timestamptz, date, timestamptz,
                                            timestamptz, boolean, integer) IS
    'kpi()''s measures over a group of order_fact rows (medians by selection, in one pass)';

CREATE FUNCTION order_flow._health_score(vals float8[], weights float8[], bads float8[], goods float8[])
    RETURNS float8 AS 'MODULE_PATHNAME', 'order_flow_health_score' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION order_flow._health_score(float8[], float8[], float8[], float8[]) IS
    '100 x the weighted mean of values mapped linearly from bad (0) to good (1), clamped; NULL values left out';

/* ------------------------------------------------------------------ */
/* Health and drill-down configuration.                                */
/* ------------------------------------------------------------------ */

CREATE TABLE order_flow.health_weight (
    dimension       text PRIMARY KEY
                    CHECK (dimension IN ('order_frequency', 'recency_days', 'category_breadth',
                                         'payment_punctuality', 'overdue_payments', 'service_requests',
                                         'complaints', 'on_time_rate', 'first_time_right_rate',
                                         'return_rework_rate', 'order_value_trend', 'order_volatility')),
    weight          numeric NOT NULL CHECK (weight >= 0 AND weight <= 1),
    bad             float8 NOT NULL,
    good            float8 NOT NULL,
    description     text NOT NULL DEFAULT '',
    CHECK (good <> bad)
);
COMMENT ON TABLE order_flow.health_weight IS
    'Customer health score: per dimension a weight (all weights sum to 1) and the values scoring 0 (bad) and 1 (good), linear in between';

INSERT INTO order_flow.health_weight (dimension, weight, bad, good, description) VALUES
    ('order_frequency',       0.10,   0,    4,   'orders per month, last 12 complete months'),
    ('recency_days',          0.10,  90,    7,   'days since the last order'),
    ('category_breadth',      0.05,   1,    5,   'distinct product categories ordered'),
    ('payment_punctuality',   0.15,   0.5,  1,   'share of the amount due paid on time'),
    ('overdue_payments',      0.10,   0.5,  0,   'late payments, scored per order'),
    ('service_requests',      0.05,   1,    0,   'service requests, scored per order'),
    ('complaints',            0.10,   0.5,  0,   'complaints, scored per order'),
    ('on_time_rate',          0.10,   0.7,  1,   'share of shipped orders shipped on time'),
    ('first_time_right_rate', 0.10,   0.8,  1,   'share of delivered orders accepted without rework or return'),
    ('return_rework_rate',    0.05,   0.2,  0,   'share of delivered orders reworked or returned'),
    ('order_value_trend',     0.05,  -0.2,  0.1, 'relative monthly change of order value, last 6 complete months'),
    ('order_volatility',      0.05,   1,    0,   'coefficient of variation of monthly orders, last 3 complete months');

CREATE TABLE order_flow.health_threshold (
    rating          text PRIMARY KEY CHECK (rating IN ('red', 'yellow', 'green')),
    min_score       numeric NOT NULL CHECK (min_score >= 0 AND min_score <= 100)
);
COMMENT ON TABLE order_flow.health_threshold IS
    'Rating cut-offs: a score at or above green''s min_score is green, else at or above yellow''s is yellow, else red';
INSERT INTO order_flow.health_threshold (rating, min_score) VALUES
    ('red', 0), ('yellow', 50), ('green', 75);

CREATE TABLE order_flow.season (
    region          text NOT NULL DEFAULT '*',
    month           integer NOT NULL CHECK (month BETWEEN 1 AND 12),
    season          text NOT NULL,
    PRIMARY KEY (region, month)
);
COMMENT ON TABLE order_flow.season IS
    'Season of each calendar month, per region (''*'' = every region without its own row for that month)';
INSERT INTO order_flow.season (region, month, season)
SELECT '*', m, CASE WHEN m IN (12, 1, 2) THEN 'winter' WHEN m IN (3, 4, 5) THEN 'spring'
                    WHEN m IN (6, 7, 8) THEN 'summer' ELSE 'autumn' END
  FROM generate_series(1, 12) m
UNION ALL
VALUES ('east', 6, 'rainy'), ('east', 7, 'rainy');

/* Weights sum to 1; thresholds rise red < yellow < green.  Checked at commit. */
CREATE FUNCTION order_flow._validate_health() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    total numeric;
    r numeric;
    y numeric;
    g numeric;
BEGIN
    SELECT coalesce(sum(weight), 0) INTO total FROM order_flow.health_weight;
    IF abs(total - 1) > 0.000001 THEN
        RAISE EXCEPTION 'customer health weights must sum to 1, not %', total
            USING ERRCODE = '23514',
                  HINT = 'Adjust order_flow.health_weight.weight in the same transaction.';
    END IF;
    SELECT max(min_score) FILTER (WHERE rating = 'red'), max(min_score) FILTER (WHERE rating = 'yellow'),
           max(min_score) FILTER (WHERE rating = 'green')
      INTO r, y, g
      FROM order_flow.health_threshold;
    IF r IS NULL OR y IS NULL OR g IS NULL THEN
        RAISE EXCEPTION 'customer health thresholds need a red, a yellow and a green row'
            USING ERRCODE = '23514';
    END IF;
    IF NOT (r < y AND y < g) THEN
        RAISE EXCEPTION 'customer health thresholds must rise from red to yellow to green'
            USING ERRCODE = '23514',
                  DETAIL = format('red %s, yellow %s, green %s.', r, y, g);
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER health_weight_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.health_weight
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT order_flow._loading())
    EXECUTE FUNCTION order_flow._validate_health();
CREATE CONSTRAINT TRIGGER health_threshold_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.health_threshold
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT order_flow._loading())
    EXECUTE FUNCTION order_flow._validate_health();

/* Audited, merged on restore and cache-invalidating, like every config table. */
CREATE TRIGGER health_weight_audit AFTER INSERT OR UPDATE OR DELETE ON order_flow.health_weight
    FOR EACH ROW EXECUTE FUNCTION order_flow._audit_config();
CREATE TRIGGER health_weight_merge BEFORE INSERT ON order_flow.health_weight
    FOR EACH ROW EXECUTE FUNCTION order_flow._restore_merge();
CREATE TRIGGER health_weight_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_flow.health_weight
    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._config_changed();
CREATE TRIGGER health_threshold_audit AFTER INSERT OR UPDATE OR DELETE ON order_flow.health_threshold
    FOR EACH ROW EXECUTE FUNCTION order_flow._audit_config();
CREATE TRIGGER health_threshold_merge BEFORE INSERT ON order_flow.health_threshold
    FOR EACH ROW EXECUTE FUNCTION order_flow._restore_merge();
CREATE TRIGGER health_threshold_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_flow.health_threshold
    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._config_changed();
CREATE TRIGGER season_audit AFTER INSERT OR UPDATE OR DELETE ON order_flow.season
    FOR EACH ROW EXECUTE FUNCTION order_flow._audit_config();
CREATE TRIGGER season_merge BEFORE INSERT ON order_flow.season
    FOR EACH ROW EXECUTE FUNCTION order_flow._restore_merge();
CREATE TRIGGER season_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_flow.season
    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._config_changed();

/* ------------------------------------------------------------------ */
/* Working time.                                                       */
/* ------------------------------------------------------------------ */

/*
 * business_hours(calendar, start, stop): hours of working time between two
 * instants in a business calendar (its working hours per weekday in its
 * time zone, holidays skipped); wall-clock hours for always-open calendars.
 * The inverse of business_deadline().
 */
CREATE FUNCTION order_flow.business_hours(calendar text, start timestamptz, stop timestamptz)
RETURNS float8
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    cal record;
    secs float8;
BEGIN
    IF calendar IS NULL OR start IS NULL OR stop IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO cal FROM order_flow.calendar c WHERE c.calendar = calendar;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'calendar "%" does not exist', calendar USING ERRCODE = '42704';
    END IF;
    IF stop <= start THEN
        RETURN 0;
    END IF;
    IF cal.always_open THEN
        RETURN date_part('epoch', stop - start) / 3600;
    END IF;
    SELECT coalesce(sum(date_part('epoch', least(stop, (d.day + h.closes) AT TIME ZONE cal.time_zone)
                                         - greatest(start, (d.day + h.opens) AT TIME ZONE cal.time_zone))), 0)
      INTO secs
      FROM generate_series((start AT TIME ZONE cal.time_zone)::date::timestamp,
                           (stop AT TIME ZONE cal.time_zone)::date::timestamp, interval '1 day') AS d(day)
      JOIN order_flow.calendar_hours h
        ON h.calendar = cal.calendar AND h.isodow = extract(isodow FROM d.day)::integer
     WHERE (d.day + h.closes) AT TIME ZONE cal.time_zone > start
       AND (d.day + h.opens) AT TIME ZONE cal.time_zone < stop
       AND NOT EXISTS (SELECT 1 FROM order_flow.calendar_holiday x
                        WHERE x.calendar = cal.calendar AND x.day = d.day::date);
    RETURN secs / 3600;
END
$$;
COMMENT ON FUNCTION order_flow.business_hours(text, timestamptz, timestamptz) IS
    'Hours of working time between two instants in a business calendar (the inverse of business_deadline)';

/* ------------------------------------------------------------------ */
/* Views and report functions.                                         */
/* ------------------------------------------------------------------ */

CREATE VIEW order_flow.order_timeline AS
SELECT t.order_key,
       coalesce(f.customer_key, t.customer_key) AS customer_key,
       t.workflow,
       t.state,
       coalesce(t.created_at, f.ordered_at) AS created_at,
       t.contract_signed_at,
       t.warehouse_confirmed_at,
       t.finance_approved_at,
       t.shipped_at,
       f.first_logistics_at,
       f.delivered_at,
       f.accepted_at,
       date_part('epoch', t.contract_signed_at - coalesce(t.created_at, f.ordered_at)) / 3600
           AS hours_created_to_contract,
       date_part('epoch', t.warehouse_confirmed_at - t.contract_signed_at) / 3600
           AS hours_contract_to_warehouse,
       date_part('epoch', t.finance_approved_at - t.warehouse_confirmed_at) / 3600
           AS hours_warehouse_to_finance,
       date_part('epoch', t.shipped_at - t.finance_approved_at) / 3600
           AS hours_finance_to_shipped,
       date_part('epoch', f.first_logistics_at - t.contract_signed_at) / 3600
           AS hours_to_first_logistics,
       date_part('epoch', t.shipped_at - t.contract_signed_at) / 3600
           AS processing_hours
  FROM order_flow.tracked_order t
  LEFT JOIN order_flow.order_fact f ON f.order_key = t.order_key
 WHERE t.tbl IS NOT NULL;
COMMENT ON VIEW order_flow.order_timeline IS
    'Per order: the stamped times (first time each was reached), first logistics update, delivery, acceptance, and the hours between them; processing_hours = contract signed to shipped';

CREATE VIEW order_flow.state_durations AS
SELECT v.order_key,
       v.state,
       v.visit,
       v.seq,
       v.entered_at,
       v.left_at,
       date_part('epoch', u.until - v.entered_at) / 3600 AS wall_hours,
       CASE WHEN u.until IS NULL THEN NULL
            WHEN cal.always_open IS NOT FALSE THEN date_part('epoch', u.until - v.entered_at) / 3600
            ELSE order_flow.business_hours(cal.calendar, v.entered_at, u.until) END AS business_hours,
       s.owner_department,
       coalesce(cal.calendar, '24x7') AS calendar,
       s.category,
       s.max_dwell,
       v.exception_type,
       v.route
  FROM (SELECT e.order_key, e.seq, e.to_state AS state, e.occurred_at AS entered_at,
               lead(e.occurred_at) OVER w AS left_at,
               row_number() OVER (PARTITION BY e.order_key, e.to_state ORDER BY e.seq) AS visit,
               string_agg(e.to_state, '>') OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                   AS route,
               nullif(e.details->>'exception_type', '') AS exception_type
          FROM order_flow.audit_log e
         WHERE e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state
        WINDOW w AS (PARTITION BY e.order_key ORDER BY e.seq)) v
  LEFT JOIN order_flow.tracked_order t ON t.order_key = v.order_key
  LEFT JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = v.state
  LEFT JOIN order_flow.department d ON d.department = s.owner_department
  LEFT JOIN order_flow.calendar cal ON cal.calendar = coalesce(d.calendar, '24x7')
 CROSS JOIN LATERAL (
        SELECT coalesce(v.left_at, CASE WHEN s.category IS DISTINCT FROM 'terminal' THEN now() END) AS until) u;
COMMENT ON VIEW order_flow.state_durations IS
    'Per order and state visit: entered, left, wall-clock and business hours (owner department''s calendar; an open visit counts to now(), none in a terminal state) and the route taken';

CREATE VIEW order_flow.exception_pareto AS
SELECT c.exception_type,
       c.count,
       c.count::float8 / sum(c.count) OVER () AS share,
       (sum(c.count) OVER (ORDER BY c.count DESC, c.exception_type ROWS UNBOUNDED PRECEDING)
           / sum(c.count) OVER ())::float8 AS cumulative_share,
       (row_number() OVER (ORDER BY c.count DESC, c.exception_type))::integer AS rank
  FROM (SELECT x.exception_type, count(*) AS count
          FROM order_flow.exception_fact x
         GROUP BY x.exception_type) c
 ORDER BY rank;
COMMENT ON VIEW order_flow.exception_pareto IS
    'Exception types by number of exception events (edges with an exception type and exception records), with share, cumulative share and rank (ties by name)';

/*
 * Delay events: what made an order late, one row per occurrence.
 *   exception -- an exception event; hours lost = the time spent in the
 *                exception state it led to (to now() while still there; 0
 *                for a terminal state), or details.hours_lost of an
 *                exception record (else 0);
 *   dwell     -- a visit to an initial or active state longer than the
 *                state's max_dwell ("cannot wait" threshold); reason
 *                'dwell:<state>', hours lost = wall hours beyond max_dwell.
 * Region and customer class are the order's (order_fact); month and
 * season are those of the moment the delay began.
 */
CREATE VIEW order_flow.delay_events AS
SELECT x.order_key, f.customer_key, f.region, f.customer_class, x.occurred_at,
       date_trunc('month', x.occurred_at)::date AS month,
       coalesce((SELECT s.season FROM order_flow.season s
                  WHERE s.region = f.region AND s.month = extract(month FROM x.occurred_at)::integer),
                (SELECT s.season FROM order_flow.season s
                  WHERE s.region = '*' AND s.month = extract(month FROM x.occurred_at)::integer)) AS season,
       x.kind, x.reason, x.hours_lost
  FROM (SELECT sd.order_key, sd.entered_at AS occurred_at,
               CASE WHEN sd.exception_type IS NOT NULL THEN 'exception' ELSE 'dwell' END AS kind,
               coalesce(sd.exception_type, 'dwell:' || sd.state) AS reason,
               CASE WHEN sd.exception_type IS NOT NULL THEN coalesce(sd.wall_hours, 0)
                    ELSE sd.wall_hours - date_part('epoch', sd.max_dwell) / 3600 END AS hours_lost
          FROM order_flow.state_durations sd
         WHERE sd.exception_type IS NOT NULL
            OR (sd.category IN ('initial', 'active')
                AND sd.wall_hours > date_part('epoch', sd.max_dwell) / 3600)
        UNION ALL
        SELECT e.order_key, e.occurred_at, 'exception', e.details->>'exception_type',
               coalesce(order_flow._metric_number(e.details->'hours_lost'), 0)
          FROM order_flow.audit_log e
         WHERE e.action = 'exception' AND coalesce(e.details->>'exception_type', '') <> '') x
  LEFT JOIN order_flow.order_fact f ON f.order_key = x.order_key;
COMMENT ON VIEW order_flow.delay_events IS
    'One row per delay: exception events (hours in the exception state) and visits beyond a state''s max_dwell (reason dwell:<state>, hours beyond it)';

CREATE VIEW order_flow.delay_reasons AS
SELECT region, customer_class, month, extract(month FROM month)::integer AS month_of_year, season,
       kind, reason,
       count(DISTINCT order_key) AS orders,
       count(*) AS occurrences,
       sum(hours_lost) AS hours_lost
  FROM order_flow.delay_events
 GROUP BY region, customer_class, month, season, kind, reason;
COMMENT ON VIEW order_flow.delay_reasons IS
    'Drill-down cube of delay reasons by region, customer class, month and season: orders affected, occurrences, hours lost';

/*
 * top_delay_reasons(region, customer_class, months, n): the n reasons that
 * delayed the most orders of that region and customer class in those
 * calendar months (1-12) of any year -- "top 3 delay reasons for class-A
 * customers in the east in the rainy season".  NULL region, class or
 * months mean all.  share = orders with the reason / orders with any delay
 * in the slice.
 */
CREATE FUNCTION order_flow.top_delay_reasons(region text, customer_class text, months integer[],
                                             n integer DEFAULT 3)
RETURNS TABLE (rank integer, reason text, kind text, orders bigint, occurrences bigint,
               hours_lost float8, share float8)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF n IS NULL THEN
        RAISE EXCEPTION 'n must not be null' USING ERRCODE = '22004';
    END IF;
    IF n < 1 THEN
        RAISE EXCEPTION 'n must be at least 1, not %', n USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(months) m WHERE m IS NULL OR m NOT BETWEEN 1 AND 12) THEN
        RAISE EXCEPTION 'months must be calendar months 1 to 12' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH x AS (
        SELECT e.order_key, e.reason, e.kind, e.hours_lost
          FROM order_flow.delay_events e
         WHERE ($1 IS NULL OR e.region = $1)
           AND ($2 IS NULL OR e.customer_class = $2)
           AND ($3 IS NULL OR extract(month FROM e.occurred_at)::integer = ANY ($3))
    ), total AS (
        SELECT count(DISTINCT x.order_key) AS orders FROM x
    ), r AS (
        SELECT x.reason, x.kind, count(DISTINCT x.order_key) AS orders, count(*) AS occurrences,
               sum(x.hours_lost) AS hours_lost
          FROM x GROUP BY x.reason, x.kind
    )
    SELECT (row_number() OVER (ORDER BY r.orders DESC, r.hours_lost DESC, r.reason))::integer,
           r.reason, r.kind, r.orders, r.occurrences, r.hours_lost,
           r.orders::float8 / total.orders
      FROM r, total
     ORDER BY 1
     LIMIT $4;
END
$$;
COMMENT ON FUNCTION order_flow.top_delay_reasons(text, text, integer[], integer) IS
    'The n reasons that delayed most orders of a region and customer class in the given calendar months (NULL = all)';

/*
 * kpi(from, to): the source case's success measures over the orders whose
 * first contract signing falls in [from, to).  Rates are fractions 0..1,
 * NULL when their denominator is empty:
 *   on_time_rate           shipped orders shipped no later than their
 *                          promised_ship_date (session time zone) or, without
 *                          one, within 48 h of contract signing;
 *   first_time_right_rate  delivered orders accepted with no rework, return
 *                          or reshipment;
 *   exception_rate         orders with at least one exception event.
 * Medians are continuous (percentile_cont(0.5)); processing = contract
 * signed to first shipment.
 */
CREATE FUNCTION order_flow.kpi("from" timestamptz, "to" timestamptz)
RETURNS TABLE (orders bigint, median_hours_to_first_logistics float8, mean_processing_hours float8,
               median_processing_hours float8, on_time_rate float8, first_time_right_rate float8,
               exception_rate float8)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'kpi() window bounds must not be null' USING ERRCODE = '22004';
    END IF;
    IF $1 > $2 THEN
        RAISE EXCEPTION 'kpi() window starts after it ends' USING ERRCODE = '22023',
            DETAIL = format('from %s is later than to %s.', $1, $2);
    END IF;
    -- planned for the actual window (a cached generic plan would guess the
    -- range's selectivity): a month wants the index, all time a plain scan
    RETURN QUERY EXECUTE
        'SELECT (k.v).*
           FROM (SELECT order_flow.kpi_summary(f.contract_signed_at, f.first_logistics_at, f.shipped_at,
                                               f.promised_ship_date, f.delivered_at, f.accepted_at,
                                               f.rework_return, f.exceptions) AS v
                   FROM order_flow.order_fact f
                  WHERE f.contract_signed_at >= $1 AND f.contract_signed_at < $2) k'
        USING $1, $2;
END
$$;
COMMENT ON FUNCTION order_flow.kpi(timestamptz, timestamptz) IS
    'Source-case KPIs over orders first signed in [from, to): medians of hours to first logistics and of processing, mean processing, on-time, first-time-right and exception rates';

/*
 * customer_health: one row per customer with any order, over all time;
 * windowed dimensions are relative to now() in whole calendar months of
 * the session time zone.
 *   order_frequency        orders per month, last 12 complete months
 *   recency_days           days since the latest order
 *   category_breadth       distinct categories ordered
 *   payment_punctuality    amount paid by its due date / amount with a due date
 *   overdue_payments       payments made after their due date
 *   service_requests, complaints   counts
 *   on_time_rate, first_time_right_rate   as in kpi(), over all the customer's orders
 *   return_rework_rate     delivered orders reworked or returned / delivered orders
 *   order_value_trend      relative monthly slope of order value, last 6 complete months
 *   order_volatility       coefficient of variation of monthly orders, last 3 complete months
 * score: 100 x the weighted mean (health_weight) of each dimension mapped
 * linearly from its bad value (0) to its good value (1) and clamped; the
 * three counts are scored per order; dimensions that are NULL are left out
 * and the remaining weights rescaled.  rating from health_threshold.
 * orders_3_months_ago .. orders_last_month: the last 3 complete months.
 */
CREATE VIEW order_flow.customer_health AS
WITH p AS (
    SELECT f.customer_key,
           order_flow.health_profile(f.ordered_at, f.amount, f.category, f.contract_signed_at, f.shipped_at,
                                     f.promised_ship_date, f.delivered_at, f.accepted_at, f.rework_return,
                                     f.payment_due_amount, f.paid_on_time_amount, f.payments_late,
                                     f.service_requests, f.complaints, now()) AS v
      FROM order_flow.order_fact f
     WHERE f.customer_key IS NOT NULL
     GROUP BY f.customer_key
), a AS (
    SELECT p.customer_key, (p.v).* FROM p
), cfg AS MATERIALIZED (
    -- the configuration, read once, as arrays in the order of the dimensions below
    SELECT (SELECT max(min_score) FILTER (WHERE rating = 'yellow') FROM order_flow.health_threshold) AS yellow,
           (SELECT max(min_score) FILTER (WHERE rating = 'green') FROM order_flow.health_threshold) AS green,
           array_agg(w.weight::float8 ORDER BY d.ord) AS weights,
           array_agg(w.bad ORDER BY d.ord) AS bads,
           array_agg(w.good ORDER BY d.ord) AS goods
      FROM unnest(ARRAY['order_frequency', 'recency_days', 'category_breadth', 'payment_punctuality',
                        'overdue_payments', 'service_requests', 'complaints', 'on_time_rate',
                        'first_time_right_rate', 'return_rework_rate', 'order_value_trend',
                        'order_volatility']) WITH ORDINALITY d(dimension, ord)
      LEFT JOIN order_flow.health_weight w ON w.dimension = d.dimension
)
SELECT a.customer_key,
       a.order_frequency, a.recency_days, a.category_breadth, a.payment_punctuality,
       a.overdue_payments, a.service_requests, a.complaints, a.on_time_rate,
       a.first_time_right_rate, a.return_rework_rate, a.order_value_trend, a.order_volatility,
       s.score,
       CASE WHEN s.score IS NULL THEN NULL
            WHEN s.score >= cfg.green THEN 'green'
            WHEN s.score >= cfg.yellow THEN 'yellow'
            ELSE 'red' END AS rating,
       a.orders,
       a.orders_3_months_ago,
       a.orders_2_months_ago,
       a.orders_last_month
  FROM a
 CROSS JOIN cfg
 CROSS JOIN LATERAL (
        SELECT round(order_flow._health_score(
                   ARRAY[a.order_frequency, a.recency_days, a.category_breadth::float8, a.payment_punctuality,
                         a.overdue_payments::float8 / a.orders, a.service_requests::float8 / a.orders,
                         a.complaints::float8 / a.orders, a.on_time_rate, a.first_time_right_rate,
                         a.return_rework_rate, a.order_value_trend, a.order_volatility],
                   cfg.weights, cfg.bads, cfg.goods)::numeric, 1) AS score) s;
COMMENT ON VIEW order_flow.customer_health IS
    'Per customer: twelve health dimensions, a 0-100 score from health_weight, a red/yellow/green rating from health_threshold, and the last 3 complete months'' order counts';

/* ------------------------------------------------------------------ */
/* Privileges and dump.                                                */
/* ------------------------------------------------------------------ */

REVOKE ALL ON FUNCTION order_flow._metrics_capture(), order_flow.metrics_rebuild(),
    order_flow._validate_health(), order_flow.kpi(timestamptz, timestamptz),
    order_flow.top_delay_reasons(text, text, integer[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION order_flow.metrics_rebuild(), order_flow.kpi(timestamptz, timestamptz),
    order_flow.top_delay_reasons(text, text, integer[], integer)
TO order_flow_admin;
/* Pure functions that read nothing private: whoever may read a view that
   uses them may call them. */
GRANT EXECUTE ON FUNCTION order_flow._metric_number(jsonb), order_flow._metric_date(jsonb),
    order_flow.business_hours(text, timestamptz, timestamptz),
    order_flow._health_score(float8[], float8[], float8[], float8[]),
    order_flow.order_frequency(timestamptz, float8, timestamptz),
    order_flow.order_volatility(timestamptz, float8, timestamptz),
    order_flow.order_value_trend(timestamptz, float8, timestamptz),
    order_flow.monthly_orders(timestamptz, float8, timestamptz),
    order_flow.breadth(text), order_flow.median(float8),
    order_flow.health_profile(timestamptz, float8, text, timestamptz, timestamptz, date, timestamptz,
                              timestamptz, boolean, float8, float8, integer, integer, integer, timestamptz),
    order_flow.kpi_summary(timestamptz, timestamptz, timestamptz, date, timestamptz, timestamptz,
                           boolean, integer)
TO PUBLIC;
GRANT SELECT ON order_flow.order_fact, order_flow.exception_fact, order_flow.order_timeline,
    order_flow.state_durations, order_flow.exception_pareto, order_flow.delay_events,
    order_flow.delay_reasons, order_flow.customer_health
TO order_flow_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON order_flow.health_weight, order_flow.health_threshold,
    order_flow.season
TO order_flow_admin;

SELECT pg_catalog.pg_extension_config_dump('order_flow.health_weight', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.health_threshold', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.season', '');
