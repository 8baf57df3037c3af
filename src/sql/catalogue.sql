/*
 * src/sql/catalogue.sql
 *
 * The workflow catalogue's rules: validation of workflows and
 * configuration, configuration audit, restore merging and tombstones,
 * the dictionary's guard, and the triggers on the configuration tables.
 */

/* ------------------------------------------------------------------ */
/* Configuration: validation and audit.                                */
/* ------------------------------------------------------------------ */

/*
 * validate_workflow(w): the structural rules every workflow obeys.  Raises
 * 23514 with a detail naming the offending states; run at commit by the
 * deferred constraint triggers below, and callable by hand.
 */
CREATE OR REPLACE FUNCTION order_flow.validate_workflow(w text) RETURNS void
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
    -- NULL means anyone may take the edge; an empty list (or one of NULLs)
    -- would read as "no one" here and as "anyone" to the trigger: refused
    SELECT string_agg(format('%s -> %s', r.from_state, r.to_state), ', ' ORDER BY r.from_state, r.to_state) INTO bad
      FROM order_flow.transition_rule r
     WHERE r.workflow = w AND r.performed_by IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM unnest(r.performed_by) p WHERE p IS NOT NULL);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'workflow "%" has edges whose performed_by names no department', w
            USING ERRCODE = '23514', DETAIL = 'Edges: ' || bad || '.',
                  HINT = 'Set performed_by to NULL for an edge anyone may take, or name its departments.';
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

CREATE OR REPLACE FUNCTION _order_flow._validate_config() RETURNS trigger
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
CREATE OR REPLACE FUNCTION _order_flow._audit_config() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF _order_flow._loading() THEN
        RETURN NULL;
    END IF;
    PERFORM _order_flow._append_event(
        'order_flow:config', 'config_change', NULL, NULL,
        jsonb_build_object('table', TG_TABLE_NAME, 'op', TG_OP,
                           'old', CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
                           'new', CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END),
        NULL);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION _order_flow._pk_of(relid oid, rowj jsonb) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_object_agg(a.attname, rowj -> a.attname::text)
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indrelid = relid AND i.indisprimary
$$;

CREATE OR REPLACE FUNCTION _order_flow._tombstone() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO order_flow.config_tombstone (tbl, pk)
        VALUES (TG_TABLE_NAME, _order_flow._pk_of(TG_RELID, to_jsonb(OLD)))
        ON CONFLICT (tbl, pk) DO UPDATE SET deleted_at = now();
    ELSE
        DELETE FROM order_flow.config_tombstone
         WHERE tbl = TG_TABLE_NAME AND pk = _order_flow._pk_of(TG_RELID, to_jsonb(NEW));
    END IF;
    RETURN NULL;
END
$$;

/* A reloaded tombstone deletes the row CREATE EXTENSION shipped again. */
CREATE OR REPLACE FUNCTION _order_flow._tombstone_reload() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cond text;
BEGIN
    IF _order_flow._loading() THEN
        SELECT string_agg(format('t.%I::text IS NOT DISTINCT FROM ($1->>%L)', k, k), ' AND ')
          INTO cond FROM jsonb_object_keys(NEW.pk) k;
        IF cond IS NOT NULL AND NEW.tbl ~ '^[a-z_]+$' THEN
            EXECUTE format('DELETE FROM order_flow.%I t WHERE %s', NEW.tbl, cond) USING NEW.pk;
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION _order_flow._label_guard() RETURNS trigger
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

CREATE OR REPLACE TRIGGER status_label_immutable
    BEFORE UPDATE OR DELETE ON order_flow.status_label
    FOR EACH ROW EXECUTE FUNCTION _order_flow._label_guard();

/*
 * _restore_merge(): while a COPY reloads a configuration table (pg_restore),
 * a row whose primary key CREATE EXTENSION already inserted is merged into
 * it instead of failing: identical rows are skipped, a shipped row the user
 * had changed takes the dumped values.  Outside COPY, rows insert as usual.
 */
CREATE OR REPLACE FUNCTION _order_flow._restore_merge() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newj jsonb := to_jsonb(NEW);
    cond text;
    cols text;
    existing jsonb;
BEGIN
    IF NOT _order_flow._loading() THEN
        RETURN NEW;
    END IF;
    /*
     * The dictionary may also be filled, during a parallel restore, by the
     * load of a table whose status values carry their positions (see
     * _restore_label): one at a time.
     */
    IF TG_TABLE_NAME = 'status_label' THEN
        PERFORM pg_advisory_xact_lock('order_flow.status_label'::regclass::oid::bigint);
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

/*
 * States named in a workflow enter the dictionary automatically -- except
 * in a restore, where the dictionary's own rows (or the status values of a
 * managed table, which carry their positions) bring the name at its
 * original position, in whatever order a parallel restore loads them.
 */
CREATE OR REPLACE FUNCTION _order_flow._state_label() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF _order_flow._loading() THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.status_label WHERE label = NEW.state) THEN
        PERFORM order_flow.create_status(NEW.state);
    END IF;
    RETURN NEW;
END
$$;

/* Triggers are created after the shipped rows so installing is not an edit. */
CREATE OR REPLACE TRIGGER state_label BEFORE INSERT OR UPDATE OF state ON order_flow.state
    FOR EACH ROW EXECUTE FUNCTION _order_flow._state_label();

