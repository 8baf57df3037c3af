/*
 * src/sql/tracking.sql
 *
 * Tracking and audit: the C entry points, manage()/unmanage(), transition(),
 * record(), import_transition(), the audit chain's verification and
 * witness checkpoints, drift repair, and the triggers on the log.
 */

/* ------------------------------------------------------------------ */
/* C entry points.                                                     */
/* ------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION _order_flow._preloaded() RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_preloaded' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow._wake_scheduler(deadline timestamptz) RETURNS void
    AS 'MODULE_PATHNAME', 'order_flow_wake_scheduler' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._request_service() RETURNS void
    AS 'MODULE_PATHNAME', 'order_flow_request_service' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._library_version() RETURNS text
    AS 'MODULE_PATHNAME', 'order_flow_library_version' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION _order_flow._library_version() IS
    'Internal: the version the loaded order_flow library was built as';

/*
 * version(): the version of the SQL objects installed in this database and
 * of the loaded library.  The library serves its own version and every
 * earlier one (until ALTER EXTENSION order_flow UPDATE); a library older
 * than the SQL objects is refused at the first transition.
 */
CREATE OR REPLACE FUNCTION order_flow.version(OUT sql_version text, OUT library_version text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'order_flow'),
           _order_flow._library_version()
$$;

COMMENT ON FUNCTION order_flow.version() IS
    'The version of the installed SQL objects and of the loaded library';

CREATE OR REPLACE FUNCTION order_flow.worker_status(
        OUT dboid oid, OUT pid integer, OUT next_wake timestamptz, OUT sweeps bigint,
        OUT absent boolean, OUT refused_total bigint, OUT refused_dropped bigint,
        OUT no_worker_slot boolean, OUT last_sweep timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'order_flow_worker_status' LANGUAGE C;

COMMENT ON FUNCTION order_flow.worker_status() IS
    'Every database the launcher serves or tried to: its scheduler (pid NULL: none now), when its last sweep ended, absent (no extension there), no_worker_slot (no free background worker: raise max_worker_processes); and the refused-attempt queue';

/* Served by the worker within a second of this transaction's commit. */
SELECT _order_flow._request_service();

DO $preload$
BEGIN
    IF NOT _order_flow._preloaded() THEN
        RAISE WARNING 'order_flow is not loaded through shared_preload_libraries'
            USING DETAIL = 'Everything works except timed escalation by the background worker and the log of refused attempts.',
                  HINT = 'Add order_flow to shared_preload_libraries and restart, or drive order_flow.escalate_due() from pg_cron.';
    END IF;
END
$preload$;

/*
 * _notify(payload): pg_notify('order_flow', payload), unless the session
 * turned NOTIFY off (order_flow.notify = off: the outbox alone carries the
 * broadcast, as in a transaction prepared for two-phase commit).  The
 * transition trigger asks the same setting in C.
 */
CREATE OR REPLACE FUNCTION _order_flow._notify(payload text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN current_setting('order_flow.notify', true) IS DISTINCT FROM 'off'
                THEN pg_notify('order_flow', payload) END
$$;

COMMENT ON FUNCTION _order_flow._notify(text) IS
    'Internal: NOTIFY on channel order_flow unless order_flow.notify is off';

CREATE OR REPLACE FUNCTION order_flow.current_actor() RETURNS text
    AS 'MODULE_PATHNAME', 'order_flow_current_actor' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION order_flow.current_actor() IS
    'The claimed actor: setting order_flow.actor when set, else session_user';

CREATE OR REPLACE FUNCTION order_flow.is_admin() RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_is_admin' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION order_flow.is_admin() IS
    'True for superusers and members of order_flow_admin (judged by the database user)';

CREATE OR REPLACE FUNCTION _order_flow._caller_may_read(tbl regclass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_caller_may_read' LANGUAGE C STABLE STRICT;

CREATE OR REPLACE FUNCTION order_flow._transition_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_transition_trigger' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._set_context(order_key text, action text, note text,
                                        details jsonb, occurred_at timestamptz)
    RETURNS void AS 'MODULE_PATHNAME', 'order_flow_set_context' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._take_context_result() RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_take_context_result' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._append_event(order_key text, action text,
                                         from_state text, to_state text,
                                         details jsonb, occurred_at timestamptz)
    RETURNS bigint AS 'MODULE_PATHNAME', 'order_flow_append_event' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._chain_end(order_key text) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.last_seq FROM order_flow.tracked_order t WHERE t.order_key = _chain_end.order_key
$$;

COMMENT ON FUNCTION _order_flow._chain_end(text) IS
    'Internal: the sequence number of the last event of the order''s chain (the one this transaction just appended, while it holds the head)';

CREATE OR REPLACE FUNCTION _order_flow._append_events(action text, order_keys text[], details jsonb[],
                                          occurred_at timestamptz DEFAULT NULL,
                                          OUT pos integer, OUT order_key text, OUT seq bigint)
    RETURNS SETOF record AS 'MODULE_PATHNAME', 'order_flow_append_events' LANGUAGE C;

COMMENT ON FUNCTION _order_flow._append_events(text, text[], jsonb[], timestamptz) IS
    'Internal: append one event per order key (details[i] for order_keys[i]) in one pass, heads locked in key order; one row per event: its place in the arrays, its order, its seq';

CREATE OR REPLACE FUNCTION _order_flow._config_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_config_changed' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._loading() RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_loading' LANGUAGE C STABLE;

CREATE OR REPLACE FUNCTION _order_flow._audit_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_audit_guard' LANGUAGE C;

CREATE OR REPLACE FUNCTION order_flow.event_hash(prev_hash bytea, order_key text, seq bigint,
                                      action text, from_state text, to_state text,
                                      actor text, db_user text,
                                      occurred_at timestamptz, recorded_at timestamptz,
                                      details jsonb)
    RETURNS bytea AS 'MODULE_PATHNAME', 'order_flow_event_hash'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION order_flow.event_hash IS
    'SHA-256 of one audit event chained to the previous event''s hash (the chain verify_audit checks)';

/* ------------------------------------------------------------------ */
/* The audit log is append-only.                                       */
/* ------------------------------------------------------------------ */
CREATE OR REPLACE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON order_flow.audit_log
    FOR EACH ROW EXECUTE FUNCTION _order_flow._audit_guard();

CREATE OR REPLACE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON order_flow.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION _order_flow._audit_guard();

/* A managed table dropped without unmanage() is detached (its history stays). */
CREATE OR REPLACE FUNCTION _order_flow._on_sql_drop() RETURNS event_trigger
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

DO $evt$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'order_flow_sql_drop') THEN
        CREATE EVENT TRIGGER order_flow_sql_drop ON sql_drop
            EXECUTE FUNCTION _order_flow._on_sql_drop();
    END IF;