/* WHEN is judged as the row changes, not at commit: a reload is never validated. */
DROP TRIGGER IF EXISTS state_valid ON order_flow.state;
CREATE CONSTRAINT TRIGGER state_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.state
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT _order_flow._loading())
    EXECUTE FUNCTION _order_flow._validate_config();

DROP TRIGGER IF EXISTS transition_rule_valid ON order_flow.transition_rule;
CREATE CONSTRAINT TRIGGER transition_rule_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.transition_rule
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT _order_flow._loading())
    EXECUTE FUNCTION _order_flow._validate_config();

DO $cfg$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['status_label', 'calendar', 'calendar_hours', 'calendar_holiday',
                             'workflow', 'department', 'state', 'transition_rule', 'member',
                             'escalation_policy', 'reminder_policy', 'managed_table']
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON order_flow.%I
                        FOR EACH ROW EXECUTE FUNCTION _order_flow._audit_config()',
                       t || '_audit', t);
        IF t <> 'managed_table' THEN
            EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE INSERT ON order_flow.%I
                            FOR EACH ROW EXECUTE FUNCTION _order_flow._restore_merge()',
                           t || '_merge', t);
        END IF;
        IF t NOT IN ('managed_table', 'status_label') THEN
            EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR DELETE ON order_flow.%I
                            FOR EACH ROW WHEN (NOT _order_flow._loading())
                            EXECUTE FUNCTION _order_flow._tombstone()', t || '_tombstone', t);
        END IF;
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON order_flow.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION _order_flow._config_changed()',
                       t || '_invalidate', t);
    END LOOP;
END
$cfg$;

CREATE OR REPLACE TRIGGER config_tombstone_reload BEFORE INSERT ON order_flow.config_tombstone
    FOR EACH ROW EXECUTE FUNCTION _order_flow._tombstone_reload();

/*
 * Parallel restore.  pg_dump writes the extension's tables parents first,
 * but pg_restore -j loads them in no fixed order, and a foreign key of the
 * catalogue (a transition rule's states, a state's department) would
 * refuse a row whose parent row is not loaded yet.  During a restore such
 * a row waits in order_flow.restore_pending and is inserted when its
 * parent table's load ends.  The loads of these tables (and of new state
 * names, _restore_label) take one lock, so a row is never set aside after
 * its parent's load looked for it.
 */
CREATE OR REPLACE FUNCTION _order_flow._restore_defer() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newj jsonb := to_jsonb(NEW);
    fk record;
    found_parent boolean;
BEGIN
    PERFORM _order_flow._restore_lock();
    FOR fk IN
        SELECT c.confrelid::regclass AS parent,
               string_agg(format('p.%I IS NOT DISTINCT FROM ($1->>%L)::%s', pa.attname, ca.attname,
                                 format_type(pa.atttypid, pa.atttypmod)), ' AND ') AS cond,
               bool_or(newj->>ca.attname IS NULL) AS has_null
          FROM pg_constraint c
          CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(child_att, parent_att)
          JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.child_att
          JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.parent_att
         WHERE c.conrelid = TG_RELID AND c.contype = 'f' AND c.confrelid <> TG_RELID
         GROUP BY c.oid, c.confrelid
    LOOP
        CONTINUE WHEN fk.has_null;      -- a NULL reference refers to nothing
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s p WHERE %s)', fk.parent, fk.cond)
           INTO found_parent USING newj;
        IF NOT found_parent THEN
            INSERT INTO order_flow.restore_pending (relid, waits_for, row_data)
            VALUES (TG_RELID, fk.parent, newj);
            RETURN NULL;
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION _order_flow._restore_defer() IS
    'Internal: during a restore, set aside a row whose parent row is not loaded yet (order_flow.restore_pending)';

CREATE OR REPLACE FUNCTION _order_flow._restore_replay() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    FOR p IN DELETE FROM order_flow.restore_pending r WHERE r.waits_for = TG_RELID
             RETURNING r.relid, r.row_data
    LOOP
        /* through the table's triggers again: it may still wait for another parent */
        EXECUTE format('INSERT INTO %s SELECT * FROM jsonb_populate_record(NULL::%s, $1)', p.relid, p.relid)
          USING p.row_data;
    END LOOP;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION _order_flow._restore_replay() IS
    'Internal: at the end of a restored table''s load, insert the rows that waited for it';

DO $restore$
DECLARE
    t regclass;
BEGIN
    /* every table of a foreign key between the extension's tables, both ends */
    FOR t IN
        SELECT DISTINCT x.rel
          FROM pg_constraint c, LATERAL (VALUES (c.conrelid), (c.confrelid)) x(rel)
         WHERE c.contype = 'f' AND c.connamespace = 'order_flow'::regnamespace
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER restore_defer BEFORE INSERT ON %s
                        FOR EACH ROW WHEN (_order_flow._loading())
                        EXECUTE FUNCTION _order_flow._restore_defer()', t);
        IF EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = t) THEN
            EXECUTE format('CREATE OR REPLACE TRIGGER restore_replay AFTER INSERT ON %s
                            FOR EACH STATEMENT WHEN (_order_flow._loading())
                            EXECUTE FUNCTION _order_flow._restore_replay()', t);
        END IF;
    END LOOP;
END
$restore$;