END
$evt$;

/*
 * transition(): move one order by key.  The UPDATE fires the same C trigger
 * as a plain UPDATE; note and details reach it through a backend-local
 * context that the trigger takes for this order only.
 */
/* Which columns of a managed table are its key and status (for callers without catalogue grants). */
CREATE OR REPLACE FUNCTION _order_flow._managed(tbl regclass, OUT key_column name, OUT status_column name)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.key_column, m.status_column FROM order_flow.managed_table m WHERE m.relid = _managed.tbl
$$;

CREATE OR REPLACE FUNCTION _order_flow._move(tbl regclass, order_key text, to_state text, note text,
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
    SELECT * INTO m FROM _order_flow._managed(tbl);
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
    IF _order_flow._citus_distributed(tbl) THEN
        PERFORM _order_flow._citus_move(tbl, m.key_column, keytype, m.status_column, sttype,
                                        order_key, to_state, note, details, action, occurred_at);
        RETURN;
    END IF;
    PERFORM _order_flow._set_context(order_key, action, note, coalesce(details, '{}'), occurred_at);
    EXECUTE format('UPDATE %s SET %I = $1::%s WHERE %I = $2::%s',
                   tbl, m.status_column, sttype, m.key_column, keytype)
       USING to_state, order_key;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF NOT _order_flow._take_context_result() THEN
        IF n = 0 THEN
            RAISE EXCEPTION 'order % not found in %', order_key, tbl USING ERRCODE = 'P0002';
        END IF;
        RAISE EXCEPTION 'order % is already in state %', order_key, to_state
            USING ERRCODE = '23514';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION order_flow.transition(tbl regclass, order_key text, to_state text,
                                      note text DEFAULT NULL, details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT _order_flow._move(tbl, order_key, to_state, note, details, 'transition', NULL) $$;

COMMENT ON FUNCTION order_flow.transition IS
    'Move one order to a new state: validated, stamped, audited and broadcast like a plain UPDATE';

CREATE OR REPLACE FUNCTION order_flow.import_transition(tbl regclass, order_key text, to_state text,
                                             occurred_at timestamptz, details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF occurred_at IS NULL THEN
        RAISE EXCEPTION 'occurred_at must not be null' USING ERRCODE = '22004';
    END IF;
    PERFORM _order_flow._move(tbl, order_key, to_state, NULL, details, 'import', occurred_at);
END
$$;

COMMENT ON FUNCTION order_flow.import_transition IS
    'Back-date a validated transition from an old system: audited as import, no notifications';

CREATE OR REPLACE FUNCTION order_flow.allowed_transitions(tbl regclass, order_key text)
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
           AND _order_flow._caller_may_read(allowed_transitions.tbl)
        UNION ALL
        /* an order of a table distributed by Citus: its head beside its shard */
        SELECT (h.row_).workflow, (h.row_).state, (h.row_).held_from
          FROM _order_flow._citus_head(allowed_transitions.order_key, allowed_transitions.tbl) h
         WHERE _order_flow._citus_distributed(allowed_transitions.tbl)
           AND _order_flow._caller_may_read(allowed_transitions.tbl)
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
     ORDER BY _order_flow.status_from_text(e.to_state)
$$;

COMMENT ON FUNCTION order_flow.allowed_transitions IS
    'The next states the current actor may take for this order (for user interfaces)';

CREATE OR REPLACE FUNCTION order_flow.record(order_key text, kind text, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    st text;
    f text;
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
    IF kind = 'payment' THEN
        IF jsonb_typeof(details->'amount') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'a payment record needs a numeric details.amount' USING ERRCODE = '22023';
        END IF;
        IF (details->>'amount')::numeric < 0 THEN
            RAISE EXCEPTION 'a payment amount must not be negative, not %', details->>'amount'
                USING ERRCODE = '22023', HINT = 'Record a refund as a note or an exception.';
        END IF;
        FOREACH f IN ARRAY ARRAY['due_date', 'paid_date'] LOOP
            IF jsonb_typeof(details->f) IS DISTINCT FROM 'null' AND details ? f
               AND _order_flow._metric_date(details->f) IS NULL THEN
                RAISE EXCEPTION 'payment details.% must be a date, not %', f, details->f
                    USING ERRCODE = '22007', HINT = 'Write dates as strings, e.g. "2026-12-31".';
            END IF;
        END LOOP;
    END IF;
    SELECT t.state INTO st FROM order_flow.tracked_order t
     WHERE t.order_key = record.order_key AND t.tbl IS NOT NULL
       FOR UPDATE;
    IF NOT FOUND AND to_regnamespace('order_flow_citus') IS NOT NULL THEN
        /* an order of a distributed table (README, "Scale-out on Citus"): its fact beside its shard */
        RETURN _order_flow._citus_append_event(order_key, kind, NULL, NULL, details, NULL, keep_state => true);
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % is not tracked', order_key USING ERRCODE = 'P0002';
    END IF;
    RETURN _order_flow._append_event(order_key, kind, st, st, details, NULL);
END
$$;

/* ------------------------------------------------------------------ */
/* Reading users' tables with their owner's rights.                    */
/* ------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION _order_flow._read_as_owner(tbl regclass, key_column name, status_column name,
                                          customer_column name DEFAULT NULL, attributes name[] DEFAULT '{}',
                                          only_key text DEFAULT NULL)
    RETURNS TABLE (k text, s text, c text, a jsonb)
    AS 'MODULE_PATHNAME', 'order_flow_read_as_owner' LANGUAGE C;

COMMENT ON FUNCTION _order_flow._read_as_owner(regclass, name, name, name, name[], text) IS
    'Internal: a managed table''s key, status, customer and attributes as text, read as the table''s owner under SECURITY_RESTRICTED_OPERATION (the caller needs SELECT on it)';

/* ------------------------------------------------------------------ */
/* Attaching tables: user code runs as the table's owner.              */
/* ------------------------------------------------------------------ */

/* TRUNCATE of a managed table would orphan its tracked orders. */
CREATE OR REPLACE FUNCTION order_flow._refuse_truncate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'cannot truncate %: it is managed by order_flow', TG_TABLE_NAME::text
        USING ERRCODE = '55000', CONSTRAINT = 'order_flow_no_truncate',
              SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
              DETAIL = 'Deleting orders is recorded per order in the audit log; TRUNCATE would leave their chains without a trace.',
              HINT = 'DELETE the orders, or call order_flow.unmanage() first.';
END
$$;

COMMENT ON FUNCTION order_flow._refuse_truncate() IS
    'Internal: BEFORE TRUNCATE trigger of managed tables';

/* The triggers manage() attaches, with the transition trigger's arguments. */
CREATE OR REPLACE FUNCTION _order_flow._attach_triggers(tbl regclass, key_column name, status_column name,
                                            args text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_transition ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_no_truncate ON %s', tbl);
    EXECUTE format('CREATE TRIGGER order_flow_transition BEFORE INSERT OR UPDATE OF %I, %I OR DELETE ON %s
                    FOR EACH ROW EXECUTE FUNCTION order_flow._transition_trigger(%s)',
                   key_column, status_column, tbl, args);
    EXECUTE format('CREATE TRIGGER order_flow_no_truncate BEFORE TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._refuse_truncate()', tbl);
END
$$;

CREATE OR REPLACE FUNCTION order_flow.manage(tbl regclass,
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
    d           record;
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
    -- Citus: manage() takes a local table; citus_distribute() distributes it (README, "Scale-out on Citus")
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1)'
           INTO STRICT bad USING tbl;
        IF bad::boolean THEN
            RAISE EXCEPTION 'order_flow cannot manage a table Citus already distributed' USING ERRCODE = '0A000',
                DETAIL = format('%s is a Citus table.', tbl),
                HINT = 'Manage the local table, then distribute it with order_flow.citus_distribute() '
                       '(README, "Scale-out on Citus").';
        END IF;
        bad := NULL;
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
                      AND i.indkey[0] = key_att AND i.indpred IS NULL AND i.indexprs IS NULL)
       AND NOT _order_flow._citus_tenant_key(tbl, key_att) THEN
        RAISE EXCEPTION 'key column "%" of table % has no primary key or unique constraint of its own',
            key_column, tbl USING ERRCODE = '42P10',
            HINT = 'Order keys must identify an order: add a PRIMARY KEY or UNIQUE constraint on it.';
    END IF;
    IF NOT (st_type IN ('order_flow.status'::regtype, 'text'::regtype, 'varchar'::regtype)
            OR EXISTS (SELECT 1 FROM pg_type WHERE oid = st_type AND typtype = 'e')) THEN
        RAISE EXCEPTION 'status column "%" has type %, not order_flow.status, text, varchar or an enum',
            status_column, st_type::regtype USING ERRCODE = '42804';
    END IF;

    /*
     * The table's rows as text: key, status, customer, attributes.  Casts
     * and output functions of the owner's column types are the owner's
     * code, so the rows are read as the owner (restricted), never as the
     * caller, who may be a superuser.
     */
    CREATE TEMPORARY TABLE IF NOT EXISTS order_flow_manage_rows
        (k text, s text, c text, a jsonb) ON COMMIT DROP;
    TRUNCATE order_flow_manage_rows;
    INSERT INTO order_flow_manage_rows
    SELECT * FROM _order_flow._read_as_owner(tbl, key_column, status_column, customer_column, attributes);

    -- existing rows must be in known states of the workflow
    SELECT count(*) INTO n FROM order_flow_manage_rows x WHERE x.s IS NULL;
    IF n > 0 THEN
        RAISE EXCEPTION 'table % has % rows with a NULL status', tbl, n USING ERRCODE = '23502';
    END IF;
    SELECT string_agg(DISTINCT x.s, ', ' ORDER BY x.s) INTO bad FROM order_flow_manage_rows x
     WHERE NOT EXISTS (SELECT 1 FROM order_flow.state st WHERE st.workflow = manage.workflow AND st.state = x.s);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has rows in states unknown to workflow "%"', tbl, workflow
            USING ERRCODE = '23514', DETAIL = 'Unknown states: ' || bad || '.';
    END IF;

    -- order keys identify an order across the database
    SELECT string_agg(k, ', ') INTO bad
      FROM (SELECT x.k FROM order_flow_manage_rows x WHERE x.k LIKE 'order_flow:%' LIMIT 5) y;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has reserved order keys', tbl USING ERRCODE = '23505',
            DETAIL = 'Keys beginning with "order_flow:" name the extension''s own audit chains: ' || bad || '.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad
      FROM (SELECT x.k FROM order_flow_manage_rows x
              JOIN order_flow.tracked_order o ON o.order_key = x.k
             WHERE o.tbl IS DISTINCT FROM tblname LIMIT 5) y;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'order keys of table % collide with orders already tracked', tbl
            USING ERRCODE = '23505', DETAIL = 'Colliding keys include: ' || bad || '.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad
      FROM (SELECT x.k FROM order_flow_manage_rows x
              JOIN order_flow.tracked_order o ON o.order_key = x.k
             WHERE o.tbl = tblname AND o.state IS NULL AND o.last_seq > 0 LIMIT 5) y;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has rows whose orders were deleted', tbl
            USING ERRCODE = '23505', CONSTRAINT = 'order_flow_key_deleted',
                  DETAIL = 'Keys of deleted orders include: ' || bad || '.',
                  HINT = 'Give these orders new keys.';
    END IF;

    INSERT INTO order_flow.managed_table (relid, tbl, key_column, status_column, workflow,
                                          customer_column, attributes)
    VALUES (tbl, tblname, key_column, status_column, workflow, customer_column, attributes);

    /*
     * Rows that moved while the table was not managed: the chain records
     * the drift before the row is adopted in its new state, so the chain
     * stays continuous.
     */
    FOR d IN SELECT x.k, o.state AS was, x.s AS now_
               FROM order_flow_manage_rows x
               JOIN order_flow.tracked_order o ON o.order_key = x.k
              WHERE o.tbl = tblname AND o.last_seq > 0 AND o.state IS DISTINCT FROM x.s
              ORDER BY x.k
    LOOP
        PERFORM _order_flow._append_event(d.k, 'drift', d.was, d.now_,
            jsonb_build_object('table', tblname, 'note', 'adopted by manage() in a state its chain did not record'),
            NULL);
    END LOOP;

    -- adopt existing rows in their current state: not an event
    INSERT INTO order_flow.tracked_order AS o (order_key, tbl, workflow, state, entered_at,
                                               adopted_at, customer_key, attributes, stale_after)
    SELECT x.k, tblname, workflow, x.s, now(), now(), x.c, x.a,
           (SELECT now() + st.max_dwell * p.factor
              FROM order_flow.state st
              JOIN order_flow.reminder_policy p ON p.workflow = st.workflow AND p.level = 1
             WHERE st.workflow = manage.workflow AND st.state = x.s AND st.category <> 'terminal')
      FROM order_flow_manage_rows x
    ON CONFLICT (order_key) DO UPDATE
       SET state = excluded.state, workflow = excluded.workflow, adopted_at = excluded.adopted_at,
           entered_at = excluded.entered_at, reminder_level = 0, stale_after = excluded.stale_after,
           customer_key = excluded.customer_key, attributes = excluded.attributes;
    DROP TABLE order_flow_manage_rows;

    SELECT string_agg(quote_literal(a), ', ') INTO args
      FROM unnest(ARRAY[tblname, workflow, key_column::text, status_column::text,
                        coalesce(customer_column::text, '')] || attributes::text[]) a;
    PERFORM _order_flow._attach_triggers(tbl, key_column, status_column, args);
    IF EXISTS (SELECT 1 FROM pg_subscription_rel r WHERE r.srrelid = tbl) THEN
        RAISE WARNING 'rows of % arrive by logical replication, which moves them without order_flow''s trigger', tbl
            USING DETAIL = 'Replicated moves are neither checked nor recorded here: the rows drift from their chains.',
                  HINT = 'On a subscriber, do not manage the table: publish order_flow.tracked_order, audit_log, notification and outbox with it (README: Logical replication).';
    END IF;
END
$$;

COMMENT ON FUNCTION order_flow.manage IS
    'Attach the workflow to a table: installs the C transition trigger and adopts existing rows';

/*
 * unmanage(tbl, [convert_status]): detach the workflow from a table (its
 * triggers go; the table, its rows and the orders' history stay).  With
 * convert_status, a status column of type order_flow.status becomes text
 * (the same names), its default too, so that the table no longer depends
 * on the extension at all (DROP EXTENSION then leaves it alone); this
 * needs the table's owner.
 */
CREATE OR REPLACE FUNCTION order_flow.unmanage(tbl regclass, convert_status boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m record;
    def text;
    val text;
BEGIN
    IF tbl IS NULL OR convert_status IS NULL THEN
        RAISE EXCEPTION 'table and convert_status must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM order_flow.managed_table t WHERE t.relid = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not managed', tbl USING ERRCODE = '42704';
    END IF;
    IF _order_flow._citus_distributed(tbl) THEN
        /* Citus drops the triggers of every shard only when told it may */
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_transition ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_no_truncate ON %s', tbl);
    DELETE FROM order_flow.managed_table t WHERE t.relid = tbl;
    IF convert_status AND EXISTS (SELECT 1 FROM pg_attribute a
                                   WHERE a.attrelid = tbl AND a.attname = m.status_column
                                     AND a.atttypid = 'order_flow.status'::regtype) THEN
        SELECT pg_get_expr(d.adbin, d.adrelid) INTO def
          FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
         WHERE d.adrelid = tbl AND a.attname = m.status_column;
        IF def IS NOT NULL THEN
            /*
             * 'inquiry'::order_flow.status would keep depending on the type:
             * a constant name is kept as text; any other expression is the
             * owner's code, never run here: the default is dropped, with a
             * warning.
             */
            val := substring(def FROM '^''([a-z][a-z0-9_]*)''::order_flow\.status$');
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', tbl, m.status_column);
            IF val IS NULL THEN
                RAISE WARNING 'the default of %.% (%) is not a constant state name: it was dropped',
                    tbl, m.status_column, def
                    USING HINT = 'Set a text default of your own with ALTER TABLE ... ALTER COLUMN ... SET DEFAULT.';
            END IF;
        END IF;
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE text USING %I::text',
                       tbl, m.status_column, m.status_column);
        IF val IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %L', tbl, m.status_column, val);
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION order_flow.unmanage(regclass, boolean) IS
    'Detach the workflow from a table; its orders'' history stays in the audit log; convert_status: an order_flow.status column becomes text';

/* ------------------------------------------------------------------ */
/* The chain is the truth: drift repair and verification.              */
/* ------------------------------------------------------------------ */

/*
 * repair_drift(tbl, order_key, note): a row whose status was changed while
 * the trigger was not running is accepted as it is, and the chain records
 * the drift (from the chain's state to the row's), with the note and the
 * acting person.  Administrators only.
 */
CREATE OR REPLACE FUNCTION order_flow.repair_drift(tbl regclass, order_key text, note text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m record;
    row_state text;
    chain record;
    id_ bigint;
BEGIN
    IF tbl IS NULL OR order_key IS NULL THEN
        RAISE EXCEPTION 'table and order key must not be null' USING ERRCODE = '22004';
    END IF;
    IF coalesce(btrim(note), '') = '' THEN
        RAISE EXCEPTION 'repairing a drift requires a note' USING ERRCODE = '23514',
            CONSTRAINT = 'order_flow_reason_required';
    END IF;
    IF NOT order_flow.is_admin() THEN
        RAISE EXCEPTION 'only order_flow administrators may repair a drift' USING ERRCODE = '42501',
            CONSTRAINT = 'order_flow_not_authorised';
    END IF;
    SELECT * INTO m FROM order_flow.managed_table mt WHERE mt.relid = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not managed by order_flow', tbl USING ERRCODE = '42704';
    END IF;
    IF _order_flow._citus_distributed(tbl) THEN
        /* README, "Scale-out on Citus" */
        RETURN _order_flow._citus_repair_drift(tbl, m.key_column, m.status_column, m.workflow, m.tbl,
                                               order_key, note);
    END IF;
    SELECT * INTO chain FROM order_flow.tracked_order t
     WHERE t.order_key = repair_drift.order_key AND t.tbl = m.tbl FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % of % is not tracked', order_key, tbl USING ERRCODE = 'P0002';
    END IF;
    SELECT x.s INTO row_state
      FROM _order_flow._read_as_owner(tbl, m.key_column, m.status_column, NULL, '{}', order_key) x
     WHERE x.k = order_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found in %', order_key, tbl USING ERRCODE = 'P0002';
    END IF;
    IF row_state IS NOT DISTINCT FROM chain.state THEN
        RAISE EXCEPTION 'order % has not drifted: its row and its chain agree on "%"', order_key, row_state
            USING ERRCODE = '55000', CONSTRAINT = 'order_flow_no_drift';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.state s WHERE s.workflow = m.workflow AND s.state = row_state) THEN
        RAISE EXCEPTION '"%" is not a state of workflow "%"', row_state, m.workflow USING ERRCODE = '22P02',
            CONSTRAINT = 'order_flow_unknown_state';
    END IF;
    id_ := _order_flow._append_event(order_key, 'drift', chain.state, row_state,
                                    jsonb_build_object('table', m.tbl, 'note', note), NULL);
    UPDATE order_flow.tracked_order t
       SET state = row_state, held_from = NULL, entered_at = now(), reminder_level = 0,
           stale_after = (SELECT now() + st.max_dwell * p.factor
                            FROM order_flow.state st
                            JOIN order_flow.reminder_policy p ON p.workflow = st.workflow AND p.level = 1
                           WHERE st.workflow = m.workflow AND st.state = row_state
                             AND st.category <> 'terminal')
     WHERE t.order_key = repair_drift.order_key;
    RETURN id_;
END
$$;

COMMENT ON FUNCTION order_flow.repair_drift(regclass, text, text) IS
    'Accept a managed row''s status changed behind the trigger''s back, recording a drift event in its chain (administrators)';

/* The walk over the chains (C); verify_audit() adds the managed rows. */
CREATE OR REPLACE FUNCTION _order_flow._verify_chains(order_key text)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
    AS 'MODULE_PATHNAME', 'order_flow_verify_audit'
    LANGUAGE C STABLE;

/* Managed rows whose status differs from their chain (read as each table's owner). */
CREATE OR REPLACE FUNCTION _order_flow._verify_rows(only_key text)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m record;
BEGIN
    FOR m IN SELECT * FROM order_flow.managed_table mt
              WHERE NOT _order_flow._citus_distributed(mt.relid)  -- _citus_verify() checks those
                AND (only_key IS NULL
                 OR mt.tbl = (SELECT t.tbl FROM order_flow.tracked_order t WHERE t.order_key = only_key)
                 OR NOT EXISTS (SELECT FROM order_flow.tracked_order t WHERE t.order_key = only_key))
              ORDER BY tbl LOOP
        RETURN QUERY
        SELECT coalesce(r.k, t.order_key), NULL::bigint,
               CASE WHEN t.order_key IS NULL THEN
                        format('row of %s in state %s has no chain (written while the trigger was not running)',
                               m.tbl, quote_ident(r.s))
                    WHEN r.k IS NULL THEN
                        format('row missing from %s: its chain says %s (deleted while the trigger was not running)',
                               m.tbl, quote_ident(t.state))
                    WHEN t.state IS NULL THEN
                        format('drift: the order was deleted, but %s has a row in state %s', m.tbl, quote_ident(r.s))
                    ELSE format('drift: %s says %s, the chain says %s', m.tbl, quote_ident(r.s), quote_ident(t.state))
               END
          FROM _order_flow._read_as_owner(m.relid, m.key_column, m.status_column, NULL, '{}', only_key) r
          /* the chains of this table since it was (last) managed: rows deleted
             while it was not managed, or before a table of the same name was
             dropped, are history, not drift */
          FULL JOIN (SELECT * FROM order_flow.tracked_order o
                      WHERE o.tbl = m.tbl
                        AND greatest(o.adopted_at, o.created_at) >= m.managed_at) t ON t.order_key = r.k
         WHERE (only_key IS NULL OR coalesce(r.k, t.order_key) = only_key)
           AND (r.k IS NULL AND t.state IS NOT NULL
                OR t.order_key IS NULL
                OR r.k IS NOT NULL AND t.state IS DISTINCT FROM r.s)
         ORDER BY 1;
    END LOOP;
END
$$;

/* The digest over a checkpoint's heads (key, sequence, hash of each, in key order). */
CREATE OR REPLACE FUNCTION _order_flow._checkpoint_digest(checkpoint_id bigint)
RETURNS TABLE (chains bigint, digest text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*),
           encode(sha256(coalesce(string_agg(convert_to(h.order_key, 'UTF8') || '\x00'::bytea
                                             || int8send(h.seq) || h.hash, ''::bytea
                                             ORDER BY h.order_key), ''::bytea)), 'hex')
      FROM order_flow.audit_checkpoint_head h
     WHERE h.checkpoint_id = _checkpoint_digest.checkpoint_id
$$;

/*
 * audit_checkpoint(): one digest over every chain's last event and the
 * number of events, to be stored outside the database.  The heads are
 * kept in audit_checkpoint_head, so verify_audit(checkpoint) can say which
 * chain was shortened or rewritten since; the digest says whether that
 * table itself was altered.
 */
CREATE OR REPLACE FUNCTION order_flow.audit_checkpoint()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cid bigint := nextval('order_flow.audit_checkpoint_id_seq');
    n bigint;
    dg record;
BEGIN
    INSERT INTO order_flow.audit_checkpoint_head (checkpoint_id, order_key, seq, hash)
    SELECT DISTINCT ON (a.order_key) cid, a.order_key, a.seq, a.hash
      FROM order_flow.audit_log a
     WHERE a.seq IS NOT NULL AND a.hash IS NOT NULL
     ORDER BY a.order_key, a.seq DESC;
    SELECT count(*) INTO n FROM order_flow.audit_log;
    SELECT * INTO dg FROM _order_flow._checkpoint_digest(cid);
    RETURN jsonb_build_object('checkpoint', cid, 'taken_at', now(), 'events', n,
                              'chains', dg.chains, 'digest', dg.digest);
END
$$;

COMMENT ON FUNCTION order_flow.audit_checkpoint() IS
    'A witness of the whole audit log (every chain head, the event count) to store outside the database; verify_audit(checkpoint) checks against it';

CREATE OR REPLACE FUNCTION order_flow.verify_audit(checkpoint jsonb)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    cid bigint;
    dg record;
    n bigint;
BEGIN
    IF checkpoint IS NULL OR jsonb_typeof(checkpoint) <> 'object'
       OR jsonb_typeof(checkpoint->'checkpoint') <> 'number' OR jsonb_typeof(checkpoint->'digest') <> 'string'
       OR jsonb_typeof(checkpoint->'events') <> 'number' THEN
        RAISE EXCEPTION 'not a checkpoint: %', left(coalesce(checkpoint::text, 'NULL'), 200)
            USING ERRCODE = '22023',
                  HINT = 'Pass the value order_flow.audit_checkpoint() returned, as jsonb.';
    END IF;
    cid := (checkpoint->>'checkpoint')::bigint;
    RETURN QUERY SELECT * FROM order_flow.verify_audit(NULL::text);

    SELECT * INTO dg FROM _order_flow._checkpoint_digest(cid);
    IF dg.chains = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::bigint,
            format('checkpoint %s is not in the database (audit_checkpoint_head was emptied)', cid);
        RETURN;
    END IF;
    IF dg.digest <> checkpoint->>'digest' OR dg.chains <> (checkpoint->>'chains')::bigint THEN
        RETURN QUERY SELECT NULL::text, NULL::bigint,
            format('checkpoint %s: the heads kept in the database do not match the digest given (audit_checkpoint_head was altered)', cid);
    END IF;

    RETURN QUERY
    SELECT h.order_key, a.id,
           CASE WHEN a.id IS NULL
                THEN format('chain shortened since checkpoint %s: event %s, its last then, is gone', cid, h.seq)
                ELSE format('chain rewritten since checkpoint %s: event %s is not the one witnessed', cid, h.seq) END
      FROM order_flow.audit_checkpoint_head h
      LEFT JOIN order_flow.audit_log a ON a.order_key = h.order_key AND a.seq = h.seq
     WHERE h.checkpoint_id = cid
       AND (a.id IS NULL OR a.hash IS DISTINCT FROM h.hash)
     ORDER BY h.order_key;

    SELECT count(*) INTO n
      FROM order_flow.audit_log a
      JOIN order_flow.audit_checkpoint_head h
        ON h.checkpoint_id = cid AND h.order_key = a.order_key AND a.seq <= h.seq;
    IF n <> (checkpoint->>'events')::bigint THEN
        RETURN QUERY SELECT NULL::text, NULL::bigint,
            format('checkpoint %s witnessed %s events; %s of them are in the log now (a whole chain removed, or events inserted before the heads)',
                   cid, checkpoint->>'events', n);
    END IF;
END
$$;

COMMENT ON FUNCTION order_flow.verify_audit(jsonb) IS
    'verify_audit() plus the chains shortened or rewritten since the given checkpoint (from audit_checkpoint())';

CREATE OR REPLACE FUNCTION order_flow.verify_audit(order_key text DEFAULT NULL)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM _order_flow._verify_chains(verify_audit.order_key)
    UNION ALL
    SELECT * FROM _order_flow._verify_rows(verify_audit.order_key)
    UNION ALL
    /* on a Citus coordinator, the distributed tables' too (README, "Scale-out on Citus") */
    SELECT * FROM _order_flow._citus_verify(verify_audit.order_key)
$$;

COMMENT ON FUNCTION order_flow.verify_audit(text) IS
    'One row per problem: a broken link, a bad hash, a state discontinuity, a chain head that differs from its chain, a managed row that drifted from its chain (none = intact)';
